// sparkstack doctor on fake /proc, /sys and /etc trees: a healthy two-cable-half Spark passes, and
// every failure is reported with its fix.
#include "runtime/deploy/doctor.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/model/test_util.h"

namespace sparkstack::deploy {
namespace {

using ::sparkstack::testing::ScratchDir;
using ::testing::HasSubstr;

class FakeSpark {
 public:
  FakeSpark() {
    Write("proc/driver/nvidia/version",
          "NVRM version: NVIDIA UNIX Open Kernel Module for aarch64  580.95.05  Release Build  "
          "(dvs-builder@U16-I1-N08-09-2)  Thu Sep 25 13:03:49 UTC 2025\nGCC version:  gcc 13\n");
    Write(
        "usr/local/cuda/version.json",
        R"({"cuda": {"name": "CUDA SDK", "version": "13.0.1"}, "cuda_cccl": {"version": "13.0.50"}})");
    Write("usr/include/nccl.h",
          "#define NCCL_MAJOR 2\n#define NCCL_MINOR 28\n#define NCCL_PATCH 3\n#define NCCL_SUFFIX "
          "\"\"\n");
    // The cable in the outer port: its two PCIe halves are up, the other port's are down.
    AddHca("rocep1s0f0", "enp1s0f0np0", false);
    AddHca("rocep1s0f1", "enp1s0f1np1", true);
    AddHca("roceP2p1s0f0", "enP2p1s0f0np0", false);
    AddHca("roceP2p1s0f1", "enP2p1s0f1np1", true);
    Write("etc/sparkstack/env",
          "# NCCL over both halves of the port\nNCCL_IB_HCA=rocep1s0f1,roceP2p1s0f1\n"
          "export NCCL_IB_GID_INDEX=\"3\"\nNCCL_SOCKET_IFNAME=enp1s0f1np1\n");
    Write("proc/self/limits",
          "Limit                     Soft Limit           Hard Limit           Units     \n"
          "Max locked memory         unlimited            unlimited            bytes     \n");
    Write("proc/meminfo",
          "MemTotal:       127535000 kB\nMemFree:        120000000 kB\n"
          "MemAvailable:   124000000 kB\n");
    system_.root = dir_.path();
    system_.run = [this](const std::vector<std::string>& argv) -> absl::StatusOr<std::string> {
      if (argv.empty() || argv[0] != "nvidia-smi") return absl::NotFoundError("unexpected");
      return smi_;
    };
    system_.connect = MakeRealDoctorSystem().connect;
    system_.clock_synchronized = [this]() -> absl::StatusOr<bool> { return synced_; };
  }

