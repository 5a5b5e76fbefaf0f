// The head's side of the control plane's namespace test (netns_control_test.sh): a coordinator
// with rank 0 here and one node agent elsewhere (another namespace or machine).
//   control_cluster_check --node HOST:PORT --token-file F --pid-file P --done-file D
// 1. forms a data-plane probe group (the all-reduce crosses whatever lies between);
// 2. a stranger (wrong token, no token) cannot reach the agent, and the group does not notice;
// 3. kills the agent (kill -9 of the pid in P): the loss must be noticed within 5 s, naming the
//    node; once the agent is back (its supervisor restarts it) the group must re-form by itself;
// 4. with --unplug-dev DEV: takes the network link down (no reset, no FIN: a pulled cable or a
//    node that lost power): the heartbeats must notice within 5 s; link up: re-formed again;
// 5. writes D and shuts the agent down. Exit 0 when every check held; 1 with the reason.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "runtime/control/agent_link.h"
#include "runtime/control/coordinator.h"
#include "runtime/control/data_plane_probe.h"

namespace sparkstack::control {
namespace {

using std::chrono::milliseconds;

int Fail(const std::string& why) {
  std::cerr << "FAIL: " << why << std::endl;
  return 1;
}

int Run(const std::string& node, const std::string& token_file, const std::string& pid_file,
        const std::string& done_file, const std::string& unplug_dev) {
  DataPlaneProbeHead head;
  CoordinatorOptions options;
  options.nodes = {node};
  options.auth.token_file = token_file;
  options.plan.kind = WorkerKind::kDataPlaneProbe;
  options.heartbeat_interval = milliseconds(250);
  options.heartbeat_timeout = milliseconds(1500);
  options.connect_timeout = milliseconds(10000);  // the agent starts alongside this tool
  options.retry_interval = milliseconds(200);
  auto coordinator = Coordinator::Create(options, &head);
  if (!coordinator.ok()) return Fail(coordinator.status().ToString());
  if (absl::Status s = (*coordinator)->Start(); !s.ok()) return Fail(s.ToString());
  if (head.verified_groups() != 1) return Fail("rank 0's all-reduce was not verified");
  std::cout << "formed: " << (*coordinator)->Health().Summary() << std::endl;

  // Strangers.
  auto insecure = ControlAuth::Insecure();
  auto hello =
      CallHello(MakeAgentChannel(node, *insecure), *insecure, "stranger", milliseconds(3000));
  if (hello.ok() || hello.status().code() != absl::StatusCode::kUnauthenticated) {
    return Fail(absl::StrCat("a stranger's Hello got ", hello.status().ToString()));
  }
  auto wrong = ControlAuth::WithToken("not-the-cluster-token-0123456789");
  hello = CallHello(MakeAgentChannel(node, *wrong), *wrong, "stranger", milliseconds(3000));
  if (hello.status().code() != absl::StatusCode::kUnauthenticated) {
    return Fail(absl::StrCat("a wrong token's Hello got ", hello.status().ToString()));
  }
  std::this_thread::sleep_for(milliseconds(600));
  if (!(*coordinator)->ready() || (*coordinator)->Health().epoch != 1) {
    return Fail(
        absl::StrCat("strangers disturbed the group: ", (*coordinator)->Health().Summary()));
  }
  std::cout << "strangers refused, group undisturbed" << std::endl;

  // kill -9 the agent.
  pid_t pid = 0;
  std::ifstream(pid_file) >> pid;
  if (pid <= 0) return Fail(absl::StrCat("no agent pid in ", pid_file));
  const auto killed_at = std::chrono::steady_clock::now();
  if (kill(pid, SIGKILL) != 0) return Fail(absl::StrCat("kill ", pid));
  ClusterHealth h =
      (*coordinator)
          ->WaitFor([](const ClusterHealth& h) { return h.state == ClusterState::kDegraded; },
                    milliseconds(5000));
  const auto noticed =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - killed_at);
  if (h.state != ClusterState::kDegraded) return Fail("kill -9 not noticed within 5 s");
  if (h.failed_node != node) return Fail(absl::StrCat("blamed ", h.failed_node, ": ", h.reason));
  std::cout << "kill -9 noticed after " << noticed.count() << " ms: " << h.Summary() << std::endl;

  h = (*coordinator)
          ->WaitFor([](const ClusterHealth& h) { return h.ready() && h.epoch >= 2; },
                    milliseconds(30000));
  if (!h.ready()) return Fail(absl::StrCat("not re-formed: ", h.Summary()));
  if (head.verified_groups() < 2) return Fail("the re-formed group's all-reduce was not verified");
  std::cout << "re-formed: " << h.Summary() << std::endl;

  if (!unplug_dev.empty()) {
    const auto unplugged_at = std::chrono::steady_clock::now();
    if (std::system(absl::StrCat("ip link set ", unplug_dev, " down").c_str()) != 0) {
      return Fail(absl::StrCat("cannot take ", unplug_dev, " down"));
    }
    h = (*coordinator)
            ->WaitFor([](const ClusterHealth& h) { return h.state == ClusterState::kDegraded; },
                      milliseconds(5000));
    const auto lost =
        std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - unplugged_at);
    std::system(absl::StrCat("ip link set ", unplug_dev, " up").c_str());
    if (h.state != ClusterState::kDegraded) return Fail("an unplugged link not noticed within 5 s");
    if (h.failed_node != node) return Fail(absl::StrCat("blamed ", h.failed_node, ": ", h.reason));
    std::cout << "unplugged link noticed after " << lost.count() << " ms: " << h.Summary()
              << std::endl;
    h = (*coordinator)
            ->WaitFor([](const ClusterHealth& h) { return h.ready() && h.epoch >= 3; },
                      milliseconds(30000));
    if (!h.ready())
      return Fail(absl::StrCat("not re-formed after the link came back: ", h.Summary()));
    std::cout << "re-formed after the link came back: " << h.Summary() << std::endl;
  }

  std::ofstream(done_file) << "done\n";
  (*coordinator)->Shutdown(/*shutdown_nodes=*/true);
  return 0;
}

}  // namespace
}  // namespace sparkstack::control

int main(int argc, char** argv) {
  std::string node, token, pid_file, done_file, unplug_dev;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--node") node = argv[i + 1];
    if (flag == "--token-file") token = argv[i + 1];
    if (flag == "--pid-file") pid_file = argv[i + 1];
    if (flag == "--done-file") done_file = argv[i + 1];
    if (flag == "--unplug-dev") unplug_dev = argv[i + 1];
  }
  if (node.empty() || token.empty() || pid_file.empty() || done_file.empty()) {
    std::cerr << "usage: control_cluster_check --node HOST:PORT --token-file F --pid-file P "
                 "--done-file D [--unplug-dev DEV]\n";
    return 2;
  }
  return sparkstack::control::Run(node, token, pid_file, done_file, unplug_dev);
}
