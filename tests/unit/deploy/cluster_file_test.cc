#include "runtime/deploy/cluster_file.h"

#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparkstack::deploy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kMinimal[] = R"(
model: /models/m
nodes:
  - name: a
    control: 10.0.0.1
)";

std::string Error(const std::string& text) {
  absl::StatusOr<ClusterFile> c = ParseClusterFile(text, "c.yaml");
  EXPECT_FALSE(c.ok()) << text;
  return c.ok() ? "" : std::string(c.status().message());
}

TEST(ClusterFileTest, TheExampleParses) {
  const char* source = std::getenv("SPARKSTACK_SOURCE_DIR");
  ASSERT_NE(source, nullptr);
  absl::StatusOr<ClusterFile> c =
      LoadClusterFile(std::string(source) + "/deploy/cluster.example.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_dir, "/models/Qwen3-235B-A22B-FP4");
  EXPECT_EQ(c->tp, 0);
  EXPECT_EQ(c->pp, 0);
  EXPECT_EQ(c->ep, 0);
  EXPECT_EQ(c->max_context, 32768);
  EXPECT_EQ(c->api_port, 8000);
  EXPECT_EQ(c->token_file, "/etc/sparkstack/token");
  ASSERT_EQ(c->nodes.size(), 2u);
  EXPECT_EQ(c->nodes[1].name, "spark-b");
  EXPECT_EQ(c->nodes[1].control_host, "192.168.100.2");
  EXPECT_EQ(c->nodes[1].control_port, 7070);
  EXPECT_EQ(c->nodes[1].data_interface, "enp1s0f1np1");
  EXPECT_THAT(c->nodes[1].hcas, ElementsAre("rocep1s0f1", "roceP2p1s0f1"));
}

TEST(ClusterFileTest, DefaultsAndExplicitValues) {
  absl::StatusOr<ClusterFile> c = ParseClusterFile(kMinimal, "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->control_port, kDefaultControlPort);
  EXPECT_EQ(c->kv_dtype, "bf16");
  EXPECT_EQ(c->nodes[0].control_port, kDefaultControlPort);

  c = ParseClusterFile(R"(
model: /m
parallel: {tp: 2, pp: 2, ep: 1}
ports: {control: 9000}
nodes:
  - {name: a, control: "[fe80::1]:9100", data: {ip: 192.168.1.1}}
  - {name: b, control: host-b}
  - {name: c, control: host-c:9101}
  - {name: d, control: "[fe80::2]"}
)",
                       "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->tp, 2);
  EXPECT_EQ(c->pp, 2);
  EXPECT_EQ(c->ep, 1);
  EXPECT_EQ(c->nodes[0].control_host, "fe80::1");
  EXPECT_EQ(c->nodes[0].control_port, 9100);
  EXPECT_EQ(c->nodes[0].data_ip, "192.168.1.1");
  EXPECT_EQ(c->nodes[1].control_port, 9000);  // ports.control applies
  EXPECT_EQ(c->nodes[2].control_port, 9101);
  EXPECT_EQ(c->nodes[3].control_host, "fe80::2");
}

TEST(ClusterFileTest, ErrorsNameTheFieldAndLine) {
  EXPECT_THAT(Error("model: [unclosed"), HasSubstr("c.yaml: not valid YAML (line"));
  EXPECT_THAT(Error("- a\n- b\n"), HasSubstr("expected a mapping of cluster fields"));
  EXPECT_THAT(Error("nodes: []\n"), HasSubstr("c.yaml: model: expected a non-empty string"));
  EXPECT_THAT(Error("model: /m\n"), HasSubstr("nodes: expected a non-empty list of nodes"));
  EXPECT_THAT(Error(std::string(kMinimal) + "modle: /typo\n"),
              HasSubstr("modle (line 6): unknown field"));
  EXPECT_THAT(Error("model: /m\nnodes:\n  - name: a\n"),
              HasSubstr("nodes[0].control: expected a non-empty string, found nothing"));
  EXPECT_THAT(
      Error("model: /m\nnodes:\n  - {name: a, control: x, data: {interface: e, ip: 1.2.3.4}}\n"),
      HasSubstr("nodes[0].data (line 3): give exactly one of interface"));
  EXPECT_THAT(
      Error("model: /m\nnodes:\n  - {name: a, control: x, data: {interface: e, hcas: r0}}\n"),
      HasSubstr("nodes[0].data.hcas (line 3): expected a list of HCA names, found 'r0'"));
  EXPECT_THAT(Error("model: /m\nnodes:\n  - {name: a, control: x}\n  - {name: a, control: y}\n"),
              HasSubstr("nodes[1].name (line 4): node name 'a' is used twice"));
  EXPECT_THAT(
      Error("model: /m\nnodes:\n  - {name: a, control: x}\n  - {name: b, control: 'x:7070'}\n"),
      HasSubstr("control address x:7070 is used twice"));
  EXPECT_THAT(Error("model: /m\nnodes:\n  - {name: a, control: 'x:99999'}\n"),
              HasSubstr("port '99999' is not from 1 to 65535"));
  EXPECT_THAT(Error(std::string(kMinimal) + "parallel: {tp: two}\n"),
              HasSubstr("parallel.tp (line 6): expected auto or a positive integer, found 'two'"));
  EXPECT_THAT(Error(std::string(kMinimal) + "parallel: {tp: 2, pp: 2}\n"),
              HasSubstr("tp 2 x pp 2 must equal the 1 nodes"));
  EXPECT_THAT(Error("model: /m\nparallel: {tp: 2, ep: 3}\nnodes:\n  - {name: a, control: x}\n"
                    "  - {name: b, control: y}\n"),
              HasSubstr("parallel.ep (line 2): ep 3 must divide tp 2"));
  EXPECT_THAT(Error(std::string(kMinimal) + "ports: {api: 0}\n"),
              HasSubstr("ports.api (line 6): expected an integer from 1 to 65535, found '0'"));
  EXPECT_THAT(Error(std::string(kMinimal) + "kv_dtype: int4\n"),
              HasSubstr("kv_dtype (line 6): expected bf16, f16 or fp8"));
  EXPECT_THAT(Error(std::string(kMinimal) + "auth: {token: /x}\n"),
              HasSubstr("auth.token (line 6): unknown field"));
  EXPECT_EQ(LoadClusterFile("/nonexistent/cluster.yaml").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace sparkstack::deploy
