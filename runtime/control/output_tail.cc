#include "runtime/control/output_tail.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"

namespace sparkstack::control {

struct LineTail::State {
  size_t capacity;
  mutable std::mutex mu;
  std::deque<std::string> lines;
  std::string partial;  // the line being written
  uint64_t dropped = 0;
};

LineTail::LineTail(size_t capacity) : state_(std::make_unique<State>()) {
  state_->capacity = capacity == 0 ? 1 : capacity;
}
LineTail::~LineTail() = default;

void LineTail::Append(std::string_view bytes) {
  std::lock_guard<std::mutex> lock(state_->mu);
  State& s = *state_;
  const auto finish_line = [&s] {
    s.lines.push_back(std::move(s.partial));
    s.partial.clear();
    if (s.lines.size() > s.capacity) {
      s.lines.pop_front();
      ++s.dropped;
    }
  };
  for (char c : bytes) {
    if (c == '\n') {
      finish_line();
    } else if (s.partial.size() < kMaxLineBytes) {
      s.partial.push_back(c);
    }
  }
}

std::pair<std::vector<std::string>, uint64_t> LineTail::Last(size_t lines) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  const std::deque<std::string>& kept = state_->lines;
  const size_t count = lines == 0 ? kept.size() : std::min(lines, kept.size());
  return {std::vector<std::string>(kept.end() - static_cast<ptrdiff_t>(count), kept.end()),
          state_->dropped};
}

struct OutputTail::Impl {
  explicit Impl(size_t capacity) : tail(capacity) {}
  LineTail tail;
  int original = -1;         // the stderr we replaced, where everything is still copied
  int original_stdout = -1;  // the stdout we replaced, restored at the end
  int read_end = -1;
  std::thread copier;
};

absl::StatusOr<std::unique_ptr<OutputTail>> OutputTail::Start(size_t capacity) {
  auto impl = std::make_shared<Impl>(capacity);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("output tail: pipe: ", strerror(errno)));
  }
  std::fflush(stdout);
  std::fflush(stderr);
  impl->original = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  impl->original_stdout = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (impl->original < 0 || impl->original_stdout < 0 || dup2(fds[1], STDOUT_FILENO) < 0 ||
      dup2(fds[1], STDERR_FILENO) < 0) {
    const int error = errno;
    close(fds[0]);
    close(fds[1]);
    if (impl->original >= 0) close(impl->original);
    if (impl->original_stdout >= 0) close(impl->original_stdout);
    return absl::InternalError(absl::StrCat("output tail: dup: ", strerror(error)));
  }
  close(fds[1]);  // descriptors 1 and 2 (inherited by children) are now the write ends
  impl->read_end = fds[0];
  // The copier shares the state: it may outlive this object while children still hold the pipe.
  impl->copier = std::thread([raw = impl] {
    char buffer[4096];
    while (true) {
      const ssize_t n = read(raw->read_end, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {  // every write end closed
        close(raw->read_end);
        return;
      }
      raw->tail.Append(std::string_view(buffer, static_cast<size_t>(n)));
      for (ssize_t done = 0; done < n;) {
        const ssize_t w = write(raw->original, buffer + done, static_cast<size_t>(n - done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;  // the original stderr is gone: keep the tail only
        done += w;
      }
    }
  });
  return std::unique_ptr<OutputTail>(new OutputTail(std::move(impl)));
}

OutputTail::OutputTail(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

OutputTail::~OutputTail() {
  // Descriptors 1 and 2 back to the originals: the pipe's write ends in this process close, and
  // the copier ends once children holding them have exited too (they die with the agent).
  std::fflush(stdout);
  std::fflush(stderr);
  dup2(impl_->original_stdout, STDOUT_FILENO);
  dup2(impl_->original, STDERR_FILENO);
  impl_->copier.detach();
}

const LineTail& OutputTail::tail() const { return impl_->tail; }

}  // namespace sparkstack::control
