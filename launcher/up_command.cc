// `sparkstack up -f cluster.yaml`, on the head: checks every node agent (reachable, same version,
// free), resolves the layout with the plan (runtime/deploy), starts `sparkstack serve` in the
// background with the file's settings, follows its log (each node's progress) until the cluster
// is ready, and prints the endpoints. `status`, `down` and `logs` (cluster_admin_commands.cc)
// find the head through the state `up` leaves (runtime/deploy/up_state.h).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "launcher/cluster_nodes.h"
#include "launcher/command_registry.h"
#include "runtime/control/capabilities.h"
#include "runtime/core/status_macros.h"
#include "runtime/deploy/checkpoint_census.h"
#include "runtime/deploy/cluster_launch.h"
#include "runtime/deploy/up_state.h"

namespace sparkstack::launcher {
namespace {

namespace pb = ::sparkstack::v1;
using Clock = std::chrono::steady_clock;

struct UpFlags {
  ClusterFlags cluster;
  std::string api_host = "0.0.0.0";
  int timeout_s = 1800;
  std::vector<std::string> serve_flags;  // after `--`: passed to serve as they are
  std::string serve_env_file;            // set: write serve's arguments there instead of running it
};

// Prints the nodes and returns what keeps the cluster from forming: an agent that cannot be
// reached, runs another version, or is held by another cluster.
absl::Status CheckNodes(const Cluster& cluster) {
  std::cout << "nodes:\n";
  std::cout << absl::StrFormat("  %-14s %-22s %s\n", cluster.file.nodes[0].name, "head",
                               "this machine: runs serve (rank 0)");
  std::vector<std::string> problems;
  const std::string version = control::ThisBuildVersions().sparkstack_version;
  for (const NodeAnswer& answer : HelloNodes(cluster)) {
    if (!answer.hello.ok()) {
      problems.push_back(absl::StrCat("node ", NodeLabel(answer),
                                      " does not answer: ", answer.hello.status().message()));
      std::cout << absl::StrFormat("  %-14s %-22s unreachable\n", answer.node->name,
                                   answer.address);
      continue;
    }
    const pb::NodeCapabilities& caps = answer.hello->capabilities();
    std::cout << absl::StrFormat("  %-14s %-22s %s, sparkstack %s, %s, %s free of %s, %s\n",
                                 answer.node->name, answer.address, caps.hostname(),
                                 caps.versions().sparkstack_version(),
                                 NodeStateWord(answer.hello->state()),
                                 GiB(caps.memory_available_bytes()), GiB(caps.memory_total_bytes()),
                                 caps.gpus().empty() ? std::string("no GPU") : caps.gpus(0).name());
    if (caps.versions().sparkstack_version() != version) {
      problems.push_back(absl::StrCat("node ", NodeLabel(answer), " runs sparkstack ",
                                      caps.versions().sparkstack_version(), ", this head ", version,
                                      ": install the same version on every node"));
    }
    if (!answer.hello->held_by().empty()) {
      problems.push_back(absl::StrCat("node ", NodeLabel(answer), " is held by cluster ",
                                      answer.hello->held_by(),
                                      ": `sparkstack down` that cluster first"));
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrJoin(problems, "\n"));
}

absl::StatusOr<deploy::LayoutPlan> PlanLayout(const Cluster& cluster) {
  SPARKSTACK_ASSIGN_OR_RETURN(deploy::CheckpointCensus census,
                              deploy::TakeCensus(cluster.file.model_dir));
  SPARKSTACK_ASSIGN_OR_RETURN(deploy::PlanOptions options, deploy::PlanOptionsFor(cluster.file));
  SPARKSTACK_ASSIGN_OR_RETURN(deploy::Plan plan, deploy::MakePlan(census, options));
  SPARKSTACK_ASSIGN_OR_RETURN(deploy::LayoutPlan layout, deploy::ChooseLayout(plan, cluster.file));
  std::cout << absl::StrFormat(
      "plan: %s (%s) as tp %d x pp %d x ep %d on %d nodes; predicted decode %.1f tokens/s at "
      "batch 1, %.0f at batch 32, prefill %.0f tokens/s (`sparkstack plan` explains)\n",
      plan.model, plan.architecture, layout.tp, layout.pp, layout.ep, layout.nodes,
      layout.decode_tokens_per_s_batch1, layout.decode_tokens_per_s_batch32,
      layout.prefill_tokens_per_s);
  for (const deploy::NodePlan& node : layout.per_node) {
    std::cout << absl::StrFormat("  %-14s weights %s, KV %d bytes/token, layers [%d, %d)\n",
                                 cluster.file.nodes[node.node].name, GiB(node.weight_bytes),
                                 node.kv_bytes_per_token, node.layer_begin, node.layer_end);
  }
  return layout;
}

// Starts `serve` in its own session (it outlives this command), its output in `log_file`.
absl::StatusOr<pid_t> SpawnServe(const std::vector<std::string>& args,
                                 const std::vector<std::pair<std::string, std::string>>& env,
                                 const std::string& log_file) {
  char exe[4096] = {};
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return absl::InternalError("cannot find this binary (/proc/self/exe)");
  const int log_fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    return absl::InternalError(absl::StrCat("cannot write ", log_file, ": ", strerror(errno)));
  }
  std::vector<char*> argv = {exe};
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  }
  if (pid == 0) {
    setsid();
    const int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), /*overwrite=*/0);
    execv(exe, argv.data());
    dprintf(STDERR_FILENO, "sparkstack up: cannot run %s: %s\n", exe, strerror(errno));
    _exit(127);
  }
  close(log_fd);
  return pid;
}

