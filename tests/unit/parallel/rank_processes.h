// Test helper: runs one function per rank in forked child processes (real processes over
// loopback, as in production) and collects each rank's status. Also used by the benchmark.
#ifndef SPARKSTACK_TESTS_UNIT_PARALLEL_RANK_PROCESSES_H_
#define SPARKSTACK_TESTS_UNIT_PARALLEL_RANK_PROCESSES_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/parallel/host_communicator.h"
#include "runtime/parallel/rendezvous.h"

namespace sparkstack::testing {

struct RankResult {
  bool ok = false;
  std::string message;  // the child's status message, or how it died
  double seconds = 0;   // from fork until the parent saw the child exit
};

using RankBody = std::function<absl::Status(int rank, const RendezvousOptions& options,
                                            RendezvousListener* listener)>;

// Forks `world` children running `body`; rank 0 gets a listener already bound to an ephemeral
// port on 127.0.0.1 (options.port names it for everyone). `while_running` runs in the parent
// with the children's pids (e.g. to kill one). Children still alive after `limit` are killed and
// reported as hung.
inline std::vector<RankResult> RunRanks(
    int world, std::chrono::milliseconds limit, const RankBody& body,
    const std::function<void(const std::vector<pid_t>&)>& while_running = nullptr) {
  std::vector<RankResult> results(world);
  auto listener = RendezvousListener::Bind("127.0.0.1", 0);
  if (!listener.ok()) {
    for (auto& r : results) r.message = std::string(listener.status().message());
    return results;
  }
  RendezvousOptions options;
  options.host = "127.0.0.1";
  options.port = listener->port();
  options.world_size = world;
  options.timeout = std::chrono::milliseconds(20000);
  std::fflush(nullptr);
  std::vector<pid_t> pids(world, -1);
  std::vector<int> pipes(world, -1);
  const auto start = std::chrono::steady_clock::now();
  for (int rank = 0; rank < world; ++rank) {
    int fds[2];
    if (::pipe(fds) != 0) return results;
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      if (rank != 0) listener->Close();
      RendezvousOptions mine = options;
      mine.rank = rank;
      const absl::Status status = body(rank, mine, rank == 0 ? &*listener : nullptr);
      const std::string message = status.ok() ? "" : status.ToString();
      if (!message.empty()) (void)!::write(fds[1], message.data(), message.size());
      ::close(fds[1]);
      ::_exit(status.ok() ? 0 : 1);
    }
    ::close(fds[1]);
    pids[rank] = pid;
    pipes[rank] = fds[0];
  }
  listener->Close();
  if (while_running) while_running(pids);
  int remaining = world;
  std::vector<bool> done(world, false);
  while (remaining > 0) {
    for (int rank = 0; rank < world; ++rank) {
      if (done[rank]) continue;
      int wstatus = 0;
      if (::waitpid(pids[rank], &wstatus, WNOHANG) != pids[rank]) continue;
      done[rank] = true;
      --remaining;
      RankResult& r = results[rank];
      r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      char buffer[4096];
      ssize_t n;
      while ((n = ::read(pipes[rank], buffer, sizeof(buffer))) > 0) r.message.append(buffer, n);
      ::close(pipes[rank]);
      if (WIFEXITED(wstatus)) {
        r.ok = WEXITSTATUS(wstatus) == 0;
        if (!r.ok && r.message.empty())
          r.message = absl::StrCat("exit code ", WEXITSTATUS(wstatus));
      } else if (WIFSIGNALED(wstatus)) {
        r.message = absl::StrCat("killed by signal ", WTERMSIG(wstatus));
      }
    }
    if (remaining == 0) break;
    if (std::chrono::steady_clock::now() - start > limit) {
      for (int rank = 0; rank < world; ++rank) {
        if (done[rank]) continue;
        ::kill(pids[rank], SIGKILL);
        ::waitpid(pids[rank], nullptr, 0);
        ::close(pipes[rank]);
        results[rank].message =
            absl::StrCat("rank ", rank, " hung: killed after ", limit.count(), " ms");
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return results;
}

using CommBody = std::function<absl::Status(Communicator& comm)>;

// RunRanks with a HostCommunicator built for each rank.
inline std::vector<RankResult> RunCommunicatorRanks(
    int world, std::chrono::milliseconds limit, const CommBody& body,
    const std::function<void(const std::vector<pid_t>&)>& while_running = nullptr) {
  return RunRanks(
      world, limit,
      [&](int rank, const RendezvousOptions& options,
          RendezvousListener* listener) -> absl::Status {
        auto rendezvous = Rendezvous::Join(options, listener);
        if (!rendezvous.ok()) return rendezvous.status();
        auto comm = HostCommunicator::Create(**rendezvous);
        if (!comm.ok()) return comm.status();
        return body(**comm);
      },
      while_running);
}

}  // namespace sparkstack::testing

#endif  // SPARKSTACK_TESTS_UNIT_PARALLEL_RANK_PROCESSES_H_
