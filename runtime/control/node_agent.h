// NodeAgent: the control-plane server on every node (`sparkstack node`). It answers Hello with the
// node's capabilities, accepts one coordinator session at a time, and hosts the worker rank that
// session's load plan asks for (in a child process, see NodeAgentOptions::worker), relaying its
// bootstrap blobs through the coordinator. Protocol: proto/sparkstack/v1/control.proto (service
// NodeAgent).
//
// Failure handling: when the session ends — the coordinator released it, its stream broke, or it
// fell silent for the claimed heartbeat timeout — the agent stops the worker rank (stop flag set,
// bootstrap aborted) and becomes free for the next claim, which is how the coordinator re-forms a
// group after a failure. A claim from another cluster while one holds the node is refused, naming
// the holder; a claim from the same cluster replaces its stale session.
//
// Every call must carry the cluster's credentials (auth.h); calls without them end UNAUTHENTICATED
// before any message is read, so a stranger cannot claim, disturb or stop the node. An agent
// without credentials (--insecure) only listens on a loopback address.
#ifndef SPARKSTACK_RUNTIME_CONTROL_NODE_AGENT_H_
#define SPARKSTACK_RUNTIME_CONTROL_NODE_AGENT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/control/control_types.h"
#include "runtime/control/worker_rank.h"

namespace sparkstack::control {

struct NodeAgentOptions {
  std::string listen = "127.0.0.1:0";  // HOST:PORT; port 0 picks a free one (see port())
  AuthOptions auth;
  // Empty (the default): each worker rank runs RunWorkerRank in a child process,
  // `worker_binary node --worker-fd 3` (worker_host.h): a rank that fails ends its process, which
  // its peers see at once, and one that does not stop is killed. Set: `worker` runs on a thread of
  // the agent (tests with fake ranks).
  WorkerRankFn worker;
  std::string worker_binary = "/proc/self/exe";
  // How long a worker rank told to stop may take before its process is killed.
  std::chrono::milliseconds worker_stop_timeout{10000};
  // A rank on a thread cannot be killed: when it does not stop in time the agent exits (status
  // 3) so that its supervisor (systemd) restarts it clean. Tests turn this off.
  bool exit_on_stuck_worker = true;
  // The Logs RPC's source: the last `lines` lines of this process's log (0: all it keeps) and the
  // count of older lines no longer kept. Unset: Logs answers FAILED_PRECONDITION.
  std::function<std::pair<std::vector<std::string>, uint64_t>(size_t lines)> recent_log;
};

class NodeAgent {
 public:
  // Starts serving. Errors: bad credentials files, or the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<NodeAgent>> Start(NodeAgentOptions options);
  // Shuts down (as RequestShutdown + Wait).
  ~NodeAgent();

  NodeAgent(const NodeAgent&) = delete;
  NodeAgent& operator=(const NodeAgent&) = delete;

  // The bound port.
  int port() const;
  // The state Hello reports now.
  NodeState state() const;

  // Asks the agent to stop (any thread, also a signal-handling one). Idempotent.
  void RequestShutdown(const std::string& reason);
  // Blocks until a shutdown is requested (Shutdown RPC, a session's ShutdownNode, or
  // RequestShutdown), then stops the worker rank and the server. Returns the reason.
  std::string Wait();

  struct Impl;

 private:
  explicit NodeAgent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_NODE_AGENT_H_
