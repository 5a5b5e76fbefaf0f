#include "runtime/control/local_agents.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "spdlog/spdlog.h"

namespace sparkstack::control {
namespace {

// Forks and execs `argv`; the child dies with the thread that forked it.
pid_t Spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec (the parent has threads).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);  // the parent is already gone
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int ReadPortFile(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  int port = 0;
  if (!absl::SimpleAtoi(text, &port) || port <= 0 || port > 65535) return 0;
  return port;
}

}  // namespace

struct LocalAgents::Impl {
  LocalAgentsOptions options;
  std::string dir;  // private temporary directory for the port files
  std::vector<std::string> addresses;
  std::vector<int> ports;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<pid_t> pids ABSL_GUARDED_BY(mu);
  bool started ABSL_GUARDED_BY(mu) = false;
  absl::Status start_status ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;
  std::thread supervisor;

  std::vector<std::string> CommandLine(int i) const {
    const std::string listen = ports[i] == 0 ? "127.0.0.1:0" : absl::StrCat("127.0.0.1:", ports[i]);
    std::vector<std::string> args = {options.binary, "node",
                                     "--listen",     listen,
                                     "--token-file", options.token_file,
                                     "--port-file",  absl::StrCat(dir, "/agent", i, ".port")};
    args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
    return args;
  }

  // Runs on the supervisor thread, so that the children's PR_SET_PDEATHSIG is tied to a thread
  // that lives as long as this object.
  void Supervise() {
    const int n = options.count;
    absl::Status status;
    std::vector<pid_t> started_pids(n, 0);
    for (int i = 0; i < n; ++i) {
      started_pids[i] = Spawn(CommandLine(i));
      if (started_pids[i] < 0) {
        status = absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
        break;
      }
    }
    const auto deadline = std::chrono::steady_clock::now() + options.start_timeout;
    for (int i = 0; status.ok() && i < n; ++i) {
      const std::string port_file = absl::StrCat(dir, "/agent", i, ".port");
      while ((ports[i] = ReadPortFile(port_file)) == 0) {
        int wstatus = 0;
        if (waitpid(started_pids[i], &wstatus, WNOHANG) == started_pids[i]) {
          started_pids[i] = 0;
          status = absl::InternalError(absl::StrCat(
              "local node agent ", i, " exited before listening (status ", wstatus, ")"));
          break;
        }
        if (std::chrono::steady_clock::now() > deadline) {
          status = absl::DeadlineExceededError(absl::StrCat("local node agent ", i,
                                                            " did not listen within ",
                                                            options.start_timeout.count(), " ms"));
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (status.ok()) addresses.push_back(absl::StrCat("127.0.0.1:", ports[i]));
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      pids = started_pids;
      started = true;
      start_status = status;
    }
    cv.notify_all();
    if (!status.ok()) return;

    std::vector<std::chrono::steady_clock::time_point> restart_at(n);
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu);
        if (cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return stopping; })) return;
      }
      for (int i = 0; i < n; ++i) {
        pid_t pid = 0;
        {
          std::lock_guard<std::mutex> lock(mu);
          pid = pids[i];
        }
        if (pid > 0) {
          int wstatus = 0;
          if (waitpid(pid, &wstatus, WNOHANG) != pid) continue;
          spdlog::warn("local node agent {} (pid {}) {} {}", i, pid,
                       WIFSIGNALED(wstatus) ? "died of signal" : "exited with status",
                       WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : WEXITSTATUS(wstatus));
          std::lock_guard<std::mutex> lock(mu);
          pids[i] = 0;
          restart_at[i] = std::chrono::steady_clock::now() + options.restart_delay;
          continue;
        }
        if (!options.restart || std::chrono::steady_clock::now() < restart_at[i]) continue;
        std::remove(absl::StrCat(dir, "/agent", i, ".port").c_str());
        const pid_t restarted = Spawn(CommandLine(i));
        spdlog::info("local node agent {} restarted (pid {})", i, restarted);
        std::lock_guard<std::mutex> lock(mu);
        pids[i] = restarted > 0 ? restarted : 0;
        if (restarted <= 0)
          restart_at[i] = std::chrono::steady_clock::now() + options.restart_delay;
      }
    }
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
    }
    cv.notify_all();
    if (supervisor.joinable()) supervisor.join();
    std::lock_guard<std::mutex> lock(mu);
    for (pid_t pid : pids) {
      if (pid > 0) kill(pid, SIGTERM);
    }
    // Agents stop their worker and exit on SIGTERM; give them a moment, then make sure.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    for (pid_t& pid : pids) {
      while (pid > 0 && waitpid(pid, nullptr, WNOHANG) == 0 &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (pid > 0 && waitpid(pid, nullptr, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
      pid = 0;
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

LocalAgents::LocalAgents(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<LocalAgents>> LocalAgents::Start(LocalAgentsOptions options) {
  if (options.count < 0 || options.count > 63) {
    return absl::InvalidArgumentError(absl::StrCat("local agents: count ", options.count));
  }
  auto impl = std::make_unique<Impl>();
  char dir_template[] = "/tmp/sparkstack-agents-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", strerror(errno)));
  }
  impl->dir = dir_template;
  impl->options = std::move(options);
  impl->ports.assign(impl->options.count, 0);
  Impl* d = impl.get();
  d->supervisor = std::thread([d] { d->Supervise(); });
  absl::Status status;
  {
    std::unique_lock<std::mutex> lock(d->mu);
    d->cv.wait(lock, [&] { return d->started; });
    status = d->start_status;
  }
  std::unique_ptr<LocalAgents> agents(new LocalAgents(std::move(impl)));
  if (!status.ok()) return status;  // the destructor kills what did start
  return agents;
}

LocalAgents::~LocalAgents() { impl_->Stop(); }

const std::vector<std::string>& LocalAgents::addresses() const { return impl_->addresses; }

pid_t LocalAgents::pid(int i) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->pids.at(i);
}

absl::StatusOr<std::string> WriteFreshTokenFile() {
  char dir_template[] = "/tmp/sparkstack-token-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", strerror(errno)));
  }
  const std::string path = absl::StrCat(dir_template, "/token");
  std::random_device device;
  std::string token;
  for (int i = 0; i < 8; ++i) token += absl::StrFormat("%08x", device());
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("creating ", path, ": ", strerror(errno)));
  token += "\n";
  const bool written = write(fd, token.data(), token.size()) == static_cast<ssize_t>(token.size());
  close(fd);
  if (!written) return absl::InternalError(absl::StrCat("writing ", path));
  return path;
}

void RemoveTokenFile(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(std::filesystem::path(path).parent_path(), ec);
}

}  // namespace sparkstack::control
