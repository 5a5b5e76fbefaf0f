#include "runtime/deploy/doctor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace sparkstack::deploy {
namespace {

namespace fs = std::filesystem;

constexpr int kMinDriverMajor = 580;
constexpr int kMinCudaMajor = 13;
constexpr std::array<int, 3> kMinNccl = {2, 28, 0};
constexpr char kEnvFile[] = "etc/sparkstack/env";

// Files under the system's root.
class Fs {
 public:
  explicit Fs(const std::string& root) : root_(root) {}

  fs::path Path(const std::string& path) const {
    return fs::path(root_) / fs::path(path).relative_path();
  }
  std::optional<std::string> Read(const std::string& path) const {
    std::ifstream in(Path(path), std::ios::binary);
    if (!in) return std::nullopt;
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string ReadTrimmed(const std::string& path) const {
    return std::string(absl::StripAsciiWhitespace(Read(path).value_or("")));
  }
  std::vector<std::string> List(const std::string& dir) const {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(Path(dir), ec)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  bool Exists(const std::string& path) const {
    std::error_code ec;
    return fs::exists(Path(path), ec);
  }
  std::string Shown(const std::string& path) const { return Path(path).string(); }

 private:
  std::string root_;
};

CheckResult Result(std::string name, CheckState state, std::string detail, std::string fix = "") {
  return {std::move(name), state, std::move(detail), std::move(fix)};
}

// "13.0.1" -> {13, 0, 1}; missing parts are 0.
std::array<int, 3> ParseVersion(const std::string& text) {
  std::array<int, 3> v = {0, 0, 0};
  std::vector<std::string> parts = absl::StrSplit(text, '.');
  for (size_t i = 0; i < parts.size() && i < 3; ++i) {
    int n = 0;
    if (absl::SimpleAtoi(parts[i], &n)) v[i] = n;
  }
  return v;
}

std::string VersionString(const std::array<int, 3>& v) {
  return absl::StrCat(v[0], ".", v[1], ".", v[2]);
}

CheckResult CheckDriver(const Fs& files) {
  const std::string path = "proc/driver/nvidia/version";
  const std::optional<std::string> text = files.Read(path);
  if (!text) {
    return Result(
        "driver", CheckState::kFail,
        absl::StrCat("no NVIDIA driver loaded (", files.Shown(path), " is missing)"),
        "install the NVIDIA driver, 580 or newer (DGX OS ships it), and reboot; `nvidia-smi` "
        "must list the GPU");
  }
  std::smatch m;
  static const std::regex kVersion(R"((\d+)\.(\d+)(\.\d+)?)");
  const std::string first_line = text->substr(0, text->find('\n'));
  if (!std::regex_search(first_line, m, kVersion)) {
    return Result("driver", CheckState::kFail,
                  absl::StrCat("cannot read a version in ", files.Shown(path), ": ", first_line),
                  "reinstall the NVIDIA driver");
  }
  const std::string version = m.str(0);
  if (std::stoi(m.str(1)) < kMinDriverMajor) {
    return Result("driver", CheckState::kFail,
                  absl::StrCat("driver ", version, " is older than ", kMinDriverMajor,
                               ", the first that supports CUDA 13"),
                  absl::StrCat("upgrade the driver to ", kMinDriverMajor,
                               " or newer (`sudo apt "
                               "install nvidia-driver-",
                               kMinDriverMajor, "-open`) and reboot"));
  }
  return Result("driver", CheckState::kOk, absl::StrCat("NVIDIA driver ", version));
}

CheckResult CheckCuda(const Fs& files) {
  std::string version;
  if (std::optional<std::string> json = files.Read("usr/local/cuda/version.json")) {
    static const std::regex kCuda(R"re("cuda"\s*:\s*\{[^}]*"version"\s*:\s*"([0-9.]+)")re");
    std::smatch m;
    if (std::regex_search(*json, m, kCuda)) version = m.str(1);
  } else if (std::optional<std::string> txt = files.Read("usr/local/cuda/version.txt")) {
    static const std::regex kCuda(R"(CUDA Version ([0-9.]+))");
    std::smatch m;
    if (std::regex_search(*txt, m, kCuda)) version = m.str(1);
  }
  if (version.empty()) {
    return Result("cuda", CheckState::kFail,
                  absl::StrCat("no CUDA toolkit at ", files.Shown("usr/local/cuda"),
                               " (version.json missing or unreadable)"),
                  "install CUDA 13 (`sudo apt install cuda-toolkit-13-0`; DGX OS ships it) so that "
                  "/usr/local/cuda points at it");
  }
  if (ParseVersion(version)[0] < kMinCudaMajor) {
    return Result("cuda", CheckState::kFail,
                  absl::StrCat("CUDA ", version, " is older than ", kMinCudaMajor,
                               " (GB10's sm_121a needs CUDA 13)"),
                  "install CUDA 13 and point /usr/local/cuda at it");
  }
  return Result("cuda", CheckState::kOk, absl::StrCat("CUDA ", version));
}

CheckResult CheckNccl(const Fs& files) {
  std::array<int, 3> v = {0, 0, 0};
  std::string where;
  for (const char* header : {"usr/include/nccl.h", "usr/local/cuda/include/nccl.h"}) {
    std::optional<std::string> text = files.Read(header);
    if (!text) continue;
    static const std::regex kMajor(R"(#define\s+NCCL_MAJOR\s+(\d+))");
    static const std::regex kMinor(R"(#define\s+NCCL_MINOR\s+(\d+))");
    static const std::regex kPatch(R"(#define\s+NCCL_PATCH\s+(\d+))");
    std::smatch a, b, c;
    if (std::regex_search(*text, a, kMajor) && std::regex_search(*text, b, kMinor) &&
        std::regex_search(*text, c, kPatch)) {
      v = {std::stoi(a.str(1)), std::stoi(b.str(1)), std::stoi(c.str(1))};
      where = files.Shown(header);
      break;
    }
  }
  if (where.empty()) {
    static const std::regex kLib(R"(libnccl\.so\.(\d+\.\d+\.\d+))");
    for (const char* dir : {"usr/lib/aarch64-linux-gnu", "usr/lib/x86_64-linux-gnu",
                            "usr/local/cuda/lib64", "usr/lib64"}) {
      for (const std::string& name : files.List(dir)) {
        std::smatch m;
        if (std::regex_match(name, m, kLib)) {
          v = ParseVersion(m.str(1));
          where = files.Shown(absl::StrCat(dir, "/", name));
        }
      }
      if (!where.empty()) break;
    }
  }
  if (where.empty()) {
    return Result("nccl", CheckState::kFail, "NCCL not found (no nccl.h, no libnccl.so.2.*)",
                  "install NCCL 2.28 or newer built for sm_121 (`sudo apt install libnccl2 "
                  "libnccl-dev` from NVIDIA's CUDA repository)");
  }
  if (v < kMinNccl) {
    return Result("nccl", CheckState::kFail,
                  absl::StrCat("NCCL ", VersionString(v), " (", where, ") is older than ",
                               VersionString(kMinNccl)),
                  "upgrade to NCCL 2.28 or newer (`sudo apt install libnccl2 libnccl-dev`)");
  }
  return Result("nccl", CheckState::kOk, absl::StrCat("NCCL ", VersionString(v)));
}

CheckResult CheckGpu(const DoctorSystem& system) {
  absl::StatusOr<std::string> out =
      system.run({"nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"});
  if (!out.ok()) {
    return Result("gpu", CheckState::kFail,
                  absl::StrCat("nvidia-smi did not run: ", out.status().message()),
                  "install the NVIDIA driver utilities (nvidia-smi) and check that the GPU is "
                  "visible to this user");
  }
  const std::string line = std::string(absl::StripAsciiWhitespace(
      std::string(absl::StripAsciiWhitespace(*out)).substr(0, out->find('\n'))));
  std::vector<std::string> fields = absl::StrSplit(line, ',');
  if (line.empty() || fields.size() < 2) {
    return Result("gpu", CheckState::kFail, absl::StrCat("nvidia-smi lists no GPU: '", line, "'"),
                  "check `nvidia-smi`; reboot after a driver upgrade");
  }
  const std::string name(absl::StripAsciiWhitespace(fields[0]));
  const std::string cap(absl::StripAsciiWhitespace(fields[1]));
  if (cap != "12.1") {
    return Result("gpu", CheckState::kWarn,
                  absl::StrCat(name, ", compute capability ", cap, " (not a GB10: 12.1)"),
                  "sparkstack runs on sm_80 and newer, but the plan, the kernels' tiles and "
                  "docs/deploy.md assume DGX Spark (GB10, compute capability 12.1)");
  }
  return Result("gpu", CheckState::kOk, absl::StrCat(name, ", compute capability ", cap));
}

struct Hca {
  std::string name;    // rocep1s0f1
  std::string netdev;  // enp1s0f1np1 ("" if none)
  bool ethernet = false;
  bool active = false;
  bool link_up = false;
  int mtu = 0;
};

// The other PCIe half of the same ConnectX-7 port on a Spark: rocep1s0f1 <-> roceP2p1s0f1 (the
// same device name but for the "P<domain>" part).
std::string TwinKey(const std::string& hca) {
  static const std::regex kDomain(R"(P\d+)");
  return std::regex_replace(hca, kDomain, "");
}

std::vector<Hca> ReadHcas(const Fs& files) {
  std::vector<Hca> hcas;
  for (const std::string& name : files.List("sys/class/infiniband")) {
    Hca h;
    h.name = name;
    const std::string port = absl::StrCat("sys/class/infiniband/", name, "/ports/1/");
    h.ethernet = files.ReadTrimmed(port + "link_layer") == "Ethernet";
    h.active = absl::StrContains(files.ReadTrimmed(port + "state"), "ACTIVE");
    const std::vector<std::string> nets =
        files.List(absl::StrCat("sys/class/infiniband/", name, "/device/net"));
    if (!nets.empty()) {
      h.netdev = nets.front();
      h.link_up = files.ReadTrimmed(absl::StrCat("sys/class/net/", h.netdev, "/operstate")) == "up";
      absl::SimpleAtoi(files.ReadTrimmed(absl::StrCat("sys/class/net/", h.netdev, "/mtu")), &h.mtu);
    }
    hcas.push_back(h);
  }
  // Twins side by side, domain 0 first: rocep1s0f1, roceP2p1s0f1.
  std::sort(hcas.begin(), hcas.end(), [](const Hca& a, const Hca& b) {
    return std::make_pair(TwinKey(a.name), a.name.size()) <
           std::make_pair(TwinKey(b.name), b.name.size());
  });
  return hcas;
}

CheckResult CheckRoce(const std::vector<Hca>& hcas) {
  std::vector<std::string> active, inactive;
  for (const Hca& h : hcas) {
    if (!h.ethernet) continue;
    const std::string label = absl::StrCat(h.name, h.netdev.empty() ? "" : "/" + h.netdev);
    (h.active && h.link_up ? active : inactive).push_back(label);
  }
  if (active.empty()) {
    return Result(
        "roce", CheckState::kFail,
        inactive.empty()
            ? "no RoCE device (no Ethernet port under /sys/class/infiniband)"
            : absl::StrCat("no RoCE port is up (down: ", absl::StrJoin(inactive, ", "), ")"),
        "plug the QSFP cable into a ConnectX-7 port, load the mlx5 driver, bring the interface up "
        "(`sudo netplan apply`, docs/deploy.md) and check "
        "`ibdev2netdev`");
  }
  return Result("roce", CheckState::kOk, absl::StrCat("up: ", absl::StrJoin(active, ", ")));
}

CheckResult CheckMtu(const std::vector<Hca>& hcas) {
  std::vector<std::string> wrong, good;
  for (const Hca& h : hcas) {
    if (!h.ethernet || !h.active || !h.link_up) continue;
    (h.mtu == 9000 ? good : wrong).push_back(absl::StrCat(h.netdev, " ", h.mtu));
  }
  if (good.empty() && wrong.empty()) {
    return Result("mtu", CheckState::kSkip, "no RoCE interface is up");
  }
  if (!wrong.empty()) {
    std::vector<std::string> names;
    for (const std::string& w : wrong) names.push_back(w.substr(0, w.find(' ')));
    return Result(
        "mtu", CheckState::kFail, absl::StrCat("MTU is not 9000 on ", absl::StrJoin(wrong, ", ")),
        absl::StrCat("set `mtu: 9000` for ", absl::StrJoin(names, ", "),
                     " in /etc/netplan/40-sparkstack.yaml and `sudo netplan apply` "
                     "(now: `sudo ip link set dev ",
                     names.front(), " mtu 9000`); every node and switch port must agree"));
  }
  return Result("mtu", CheckState::kOk, absl::StrCat("9000 on ", absl::StrJoin(good, ", ")));
}

// NCCL_*/UCX_* settings: the process environment wins over /etc/sparkstack/env.
std::map<std::string, std::string> Settings(const DoctorSystem& system, const Fs& files) {
  std::map<std::string, std::string> settings;
  if (std::optional<std::string> text = files.Read(kEnvFile)) {
    for (absl::string_view line : absl::StrSplit(*text, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (line.empty() || line.front() == '#') continue;
      absl::ConsumePrefix(&line, "export ");
      const size_t eq = line.find('=');
      if (eq == absl::string_view::npos) continue;
      std::string value(absl::StripAsciiWhitespace(line.substr(eq + 1)));
      if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
          value.back() == value.front()) {
        value = value.substr(1, value.size() - 2);
      }
      settings[std::string(absl::StripAsciiWhitespace(line.substr(0, eq)))] = value;
    }
  }
  for (const auto& [key, value] : system.environment) settings[key] = value;
  return settings;
}

// NCCL_IB_HCA: "=a,b" (exact), "^a" (exclude), "a:1,b:1" (ports). Returns the listed names.
std::vector<std::string> ListedHcas(const std::string& value, bool* exclude) {
  std::string v = value;
  *exclude = !v.empty() && v.front() == '^';
  if (*exclude || (!v.empty() && v.front() == '=')) v = v.substr(1);
  std::vector<std::string> names;
  for (absl::string_view item : absl::StrSplit(v, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    names.emplace_back(item.substr(0, item.find(':')));
  }
  return names;
}

CheckResult CheckNcclIbHca(const std::vector<Hca>& hcas,
                           const std::map<std::string, std::string>& settings) {
  std::vector<const Hca*> up;
  for (const Hca& h : hcas) {
    if (h.ethernet && h.active) up.push_back(&h);
  }
  if (up.empty()) return Result("nccl_ib_hca", CheckState::kSkip, "no active RoCE HCA");
  std::vector<std::string> up_names;
  for (const Hca* h : up) up_names.push_back(h->name);
  // The suggestion: every active HCA with its twin.
  const std::string suggestion =
      absl::StrCat("put NCCL_IB_HCA=", absl::StrJoin(up_names, ","),
                   " in /etc/sparkstack/env (both halves of the port: with one, NCCL's bus "
                   "bandwidth drops from ~24 to ~3 GB/s)");
  auto it = settings.find("NCCL_IB_HCA");
  if (it == settings.end() || it->second.empty()) {
    return Result("nccl_ib_hca", CheckState::kFail,
                  "NCCL_IB_HCA is not set (neither in the environment nor in /etc/sparkstack/env)",
                  suggestion);
  }
  bool exclude = false;
  const std::vector<std::string> listed = ListedHcas(it->second, &exclude);
  if (exclude) {
    return Result("nccl_ib_hca", CheckState::kWarn,
                  absl::StrCat("NCCL_IB_HCA=", it->second,
                               " excludes devices instead of naming both "
                               "halves of the port"),
                  suggestion);
  }
  std::vector<std::string> unknown, down, missing_twin;
  std::set<std::string> listed_set(listed.begin(), listed.end());
  for (const std::string& name : listed) {
    auto h = std::find_if(hcas.begin(), hcas.end(), [&](const Hca& x) { return x.name == name; });
    if (h == hcas.end()) {
      unknown.push_back(name);
    } else if (!h->active) {
      down.push_back(name);
    }
    for (const Hca& twin : hcas) {
      if (twin.name != name && TwinKey(twin.name) == TwinKey(name) && twin.active &&
          !listed_set.count(twin.name)) {
        missing_twin.push_back(twin.name);
      }
    }
  }
  if (!unknown.empty()) {
    return Result("nccl_ib_hca", CheckState::kFail,
                  absl::StrCat("NCCL_IB_HCA names ", absl::StrJoin(unknown, ", "),
                               ", which this node does not have (it has ",
                               absl::StrJoin(up_names, ", "), " up)"),
                  suggestion);
  }
  if (!down.empty()) {
    return Result(
        "nccl_ib_hca", CheckState::kFail,
        absl::StrCat("NCCL_IB_HCA names ", absl::StrJoin(down, ", "), ", whose port is not ACTIVE"),
        suggestion);
  }
  if (!missing_twin.empty() || listed.size() < 2) {
    return Result(
        "nccl_ib_hca", CheckState::kFail,
        absl::StrCat("NCCL_IB_HCA=", it->second, " uses one half of the ConnectX-7 port",
                     missing_twin.empty() ? ""
                                          : absl::StrCat(" (", absl::StrJoin(missing_twin, ", "),
                                                         " is up but not listed)")),
        suggestion);
  }
  return Result("nccl_ib_hca", CheckState::kOk, absl::StrCat("NCCL_IB_HCA=", it->second));
}

// GID table entry `index` of an HCA: its type ("RoCE v2") and address.
struct Gid {
  std::string type;
  std::string address;
};

Gid ReadGid(const Fs& files, const std::string& hca, int index) {
  const std::string port = absl::StrCat("sys/class/infiniband/", hca, "/ports/1/");
  return {files.ReadTrimmed(absl::StrCat(port, "gid_attrs/types/", index)),
          files.ReadTrimmed(absl::StrCat(port, "gids/", index))};
}

// An IPv4-mapped GID: 0000:0000:0000:0000:0000:ffff:c0a8:6401.
bool IsIpv4Gid(const std::string& gid) {
  return absl::StartsWith(gid, "0000:0000:0000:0000:0000:ffff:");
}

CheckResult CheckGidIndex(const Fs& files, const std::vector<Hca>& hcas,
                          const std::map<std::string, std::string>& settings) {
  std::vector<std::string> targets;
  if (auto it = settings.find("NCCL_IB_HCA"); it != settings.end()) {
    bool exclude = false;
    for (const std::string& name : ListedHcas(it->second, &exclude)) {
      if (!exclude) targets.push_back(name);
    }
  }
  if (targets.empty()) {
    for (const Hca& h : hcas) {
      if (h.ethernet && h.active) targets.push_back(h.name);
    }
  }
  if (targets.empty()) return Result("gid_index", CheckState::kSkip, "no active RoCE HCA");
  // The index NCCL should use: the first RoCE v2 IPv4 GID of the first target.
  int suggested = -1;
  for (int i = 0; i < 16 && suggested < 0; ++i) {
    const Gid g = ReadGid(files, targets.front(), i);
    if (g.type == "RoCE v2" && IsIpv4Gid(g.address)) suggested = i;
  }
  const std::string fix =
      suggested >= 0
          ? absl::StrCat("put NCCL_IB_GID_INDEX=", suggested,
                         " in /etc/sparkstack/env (the RoCE v2 IPv4 GID; `show_gids` lists them)")
          : "give the RoCE interface an IPv4 address (netplan, docs/deploy.md) so that a RoCE v2 "
            "IPv4 GID appears, then set NCCL_IB_GID_INDEX to its index (`show_gids`)";
  auto it = settings.find("NCCL_IB_GID_INDEX");
  int index = -1;
  if (it == settings.end() || !absl::SimpleAtoi(it->second, &index)) {
    return Result("gid_index", suggested >= 0 ? CheckState::kWarn : CheckState::kFail,
                  it == settings.end()
                      ? "NCCL_IB_GID_INDEX is not set: NCCL picks one, which differs between "
                        "nodes when their IPv6 addresses differ"
                      : absl::StrCat("NCCL_IB_GID_INDEX=", it->second, " is not a number"),
                  fix);
  }
  for (const std::string& hca : targets) {
    const Gid g = ReadGid(files, hca, index);
    if (g.type != "RoCE v2" || !IsIpv4Gid(g.address)) {
      return Result("gid_index", CheckState::kFail,
                    absl::StrCat("GID ", index, " of ", hca, " is ",
                                 g.type.empty() ? "absent" : absl::StrCat(g.type, " ", g.address),
                                 ", not a RoCE v2 IPv4 GID"),
                    fix);
    }
  }
  return Result("gid_index", CheckState::kOk,
                absl::StrCat("NCCL_IB_GID_INDEX=", index, " is RoCE v2 IPv4 on ",
                             absl::StrJoin(targets, ", ")));
}

CheckResult CheckMemlock(const Fs& files) {
  const std::optional<std::string> limits = files.Read("proc/self/limits");
  if (!limits) return Result("memlock", CheckState::kSkip, "cannot read /proc/self/limits");
  for (absl::string_view line : absl::StrSplit(*limits, '\n')) {
    if (!absl::StartsWith(line, "Max locked memory")) continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line.substr(17), ' ', absl::SkipWhitespace());
    if (!fields.empty() && fields[0] == "unlimited") {
      return Result("memlock", CheckState::kOk, "locked memory unlimited");
    }
    return Result(
        "memlock", CheckState::kFail,
        absl::StrCat("locked memory is limited to ", fields.empty() ? "?" : std::string(fields[0]),
                     " bytes; RDMA registration fails past it"),
        "run under the sparkstack units (LimitMEMLOCK=infinity), or add `* - memlock "
        "unlimited` to /etc/security/limits.d/sparkstack.conf and log in again");
  }
  return Result("memlock", CheckState::kSkip, "no 'Max locked memory' line in /proc/self/limits");
}

CheckResult CheckPeers(const DoctorSystem& system, const DoctorOptions& options) {
  if (options.peers.empty()) {
    return Result("peers", CheckState::kSkip, "no peers given (--peer HOST:PORT or --cluster)");
  }
  std::vector<std::string> good, bad;
  for (const PeerAddress& p : options.peers) {
    const absl::Status s = system.connect(p.host, p.port, options.connect_timeout_ms);
    if (s.ok()) {
      good.push_back(p.name);
    } else {
      bad.push_back(absl::StrCat(p.name, " (", s.message(), ")"));
    }
  }
  if (!bad.empty()) {
    return Result("peers", CheckState::kFail,
                  absl::StrCat("control port unreachable: ", absl::StrJoin(bad, "; ")),
                  "start the node agent there (`sudo systemctl start sparkstack-node`), check the "
                  "address and open the control port in the firewall (`sudo ufw allow 7070/tcp` "
                  "for the default, docs/deploy.md)");
  }
  return Result("peers", CheckState::kOk, absl::StrCat("reachable: ", absl::StrJoin(good, ", ")));
}

CheckResult CheckClock(const DoctorSystem& system, const DoctorOptions& options) {
  absl::StatusOr<bool> synced = system.clock_synchronized();
  const std::string fix =
      "enable time synchronization on every node (`sudo timedatectl set-ntp true`, or chrony "
      "against the same server)";
  if (!synced.ok()) {
    return Result(
        "clock", CheckState::kWarn,
        absl::StrCat("cannot tell whether the clock is synchronized: ", synced.status().message()),
        fix);
  }
  if (!*synced) {
    return Result("clock", CheckState::kFail, "the kernel clock is not NTP-synchronized", fix);
  }
  std::vector<std::string> skewed, measured;
  for (const PeerAddress& p : options.peers) {
    if (!system.peer_clock_offset) break;
    const std::optional<double> offset = system.peer_clock_offset(p);
    if (!offset) continue;
    const std::string text = absl::StrFormat("%s %+.1f ms", p.name, *offset * 1e3);
    (std::abs(*offset) > options.max_clock_offset_s ? skewed : measured).push_back(text);
  }
  if (!skewed.empty()) {
    return Result("clock", CheckState::kFail,
                  absl::StrCat("clock skew above ", options.max_clock_offset_s * 1e3,
                               " ms: ", absl::StrJoin(skewed, ", ")),
                  fix);
  }
  return Result("clock", CheckState::kOk,
                measured.empty()
                    ? "NTP-synchronized"
                    : absl::StrCat("NTP-synchronized; peers ", absl::StrJoin(measured, ", ")));
}

CheckResult CheckMemory(const Fs& files, const DoctorOptions& options) {
  const std::optional<std::string> text = files.Read("proc/meminfo");
  if (!text) return Result("memory", CheckState::kFail, "cannot read /proc/meminfo");
  double total = -1, available = -1;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    double kib = 0;
    if (f.size() < 2 || !absl::SimpleAtod(f[1], &kib)) continue;
    if (f[0] == "MemTotal:") total = kib * 1024;
    if (f[0] == "MemAvailable:") available = kib * 1024;
  }
  if (available < 0) {
    return Result("memory", CheckState::kFail, "no MemAvailable in /proc/meminfo");
  }
  const double gib = 1024.0 * 1024 * 1024;
  const std::string detail =
      absl::StrFormat("%.1f GiB available of %.1f GiB", available / gib, total / gib);
  if (available < options.needed_memory_bytes) {
    return Result(
        "memory", CheckState::kFail,
        absl::StrCat(detail, absl::StrFormat("; sparkstack needs %.1f GiB",
                                             options.needed_memory_bytes / gib)),
        "stop other GPU and memory-hungry processes (`nvidia-smi`, `ps aux --sort=-rss`), "
        "then `sync; echo 3 | sudo tee /proc/sys/vm/drop_caches`; on unified memory, "
        "running past it can freeze the box");
  }
  return Result("memory", CheckState::kOk, detail);
}

absl::StatusOr<std::string> RunCommand(const std::vector<std::string>& argv) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return absl::InternalError("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    const int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, STDERR_FILENO);
    close(pipe_fds[0]);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  std::string out;
  char buffer[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buffer, sizeof(buffer))) > 0) out.append(buffer, n);
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    return absl::NotFoundError(absl::StrCat(argv[0], " not found"));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(argv[0], " failed (status ", status, ")"));
  }
  return out;
}

