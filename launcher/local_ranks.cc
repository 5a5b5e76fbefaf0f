#include "launcher/local_ranks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/numbers.h"

namespace sparkstack::launcher {
namespace {

void ClosePipes(std::vector<LocalWorker>& workers) {
  for (LocalWorker& w : workers) {
    if (w.report_fd >= 0) close(w.report_fd);
    w.report_fd = -1;
  }
}

// Whatever the worker wrote to its report pipe (empty when nothing yet).
std::string ReadReport(int fd) {
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) text.append(buffer, n);
  return text;
}

bool IsConsequence(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status) ||
         absl::IsCancelled(status);
}

}  // namespace

std::string EncodeFailureReport(const absl::Status& status) {
  std::string message(status.message());
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  return absl::StrCat(static_cast<int>(status.code()), " ", message, "\n");
}

absl::Status DecodeFailureReport(const std::string& line) {
  const size_t space = line.find(' ');
  int code = 0;
  if (space == std::string::npos || !absl::SimpleAtoi(line.substr(0, space), &code) ||
      code <= 0 || code > 16) {
    return absl::UnknownError(line);
  }
  std::string message = line.substr(space + 1);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

absl::StatusOr<std::vector<LocalWorker>> SpawnLocalWorkers(int world_size, int port) {
  std::vector<LocalWorker> workers;
  for (int rank = 1; rank < world_size; ++rank) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
      KillWorkers(workers);
      return absl::InternalError(absl::StrCat("pipe for rank ", rank, ": ", strerror(errno)));
    }
    const std::string rank_arg = std::to_string(rank);
    const std::string world_arg = std::to_string(world_size);
    const std::string rendezvous_arg = absl::StrCat("127.0.0.1:", port);
    const std::string fd_arg = std::to_string(pipe_fds[1]);
    const pid_t pid = fork();
    if (pid < 0) {
      close(pipe_fds[0]);
      close(pipe_fds[1]);
      KillWorkers(workers);
      return absl::InternalError(absl::StrCat("fork for rank ", rank, ": ", strerror(errno)));
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() == 1) _exit(1);  // the parent is already gone
      fcntl(pipe_fds[1], F_SETFD, 0);  // the write end survives exec
      execl("/proc/self/exe", "sparkstack", "worker", "--rank", rank_arg.c_str(), "--world",
            world_arg.c_str(), "--rendezvous", rendezvous_arg.c_str(), "--report-fd",
            fd_arg.c_str(), nullptr);
      _exit(127);
    }
    close(pipe_fds[1]);
    fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
    workers.push_back({.rank = rank, .pid = pid, .report_fd = pipe_fds[0]});
  }
  return workers;
}

absl::Status WaitForWorkers(std::vector<LocalWorker>& workers, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::string> failures;
  for (LocalWorker& w : workers) {
    int status = 0;
    pid_t done = 0;
    while ((done = waitpid(w.pid, &status, WNOHANG)) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (done == 0) {
      kill(w.pid, SIGKILL);
      waitpid(w.pid, &status, 0);
      failures.push_back(absl::StrCat("rank ", w.rank, " did not exit"));
    } else if (WIFSIGNALED(status)) {
      failures.push_back(absl::StrCat("rank ", w.rank, " died of signal ", WTERMSIG(status)));
    } else if (WEXITSTATUS(status) != 0) {
      const std::string report = w.report_fd >= 0 ? ReadReport(w.report_fd) : "";
      failures.push_back(report.empty()
                             ? absl::StrCat("rank ", w.rank, " exited with status ",
                                            WEXITSTATUS(status))
                             : absl::StrCat("rank ", w.rank, ": ",
                                            DecodeFailureReport(report).message()));
    }
  }
  ClosePipes(workers);
  workers.clear();
  if (failures.empty()) return absl::OkStatus();
  return absl::InternalError(absl::StrJoin(failures, "; "));
}

void KillWorkers(std::vector<LocalWorker>& workers) {
  for (const LocalWorker& w : workers) kill(w.pid, SIGKILL);
  for (const LocalWorker& w : workers) waitpid(w.pid, nullptr, 0);
  ClosePipes(workers);
  workers.clear();
}

std::optional<absl::Status> WorkerFailure(const std::vector<LocalWorker>& workers,
                                          std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  std::vector<std::string> reports(workers.size());
  std::optional<absl::Status> any;
  while (true) {
    for (size_t i = 0; i < workers.size(); ++i) {
      if (workers[i].report_fd >= 0) reports[i] += ReadReport(workers[i].report_fd);
      if (reports[i].empty() || reports[i].back() != '\n') continue;
      const absl::Status status = DecodeFailureReport(reports[i]);
      const absl::Status named(status.code(),
                               absl::StrCat("rank ", workers[i].rank, ": ", status.message()));
      if (!IsConsequence(status)) return named;
      if (!any) any = named;
    }
    if (std::chrono::steady_clock::now() >= deadline) return any;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace sparkstack::launcher
