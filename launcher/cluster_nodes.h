// What `up`, `status`, `down` and `logs` share: the cluster file and its state directory
// (-f FILE, --state-dir), the control-plane credentials, and a Hello to every node agent.
#ifndef SPARKSTACK_LAUNCHER_CLUSTER_NODES_H_
#define SPARKSTACK_LAUNCHER_CLUSTER_NODES_H_

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "runtime/control/auth.h"
#include "runtime/deploy/cluster_file.h"
#include "sparkstack/v1/control.pb.h"

namespace sparkstack::launcher {

struct ClusterFlags {
  std::string file;
  std::string state_base;  // "" : deploy::DefaultStateBase()
};

// -f/--file (required) and --state-dir.
void AddClusterFileFlags(CLI::App& cmd, ClusterFlags& flags);

struct Cluster {
  deploy::ClusterFile file;
  std::string file_absolute;
  std::string state_dir;
  std::shared_ptr<const control::ControlAuth> auth;  // null for a cluster of one node
};

// Reads the cluster file and, for more than one node, its token file.
absl::StatusOr<Cluster> OpenCluster(const ClusterFlags& flags);

struct NodeAnswer {
  const deploy::ClusterNode* node = nullptr;
  std::string address;  // HOST:PORT of its agent
  absl::StatusOr<::sparkstack::v1::HelloReply> hello;
};

// Hello to the agents of nodes[1..] (the head runs `serve`, not an agent), in parallel.
std::vector<NodeAnswer> HelloNodes(const Cluster& cluster);

// "ready", "idle", ... for a node state.
std::string NodeStateWord(::sparkstack::v1::NodeState state);

// "12.3 GiB".
std::string GiB(uint64_t bytes);

// "spark-b (10.0.0.2:7070)".
std::string NodeLabel(const NodeAnswer& answer);

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_CLUSTER_NODES_H_
