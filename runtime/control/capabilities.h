// What a node reports about itself when it registers: host, CPU, memory, GPUs (through the CUDA
// runtime, only in builds with CUDA), NICs (/sys/class/net) and versions. The parsers take their
// input as arguments so tests can feed them fixtures.
#ifndef SPARKSTACK_RUNTIME_CONTROL_CAPABILITIES_H_
#define SPARKSTACK_RUNTIME_CONTROL_CAPABILITIES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/control/control_types.h"

namespace sparkstack::control {

// Everything below, for this machine. Never fails: what cannot be read is left empty or zero.
NodeCapabilities ProbeCapabilities();

// This build's versions (sparkstack, control protocol, CUDA, UCX, NCCL).
VersionInfo ThisBuildVersions();

struct MemInfo {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;
};
// Parses /proc/meminfo text (MemTotal, MemAvailable, in kB).
absl::StatusOr<MemInfo> ParseMemInfo(std::string_view text);
// MemAvailable of this machine now; 0 when unknown.
uint64_t MemoryAvailableBytes();

// The CPU's name from /proc/cpuinfo text: "model name" (x86) or, on Arm where there is none, the
// implementer and part numbers.
std::string CpuModelFromCpuInfo(std::string_view cpuinfo);

// The network interfaces under `sys_class_net` (normally /sys/class/net): name, MAC, MTU,
// operstate, speed, and the RDMA device behind it (device/infiniband/*). Sorted by name, at most
// kMaxNics. Addresses are not filled in (they come from getifaddrs, see ProbeCapabilities).
std::vector<NicInfo> ReadNics(const std::string& sys_class_net);

// Whether the memory a rank of `plan` needs fits on the node described by `caps`: the rank's share
// of `weight_bytes` (divided evenly over the world) plus the plan's KV budget, against the GPU's
// memory when it has its own, otherwise against the available host memory (GB10's unified memory
// is host memory). The error says how much is needed and how much is there.
absl::Status CheckMemoryForPlan(const NodeCapabilities& caps, const LoadPlan& plan,
                                uint64_t weight_bytes);

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_CAPABILITIES_H_
