#include "launcher/cluster_nodes.h"

#include <filesystem>
#include <future>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/control/agent_link.h"
#include "runtime/core/status_macros.h"
#include "runtime/deploy/cluster_launch.h"
#include "runtime/deploy/up_state.h"

namespace sparkstack::launcher {

namespace pb = ::sparkstack::v1;

void AddClusterFileFlags(CLI::App& cmd, ClusterFlags& flags) {
  cmd.add_option("-f,--file", flags.file, "the cluster file (deploy/cluster.example.yaml)")
      ->required();
  cmd.add_option("--state-dir", flags.state_base,
                 "where `up` keeps each cluster's state and head log (default: "
                 "$SPARKSTACK_STATE_DIR, else $XDG_STATE_HOME/sparkstack, else "
                 "~/.local/state/sparkstack)");
}

absl::StatusOr<Cluster> OpenCluster(const ClusterFlags& flags) {
  Cluster cluster;
  SPARKSTACK_ASSIGN_OR_RETURN(cluster.file, deploy::LoadClusterFile(flags.file));
  std::error_code ec;
  cluster.file_absolute = std::filesystem::absolute(flags.file, ec).lexically_normal().string();
  cluster.state_dir =
      deploy::StateDirFor(cluster.file_absolute,
                          flags.state_base.empty() ? deploy::DefaultStateBase() : flags.state_base);
  if (cluster.file.nodes.size() > 1) {
    if (cluster.file.token_file.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(flags.file, ": auth.token_file is required for a cluster of ",
                       cluster.file.nodes.size(), " nodes"));
    }
    control::AuthOptions auth;
    auth.token_file = cluster.file.token_file;
    SPARKSTACK_ASSIGN_OR_RETURN(cluster.auth, control::ControlAuth::Load(auth));
  }
  return cluster;
}

std::vector<NodeAnswer> HelloNodes(const Cluster& cluster) {
  std::vector<NodeAnswer> answers;
  std::vector<std::future<absl::StatusOr<pb::HelloReply>>> calls;
  for (size_t i = 1; i < cluster.file.nodes.size(); ++i) {
    NodeAnswer answer{&cluster.file.nodes[i], deploy::AgentAddress(cluster.file.nodes[i]),
                      absl::UnknownError("not asked")};
    calls.push_back(std::async(std::launch::async, [&cluster, address = answer.address] {
      return control::CallHello(control::MakeAgentChannel(address, *cluster.auth), *cluster.auth,
                                "sparkstack cli", std::chrono::milliseconds(5000));
    }));
    answers.push_back(std::move(answer));
  }
  for (size_t i = 0; i < calls.size(); ++i) answers[i].hello = calls[i].get();
  return answers;
}

std::string NodeStateWord(pb::NodeState state) {
  std::string name = pb::NodeState_Name(state);
  constexpr std::string_view kPrefix = "NODE_STATE_";
  if (name.rfind(kPrefix, 0) == 0) name = name.substr(kPrefix.size());
  return absl::AsciiStrToLower(name);
}

std::string GiB(uint64_t bytes) {
  return absl::StrFormat("%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
}

std::string NodeLabel(const NodeAnswer& answer) {
  return absl::StrCat(answer.node->name, " (", answer.address, ")");
}

}  // namespace sparkstack::launcher
