// The node agents of `sparkstack serve --local-ranks N` (and of multi-process tests): N - 1
// children running `sparkstack node` on loopback with the cluster's token, restarted when one
// dies, as systemd restarts the agent on a real node. The coordinator then treats them like remote
// nodes: one code path at every scale.
#ifndef SPARKSTACK_RUNTIME_CONTROL_LOCAL_AGENTS_H_
#define SPARKSTACK_RUNTIME_CONTROL_LOCAL_AGENTS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sparkstack::control {

struct LocalAgentsOptions {
  int count = 0;                          // agents to run
  std::string binary = "/proc/self/exe";  // the sparkstack binary
  std::string token_file;                 // passed as --token-file
  std::vector<std::string> extra_args;    // appended to each `node` command line
  bool restart = true;                    // restart an agent that exits or dies
  std::chrono::milliseconds restart_delay{500};
  std::chrono::milliseconds start_timeout{20000};  // until every agent reported its port
};

class LocalAgents {
 public:
  // Starts the agents and waits until each listens. The children die with this process
  // (PR_SET_PDEATHSIG) and are killed by the destructor.
  static absl::StatusOr<std::unique_ptr<LocalAgents>> Start(LocalAgentsOptions options);
  ~LocalAgents();

  LocalAgents(const LocalAgents&) = delete;
  LocalAgents& operator=(const LocalAgents&) = delete;

  // "127.0.0.1:PORT" of each agent; a restarted agent listens on the same port.
  const std::vector<std::string>& addresses() const;
  // The current process id of agent `i` (0 while it is being restarted).
  pid_t pid(int i) const;

  struct Impl;

 private:
  explicit LocalAgents(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Creates a private directory (0700) holding a file "token" (0600) with a fresh random token and
// returns the file's path. RemoveTokenFile deletes both.
absl::StatusOr<std::string> WriteFreshTokenFile();
void RemoveTokenFile(const std::string& path);

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_LOCAL_AGENTS_H_