  void Write(const std::string& path, const std::string& text) {
    const std::filesystem::path p = std::filesystem::path(dir_.path()) / path;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  void Remove(const std::string& path) {
    std::filesystem::remove_all(std::filesystem::path(dir_.path()) / path);
  }
  void AddHca(const std::string& hca, const std::string& netdev, bool up) {
    const std::string port = "sys/class/infiniband/" + hca + "/ports/1/";
    Write(port + "link_layer", "Ethernet\n");
    Write(port + "state", up ? "4: ACTIVE\n" : "1: DOWN\n");
    // GIDs 0/1: RoCE v1/v2 link-local IPv6; 2/3: RoCE v1/v2 IPv4 (the usual mlx5 table).
    const std::string v6 = "fe80:0000:0000:0000:0a0b:0cff:fe0d:0e0f";
    const std::string v4 = up ? "0000:0000:0000:0000:0000:ffff:c0a8:6401" : "";
    Write(port + "gid_attrs/types/0", "IB/RoCE v1\n");
    Write(port + "gid_attrs/types/1", "RoCE v2\n");
    Write(port + "gids/0", v6 + "\n");
    Write(port + "gids/1", v6 + "\n");
    if (up) {
      Write(port + "gid_attrs/types/2", "IB/RoCE v1\n");
      Write(port + "gid_attrs/types/3", "RoCE v2\n");
      Write(port + "gids/2", v4 + "\n");
      Write(port + "gids/3", v4 + "\n");
    }
    std::filesystem::create_directories(std::filesystem::path(dir_.path()) /
                                        ("sys/class/infiniband/" + hca + "/device/net/" + netdev));
    Write("sys/class/net/" + netdev + "/operstate", up ? "up\n" : "down\n");
    Write("sys/class/net/" + netdev + "/mtu", "9000\n");
  }

  CheckResult Check(const std::string& name) const {
    for (const CheckResult& r : RunDoctor(system_, options_)) {
      if (r.name == name) return r;
    }
    ADD_FAILURE() << "no check " << name;
    return {};
  }

  DoctorSystem system_;
  DoctorOptions options_;
  std::string smi_ = "NVIDIA GB10, 12.1\n";
  bool synced_ = true;

 private:
  ScratchDir dir_;
};

// A TCP port on loopback that accepts connections while the object lives.
class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_, 4), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(DoctorTest, AHealthySparkPasses) {
  FakeSpark spark;
  const std::vector<CheckResult> results = RunDoctor(spark.system_, spark.options_);
  for (const CheckResult& r : results) {
    if (r.name == "peers") {
      EXPECT_EQ(r.state, CheckState::kSkip);
    } else {
      EXPECT_EQ(r.state, CheckState::kOk) << r.name << ": " << r.detail;
    }
  }
  EXPECT_TRUE(DoctorPassed(results));
  const std::string report = FormatDoctorReport(results);
  EXPECT_THAT(report, HasSubstr("[ OK ] driver: NVIDIA driver 580.95.05"));
  EXPECT_THAT(report, HasSubstr("[ OK ] cuda: CUDA 13.0.1"));
  EXPECT_THAT(report, HasSubstr("[ OK ] nccl: NCCL 2.28.3"));
  EXPECT_THAT(report, HasSubstr("NVIDIA GB10, compute capability 12.1"));
  EXPECT_THAT(report, HasSubstr("up: rocep1s0f1/enp1s0f1np1, roceP2p1s0f1/enP2p1s0f1np1"));
  EXPECT_THAT(report, HasSubstr("NCCL_IB_GID_INDEX=3 is RoCE v2 IPv4"));
  EXPECT_THAT(report, HasSubstr("ready: 0 failed, 0 warnings"));
}

TEST(DoctorTest, NoDriver) {
  FakeSpark spark;
  spark.Remove("proc/driver/nvidia");
  const CheckResult r = spark.Check("driver");
  EXPECT_EQ(r.state, CheckState::kFail);
  EXPECT_THAT(r.detail, HasSubstr("no NVIDIA driver loaded"));
  EXPECT_THAT(r.fix, HasSubstr("580 or newer"));
}

TEST(DoctorTest, OldDriver) {
  FakeSpark spark;
  spark.Write("proc/driver/nvidia/version",
              "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu\n");
  const CheckResult r = spark.Check("driver");
  EXPECT_EQ(r.state, CheckState::kFail);
  EXPECT_THAT(r.detail, HasSubstr("driver 550.54.14 is older than 580"));
}

TEST(DoctorTest, CudaMissingOrOld) {
  FakeSpark spark;
  spark.Write("usr/local/cuda/version.json",
              R"({"cuda": {"name": "CUDA SDK", "version": "12.8.1"}})");
  CheckResult r = spark.Check("cuda");
  EXPECT_EQ(r.state, CheckState::kFail);
  EXPECT_THAT(r.detail, HasSubstr("CUDA 12.8.1 is older than 13"));
  spark.Remove("usr/local/cuda");
  r = spark.Check("cuda");
  EXPECT_EQ(r.state, CheckState::kFail);
  EXPECT_THAT(r.fix, HasSubstr("cuda-toolkit-13"));
  spark.Write("usr/local/cuda/version.txt", "CUDA Version 13.0.0\n");
  EXPECT_EQ(spark.Check("cuda").state, CheckState::kOk);
}

TEST(DoctorTest, NcclFromTheLibraryNameAndTooOld) {
  FakeSpark spark;
  spark.Remove("usr/include/nccl.h");
  spark.Write("usr/lib/aarch64-linux-gnu/libnccl.so.2.26.2", "");
  CheckResult r = spark.Check("nccl");
  EXPECT_EQ(r.state, CheckState::kFail);
  EXPECT_THAT(r.detail, HasSubstr("NCCL 2.26.2"));
  EXPECT_THAT(r.detail, HasSubstr("older than 2.28.0"));
  spark.Remove("usr/lib/aarch64-linux-gnu");
  r = spark.Check("nccl");
  EXPECT_THAT(r.detail, HasSubstr("NCCL not found"));
  EXPECT_THAT(r.fix, HasSubstr("libnccl2"));
}

TEST(DoctorTest, GpuMissingOrNotAGb10) {
  FakeSpark spark;
  spark.smi_ = "NVIDIA H100 80GB HBM3, 9.0\n";
  CheckResult r = spark.Check("gpu");
  EXPECT_EQ(r.state, CheckState::kWarn);
  EXPECT_THAT(r.detail, HasSubstr("compute capability 9.0 (not a GB10: 12.1)"));
  spark.smi_ = "";
  EXPECT_EQ(spark.Check("gpu").state, CheckState::kFail);
  spark.system_.run = [](const std::vector<std::string>&) -> absl::StatusOr<std::string> {
    return absl::NotFoundError("nvidia-smi not found");
  };
  r = spark.Check("gpu");
  EXPECT_EQ(r.state, CheckState::kFail);
  EXPECT_THAT(r.detail, HasSubstr("nvidia-smi did not run"));
}

TEST(DoctorTest, NoRoceLinkUp) {
  FakeSpark spark;
  spark.Write("sys/class/net/enp1s0f1np1/operstate", "down\n");
  spark.Write("sys/class/infiniband/roceP2p1s0f1/ports/1/state", "1: DOWN\n");
  const CheckResult r = spark.Check("roce");
  EXPECT_EQ(r.state, CheckState::kFail);
  EXPECT_THAT(r.detail, HasSubstr("no RoCE port is up"));
  EXPECT_THAT(r.fix, HasSubstr("ibdev2netdev"));
  spark.Remove("sys/class/infiniband");
  EXPECT_THAT(spark.Check("roce").detail, HasSubstr("no RoCE device"));
  EXPECT_EQ(spark.Check("mtu").state, CheckState::kSkip);
}

TEST(DoctorTest, MtuNot9000) {
  FakeSpark spark;
  spark.Write("sys/class/net/enP2p1s0f1np1/mtu", "1500\n");
  const CheckResult r = spark.Check("mtu");
  EXPECT_EQ(r.state, CheckState::kFail);
  EXPECT_THAT(r.detail, HasSubstr("enP2p1s0f1np1 1500"));
  EXPECT_THAT(r.fix, HasSubstr("mtu: 9000"));
  EXPECT_THAT(r.fix, HasSubstr("ip link set dev enP2p1s0f1np1 mtu 9000"));
}

TEST(DoctorTest, OnlyOneHalfOfThePort) {
  FakeSpark spark;
  spark.Write("etc/sparkstack/env", "NCCL_IB_HCA=rocep1s0f1\nNCCL_IB_GID_INDEX=3\n");
  CheckResult r = spark.Check("nccl_ib_hca");
  EXPECT_EQ(r.state, CheckState::kFail);
  EXPECT_THAT(r.detail, HasSubstr("uses one half of the ConnectX-7 port"));
  EXPECT_THAT(r.detail, HasSubstr("roceP2p1s0f1 is up but not listed"));
  EXPECT_THAT(r.fix, HasSubstr("NCCL_IB_HCA=rocep1s0f1,roceP2p1s0f1"));
  EXPECT_THAT(r.fix, HasSubstr("~24 to ~3 GB/s"));
  // The process environment wins over the file.
  spark.system_.environment["NCCL_IB_HCA"] = "=rocep1s0f1:1,roceP2p1s0f1:1";
  EXPECT_EQ(spark.Check("nccl_ib_hca").state, CheckState::kOk);
}

TEST(DoctorTest, NcclIbHcaUnsetUnknownDownOrExcluding) {
  FakeSpark spark;
  spark.Write("etc/sparkstack/env", "NCCL_IB_GID_INDEX=3\n");
  EXPECT_THAT(spark.Check("nccl_ib_hca").detail, HasSubstr("NCCL_IB_HCA is not set"));
  spark.system_.environment["NCCL_IB_HCA"] = "mlx5_0,mlx5_1";
  CheckResult r = spark.Check("nccl_ib_hca");
  EXPECT_EQ(r.state, CheckState::kFail);
  EXPECT_THAT(r.detail, HasSubstr("names mlx5_0, mlx5_1, which this node does not have"));
  spark.system_.environment["NCCL_IB_HCA"] = "rocep1s0f0,roceP2p1s0f0";
  EXPECT_THAT(spark.Check("nccl_ib_hca").detail, HasSubstr("whose port is not ACTIVE"));
  spark.system_.environment["NCCL_IB_HCA"] = "^rocep1s0f0";
  EXPECT_EQ(spark.Check("nccl_ib_hca").state, CheckState::kWarn);
}

TEST(DoctorTest, GidIndexWrongOrUnset) {
  FakeSpark spark;
  spark.system_.environment["NCCL_IB_GID_INDEX"] = "1";  // RoCE v2, but IPv6 link-local
  CheckResult r = spark.Check("gid_index");
  EXPECT_EQ(r.state, CheckState::kFail);
  EXPECT_THAT(r.detail, HasSubstr("GID 1 of rocep1s0f1 is RoCE v2 fe80:"));
  EXPECT_THAT(r.fix, HasSubstr("NCCL_IB_GID_INDEX=3"));
  spark.system_.environment["NCCL_IB_GID_INDEX"] = "7";
  EXPECT_THAT(spark.Check("gid_index").detail, HasSubstr("GID 7 of rocep1s0f1 is absent"));
  spark.Write("etc/sparkstack/env", "NCCL_IB_HCA=rocep1s0f1,roceP2p1s0f1\n");
  spark.system_.environment.erase("NCCL_IB_GID_INDEX");
  r = spark.Check("gid_index");
  EXPECT_EQ(r.state, CheckState::kWarn);
  EXPECT_THAT(r.detail, HasSubstr("NCCL_IB_GID_INDEX is not set"));
  EXPECT_THAT(r.fix, HasSubstr("NCCL_IB_GID_INDEX=3"));
}

TEST(DoctorTest, LockedMemoryLimited) {
  FakeSpark spark;
  spark.Write("proc/self/limits",
              "Limit                     Soft Limit           Hard Limit           Units     \n"
              "Max locked memory         8388608              8388608              bytes     \n");
  const CheckResult r = spark.Check("memlock");
  EXPECT_EQ(r.state, CheckState::kFail);
  EXPECT_THAT(r.detail, HasSubstr("limited to 8388608 bytes"));
  EXPECT_THAT(r.fix, HasSubstr("LimitMEMLOCK=infinity"));
}

TEST(DoctorTest, PeersReachableOrNot) {
  FakeSpark spark;
  Listener open;
  int closed_port = 0;
  {
    Listener gone;
    closed_port = gone.port();
  }
  spark.options_.peers = {{"spark-b", "127.0.0.1", open.port()}};
  EXPECT_EQ(spark.Check("peers").state, CheckState::kOk);
  spark.options_.peers.push_back({"spark-c", "127.0.0.1", closed_port});
  const CheckResult r = spark.Check("peers");
  EXPECT_EQ(r.state, CheckState::kFail);
  EXPECT_THAT(r.detail, HasSubstr("spark-c (Connection refused)"));
  EXPECT_THAT(r.fix, HasSubstr("systemctl start sparkstack-node"));
}

TEST(DoctorTest, ClockUnsynchronizedOrSkewed) {
  FakeSpark spark;
  spark.synced_ = false;
  CheckResult r = spark.Check("clock");
  EXPECT_EQ(r.state, CheckState::kFail);
  EXPECT_THAT(r.fix, HasSubstr("timedatectl set-ntp true"));
  spark.synced_ = true;
  spark.options_.peers = {{"spark-b", "127.0.0.1", 1}, {"spark-c", "127.0.0.1", 2}};
  spark.system_.peer_clock_offset = [](const PeerAddress& p) -> std::optional<double> {
    return p.name == "spark-b" ? 0.002 : 0.250;
  };
  r = spark.Check("clock");
  EXPECT_EQ(r.state, CheckState::kFail);
  EXPECT_THAT(r.detail, HasSubstr("spark-c +250.0 ms"));
}

TEST(DoctorTest, MemoryHeadroom) {
  FakeSpark spark;
  spark.Write("proc/meminfo", "MemTotal:       127535000 kB\nMemAvailable:    52428800 kB\n");
  const CheckResult r = spark.Check("memory");
  EXPECT_EQ(r.state, CheckState::kFail);
  EXPECT_THAT(r.detail, HasSubstr("50.0 GiB available of 121.6 GiB; sparkstack needs 100.0 GiB"));
  EXPECT_THAT(r.fix, HasSubstr("drop_caches"));
}

TEST(DoctorTest, ReportShowsFixesAndTheSummary) {
  FakeSpark spark;
  spark.Write("sys/class/net/enp1s0f1np1/mtu", "1500\n");
  const std::vector<CheckResult> results = RunDoctor(spark.system_, spark.options_);
  EXPECT_FALSE(DoctorPassed(results));
  const std::string report = FormatDoctorReport(results);
  EXPECT_THAT(report, HasSubstr("[FAIL] mtu: MTU is not 9000 on enp1s0f1np1 1500\n       fix: "));
  EXPECT_THAT(report, HasSubstr("not ready: 1 failed, 0 warnings"));
}

TEST(ParsePeerAddressTest, HostPortForms) {
  absl::StatusOr<PeerAddress> p = ParsePeerAddress("10.0.0.2:7070");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->host, "10.0.0.2");
  EXPECT_EQ(p->port, 7070);
  p = ParsePeerAddress("[fe80::1]:7070");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->host, "fe80::1");
  for (const char* bad : {"10.0.0.2", "host:0", "host:70000", ":7070", "[::1", "h:x"}) {
    EXPECT_THAT(ParsePeerAddress(bad).status().message(), HasSubstr("is not HOST:PORT")) << bad;
  }
}

}  // namespace
}  // namespace sparkstack::deploy
