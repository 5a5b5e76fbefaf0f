// What a node reports and how the head checks it: capabilities parsed from /proc and /sys
// fixtures, addresses, model fingerprints (FNV-1a against the published test vectors) and the
// compatibility errors that name the node and the file.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/control/addresses.h"
#include "runtime/control/capabilities.h"
#include "runtime/control/model_fingerprint.h"

namespace sparkstack::control {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    char path[] = "/tmp/control_test_XXXXXX";
    path_ = mkdtemp(path);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void Write(const fs::path& relative, const std::string& data) const {
    fs::create_directories((path_ / relative).parent_path());
    std::ofstream(path_ / relative, std::ios::binary) << data;
  }

 private:
  fs::path path_;
};

TEST(CapabilitiesTest, ParsesMemInfo) {
  auto info = ParseMemInfo(
      "MemTotal:       131072000 kB\nMemFree:         1000 kB\nMemAvailable:   120000000 kB\n");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->total_bytes, 131072000ull * 1024);
  EXPECT_EQ(info->available_bytes, 120000000ull * 1024);
  EXPECT_FALSE(ParseMemInfo("MemTotal: 5 kB\n").ok());
}

TEST(CapabilitiesTest, CpuModelOnX86AndArm) {
  EXPECT_EQ(CpuModelFromCpuInfo("processor\t: 0\nmodel name\t: AMD EPYC 9654 96-Core Processor\n"),
            "AMD EPYC 9654 96-Core Processor");
  EXPECT_EQ(CpuModelFromCpuInfo("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd85\n"
                                "processor\t: 1\nCPU implementer\t: 0x41\nCPU part\t: 0xd87\n"),
            "Arm implementer 0x41 part 0xd85");
  EXPECT_EQ(CpuModelFromCpuInfo(""), "");
}

TEST(CapabilitiesTest, ReadsNicsFromSysfs) {
  TempDir sys;
  sys.Write("lo/address", "00:00:00:00:00:00\n");
  sys.Write("lo/mtu", "65536\n");
  sys.Write("lo/operstate", "unknown\n");
  sys.Write("enp1s0f0np0/address", "4c:bb:47:00:11:22\n");
  sys.Write("enp1s0f0np0/mtu", "9000\n");
  sys.Write("enp1s0f0np0/operstate", "up\n");
  sys.Write("enp1s0f0np0/speed", "200000\n");
  sys.Write("enp1s0f0np0/device/infiniband/mlx5_0/node_type", "1: CA\n");
  sys.Write("veth0/mtu", "1500\n");
  sys.Write("veth0/speed", "-1\n");  // what virtual links report (or EINVAL)
  std::vector<NicInfo> nics = ReadNics(sys.path().string());
  ASSERT_EQ(nics.size(), 3u);
  EXPECT_EQ(nics[0].name, "enp1s0f0np0");  // sorted by name
  EXPECT_EQ(nics[0].mac, "4c:bb:47:00:11:22");
  EXPECT_EQ(nics[0].mtu, 9000u);
  EXPECT_EQ(nics[0].operstate, "up");
  EXPECT_EQ(nics[0].speed_mbps, 200000);
  EXPECT_EQ(nics[0].rdma_device, "mlx5_0");
  EXPECT_EQ(nics[1].name, "lo");
  EXPECT_EQ(nics[1].mtu, 65536u);
  EXPECT_EQ(nics[1].speed_mbps, -1);
  EXPECT_EQ(nics[1].rdma_device, "");
  EXPECT_EQ(nics[2].speed_mbps, -1);
  EXPECT_TRUE(ReadNics("/nonexistent/sys/class/net").empty());
}

