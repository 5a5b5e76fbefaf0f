// Coordinator: the head's control plane (`sparkstack serve`). It contacts the node agents, checks
// that they can run the plan, has them load their ranks while the head builds rank 0 (HeadRank),
// relays the communicator bootstrap blobs between all ranks (the gRPC bootstrap), and then watches
// the group: heartbeats every interval, a node silent for heartbeat_timeout or whose stream breaks
// is lost. Then the group is degraded (naming the node), every node's worker rank and rank 0 are
// stopped, and the coordinator keeps trying to form the group again until the node is back.
//
// Ranks: rank 0 is the head; rank i + 1 runs on options.nodes[i]. So the world size is
// nodes + 1 and must equal tp x pp.
//
// Compatibility, checked before anything loads, with errors naming the node: the control protocol
// and sparkstack version, the node being free (not held by another cluster), the memory the plan
// needs on it, and (for a model) the model files by size and header hash (model_fingerprint.h).
//
// Threads: Start blocks its caller; afterwards a supervisor thread re-forms the group and a watch
// thread sends heartbeats. Everything public is thread-safe. Observers run on the coordinator's
// threads, one call at a time, without coordinator locks held (they may call Health()).
#ifndef SPARKSTACK_RUNTIME_CONTROL_COORDINATOR_H_
#define SPARKSTACK_RUNTIME_CONTROL_COORDINATOR_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/control/control_types.h"
#include "runtime/control/head_rank.h"

namespace sparkstack::control {

struct CoordinatorOptions {
  std::vector<std::string> nodes;  // node agents, HOST:PORT; nodes[i] hosts rank i + 1
  AuthOptions auth;
  // What the group runs: kind, model_path (on the head), tp, pp, kv_cache_bytes, threads,
  // engine_options_json. Rank and world size are filled in per rank.
  LoadPlan plan;
  std::string node_model_path;  // the model directory on the nodes; "" = plan.model_path
  std::string name;             // this head's name in the agents' logs; "" = host name
  bool check_model = true;      // compare model fingerprints (model plans only)
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds heartbeat_timeout{3000};
  std::chrono::milliseconds connect_timeout{5000};  // Hello and claim, per node
  std::chrono::milliseconds check_timeout{120000};  // model fingerprints
  std::chrono::milliseconds load_timeout{30 * 60 * 1000};
  std::chrono::milliseconds retry_interval{1000};  // between re-formation attempts (doubling up
                                                   // to 30 s while reachable nodes keep failing)
};

enum class ClusterState {
  kForming,   // the first formation is under way
  kReady,     // every rank is loaded and connected
  kDegraded,  // the group failed; re-forming (see reason / failed_node)
  kStopped,   // Shutdown was called, or the first formation failed
};
const char* ClusterStateName(ClusterState state);

struct NodeHealth {
  int rank = 0;
  std::string address;   // as given in CoordinatorOptions::nodes
  std::string hostname;  // as the node reported it ("" before it answered)
  bool connected = false;
  NodeState state = NodeState::kIdle;
  std::string error;  // the last problem with this node ("" when none)
};

struct ClusterHealth {
  ClusterState state = ClusterState::kForming;
  uint64_t epoch = 0;       // the current (or last) group formation, counted from 1
  int failed_rank = -1;     // the rank blamed for the failure (0: the head), -1 when none
  std::string failed_node;  // its address ("head" for rank 0), "" when none
  std::string reason;       // why the cluster is not ready, "" when it is
  std::vector<NodeHealth> nodes;

  bool ready() const { return state == ClusterState::kReady; }
  // One line: "ready (epoch 2, 3 nodes)" or "degraded: node 10.0.0.2:7070 (rank 2) lost: ...".
  std::string Summary() const;
};

class Coordinator {
 public:
  using Observer = std::function<void(const ClusterHealth&)>;

  // Checks the options (world size against tp x pp, addresses, credentials, the head's model
  // directory). `head` runs rank 0 and must outlive the coordinator.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(CoordinatorOptions options,
                                                             HeadRank* head);
  // Shutdown(false).
  ~Coordinator();

  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Forms the group for the first time and returns when it is ready, or with the error that
  // prevented it (naming the node) — then the coordinator is stopped. Call once.
  absl::Status Start();

  ClusterHealth Health() const;
  bool ready() const;

  // Called with the new health on every change of state, epoch or blamed node: ready, degraded
  // (the group failed: requests on it must end), ready again (re-formed: a new rank 0 was started).
  void AddObserver(Observer observer);

  // Waits until `predicate(Health())` holds or `timeout` passes; returns the last health seen.
  ClusterHealth WaitFor(const std::function<bool(const ClusterHealth&)>& predicate,
                        std::chrono::milliseconds timeout) const;

  // Rank 0 failed on its own (e.g. a collective returned Unavailable): the group is re-formed.
  void ReportHeadFailure(const absl::Status& status);

  // Drains every node (worker ranks stop), stops rank 0 and releases the nodes; with
  // `shutdown_nodes` the agents also exit. Idempotent; afterwards the state is kStopped.
  void Shutdown(bool shutdown_nodes = false);

  struct Impl;

 private:
  explicit Coordinator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_COORDINATOR_H_
