// From a cluster file to the head's serve command line, and the state `up` leaves behind.
#include "runtime/deploy/cluster_launch.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/deploy/up_state.h"

namespace sparkstack::deploy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ClusterFile ThreeNodes() {
  absl::StatusOr<ClusterFile> file = ParseClusterFile(R"(
model: /models/m
parallel: {tp: 3, pp: 1}
max_context: 4096
ports: {control: 7171, api: 9000, grpc: 9001}
auth: {token_file: /etc/t, api_key_file: /etc/k}
nodes:
  - name: a
    control: 10.0.0.1
    data: {interface: enp1, hcas: [rocep1, roceP2]}
  - name: b
    control: 10.0.0.2:7272
  - name: c
    control: "[fd00::3]"
)",
                                                      "c.yaml");
  EXPECT_TRUE(file.ok()) << file.status();
  return *file;
}

LayoutPlan Layout(int tp, int pp, int ep, bool fits, double batch32) {
  LayoutPlan layout;
  layout.tp = tp;
  layout.pp = pp;
  layout.ep = ep;
  layout.nodes = tp * pp;
  layout.fits = fits;
  layout.reason = fits ? "" : "weights exceed memory";
  layout.decode_tokens_per_s_batch32 = batch32;
  return layout;
}

TEST(ClusterLaunchTest, ServeArgumentsCarryTheFile) {
  const ClusterFile file = ThreeNodes();
  absl::StatusOr<std::vector<std::string>> args =
      ServeArguments(file, Layout(3, 1, 1, true, 1), "0.0.0.0");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(
      *args, ElementsAre("serve", "--model", "/models/m", "--nodes", "10.0.0.2:7272,[fd00::3]:7171",
                         "--token-file", "/etc/t", "--tp", "3", "--pp", "1", "--max-model-len",
                         "4096", "--host", "0.0.0.0", "--port", "9000", "--grpc-port", "9001",
                         "--api-key-file", "/etc/k"));
  // Expert parallelism appears only when it splits the experts.
  args = ServeArguments(file, Layout(3, 1, 3, true, 1), "127.0.0.1");
  ASSERT_TRUE(args.ok());
  EXPECT_NE(std::find(args->begin(), args->end(), "--ep"), args->end());
}

TEST(ClusterLaunchTest, AMultiNodeClusterNeedsAToken) {
  ClusterFile file = ThreeNodes();
  file.token_file.clear();
  EXPECT_THAT(ServeArguments(file, Layout(3, 1, 1, true, 1), "h").status().message(),
              HasSubstr("c.yaml: auth.token_file is required"));
}

TEST(ClusterLaunchTest, ServeEnvFileForTheSystemdUnit) {
  absl::StatusOr<std::string> env =
      ServeEnvFile({"serve", "--model", "/models/m", "--tp", "2", "--token-file", "/etc/t"});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_THAT(*env,
              HasSubstr("\nSPARKSTACK_SERVE_ARGS=--model /models/m --tp 2 --token-file /etc/t\n"));
  EXPECT_THAT(ServeEnvFile({"serve", "--model", "/models/my model"}).status().message(),
              HasSubstr("serve argument '/models/my model' cannot go through"));
  EXPECT_FALSE(ServeEnvFile({"serve", "--model", "/m/$HOME"}).ok());
}

TEST(ClusterLaunchTest, TheHeadsDataPortBecomesNcclSettings) {
  EXPECT_THAT(HeadEnvironment(ThreeNodes()),
              ElementsAre(std::make_pair(std::string("NCCL_IB_HCA"), std::string("rocep1,roceP2")),
                          std::make_pair(std::string("NCCL_SOCKET_IFNAME"), std::string("enp1"))));
}