TEST(CapabilitiesTest, ProbesThisMachine) {
  NodeCapabilities caps = ProbeCapabilities();
  EXPECT_FALSE(caps.hostname.empty());
  EXPECT_FALSE(caps.cpu_arch.empty());
  EXPECT_EQ(caps.cpu_cores, static_cast<uint32_t>(sysconf(_SC_NPROCESSORS_ONLN)));
  EXPECT_GT(caps.memory_total_bytes, 0u);
  EXPECT_GT(caps.memory_available_bytes, 0u);
  EXPECT_LE(caps.memory_available_bytes, caps.memory_total_bytes);
  bool loopback = false;
  for (const NicInfo& nic : caps.nics) {
    if (nic.name == "lo") {
      loopback = true;
      EXPECT_THAT(nic.addresses, ::testing::Contains("127.0.0.1"));
    }
  }
  EXPECT_TRUE(loopback);
  EXPECT_EQ(caps.versions.protocol_version, kControlProtocolVersion);
  EXPECT_FALSE(caps.versions.sparkstack_version.empty());
  EXPECT_FALSE(caps.versions.ucx.empty());
}

TEST(CapabilitiesTest, MemoryCheckNamesNeedAndSupply) {
  NodeCapabilities cpu_node;
  cpu_node.memory_available_bytes = 10ull << 30;
  LoadPlan plan;
  plan.rank = 1;
  plan.world_size = 4;
  plan.tp = 4;
  plan.kv_cache_bytes = 2ull << 30;
  // 32 GiB of weights over 4 ranks + 2 GiB KV = 10 GiB: fits exactly.
  EXPECT_TRUE(CheckMemoryForPlan(cpu_node, plan, 32ull << 30).ok());
  absl::Status short_by_one = CheckMemoryForPlan(cpu_node, plan, 36ull << 30);
  EXPECT_EQ(short_by_one.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(short_by_one.message(), HasSubstr("rank 1 needs 11.0 GiB"));
  EXPECT_THAT(short_by_one.message(), HasSubstr("has 10.0 GiB of available memory"));

  // A discrete GPU counts its own memory; GB10 (integrated) counts host memory.
  NodeCapabilities gpu_node = cpu_node;
  gpu_node.gpus.push_back({.name = "NVIDIA H200", .total_memory_bytes = 141ull << 30});
  EXPECT_TRUE(CheckMemoryForPlan(gpu_node, plan, 400ull << 30).ok());
  gpu_node.gpus[0].integrated = true;
  EXPECT_FALSE(CheckMemoryForPlan(gpu_node, plan, 400ull << 30).ok());
}

TEST(AddressesTest, ParsesHostPortForms) {
  auto v4 = ParseHostPort("10.0.0.2:7070");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "10.0.0.2");
  EXPECT_EQ(v4->port, 7070);
  auto v6 = ParseHostPort("[fe80::1]:7070");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "fe80::1");
  EXPECT_EQ(v6->ToString(), "[fe80::1]:7070");
  EXPECT_EQ(ParseHostPort("spark-b:1")->ToString(), "spark-b:1");
  EXPECT_THAT(ParseHostPort("spark-b").status().message(), HasSubstr("no port"));
  EXPECT_THAT(ParseHostPort("spark-b:0").status().message(), HasSubstr("1..65535"));
  EXPECT_TRUE(ParseHostPort("127.0.0.1:0", /*allow_port_zero=*/true).ok());
  EXPECT_THAT(ParseHostPort("fe80::1:80").status().message(), HasSubstr("needs brackets"));
  EXPECT_THAT(ParseHostPort(":80").status().message(), HasSubstr("no host"));
  EXPECT_THAT(ParseHostPort("h:99999").status().message(), HasSubstr("1..65535"));
  EXPECT_THAT(ParseNodeList("a:1,b:2,a:1").status().message(), HasSubstr("a:1 is listed twice"));
  EXPECT_EQ(ParseNodeList("a:1,[::1]:2")->size(), 2u);
  EXPECT_FALSE(ParseNodeList("a:1,,b:2").ok());
}

TEST(AddressesTest, PeerHostFromGrpcPeerStrings) {
  EXPECT_EQ(PeerHost("ipv4:10.231.4.1:53412"), "10.231.4.1");
  EXPECT_EQ(PeerHost("ipv6:[::1]:53412"), "::1");
  EXPECT_EQ(PeerHost("unix:/tmp/sock"), "");
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
}

