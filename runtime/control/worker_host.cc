#include "runtime/control/worker_host.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "runtime/control/proto_mapping.h"
#include "runtime/control/relayed_bootstrap.h"
#include "spdlog/spdlog.h"

namespace sparkstack::control {
namespace {

// Bootstrap operations may wait for other ranks to load their weights first; a failed group is
// ended by the coordinator (the rank is stopped), so this is only the last resort.
constexpr std::chrono::milliseconds kBootstrapTimeout{30 * 60 * 1000};
// The descriptor the child finds its socket on.
constexpr int kChildFd = 3;

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool ReadAll(int fd, char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = read(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// One frame: u32 little-endian length (<= kMaxGrpcMessageBytes), then the serialized message.
bool WriteFrame(int fd, const google::protobuf::MessageLite& message) {
  const std::string body = message.SerializeAsString();
  if (body.size() > static_cast<size_t>(kMaxGrpcMessageBytes)) return false;
  char header[4];
  for (int i = 0; i < 4; ++i) header[i] = static_cast<char>((body.size() >> (8 * i)) & 0xff);
  return WriteAll(fd, header, 4) && WriteAll(fd, body.data(), body.size());
}

// False at the end of the stream or on a malformed frame.
bool ReadFrame(int fd, google::protobuf::MessageLite* message) {
  unsigned char header[4];
  if (!ReadAll(fd, reinterpret_cast<char*>(header), 4)) return false;
  const uint32_t size =
      header[0] | header[1] << 8 | header[2] << 16 | static_cast<uint32_t>(header[3]) << 24;
  if (size > static_cast<uint32_t>(kMaxGrpcMessageBytes)) return false;
  std::string body(size, '\0');
  if (!ReadAll(fd, body.data(), size)) return false;
  return message->ParseFromString(body);
}

// Ends a worker process without running destructors: its reader thread may still be reading.
[[noreturn]] void Finish(int status) {
  spdlog::default_logger()->flush();
  _exit(status);
}

// --- on a thread -------------------------------------------------------------------------------

class ThreadWorker final : public WorkerHost {
 public:
  // Shared with the thread, which may outlive this object when abandoned.
  struct State {
    State(const LoadPlan& plan, WorkerRankFn fn, WorkerEvents events)
        : plan(plan),
          fn(std::move(fn)),
          events(std::move(events)),
          bootstrap(plan.rank, plan.world_size, this->events.contribute, kBootstrapTimeout) {}
    LoadPlan plan;
    WorkerRankFn fn;
    WorkerEvents events;
    RelayedBootstrap bootstrap;
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::condition_variable cv;
    bool done ABSL_GUARDED_BY(mu) = false;
  };

  ThreadWorker(const LoadPlan& plan, WorkerRankFn fn, WorkerEvents events)
      : state_(std::make_shared<State>(plan, std::move(fn), std::move(events))) {
    thread_ = std::thread([state = state_] {
      struct Context final : WorkerContext {
        State* state;
        void Report(const LoadProgress& progress) override { state->events.progress(progress); }
        const std::atomic<bool>& stop() const override { return state->stop; }
      } context;
      context.state = state.get();
      const absl::Status result = state->fn(state->plan, state->bootstrap, context);
      state->events.ended(result, state->stop.load());
      {
        std::lock_guard<std::mutex> lock(state->mu);
        state->done = true;
      }
      state->cv.notify_all();
    });
  }

  ~ThreadWorker() override {
    if (!thread_.joinable()) return;
    if (Wait(std::chrono::milliseconds(0))) {
      thread_.join();
    } else {
      thread_.detach();
    }
  }

  void Deliver(uint64_t seq, absl::StatusOr<std::vector<std::string>> result) override {
    state_->bootstrap.Deliver(seq, std::move(result));
  }
  void Stop(const std::string& reason) override {
    state_->stop = true;
    state_->bootstrap.Abort(absl::CancelledError(reason));
  }
  bool Wait(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(state_->mu);
    return state_->cv.wait_for(lock, timeout, [&] { return state_->done; });
  }
  bool Abandon() override {
    if (thread_.joinable()) thread_.detach();
    return false;
  }

 private:
  std::shared_ptr<State> state_;
  std::thread thread_;
};

// --- in a child process --------------------------------------------------------------------

class ChildWorker final : public WorkerHost {
 public:
  ChildWorker(int fd, pid_t pid, int rank, WorkerEvents events)
      : fd_(fd), pid_(pid), rank_(rank), events_(std::move(events)) {
    reader_ = std::thread([this] { ReadLoop(); });
  }

  ~ChildWorker() override {
    if (!Wait(std::chrono::milliseconds(0))) kill(pid_, SIGKILL);
    reader_.join();
    close(fd_);
  }

  void Deliver(uint64_t seq, absl::StatusOr<std::vector<std::string>> result) override {
    pb::CoordinatorMessage message;
    pb::BootstrapResult* r = message.mutable_bootstrap_result();
    r->set_seq(seq);
    if (result.ok()) {
      for (const std::string& blob : *result) r->add_blobs(blob);
    } else {
      r->set_error_code(static_cast<int>(result.status().code()));
      r->set_error(Truncate(result.status().message()));
    }
    Write(message);
  }

  void Stop(const std::string& reason) override {
    stop_requested_ = true;
    pb::CoordinatorMessage message;
    message.mutable_stop_worker()->set_reason(Truncate(reason));
    Write(message);
  }

  bool Wait(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return done_; });
  }

  bool Abandon() override {
    kill(pid_, SIGKILL);
    return Wait(std::chrono::seconds(10));
  }

 private:
  void Write(const pb::CoordinatorMessage& message) {
    std::lock_guard<std::mutex> lock(write_mu_);
    WriteFrame(fd_, message);  // a dead child is noticed by the reader
  }

  void ReadLoop() {
    std::optional<absl::Status> reported;
    bool reported_stopped = false;
    pb::AgentMessage message;
    while (ReadFrame(fd_, &message)) {
      switch (message.body_case()) {
        case pb::AgentMessage::kProgress:
          if (absl::StatusOr<LoadProgress> p = control::FromProto(message.progress()); p.ok()) {
            events_.progress(*p);
          }
          break;
        case pb::AgentMessage::kBootstrap: {
          const pb::BootstrapContribution& c = message.bootstrap();
          if (ValidateContribution(c).ok()) {
            (void)events_.contribute(c.seq(), control::FromProto(c.op()), c.blob());
          }
          break;
        }
        case pb::AgentMessage::kWorker:
          if (absl::StatusOr<absl::Status> r = control::FromProto(message.worker()); r.ok()) {
            reported = *r;
            reported_stopped = message.worker().outcome() == pb::WORKER_OUTCOME_STOPPED;
          }
          break;
        default:
          break;
      }
    }
    // The child closed its end: it has exited (or is about to). Reap it, killing a straggler.
    int wstatus = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (waitpid(pid_, &wstatus, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &wstatus, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    absl::Status result;
    bool stopped = stop_requested_.load();
    if (reported.has_value()) {
      result = *reported;
      stopped = stopped || reported_stopped;
    } else {
      result = absl::UnavailableError(absl::StrCat(
          "worker rank ", rank_, "'s process ",
          WIFSIGNALED(wstatus) ? absl::StrCat("died of signal ", WTERMSIG(wstatus))
                               : absl::StrCat("exited with status ", WEXITSTATUS(wstatus)),
          " without a report"));
    }
    events_.ended(result, stopped);
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
  }

  const int fd_;
  const pid_t pid_;
  const int rank_;
  WorkerEvents events_;
  std::atomic<bool> stop_requested_{false};
  std::mutex write_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reader_;
};

}  // namespace

std::unique_ptr<WorkerHost> StartThreadWorker(const LoadPlan& plan, WorkerRankFn fn,
                                              WorkerEvents events) {
  return std::make_unique<ThreadWorker>(plan, std::move(fn), std::move(events));
}

absl::StatusOr<std::unique_ptr<WorkerHost>> StartChildWorker(const LoadPlan& plan,
                                                             const std::string& binary,
                                                             WorkerEvents events) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::InternalError(absl::StrCat("socketpair: ", strerror(errno)));
  }
  const std::string fd_text = std::to_string(kChildFd);
  std::vector<std::string> args = {binary, "node", "--worker-fd", fd_text};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, SIGINT);
  sigaddset(&unblock, SIGTERM);
  const pid_t pid = fork();
  if (pid < 0) {
    close(sv[0]);
    close(sv[1]);
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  }
  if (pid == 0) {
    // Only async-signal-safe calls until exec (the agent has threads). The agent blocks SIGINT
    // and SIGTERM for its own handling; the rank gets the default dispositions back.
    sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
    if (sv[1] == kChildFd) {
      fcntl(kChildFd, F_SETFD, 0);
    } else if (dup2(sv[1], kChildFd) < 0) {
      _exit(126);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(sv[1]);
  auto worker = std::make_unique<ChildWorker>(sv[0], pid, plan.rank, std::move(events));
  pb::CoordinatorMessage load;
  ToProto(plan, load.mutable_load());
  {
    // Nothing else writes yet.
    if (!WriteFrame(sv[0], load)) {
      spdlog::error("node agent: could not hand the load plan to worker rank {}'s process",
                    plan.rank);
    }
  }
  return std::unique_ptr<WorkerHost>(std::move(worker));
}

void RunWorkerProcess(int fd, const WorkerRankFn& fn, std::chrono::milliseconds orphan_grace) {
  pb::CoordinatorMessage first;
  if (!ReadFrame(fd, &first) || !first.has_load()) {
    spdlog::error("worker process: no load plan from the node agent");
    Finish(2);
  }
  std::mutex write_mu;
  const auto write = [&](const pb::AgentMessage& message) {
    std::lock_guard<std::mutex> lock(write_mu);
    return WriteFrame(fd, message);
  };
  absl::StatusOr<LoadPlan> plan = control::FromProto(first.load());
  if (!plan.ok()) {
    pb::AgentMessage report;
    *report.mutable_worker() = ToWorkerReport(first.load().rank(), plan.status(), false);
    write(report);
    Finish(1);
  }
  RelayedBootstrap bootstrap(
      plan->rank, plan->world_size,
      [&](uint64_t seq, BootstrapOpKind kind, std::string_view blob) -> absl::Status {
        pb::AgentMessage message;
        pb::BootstrapContribution* c = message.mutable_bootstrap();
        c->set_seq(seq);
        c->set_op(control::ToProto(kind));
        c->set_blob(std::string(blob));
        if (!write(message)) return absl::UnavailableError("bootstrap: the node agent is gone");
        return absl::OkStatus();
      },
      kBootstrapTimeout);
  std::atomic<bool> stop{false};
  // Detached: the process ends with _exit, whatever this thread is doing.
  std::thread([&bootstrap, &stop, fd, orphan_grace] {
    pb::CoordinatorMessage message;
    while (ReadFrame(fd, &message)) {
      if (message.has_bootstrap_result()) {
        bootstrap.Deliver(message.bootstrap_result().seq(),
                          ResultBlobs(message.bootstrap_result()));
      } else if (message.has_stop_worker()) {
        stop = true;
        bootstrap.Abort(absl::CancelledError(message.stop_worker().reason()));
      }
    }
    // The agent is gone: nobody relays the bootstrap or reports the result any more.
    stop = true;
    bootstrap.Abort(absl::UnavailableError("the node agent is gone"));
    std::this_thread::sleep_for(orphan_grace);
    spdlog::error("worker process: the node agent is gone and the rank did not stop; exiting");
    _exit(3);
  }).detach();

  struct Context final : WorkerContext {
    std::function<bool(const pb::AgentMessage&)> write;
    std::atomic<bool>* stop_flag = nullptr;
    void Report(const LoadProgress& progress) override {
      pb::AgentMessage message;
      ToProto(progress, message.mutable_progress());
      write(message);
    }
    const std::atomic<bool>& stop() const override { return *stop_flag; }
  } context;
  context.write = write;
  context.stop_flag = &stop;
  const absl::Status result = fn(*plan, bootstrap, context);
  pb::AgentMessage report;
  *report.mutable_worker() = ToWorkerReport(plan->rank, result, stop.load());
  write(report);
  Finish(result.ok() || stop.load() ? 0 : 1);
}

}  // namespace sparkstack::control
