// `sparkstack status | down | logs NODE -f cluster.yaml`: the cluster that `up` started from this
// file on this machine (the head). status: the head's health and load from its HTTP API and each
// node agent's state from a Hello; down: stops the head's serve, which drains the nodes (their
// agents stay up, free for the next `up`); logs: the head's serve log, or a node agent's recent
// log through its Logs RPC.
#include <signal.h>
#include <sys/sysinfo.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "grpcpp/grpcpp.h"
#include "launcher/cluster_nodes.h"
#include "launcher/command_registry.h"
#include "launcher/http_client.h"
#include "runtime/control/agent_link.h"
#include "runtime/core/memory_budget.h"
#include "runtime/core/status_macros.h"
#include "runtime/deploy/cluster_launch.h"
#include "runtime/deploy/up_state.h"
#include "sparkstack/v1/control.grpc.pb.h"

namespace sparkstack::launcher {
namespace {

namespace pb = ::sparkstack::v1;
using Clock = std::chrono::steady_clock;

absl::StatusOr<deploy::UpState> ReadState(const Cluster& cluster, const ClusterFlags& flags) {
  absl::StatusOr<deploy::UpState> state = deploy::ReadUpState(cluster.state_dir);
  if (absl::IsNotFound(state.status())) {
    return absl::NotFoundError(absl::StrCat(flags.file, " is not up on this machine (no state in ",
                                            cluster.state_dir, "): `sparkstack up -f ", flags.file,
                                            "` starts it"));
  }
  return state;
}

// The sum of every sample of metric `name` in Prometheus text (0 when absent).
double SumSamples(absl::string_view text, absl::string_view name) {
  double sum = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, name) || line.size() == name.size()) continue;
    const char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    double value = 0;
    if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &value)) sum += value;
  }
  return sum;
}

// ---- status ------------------------------------------------------------------------------------

struct StatusFlags {
  ClusterFlags cluster;
  double interval_s = 1.0;
};