TEST(ModelFingerprintTest, FnvMatchesThePublishedVectors) {
  // Test vectors of the FNV reference (Fowler/Noll/Vo), 64-bit FNV-1a.
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(Fnv1a64("foobar"), 0x85944171f73967e8ull);
  // Incremental equals one-shot.
  EXPECT_EQ(Fnv1a64("bar", Fnv1a64("foo")), Fnv1a64("foobar"));
}

std::string Safetensors(const std::string& header_json, size_t body_bytes, char fill) {
  std::string data(8, '\0');
  uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) data[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return data + header_json + std::string(body_bytes, fill);
}

TEST(ModelFingerprintTest, HashesSafetensorsHeadersAndSmallFilesWhole) {
  TempDir model;
  const std::string header = R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  model.Write("model.safetensors", Safetensors(header, 12, 'x'));
  model.Write("config.json", R"({"hidden_size": 64})");
  model.Write(".hidden", "ignored");
  model.Write("sub/nested.json", "ignored too");
  auto fingerprint = FingerprintModel(model.path().string());
  ASSERT_TRUE(fingerprint.ok()) << fingerprint.status();
  ASSERT_EQ(fingerprint->files.size(), 2u);
  EXPECT_EQ(fingerprint->files[0].name, "config.json");
  EXPECT_EQ(fingerprint->files[0].header_hash, Fnv1a64(R"({"hidden_size": 64})"));
  EXPECT_EQ(fingerprint->files[1].name, "model.safetensors");
  EXPECT_EQ(fingerprint->files[1].size_bytes, 8 + header.size() + 12);
  // Only the length prefix and the JSON header are hashed, not the tensor bytes.
  EXPECT_EQ(fingerprint->files[1].header_hash, Fnv1a64(Safetensors(header, 0, 'x')));
  EXPECT_EQ(WeightBytes(*fingerprint), 8 + header.size() + 12);

  EXPECT_THAT(FingerprintModel("/nonexistent/model").status().message(),
              HasSubstr("does not exist here"));
}

TEST(ModelFingerprintTest, ComparisonNamesTheNodeAndEachDifference) {
  TempDir head, node;
  const std::string header = R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  for (const TempDir* dir : {&head, &node}) {
    dir->Write("model.safetensors", Safetensors(header, 12, 'x'));
    dir->Write("config.json", R"({"hidden_size": 64})");
    dir->Write("tokenizer.json", "{}");
  }
  auto a = FingerprintModel(head.path().string());
  auto b = FingerprintModel(node.path().string());
  EXPECT_TRUE(CompareModels(*a, *b, "node 10.0.0.2:7070 (rank 1)").ok());

  // Same size, other tensor bytes: not a header difference (see the header comment).
  node.Write("model.safetensors", Safetensors(header, 12, 'y'));
  EXPECT_TRUE(CompareModels(*a, *FingerprintModel(node.path().string()), "n").ok());

  node.Write("config.json", R"({"hidden_size": 96})");  // same size, other content
  node.Write("tokenizer.json", "{ }");                  // other size
  std::filesystem::remove(node.path() / "model.safetensors");
  node.Write("extra.safetensors", Safetensors(header, 12, 'x'));
  absl::Status different =
      CompareModels(*a, *FingerprintModel(node.path().string()), "node 10.0.0.2:7070 (rank 1)");
  EXPECT_EQ(different.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(different.message(),
              HasSubstr("node 10.0.0.2:7070 (rank 1): its model files differ"));
  EXPECT_THAT(different.message(), HasSubstr("config.json has a different header"));
  EXPECT_THAT(different.message(), HasSubstr("tokenizer.json has 3 bytes, the head's has 2"));
  EXPECT_THAT(different.message(), HasSubstr("model.safetensors is missing"));
  EXPECT_THAT(different.message(), HasSubstr("extra.safetensors is not on the head"));
}

}  // namespace
}  // namespace sparkstack::control
