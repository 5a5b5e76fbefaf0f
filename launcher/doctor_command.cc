// `sparkstack doctor`: is this Spark ready to join a cluster? Driver, CUDA, NCCL, GPU, the RoCE
// link (up, MTU 9000, both HCAs of the port in NCCL_IB_HCA, the GID index), locked memory, the
// peers' control ports, the clock and memory headroom, each failure with its fix
// (runtime/deploy/doctor.h). Exit status 1 when a check fails.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "launcher/command_registry.h"
#include "runtime/core/status_macros.h"
#include "runtime/deploy/cluster_file.h"
#include "runtime/deploy/doctor.h"

namespace sparkstack::launcher {
namespace {

struct DoctorCommandOptions {
  std::string root = "/";
  std::vector<std::string> peers;
  std::string cluster_file;
  double need_gib = 100;
  int timeout_ms = 1000;
};

absl::Status RunDoctorCommand(const DoctorCommandOptions& options) {
  deploy::DoctorSystem system = deploy::MakeRealDoctorSystem();
  system.root = options.root;
  deploy::DoctorOptions doctor;
  doctor.connect_timeout_ms = options.timeout_ms;
  doctor.needed_memory_bytes = options.need_gib * 1024.0 * 1024 * 1024;
  for (const std::string& text : options.peers) {
    SPARKSTACK_ASSIGN_OR_RETURN(deploy::PeerAddress peer, deploy::ParsePeerAddress(text));
    doctor.peers.push_back(peer);
  }
  if (!options.cluster_file.empty()) {
    SPARKSTACK_ASSIGN_OR_RETURN(deploy::ClusterFile cluster,
                                deploy::LoadClusterFile(options.cluster_file));
    for (const deploy::ClusterNode& node : cluster.nodes) {
      doctor.peers.push_back({node.name, node.control_host, node.control_port});
    }
  }
  const std::vector<deploy::CheckResult> results = deploy::RunDoctor(system, doctor);
  std::cout << deploy::FormatDoctorReport(results);
  if (!deploy::DoctorPassed(results)) {
    return absl::FailedPreconditionError("sparkstack doctor: some checks failed (fixes above)");
  }
  return absl::OkStatus();
}

void SetupDoctorCommand(CLI::App& root) {
  auto options = std::make_shared<DoctorCommandOptions>();
  CLI::App* cmd = root.add_subcommand(
      "doctor", "Check this node: driver, CUDA, NCCL, RoCE link, MTU, HCAs, GID, peers, memory");
  cmd->add_option("--peer", options->peers, "a peer's control address HOST:PORT (repeatable)");
  cmd->add_option("-f,--cluster", options->cluster_file,
                  "cluster file: check every node's control port");
  cmd->add_option("--need-gib", options->need_gib,
                  "memory that must be available, GiB (default 100)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--timeout-ms", options->timeout_ms, "connect timeout per peer (default 1000)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--root", options->root,
                  "read /proc, /sys and /etc under this directory (tests; default /)");
  cmd->callback([options] { FinishCommand(RunDoctorCommand(*options)); });
}

}  // namespace

SPARKSTACK_REGISTER_COMMAND(SetupDoctorCommand);

}  // namespace sparkstack::launcher
