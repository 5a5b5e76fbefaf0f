// The cluster file (YAML): one description of a sparkstack cluster that `sparkstack up`, `status`,
// `down`, `logs` and `doctor` read. deploy/cluster.example.yaml is the annotated example:
//
//   model: /models/DeepSeek-V3-FP4          # the model directory, the same path on every node
//   parallel: {tp: auto, pp: auto, ep: auto} # or integers; auto: the plan's fastest layout
//   max_context: 32768                       # optional; default: the model's
//   kv_dtype: bf16                           # optional: bf16, f16, fp8
//   ports: {control: 7070, api: 8000, grpc: 8001}    # optional, these defaults
//   auth: {token_file: /etc/sparkstack/token, api_key_file: /etc/sparkstack/api-keys}
//   nodes:                                   # the first node is the head (it runs `serve`)
//     - name: spark-a
//       control: 10.0.0.1                    # host[:port] of the node agent
//       data: {interface: enp1s0f1np1, hcas: [rocep1s0f1, roceP2p1s0f1]}   # or data: {ip: ...}
//
// Every error names the file, the field's path (nodes[1].data.hcas) and, where yaml-cpp knows it,
// the line; unknown keys are errors too, so that a misspelt field is never silently ignored.
#ifndef SPARKSTACK_RUNTIME_DEPLOY_CLUSTER_FILE_H_
#define SPARKSTACK_RUNTIME_DEPLOY_CLUSTER_FILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sparkstack::deploy {

inline constexpr int kDefaultControlPort = 7070;
inline constexpr int kDefaultApiPort = 8000;
inline constexpr int kDefaultGrpcPort = 8001;

struct ClusterNode {
  std::string name;
  std::string control_host;
  int control_port = kDefaultControlPort;
  std::string data_interface;  // the RoCE netdev, or empty when data_ip is given
  std::string data_ip;
  std::vector<std::string> hcas;  // NCCL_IB_HCA for this node (both halves of the port)
};

struct ClusterFile {
  std::string source;  // the file, for messages
  std::string model_dir;
  int tp = 0;  // 0: auto
  int pp = 0;
  int ep = 0;
  int64_t max_context = 0;  // 0: the model's
  std::string kv_dtype = "bf16";
  int control_port = kDefaultControlPort;
  int api_port = kDefaultApiPort;
  int grpc_port = kDefaultGrpcPort;
  std::string token_file;
  std::string api_key_file;
  std::vector<ClusterNode> nodes;  // nodes[0] is the head
};

// Parses YAML text; `source` names it in messages. InvalidArgument naming the field for: text that
// is not YAML or not a mapping, a missing `model` or `nodes`, an empty node list, a node without
// name or control address, duplicate node names or control addresses, a data section with neither
// or both of interface and ip, hcas not a list of names, tp/pp/ep neither `auto` nor a positive
// integer, tp * pp (when both are given) not the node count, ep not dividing tp, ports outside
// 1..65535, a kv_dtype other than bf16/f16/fp8, and any unknown key.
absl::StatusOr<ClusterFile> ParseClusterFile(const std::string& text, const std::string& source);

// Reads and parses `path` (NotFound when it cannot be read).
absl::StatusOr<ClusterFile> LoadClusterFile(const std::string& path);

}  // namespace sparkstack::deploy

#endif  // SPARKSTACK_RUNTIME_DEPLOY_CLUSTER_FILE_H_
