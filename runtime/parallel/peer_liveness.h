// Process identity and liveness for peers on the same machine.
//
// Why: UCX 1.13's shared-memory transports have no peer-failure handling, so endpoints that ask
// for it fall back to TCP even between processes on one machine (~10x the latency). The host
// communicator therefore uses shared memory without UCX error handling for same-machine peers and
// detects their death itself: a waiting rank checks that the peer process still exists (same
// boot and pid namespace, pid not gone, not a zombie, same start time so a reused pid does not
// count). Peers on other machines keep UCX's own error handling.
#ifndef SPARKSTACK_RUNTIME_PARALLEL_PEER_LIVENESS_H_
#define SPARKSTACK_RUNTIME_PARALLEL_PEER_LIVENESS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sparkstack {

struct ProcessIdentity {
  std::string boot_id;  // /proc/sys/kernel/random/boot_id; empty when unknown
  uint64_t pid_ns = 0;  // inode of /proc/self/ns/pid; 0 when unknown
  int64_t pid = 0;
  uint64_t start_time = 0;  // field 22 of /proc/<pid>/stat (clock ticks since boot)

  static ProcessIdentity Self();

  // True when `other` is a process this one can observe by pid: same boot, same pid namespace.
  bool SameMachineAs(const ProcessIdentity& other) const;
};

// Appends a bounded binary encoding of `identity` to `out`.
void EncodeIdentity(const ProcessIdentity& identity, std::string& out);
// Parses one identity from the front of `in` and advances it; DataLoss on malformed input.
absl::StatusOr<ProcessIdentity> DecodeIdentity(std::string_view& in);

// True when the process `peer` (on this machine) has exited: no such pid, a zombie, or a
// different process now holding the pid.
bool ProcessGone(const ProcessIdentity& peer);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_PARALLEL_PEER_LIVENESS_H_