absl::Status TcpConnect(const std::string& host, int port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (rc != 0)
    return absl::NotFoundError(absl::StrCat("cannot resolve ", host, ": ", gai_strerror(rc)));
  absl::Status result = absl::UnavailableError("no address");
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    int err = 0;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        const int ready = poll(&p, 1, timeout_ms);
        socklen_t len = sizeof(err);
        if (ready == 1) {
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        } else {
          err = ETIMEDOUT;
        }
      }
    }
    close(fd);
    if (err == 0) {
      result = absl::OkStatus();
      break;
    }
    result = absl::UnavailableError(err == ETIMEDOUT
                                        ? absl::StrCat("no answer within ", timeout_ms, " ms")
                                        : std::string(std::strerror(err)));
  }
  freeaddrinfo(found);
  return result;
}

}  // namespace

DoctorSystem MakeRealDoctorSystem() {
  DoctorSystem s;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = entry.substr(0, eq);
    if (absl::StartsWith(key, "NCCL_") || absl::StartsWith(key, "UCX_")) {
      s.environment[key] = entry.substr(eq + 1);
    }
  }
  s.run = RunCommand;
  s.connect = TcpConnect;
  s.clock_synchronized = []() -> absl::StatusOr<bool> {
    timex t{};
    const int state = adjtimex(&t);
    if (state < 0) return absl::InternalError(std::strerror(errno));
    return (t.status & STA_UNSYNC) == 0 && state != TIME_ERROR;
  };
  return s;
}