TEST(ClusterLaunchTest, AutoPicksTheFastestLayoutThatFits) {
  Plan plan;
  plan.model = "/models/m";
  plan.layouts = {Layout(4, 1, 1, false, 900), Layout(2, 2, 1, true, 300),
                  Layout(1, 4, 1, true, 450), Layout(4, 1, 4, true, 420)};
  absl::StatusOr<LayoutPlan> chosen = ChooseLayout(plan, ThreeNodes());
  ASSERT_TRUE(chosen.ok());
  EXPECT_EQ(chosen->tp, 1);
  EXPECT_EQ(chosen->pp, 4);

  plan.layouts = {Layout(4, 1, 1, false, 900), Layout(2, 2, 1, false, 300)};
  const std::string message(ChooseLayout(plan, ThreeNodes()).status().message());
  EXPECT_THAT(message, HasSubstr("/models/m fits no layout on 3 nodes"));
  EXPECT_THAT(message, HasSubstr("tp 2 pp 2 ep 1: weights exceed memory"));
}

TEST(ClusterLaunchTest, OnlyABf16KvCacheIsServed) {
  ClusterFile file = ThreeNodes();
  absl::StatusOr<PlanOptions> options = PlanOptionsFor(file);
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->nodes, 3);
  EXPECT_EQ(options->tp, 3);
  EXPECT_EQ(options->max_context, 4096);
  file.kv_dtype = "fp8";
  EXPECT_THAT(PlanOptionsFor(file).status().message(), HasSubstr("kv_dtype: fp8"));
}

class UpStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = std::filesystem::temp_directory_path() /
            ("sparkstack-up-state-" + std::to_string(getpid()));
  }
  void TearDown() override { std::filesystem::remove_all(base_); }
  std::filesystem::path base_;
};

TEST_F(UpStateTest, RoundTripsAndOneDirectoryPerClusterFile) {
  const std::string dir = StateDirFor("/etc/sparkstack/cluster.yaml", base_);
  EXPECT_EQ(dir, StateDirFor("/etc/sparkstack/cluster.yaml", base_));
  EXPECT_NE(dir, StateDirFor("/home/u/cluster.yaml", base_));
  EXPECT_THAT(dir, HasSubstr("/cluster.yaml-"));
  EXPECT_TRUE(absl::IsNotFound(ReadUpState(dir).status()));

  UpState state;
  state.cluster_file = "/etc/sparkstack/cluster.yaml";
  state.pid = 4242;
  state.log_file = dir + "/serve.log";
  state.api_host = "0.0.0.0";
  state.http_port = 8000;
  state.grpc_port = 8001;
  state.tp = 2;
  state.pp = 2;
  state.ep = 1;
  state.started_unix = 1700000000;
  ASSERT_TRUE(WriteUpState(dir, state).ok());
  absl::StatusOr<UpState> read = ReadUpState(dir);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->pid, 4242);
  EXPECT_EQ(read->log_file, state.log_file);
  EXPECT_EQ(read->grpc_port, 8001);
  EXPECT_EQ(read->pp, 2);
  EXPECT_EQ(read->started_unix, 1700000000);

  std::ofstream(dir + "/state.json") << R"({"cluster_file": "x", "pid": "not a number"})";
  EXPECT_THAT(ReadUpState(dir).status().message(), HasSubstr("state.json: field pid missing"));
  RemoveUpState(dir);
  EXPECT_TRUE(absl::IsNotFound(ReadUpState(dir).status()));

  std::ofstream(dir + "/serve.log") << "one\ntwo\nthree\n";
  EXPECT_THAT(*LastLinesOf(dir + "/serve.log", 2), ElementsAre("two", "three"));
  EXPECT_THAT(*LastLinesOf(dir + "/serve.log", 10), ElementsAre("one", "two", "three"));
  EXPECT_TRUE(absl::IsNotFound(LastLinesOf(dir + "/missing.log", 1).status()));
}

TEST_F(UpStateTest, OnlyALiveServeProcessCounts) {
  EXPECT_FALSE(IsServeProcess(getpid()));  // alive, but a test binary
  EXPECT_FALSE(IsServeProcess(0));
  EXPECT_FALSE(IsServeProcess(1 << 30));  // above any pid_max
}

}  // namespace
}  // namespace sparkstack::deploy
