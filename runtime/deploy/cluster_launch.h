// From a cluster file to the head's `sparkstack serve` (what `sparkstack up` runs): the layout
// (`auto` resolved by the plan), the command line and the environment of the serve process.
// Pure functions: nothing is started here.
#ifndef SPARKSTACK_RUNTIME_DEPLOY_CLUSTER_LAUNCH_H_
#define SPARKSTACK_RUNTIME_DEPLOY_CLUSTER_LAUNCH_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/deploy/cluster_file.h"
#include "runtime/deploy/plan.h"

namespace sparkstack::deploy {

// The plan's options for the cluster file: its node count, its tp/pp/ep (0 for auto), context and
// KV type. InvalidArgument naming the field for a kv_dtype the engine does not serve yet.
absl::StatusOr<PlanOptions> PlanOptionsFor(const ClusterFile& cluster);

// The layout to serve: of the plan's layouts (already filtered by the file's tp/pp/ep), the one
// that fits with the highest predicted decode throughput at batch 32. FailedPrecondition naming
// each layout's reason when none fits.
absl::StatusOr<LayoutPlan> ChooseLayout(const Plan& plan, const ClusterFile& cluster);

// "HOST:PORT" of a node's agent as the coordinator dials it.
std::string AgentAddress(const ClusterNode& node);

// The arguments after the binary: `serve --model ... --nodes B,C --tp T --pp P --ep E ...` with
// the file's ports, credentials and context; the API servers listen on `api_host`.
// InvalidArgument when a multi-node cluster has no auth.token_file.
absl::StatusOr<std::vector<std::string>> ServeArguments(const ClusterFile& cluster,
                                                        const LayoutPlan& layout,
                                                        const std::string& api_host);

// /etc/sparkstack/serve.env for sparkstack-serve.service, whose ExecStart is
// `sparkstack serve $SPARKSTACK_SERVE_ARGS` (systemd splits the value at whitespace): the
// arguments after "serve". InvalidArgument naming an argument with whitespace or quotes in it.
absl::StatusOr<std::string> ServeEnvFile(const std::vector<std::string>& serve_arguments);

// Environment for the head's serve process from nodes[0]: NCCL_IB_HCA (its HCAs) and
// NCCL_SOCKET_IFNAME (its data interface), each only where the file names it.
std::vector<std::pair<std::string, std::string>> HeadEnvironment(const ClusterFile& cluster);

}  // namespace sparkstack::deploy

#endif  // SPARKSTACK_RUNTIME_DEPLOY_CLUSTER_LAUNCH_H_