std::vector<CheckResult> RunDoctor(const DoctorSystem& system, const DoctorOptions& options) {
  const Fs files(system.root);
  const std::vector<Hca> hcas = ReadHcas(files);
  const std::map<std::string, std::string> settings = Settings(system, files);
  return {CheckDriver(files),
          CheckCuda(files),
          CheckNccl(files),
          CheckGpu(system),
          CheckRoce(hcas),
          CheckMtu(hcas),
          CheckNcclIbHca(hcas, settings),
          CheckGidIndex(files, hcas, settings),
          CheckMemlock(files),
          CheckPeers(system, options),
          CheckClock(system, options),
          CheckMemory(files, options)};
}

std::string FormatDoctorReport(const std::vector<CheckResult>& results) {
  std::string out;
  int failed = 0, warned = 0;
  for (const CheckResult& r : results) {
    const char* tag = "";
    switch (r.state) {
      case CheckState::kOk:
        tag = "[ OK ]";
        break;
      case CheckState::kWarn:
        tag = "[WARN]";
        ++warned;
        break;
      case CheckState::kFail:
        tag = "[FAIL]";
        ++failed;
        break;
      case CheckState::kSkip:
        tag = "[SKIP]";
        break;
    }
    absl::StrAppend(&out, tag, " ", r.name, ": ", r.detail, "\n");
    if (!r.fix.empty() && (r.state == CheckState::kWarn || r.state == CheckState::kFail)) {
      absl::StrAppend(&out, "       fix: ", r.fix, "\n");
    }
  }
  absl::StrAppend(&out, failed == 0 ? "ready" : "not ready", ": ", failed, " failed, ", warned,
                  " warnings\n");
  return out;
}

bool DoctorPassed(const std::vector<CheckResult>& results) {
  return std::none_of(results.begin(), results.end(),
                      [](const CheckResult& r) { return r.state == CheckState::kFail; });
}

absl::StatusOr<PeerAddress> ParsePeerAddress(const std::string& text) {
  PeerAddress p;
  p.name = text;
  size_t colon = text.rfind(':');
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos || close + 1 != colon) colon = std::string::npos;
    p.host = close == std::string::npos ? "" : text.substr(1, close - 1);
  } else if (colon != std::string::npos) {
    p.host = text.substr(0, colon);
  }
  if (colon == std::string::npos || p.host.empty() ||
      !absl::SimpleAtoi(text.substr(colon + 1), &p.port) || p.port < 1 || p.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("peer '", text, "' is not HOST:PORT (a port from 1 to 65535)"));
  }
  return p;
}

}  // namespace sparkstack::deploy