absl::Status RunStatus(const StatusFlags& f) {
  SPARKSTACK_ASSIGN_OR_RETURN(Cluster cluster, OpenCluster(f.cluster));
  SPARKSTACK_ASSIGN_OR_RETURN(deploy::UpState state, ReadState(cluster, f.cluster));
  std::vector<std::string> problems;
  const bool head_alive = deploy::IsServeProcess(state.pid);
  if (!head_alive)
    problems.push_back(absl::StrCat("the head's serve (pid ", state.pid, ") is not running"));

  HttpTarget api{state.api_host == "0.0.0.0" ? "127.0.0.1" : state.api_host,
                 absl::StrCat(state.http_port), ""};
  std::string health = "no answer";
  std::string load = "-";
  if (head_alive) {
    absl::StatusOr<HttpResponse> answer = HttpGet(api, "/health");
    if (!answer.ok()) {
      health = std::string(answer.status().message());
      problems.push_back(absl::StrCat("the head's API does not answer: ", health));
    } else {
      health =
          answer->status == 200 ? "ok" : absl::StrCat("HTTP ", answer->status, " ", answer->body);
      if (answer->status != 200)
        problems.push_back(absl::StrCat("the head is unhealthy: ", health));
    }
    absl::StatusOr<HttpResponse> first = HttpGet(api, "/metrics");
    const Clock::time_point t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(f.interval_s));
    absl::StatusOr<HttpResponse> second = HttpGet(api, "/metrics");
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (first.ok() && second.ok() && first->status == 200 && second->status == 200) {
      const auto rate = [&](absl::string_view name) {
        return (SumSamples(second->body, name) - SumSamples(first->body, name)) / seconds;
      };
      load = absl::StrFormat(
          "%.0f running, %.0f waiting, KV cache %.0f%% used; %.1f generated tokens/s, %.1f prompt "
          "tokens/s (over %.1f s)",
          SumSamples(second->body, "sparkstack_num_requests_running"),
          SumSamples(second->body, "sparkstack_num_requests_waiting"),
          100 * SumSamples(second->body, "sparkstack_kv_cache_usage_ratio"),
          rate("sparkstack_generation_tokens_total"), rate("sparkstack_prompt_tokens_total"),
          seconds);
    }
  }
  std::cout << "cluster " << f.cluster.file << ": tp " << state.tp << " x pp " << state.pp
            << " x ep " << state.ep << ", serve pid " << state.pid
            << (head_alive ? "" : " (not running)") << "\n"
            << "  health  " << health << "\n"
            << "  load    " << load << "\n"
            << "  API     http://" << api.host << ":" << state.http_port << "/v1, gRPC port "
            << state.grpc_port << "\n";
  std::cout << absl::StrFormat("%-14s %-4s %-22s %-10s %-22s %s\n", "NODE", "RANK", "ADDRESS",
                               "STATE", "MEMORY FREE / TOTAL", "HOST / GPU");
  struct sysinfo info {};
  sysinfo(&info);
  std::cout << absl::StrFormat(
      "%-14s %-4d %-22s %-10s %-22s %s\n", cluster.file.nodes[0].name, 0, "head",
      head_alive && health == "ok" ? "ready" : "down",
      absl::StrCat(GiB(AvailableMemory().bytes), " / ",
                   GiB(static_cast<uint64_t>(info.totalram) * info.mem_unit)),
      "this machine");
  int rank = 1;
  for (const NodeAnswer& answer : HelloNodes(cluster)) {
    if (!answer.hello.ok()) {
      problems.push_back(absl::StrCat("node ", NodeLabel(answer),
                                      " does not answer: ", answer.hello.status().message()));
      std::cout << absl::StrFormat("%-14s %-4d %-22s %-10s\n", answer.node->name, rank++,
                                   answer.address, "unreachable");
      continue;
    }
    const pb::NodeCapabilities& caps = answer.hello->capabilities();
    const std::string word = NodeStateWord(answer.hello->state());
    if (word != "ready") problems.push_back(absl::StrCat("node ", NodeLabel(answer), " is ", word));
    std::cout << absl::StrFormat(
        "%-14s %-4d %-22s %-10s %-22s %s\n", answer.node->name, rank++, answer.address, word,
        absl::StrCat(GiB(caps.memory_available_bytes()), " / ", GiB(caps.memory_total_bytes())),
        absl::StrCat(caps.hostname(), caps.gpus().empty() ? "" : " / ",
                     caps.gpus().empty() ? "" : caps.gpus(0).name()));
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("not healthy:\n  ", absl::StrJoin(problems, "\n  ")));
}

// ---- down --------------------------------------------------------------------------------------

struct DownFlags {
  ClusterFlags cluster;
  int timeout_s = 120;
};

