#include "launcher/local_ranks.h"

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

namespace sparkstack::launcher {

absl::StatusOr<std::vector<pid_t>> SpawnLocalWorkers(int world_size, int port) {
  std::vector<pid_t> pids;
  for (int rank = 1; rank < world_size; ++rank) {
    const std::string rank_arg = std::to_string(rank);
    const std::string world_arg = std::to_string(world_size);
    const std::string rendezvous_arg = absl::StrCat("127.0.0.1:", port);
    const pid_t pid = fork();
    if (pid < 0) {
      KillWorkers(pids);
      return absl::InternalError(absl::StrCat("fork for rank ", rank, ": ", strerror(errno)));
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() == 1) _exit(1);  // the parent is already gone
      execl("/proc/self/exe", "sparkstack", "worker", "--rank", rank_arg.c_str(), "--world",
            world_arg.c_str(), "--rendezvous", rendezvous_arg.c_str(), nullptr);
      _exit(127);
    }
    pids.push_back(pid);
  }
  return pids;
}

absl::Status WaitForWorkers(const std::vector<pid_t>& pids, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::string> failures;
  for (size_t i = 0; i < pids.size(); ++i) {
    const int rank = static_cast<int>(i) + 1;
    int status = 0;
    pid_t done = 0;
    while ((done = waitpid(pids[i], &status, WNOHANG)) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (done == 0) {
      kill(pids[i], SIGKILL);
      waitpid(pids[i], &status, 0);
      failures.push_back(absl::StrCat("rank ", rank, " did not exit"));
    } else if (WIFSIGNALED(status)) {
      failures.push_back(absl::StrCat("rank ", rank, " died of signal ", WTERMSIG(status)));
    } else if (WEXITSTATUS(status) != 0) {
      failures.push_back(absl::StrCat("rank ", rank, " exited with status ", WEXITSTATUS(status)));
    }
  }
  if (failures.empty()) return absl::OkStatus();
  return absl::InternalError(absl::StrJoin(failures, "; "));
}

void KillWorkers(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) kill(pid, SIGKILL);
  for (pid_t pid : pids) waitpid(pid, nullptr, 0);
}

}  // namespace sparkstack::launcher
