// NodeAgent: the control-plane server on every node (`sparkstack node`). It answers Hello with the
// node's capabilities, accepts one coordinator session at a time, and hosts the worker rank that
// session's load plan asks for (a WorkerRankFn on its own thread), relaying its bootstrap blobs
// through the coordinator. Protocol: proto/sparkstack/v1/control.proto (service NodeAgent).
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
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/control/control_types.h"
#include "runtime/control/worker_rank.h"

namespace sparkstack::control {

struct NodeAgentOptions {
  std::string listen = "127.0.0.1:0";  // HOST:PORT; port 0 picks a free one (see port())
  AuthOptions auth;
  WorkerRankFn worker = RunWorkerRank;
  // How long a stopped worker rank may take to return.
  std::chrono::milliseconds worker_stop_timeout{30000};
  // A worker rank that does not return within worker_stop_timeout may hold the GPU for good: the
  // agent then exits the process (status 3) so that its supervisor (systemd) restarts it clean.
  // Tests that host fake workers in-process turn this off (the stuck thread is then detached).
  bool exit_on_stuck_worker = true;
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