// The log line without spdlog's "[time] [level] " prefix.
std::string_view Bare(std::string_view line) {
  for (int i = 0; i < 2 && !line.empty() && line.front() == '['; ++i) {
    const size_t close = line.find("] ");
    if (close == std::string_view::npos) break;
    line.remove_prefix(close + 2);
  }
  return line;
}

// Echoes the head's progress (each node's phase, the cluster's state) until serve says it is
// ready. Errors: serve exited (with the end of its log), or the timeout passed (serve stopped).
absl::Status FollowUntilReady(pid_t pid, const std::string& log_file,
                              std::chrono::seconds timeout) {
  std::ifstream log;
  std::string partial;
  const Clock::time_point deadline = Clock::now() + timeout;
  while (true) {
    if (!log.is_open()) log.open(log_file);
    std::string chunk;
    if (log.is_open()) {
      log.clear();
      chunk.assign(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>());
    }
    partial += chunk;
    for (size_t end; (end = partial.find('\n')) != std::string::npos; partial.erase(0, end + 1)) {
      const std::string_view line = Bare(std::string_view(partial).substr(0, end));
      if (line.starts_with("coordinator: ") || line.starts_with("sparkstack serve: ")) {
        std::cout << "  " << line << std::endl;
      }
      if (line.starts_with("sparkstack serve: ready")) return absl::OkStatus();
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the head's serve exited (", WIFEXITED(status) ? "status " : "signal ",
          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
          ") before the cluster was ready; the end of ", log_file, ":\n",
          absl::StrJoin(deploy::LastLinesOf(log_file, 15).value_or(std::vector<std::string>{}),
                        "\n")));
    }
    if (Clock::now() > deadline) {
      kill(pid, SIGTERM);
      return absl::DeadlineExceededError(
          absl::StrCat("the cluster was not ready within ", timeout.count(),
                       " s (--timeout); serve stopped; ", log_file, " has its log"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

absl::Status Run(const UpFlags& f) {
  SPARKSTACK_ASSIGN_OR_RETURN(Cluster cluster, OpenCluster(f.cluster));
  if (absl::StatusOr<deploy::UpState> running = deploy::ReadUpState(cluster.state_dir);
      running.ok() && deploy::IsServeProcess(running->pid)) {
    return absl::FailedPreconditionError(
        absl::StrCat(f.cluster.file, " is already up (serve pid ", running->pid,
                     "): `sparkstack status -f` it, or `sparkstack down -f` it first"));
  }
  SPARKSTACK_RETURN_IF_ERROR(CheckNodes(cluster));
  SPARKSTACK_ASSIGN_OR_RETURN(deploy::LayoutPlan layout, PlanLayout(cluster));
  SPARKSTACK_ASSIGN_OR_RETURN(std::vector<std::string> args,
                              deploy::ServeArguments(cluster.file, layout, f.api_host));
  args.insert(args.end(), f.serve_flags.begin(), f.serve_flags.end());
  if (!f.serve_env_file.empty()) {  // sparkstack-serve.service runs serve instead
    SPARKSTACK_ASSIGN_OR_RETURN(std::string env, deploy::ServeEnvFile(args));
    std::ofstream out(f.serve_env_file);
    out << env;
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", f.serve_env_file));
    std::cout << "wrote " << f.serve_env_file
              << "; start it with: systemctl restart sparkstack-serve\n";
    return absl::OkStatus();
  }

  deploy::UpState state;
  state.cluster_file = cluster.file_absolute;
  state.log_file = cluster.state_dir + "/serve.log";
  state.api_host = f.api_host;
  state.http_port = cluster.file.api_port;
  state.grpc_port = cluster.file.grpc_port;
  state.tp = layout.tp;
  state.pp = layout.pp;
  state.ep = layout.ep;
  state.started_unix = static_cast<int64_t>(std::time(nullptr));
  SPARKSTACK_RETURN_IF_ERROR(deploy::WriteUpState(cluster.state_dir, state));  // creates the dir
  std::cout << "starting: sparkstack " << absl::StrJoin(args, " ") << "\n";
  SPARKSTACK_ASSIGN_OR_RETURN(
      const pid_t pid, SpawnServe(args, deploy::HeadEnvironment(cluster.file), state.log_file));
  state.pid = pid;
  SPARKSTACK_RETURN_IF_ERROR(deploy::WriteUpState(cluster.state_dir, state));
  if (absl::Status ready = FollowUntilReady(pid, state.log_file, std::chrono::seconds(f.timeout_s));
      !ready.ok()) {
    deploy::RemoveUpState(cluster.state_dir);
    return ready;
  }
  const std::string host = f.api_host == "0.0.0.0" || f.api_host == "::"
                               ? cluster.file.nodes[0].control_host
                               : f.api_host;
  std::cout << "up: " << cluster.file.nodes.size() << " nodes, serve pid " << pid << "\n"
            << "  OpenAI API  http://" << host << ":" << state.http_port << "/v1\n"
            << "  gRPC        " << host << ":" << state.grpc_port << " (sparkstack.v1.Inference)\n"
            << "  metrics     http://" << host << ":" << state.http_port << "/metrics\n"
            << "  chat        sparkstack chat --url http://" << host << ":" << state.http_port
            << "\n  then        sparkstack status|down|logs NODE -f " << f.cluster.file << "\n";
  return absl::OkStatus();
}

void SetupUpCommand(CLI::App& root) {
  auto flags = std::make_shared<UpFlags>();
  CLI::App* cmd = root.add_subcommand(
      "up", "Bring up the cluster a cluster file describes (on its head, the first node)");
  AddClusterFileFlags(*cmd, flags->cluster);
  cmd->add_option("--host", flags->api_host, "address the API servers listen on")
      ->capture_default_str();
  cmd->add_option("--timeout", flags->timeout_s, "seconds for the cluster to become ready")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--write-serve-env", flags->serve_env_file,
                  "check and plan, then write serve's arguments to this file (the systemd unit's "
                  "/etc/sparkstack/serve.env) instead of starting serve");
  cmd->add_option("serve-flags", flags->serve_flags,
                  "after --: more `sparkstack serve` flags (e.g. -- --max-num-seqs 128)");
  cmd->callback([flags] { FinishCommand(Run(*flags)); });
}

}  // namespace

SPARKSTACK_REGISTER_COMMAND(SetupUpCommand);

}  // namespace sparkstack::launcher
