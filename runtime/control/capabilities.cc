#include "runtime/control/capabilities.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/utsname.h>
#include <ucp/api/ucp.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#if defined(SPARKSTACK_WITH_CUDA_RUNTIME)
#include <cuda_runtime_api.h>
#endif
#if defined(SPARKSTACK_WITH_NCCL)
#include <nccl.h>
#endif

#ifndef SPARKSTACK_VERSION
#define SPARKSTACK_VERSION "unknown"
#endif
#ifndef SPARKSTACK_BUILD_ID
#define SPARKSTACK_BUILD_ID ""
#endif

namespace sparkstack::control {
namespace {

namespace fs = std::filesystem;

std::string ReadFirstLine(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return std::string(absl::StripAsciiWhitespace(line));
}

std::string ReadWholeFile(const fs::path& path, size_t max_bytes = 1 << 20) {
  std::ifstream in(path, std::ios::binary);
  std::string data(max_bytes, '\0');
  in.read(data.data(), static_cast<std::streamsize>(max_bytes));
  data.resize(static_cast<size_t>(in.gcount()));
  return data;
}

std::string Bounded(std::string s) {
  if (s.size() > kMaxNameBytes) s.resize(kMaxNameBytes);
  return s;
}

#if defined(SPARKSTACK_WITH_CUDA_RUNTIME)
std::string CudaVersionString(int version) {
  if (version <= 0) return "";
  return absl::StrCat(version / 1000, ".", (version % 1000) / 10);
}
#endif

void ProbeGpus(NodeCapabilities& caps) {
#if defined(SPARKSTACK_WITH_CUDA_RUNTIME)
  int runtime = 0, driver = 0;
  if (cudaRuntimeGetVersion(&runtime) == cudaSuccess) {
    caps.versions.cuda_runtime = CudaVersionString(runtime);
  }
  if (cudaDriverGetVersion(&driver) == cudaSuccess) {
    caps.versions.cuda_driver = CudaVersionString(driver);
  }
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: report none
    return;
  }
  for (int i = 0; i < count && caps.gpus.size() < kMaxGpus; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    GpuInfo gpu{.index = i,
                .name = Bounded(prop.name),
                .compute_capability_major = prop.major,
                .compute_capability_minor = prop.minor,
                .total_memory_bytes = prop.totalGlobalMem,
                .multiprocessors = prop.multiProcessorCount,
                .integrated = prop.integrated != 0};
    size_t free_bytes = 0, total_bytes = 0;
    int previous = 0;
    cudaGetDevice(&previous);
    if (cudaSetDevice(i) == cudaSuccess &&
        cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
      gpu.free_memory_bytes = free_bytes;
    }
    cudaSetDevice(previous);
    caps.gpus.push_back(std::move(gpu));
  }
#else
  (void)caps;
#endif
}

// Adds each interface's IPv4/IPv6 addresses (getifaddrs) to the NICs already read from sysfs.
void AddAddresses(std::vector<NicInfo>& nics) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_name == nullptr) continue;
    char text[INET6_ADDRSTRLEN] = {};
    if (a->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, text,
                sizeof(text));
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ifa_addr)->sin6_addr, text,
                sizeof(text));
    } else {
      continue;
    }
    for (NicInfo& nic : nics) {
      if (nic.name == a->ifa_name && nic.addresses.size() < kMaxNicAddresses) {
        nic.addresses.push_back(text);
      }
    }
  }
  freeifaddrs(list);
}

std::string GiB(uint64_t bytes) { return absl::StrFormat("%.1f GiB", bytes / 1073741824.0); }

}  // namespace

VersionInfo ThisBuildVersions() {
  VersionInfo v;
  v.protocol_version = kControlProtocolVersion;
  v.sparkstack_version = SPARKSTACK_VERSION;
  v.build_id = Bounded(SPARKSTACK_BUILD_ID);
  v.ucx = Bounded(ucp_get_version_string());
#if defined(SPARKSTACK_WITH_NCCL)
  int nccl = 0;
  if (ncclGetVersion(&nccl) == ncclSuccess) {
    v.nccl = absl::StrCat(nccl / 10000, ".", (nccl / 100) % 100, ".", nccl % 100);
  }
#endif
  return v;
}

absl::StatusOr<MemInfo> ParseMemInfo(std::string_view input) {
  const absl::string_view text(input.data(), input.size());
  MemInfo info;
  bool total = false, available = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() < 2) continue;
    uint64_t kb = 0;
    if (!absl::SimpleAtoi(fields[1], &kb)) continue;
    if (fields[0] == "MemTotal:") {
      info.total_bytes = kb * 1024;
      total = true;
    } else if (fields[0] == "MemAvailable:") {
      info.available_bytes = kb * 1024;
      available = true;
    }
  }
  if (!total || !available) {
    return absl::InvalidArgumentError("meminfo: MemTotal or MemAvailable missing");
  }
  return info;
}

