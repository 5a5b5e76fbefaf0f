#include "runtime/deploy/cluster_launch.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sparkstack::deploy {

absl::StatusOr<PlanOptions> PlanOptionsFor(const ClusterFile& cluster) {
  if (cluster.kv_dtype != "bf16") {
    return absl::InvalidArgumentError(
        absl::StrCat(cluster.source, ": kv_dtype: ", cluster.kv_dtype,
                     " is planned but not served yet (the engine keeps its KV cache in the "
                     "model's bf16); use bf16"));
  }
  PlanOptions options;
  options.nodes = static_cast<int>(cluster.nodes.size());
  options.tp = cluster.tp;
  options.pp = cluster.pp;
  options.ep = cluster.ep;
  options.max_context = cluster.max_context;
  options.kv_dtype = DType::kBF16;
  return options;
}

absl::StatusOr<LayoutPlan> ChooseLayout(const Plan& plan, const ClusterFile& cluster) {
  const LayoutPlan* best = nullptr;
  std::string reasons;
  for (const LayoutPlan& layout : plan.layouts) {
    if (!layout.fits) {
      absl::StrAppend(&reasons, "\n  tp ", layout.tp, " pp ", layout.pp, " ep ", layout.ep, ": ",
                      layout.reason);
      continue;
    }
    if (best == nullptr || layout.decode_tokens_per_s_batch32 > best->decode_tokens_per_s_batch32) {
      best = &layout;
    }
  }
  if (best == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(cluster.source, ": ", plan.model,
                                                      " fits no layout on ", cluster.nodes.size(),
                                                      " nodes:", reasons));
  }
  return *best;
}

std::string AgentAddress(const ClusterNode& node) {
  const bool ipv6 = node.control_host.find(':') != std::string::npos;
  return absl::StrCat(ipv6 ? "[" : "", node.control_host, ipv6 ? "]" : "", ":", node.control_port);
}

absl::StatusOr<std::vector<std::string>> ServeArguments(const ClusterFile& cluster,
                                                        const LayoutPlan& layout,
                                                        const std::string& api_host) {
  std::vector<std::string> args = {"serve", "--model", cluster.model_dir};
  if (cluster.nodes.size() > 1) {
    if (cluster.token_file.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(cluster.source,
                       ": auth.token_file is required: the node agents accept only a head "
                       "that presents their token"));
    }
    std::vector<std::string> agents;
    for (size_t i = 1; i < cluster.nodes.size(); ++i) {
      agents.push_back(AgentAddress(cluster.nodes[i]));
    }
    args.insert(args.end(), {"--nodes", absl::StrJoin(agents, ",")});
  }
  if (!cluster.token_file.empty()) args.insert(args.end(), {"--token-file", cluster.token_file});
  args.insert(args.end(), {"--tp", absl::StrCat(layout.tp), "--pp", absl::StrCat(layout.pp)});
  if (layout.ep > 1) args.insert(args.end(), {"--ep", absl::StrCat(layout.ep)});
  if (cluster.max_context > 0) {
    args.insert(args.end(), {"--max-model-len", absl::StrCat(cluster.max_context)});
  }
  args.insert(args.end(), {"--host", api_host, "--port", absl::StrCat(cluster.api_port),
                           "--grpc-port", absl::StrCat(cluster.grpc_port)});
  if (!cluster.api_key_file.empty()) {
    args.insert(args.end(), {"--api-key-file", cluster.api_key_file});
  }
  return args;
}

absl::StatusOr<std::string> ServeEnvFile(const std::vector<std::string>& serve_arguments) {
  std::vector<std::string> args(serve_arguments);
  if (!args.empty() && args.front() == "serve") args.erase(args.begin());
  for (const std::string& arg : args) {
    if (arg.empty() || arg.find_first_of(" \t\n\"'\\$") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("serve argument '", arg,
                       "' cannot go through a systemd environment file (empty, or whitespace, "
                       "quotes, \\ or $ in it): rename the path"));
    }
  }
  return absl::StrCat("# Written by `sparkstack up --write-serve-env`: the arguments of\n",
                      "# sparkstack serve for sparkstack-serve.service.\n",
                      "SPARKSTACK_SERVE_ARGS=", absl::StrJoin(args, " "), "\n");
}

std::vector<std::pair<std::string, std::string>> HeadEnvironment(const ClusterFile& cluster) {
  std::vector<std::pair<std::string, std::string>> env;
  if (cluster.nodes.empty()) return env;
  const ClusterNode& head = cluster.nodes[0];
  if (!head.hcas.empty()) env.emplace_back("NCCL_IB_HCA", absl::StrJoin(head.hcas, ","));
  if (!head.data_interface.empty()) env.emplace_back("NCCL_SOCKET_IFNAME", head.data_interface);
  return env;
}

}  // namespace sparkstack::deploy
