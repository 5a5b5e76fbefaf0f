#include "runtime/core/memory_budget.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "runtime/core/read_file.h"

namespace sparkstack {
namespace {

// MemAvailable in /proc/meminfo, in bytes.
std::optional<uint64_t> MemAvailable() {
  std::ifstream in("/proc/meminfo");  // procfs: bounded, never blocks
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return std::nullopt;
}

// The cgroup v2 limit of this process minus what the group already uses.
std::optional<uint64_t> CgroupHeadroom() {
  std::ifstream cgroup("/proc/self/cgroup");
  std::string line, path;
  while (std::getline(cgroup, line)) {
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  }
  if (path.empty()) return std::nullopt;
  const std::string dir = "/sys/fs/cgroup" + (path == "/" ? std::string() : path);
  std::ifstream max_file(dir + "/memory.max"), current_file(dir + "/memory.current");
  std::string max_text;
  uint64_t max = 0, current = 0;
  if (!(max_file >> max_text) || !absl::SimpleAtoi(max_text, &max)) return std::nullopt;  // "max"
  if (!(current_file >> current)) current = 0;
  return max > current ? max - current : 0;
}

// Fields of /proc/self/statm, in bytes: total virtual size and data (+ stack) size.
struct Statm {
  uint64_t virtual_bytes = 0;
  uint64_t data_bytes = 0;
};
std::optional<Statm> ReadStatm() {
  std::ifstream in("/proc/self/statm");
  uint64_t size = 0, resident = 0, shared = 0, text = 0, lib = 0, data = 0;
  if (!(in >> size >> resident >> shared >> text >> lib >> data)) return std::nullopt;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return Statm{size * page, data * page};
}

std::optional<uint64_t> RlimitHeadroom(int resource, uint64_t used) {
  struct rlimit limit;
  if (::getrlimit(resource, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return std::nullopt;
  const uint64_t cap = static_cast<uint64_t>(limit.rlim_cur);
  return cap > used ? cap - used : 0;
}

// "1073741824", "64G", "512m", "2T": bytes, with binary suffixes.
std::optional<uint64_t> ParseSize(absl::string_view text) {
  uint64_t shift = 0;
  if (!text.empty()) {
    switch (std::tolower(static_cast<unsigned char>(text.back()))) {
      case 'k':
        shift = 10;
        break;
      case 'm':
        shift = 20;
        break;
      case 'g':
        shift = 30;
        break;
      case 't':
        shift = 40;
        break;
      default:
        break;
    }
    if (shift != 0) text.remove_suffix(1);
  }
  uint64_t value = 0;
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text.front())) ||
      !absl::SimpleAtoi(text, &value) || value > (UINT64_MAX >> shift)) {
    return std::nullopt;
  }
  return value << shift;
}

}  // namespace

MemoryHeadroom AvailableMemory() {
  MemoryHeadroom headroom{UINT64_MAX, "nothing"};
  auto consider = [&](std::optional<uint64_t> bytes, const char* name) {
    if (bytes && *bytes < headroom.bytes) headroom = {*bytes, name};
  };
  consider(MemAvailable(), "available system memory");
  consider(CgroupHeadroom(), "the cgroup memory limit");
  if (std::optional<Statm> statm = ReadStatm()) {
    consider(RlimitHeadroom(RLIMIT_AS, statm->virtual_bytes), "ulimit -v");
    consider(RlimitHeadroom(RLIMIT_DATA, statm->data_bytes), "ulimit -d");
  }
  if (const char* env = std::getenv(kMemoryBudgetEnv)) {
    consider(ParseSize(env), kMemoryBudgetEnv);
  }
  return headroom;
}

absl::Status CheckMemoryBudget(uint64_t bytes, absl::string_view what) {
  if (const char* env = std::getenv(kMemoryBudgetEnv); env != nullptr && !ParseSize(env)) {
    return absl::InvalidArgumentError(absl::StrCat(
        kMemoryBudgetEnv, "='", env, "' is not a size (bytes, or a number with K, M, G or T)"));
  }
  const MemoryHeadroom headroom = AvailableMemory();
  if (bytes <= headroom.bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat(what, " needs ", HumanBytes(bytes), ", but only ", HumanBytes(headroom.bytes),
                   " can be allocated (limited by ", headroom.limited_by, ")"));
}

}  // namespace sparkstack
