// Plain C++ forms of what the control plane carries (proto/sparkstack/v1/control.proto). The
// node agent, the coordinator and their users work with these; protos exist only at the gRPC edge
// (proto_mapping.h), where every bound below is checked.
#ifndef SPARKSTACK_RUNTIME_CONTROL_CONTROL_TYPES_H_
#define SPARKSTACK_RUNTIME_CONTROL_CONTROL_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sparkstack::control {

// The control protocol this build speaks (ControlProtocol in control.proto).
inline constexpr uint32_t kControlProtocolVersion = 1;

// Bounds on every size the control plane accepts (documented in control.proto).
inline constexpr size_t kMaxNameBytes = 256;  // names, hosts, versions
inline constexpr size_t kMaxPathBytes = 4096;
inline constexpr size_t kMaxMessageBytes = 4096;  // error and progress messages
inline constexpr size_t kMaxGpus = 16;
inline constexpr size_t kMaxNics = 64;
inline constexpr size_t kMaxNicAddresses = 64;
inline constexpr size_t kMaxModelFiles = 4096;
inline constexpr int kMaxWorldSize = 64;
inline constexpr size_t kMaxEngineOptionsBytes = 64 * 1024;
// gRPC's limit on one message: an AllGather result of kMaxWorldSize bootstrap blobs fits.
inline constexpr int kMaxGrpcMessageBytes = 20 << 20;

struct VersionInfo {
  uint32_t protocol_version = kControlProtocolVersion;
  std::string sparkstack_version;
  std::string build_id;
  std::string cuda_runtime;
  std::string cuda_driver;
  std::string ucx;
  std::string nccl;
};

struct GpuInfo {
  int index = 0;
  std::string name;
  int compute_capability_major = 0;
  int compute_capability_minor = 0;
  uint64_t total_memory_bytes = 0;
  uint64_t free_memory_bytes = 0;
  int multiprocessors = 0;
  bool integrated = false;  // shares memory with the CPU (GB10's unified memory)
};

struct NicInfo {
  std::string name;
  std::string mac;
  uint32_t mtu = 0;
  std::string operstate;
  int64_t speed_mbps = -1;
  std::vector<std::string> addresses;
  std::string rdma_device;
};

struct NodeCapabilities {
  std::string hostname;
  std::string os;
  std::string cpu_arch;
  std::string cpu_model;
  uint32_t cpu_cores = 0;
  uint64_t memory_total_bytes = 0;
  uint64_t memory_available_bytes = 0;
  std::vector<GpuInfo> gpus;
  std::vector<NicInfo> nics;
  VersionInfo versions;
};

enum class NodeState { kIdle, kClaimed, kLoading, kReady, kDraining, kFailed };
const char* NodeStateName(NodeState state);

// One file of a model directory as the compatibility check sees it.
struct ModelFile {
  std::string name;  // relative to the model directory
  uint64_t size_bytes = 0;
  uint64_t header_hash = 0;  // FNV-1a 64 of the header (model_fingerprint.h)

  bool operator==(const ModelFile&) const = default;
};

struct ModelFingerprint {
  std::string model_path;
  std::vector<ModelFile> files;  // sorted by name
};

enum class WorkerKind {
  kModel,           // the engine's worker rank
  kDataPlaneProbe,  // a host communicator all-reduce check (data_plane_probe.h)
};
const char* WorkerKindName(WorkerKind kind);

// What one rank runs: sent to each node agent (rank >= 1); rank 0's copy stays on the head.
struct LoadPlan {
  WorkerKind kind = WorkerKind::kModel;
  std::string model_path;
  int rank = 0;
  int world_size = 1;
  int tp = 1;
  int pp = 1;
  uint64_t kv_cache_bytes = 0;  // 0: the engine decides from memory
  int threads = 0;              // CPU backend threads; 0: the engine decides
  std::string engine_options_json;
  // Filled by the agent, not sent: the head's address as this node sees it (the peer address of
  // the coordinator's connection), for data-plane paths that connect to rank 0.
  std::string head_host;
};

enum class LoadPhase { kAccepted, kLoading, kConnecting, kReady, kFailed };
const char* LoadPhaseName(LoadPhase phase);

struct LoadProgress {
  LoadPhase phase = LoadPhase::kAccepted;
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  std::string message;
};

// Credentials of the control plane. Exactly one of: a token file, mTLS (cert + key + CA), or
// `insecure` (no authentication; for loopback tests only).
struct AuthOptions {
  std::string token_file;  // shared secret, first line, >= 16 bytes
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_ca_file;      // CA that signed the peers' certificates
  std::string tls_server_name;  // client: name expected in the agent's certificate (default: host)
  bool insecure = false;
};

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_CONTROL_TYPES_H_