absl::Status RunDown(const DownFlags& f) {
  SPARKSTACK_ASSIGN_OR_RETURN(Cluster cluster, OpenCluster(f.cluster));
  absl::StatusOr<deploy::UpState> state = ReadState(cluster, f.cluster);
  if (absl::IsNotFound(state.status())) {
    std::cout << state.status().message() << "; nothing to stop\n";
    return absl::OkStatus();
  }
  if (!state.ok()) return state.status();
  if (!deploy::IsServeProcess(state->pid)) {
    std::cout << "the head's serve (pid " << state->pid
              << ") is not running; removing its stale state\n";
    deploy::RemoveUpState(cluster.state_dir);
    return absl::OkStatus();
  }
  // SIGTERM: serve drains the group (every node stops its worker rank), then exits.
  const Clock::time_point start = Clock::now();
  kill(static_cast<pid_t>(state->pid), SIGTERM);
  std::cout << "stopping the head's serve (pid " << state->pid << ")..." << std::endl;
  while (deploy::IsServeProcess(state->pid) &&
         Clock::now() - start < std::chrono::seconds(f.timeout_s)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (deploy::IsServeProcess(state->pid)) {
    kill(static_cast<pid_t>(state->pid), SIGKILL);
    std::cout << "it did not stop within " << f.timeout_s << " s: killed\n";
  }
  deploy::RemoveUpState(cluster.state_dir);
  std::cout << absl::StrFormat("down after %.1f s\n",
                               std::chrono::duration<double>(Clock::now() - start).count());
  for (const NodeAnswer& answer : HelloNodes(cluster)) {
    std::cout << "  " << NodeLabel(answer) << ": "
              << (answer.hello.ok() ? NodeStateWord(answer.hello->state())
                                    : std::string(answer.hello.status().message()))
              << "\n";
  }
  return absl::OkStatus();
}

// ---- logs --------------------------------------------------------------------------------------

struct LogsFlags {
  ClusterFlags cluster;
  std::string node;
  int lines = 100;
};

absl::Status RunLogs(const LogsFlags& f) {
  SPARKSTACK_ASSIGN_OR_RETURN(Cluster cluster, OpenCluster(f.cluster));
  const std::vector<deploy::ClusterNode>& nodes = cluster.file.nodes;
  auto node = std::find_if(nodes.begin(), nodes.end(),
                           [&](const deploy::ClusterNode& n) { return n.name == f.node; });
  if (node == nodes.end()) {
    std::vector<std::string> names;
    for (const deploy::ClusterNode& n : nodes) names.push_back(n.name);
    return absl::NotFoundError(absl::StrCat(f.cluster.file, " has no node ", f.node,
                                            "; its nodes: ", absl::StrJoin(names, ", ")));
  }
  if (node == nodes.begin()) {  // the head: the log of the serve `up` started
    SPARKSTACK_ASSIGN_OR_RETURN(deploy::UpState state, ReadState(cluster, f.cluster));
    SPARKSTACK_ASSIGN_OR_RETURN(std::vector<std::string> lines,
                                deploy::LastLinesOf(state.log_file, f.lines));
    for (const std::string& line : lines) std::cout << line << "\n";
    return absl::OkStatus();
  }
  const std::string address = deploy::AgentAddress(*node);
  auto stub = pb::NodeAgent::NewStub(control::MakeAgentChannel(address, *cluster.auth));
  grpc::ClientContext context;
  cluster.auth->Authorize(context);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  pb::LogsRequest request;
  request.set_lines(static_cast<uint32_t>(f.lines));
  pb::LogsReply reply;
  if (grpc::Status s = stub->Logs(&context, request, &reply); !s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("node ", node->name, " (", address, "): Logs: ", s.error_message()));
  }
  if (reply.dropped() > 0) std::cout << "(" << reply.dropped() << " older lines not kept)\n";
  for (const std::string& line : reply.lines()) std::cout << line << "\n";
  return absl::OkStatus();
}

void SetupStatusCommand(CLI::App& root) {
  auto flags = std::make_shared<StatusFlags>();
  CLI::App* cmd = root.add_subcommand(
      "status", "Health, load and nodes of the cluster `up` started (exit 1 when not healthy)");
  AddClusterFileFlags(*cmd, flags->cluster);
  cmd->add_option("--interval", flags->interval_s, "seconds over which throughput is measured")
      ->check(CLI::Range(0.1, 60.0))
      ->capture_default_str();
  cmd->callback([flags] { FinishCommand(RunStatus(*flags)); });
}

void SetupDownCommand(CLI::App& root) {
  auto flags = std::make_shared<DownFlags>();
  CLI::App* cmd = root.add_subcommand(
      "down", "Stop the cluster `up` started: the head drains every node and exits");
  AddClusterFileFlags(*cmd, flags->cluster);
  cmd->add_option("--timeout", flags->timeout_s, "seconds before the head is killed")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->callback([flags] { FinishCommand(RunDown(*flags)); });
}

void SetupLogsCommand(CLI::App& root) {
  auto flags = std::make_shared<LogsFlags>();
  CLI::App* cmd =
      root.add_subcommand("logs", "The recent log of one node of the cluster (the head: serve's)");
  cmd->add_option("node", flags->node, "the node's name in the cluster file")->required();
  AddClusterFileFlags(*cmd, flags->cluster);
  cmd->add_option("-n,--lines", flags->lines, "how many of the last lines")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->callback([flags] { FinishCommand(RunLogs(*flags)); });
}

}  // namespace

SPARKSTACK_REGISTER_COMMAND(SetupStatusCommand);
SPARKSTACK_REGISTER_COMMAND(SetupDownCommand);
SPARKSTACK_REGISTER_COMMAND(SetupLogsCommand);

}  // namespace sparkstack::launcher