uint64_t MemoryAvailableBytes() {
  absl::StatusOr<MemInfo> info = ParseMemInfo(ReadWholeFile("/proc/meminfo"));
  return info.ok() ? info->available_bytes : 0;
}

std::string CpuModelFromCpuInfo(std::string_view input) {
  const absl::string_view cpuinfo(input.data(), input.size());
  std::string implementer, part;
  for (absl::string_view line : absl::StrSplit(cpuinfo, '\n')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits(':', 1));
    const absl::string_view key = absl::StripAsciiWhitespace(kv.first);
    const absl::string_view value = absl::StripAsciiWhitespace(kv.second);
    if (key == "model name" && !value.empty()) return Bounded(std::string(value));
    if (key == "CPU implementer" && implementer.empty()) implementer = std::string(value);
    if (key == "CPU part" && part.empty()) part = std::string(value);
  }
  if (!implementer.empty() || !part.empty()) {
    return Bounded(absl::StrCat("Arm implementer ", implementer, " part ", part));
  }
  return "";
}

std::vector<NicInfo> ReadNics(const std::string& sys_class_net) {
  std::vector<NicInfo> nics;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(sys_class_net, ec)) {
    const fs::path dir = entry.path();
    NicInfo nic;
    nic.name = Bounded(dir.filename().string());
    nic.mac = Bounded(ReadFirstLine(dir / "address"));
    nic.operstate = Bounded(ReadFirstLine(dir / "operstate"));
    uint32_t mtu = 0;
    if (absl::SimpleAtoi(ReadFirstLine(dir / "mtu"), &mtu)) nic.mtu = mtu;
    int64_t speed = -1;
    // Reading speed fails (EINVAL) on links that are down or virtual: then -1.
    if (absl::SimpleAtoi(ReadFirstLine(dir / "speed"), &speed) && speed >= 0) {
      nic.speed_mbps = speed;
    }
    std::error_code ib_ec;
    for (const fs::directory_entry& ib :
         fs::directory_iterator(dir / "device" / "infiniband", ib_ec)) {
      nic.rdma_device = Bounded(ib.path().filename().string());
      break;
    }
    nics.push_back(std::move(nic));
  }
  std::sort(nics.begin(), nics.end(),
            [](const NicInfo& a, const NicInfo& b) { return a.name < b.name; });
  if (nics.size() > kMaxNics) nics.resize(kMaxNics);
  return nics;
}

NodeCapabilities ProbeCapabilities() {
  NodeCapabilities caps;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) caps.hostname = Bounded(host);
  utsname uts{};
  if (uname(&uts) == 0) {
    caps.os = Bounded(absl::StrCat(uts.sysname, " ", uts.release));
    caps.cpu_arch = Bounded(uts.machine);
  }
  caps.cpu_model = CpuModelFromCpuInfo(ReadWholeFile("/proc/cpuinfo"));
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  caps.cpu_cores = cores > 0 ? static_cast<uint32_t>(cores) : 0;
  if (absl::StatusOr<MemInfo> mem = ParseMemInfo(ReadWholeFile("/proc/meminfo")); mem.ok()) {
    caps.memory_total_bytes = mem->total_bytes;
    caps.memory_available_bytes = mem->available_bytes;
  }
  caps.nics = ReadNics("/sys/class/net");
  AddAddresses(caps.nics);
  caps.versions = ThisBuildVersions();
  ProbeGpus(caps);
  return caps;
}

absl::Status CheckMemoryForPlan(const NodeCapabilities& caps, const LoadPlan& plan,
                                uint64_t weight_bytes) {
  const uint64_t world = static_cast<uint64_t>(std::max(plan.world_size, 1));
  const uint64_t weights = (weight_bytes + world - 1) / world;
  const uint64_t needed = weights + plan.kv_cache_bytes;
  // A discrete GPU holds the rank's tensors in its own memory; GB10 and CPU-only nodes in host
  // memory (there MemAvailable is what another allocation can get without swapping).
  const bool discrete = !caps.gpus.empty() && !caps.gpus[0].integrated;
  const uint64_t have = discrete ? caps.gpus[0].total_memory_bytes : caps.memory_available_bytes;
  if (needed <= have) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "rank ", plan.rank, " needs ", GiB(needed), " (weights ", GiB(weight_bytes), " / ", world,
      " ranks + KV cache ", GiB(plan.kv_cache_bytes), ") but the node has ", GiB(have),
      discrete ? absl::StrCat(" on GPU ", caps.gpus[0].name) : std::string(" of available memory"),
      "; use more nodes, a smaller KV budget or a smaller model"));
}

}  // namespace sparkstack::control
