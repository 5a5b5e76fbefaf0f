// `sparkstack doctor`: checks one Spark (and its view of the peers) against what sparkstack needs,
// and says how to fix each failure. Everything is read through a DoctorSystem, whose files live
// under a root directory (/ in production, a fake sysfs/proc/etc tree in tests) and whose few
// live probes (a command, a TCP connect, the clock) are injectable.
//
// Checks, in order (each one OK, WARN, FAIL or SKIP, with a fix for WARN and FAIL):
//   driver          /proc/driver/nvidia/version: loaded, >= 580 (CUDA 13's minimum)
//   cuda            /usr/local/cuda/version.json (or version.txt): >= 13.0
//   nccl            /usr/include/nccl.h NCCL_MAJOR/MINOR/PATCH, else libnccl.so.2.X.Y in the
//                   library directories: >= 2.28
//   gpu             `nvidia-smi --query-gpu=name,compute_cap`: a GPU, compute capability 12.1
//                   (GB10; others are WARN: sparkstack runs, but it is not a Spark)
//   roce            /sys/class/infiniband/*: Ethernet link layer, port ACTIVE, its netdev up
//   mtu             every RoCE netdev at MTU 9000
//   nccl_ib_hca     NCCL_IB_HCA (environment, else /etc/sparkstack/env) names at least two
//                   active RoCE HCAs (both halves of the ConnectX-7 port) and no unknown one
//   gid_index       NCCL_IB_GID_INDEX names a RoCE v2 GID holding an IPv4 address on every listed
//                   HCA (unset: WARN with the index to use)
//   memlock         /proc/self/limits "Max locked memory" unlimited
//   peers           each peer's control port accepts a TCP connection within the timeout
//   clock           the kernel clock is NTP-synchronized; peers' offsets under 50 ms when known
//   memory          /proc/meminfo MemAvailable >= the memory sparkstack needs
#ifndef SPARKSTACK_RUNTIME_DEPLOY_DOCTOR_H_
#define SPARKSTACK_RUNTIME_DEPLOY_DOCTOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sparkstack::deploy {

enum class CheckState : uint8_t { kOk, kWarn, kFail, kSkip };

struct CheckResult {
  std::string name;  // "mtu"
  CheckState state = CheckState::kOk;
  std::string detail;  // what was found
  std::string fix;     // what to do (WARN and FAIL)
};

struct PeerAddress {
  std::string name;  // for messages (the cluster file's node name, or host:port)
  std::string host;
  int port = 0;
};

// The machine as doctor sees it. Every member has a production default (MakeRealDoctorSystem).
struct DoctorSystem {
  std::string root = "/";  // prefix of every file path read
  // The process environment (NCCL_*, UCX_*); /etc/sparkstack/env under root is read too.
  std::map<std::string, std::string> environment;
  // Runs a command and returns its standard output; NotFound when the program does not exist.
  std::function<absl::StatusOr<std::string>(const std::vector<std::string>& argv)> run;
  // Connects to host:port within timeout_ms; OK when the connection was accepted.
  std::function<absl::Status(const std::string& host, int port, int timeout_ms)> connect;
  // Whether the kernel clock is synchronized (adjtimex: STA_UNSYNC clear).
  std::function<absl::StatusOr<bool>()> clock_synchronized;
  // A peer's clock minus ours, in seconds, when the peer can tell (node agents); nullopt if not.
  std::function<std::optional<double>(const PeerAddress& peer)> peer_clock_offset;
};

struct DoctorOptions {
  std::vector<PeerAddress> peers;
  int connect_timeout_ms = 1000;
  double needed_memory_bytes = 100.0 * 1024 * 1024 * 1024;  // MemAvailable at least
  double max_clock_offset_s = 0.05;
};

// The production system: root "/", the process environment, fork/exec for `run`, a non-blocking
// TCP connect, adjtimex.
DoctorSystem MakeRealDoctorSystem();

// Runs every check. Never fails as a whole: a check that cannot read what it needs reports FAIL
// (or SKIP when the thing does not apply) with the path it tried.
std::vector<CheckResult> RunDoctor(const DoctorSystem& system, const DoctorOptions& options);

// "[ OK ] driver: 580.95.05" lines, with "       fix: ..." under WARN and FAIL, and a summary.
std::string FormatDoctorReport(const std::vector<CheckResult>& results);

// True when no check failed.
bool DoctorPassed(const std::vector<CheckResult>& results);

// "host:port" -> PeerAddress (host may be [v6]). InvalidArgument naming the text otherwise.
absl::StatusOr<PeerAddress> ParsePeerAddress(const std::string& text);

}  // namespace sparkstack::deploy

#endif  // SPARKSTACK_RUNTIME_DEPLOY_DOCTOR_H_
