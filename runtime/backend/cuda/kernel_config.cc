#include "runtime/backend/cuda/kernel_config.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace sparkstack {
namespace {

constexpr int64_t kSweepM[] = {1, 2, 4, 8, 16, 32, 64};

absl::StatusOr<nlohmann::json> ReadCache(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("no kernel configuration cache at ", path));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kernel configuration cache ", path, " is not a JSON object"));
  }
  return json;
}

// The largest m of the sweep up to which `small` is not slower than `large`.
absl::StatusOr<int64_t> Crossover(
    const std::function<absl::StatusOr<double>(const std::string&, int64_t)>& time_us,
    const std::string& small, const std::string& large) {
  int64_t best = 1;
  for (int64_t m : kSweepM) {
    absl::StatusOr<double> a = time_us(small, m);
    if (!a.ok()) return a.status();
    absl::StatusOr<double> b = time_us(large, m);
    if (!b.ok()) return b.status();
    if (*a > *b) break;
    best = m;
  }
  return best;
}

}  // namespace

std::string KernelConfigKey(const std::string& device_name, int cc_major, int cc_minor,
                            int smem_per_block, const TuningShape& shape) {
  return absl::StrCat(device_name, "|", cc_major, ".", cc_minor, "|", smem_per_block, "|",
                      shape.n, "x", shape.k);
}

std::string KernelConfigCachePath() {
  if (const char* p = std::getenv("SPARKSTACK_KERNEL_CACHE"); p != nullptr && *p != '\0') {
    return p;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return absl::StrCat(xdg, "/sparkstack/kernel_config.json");
  }
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr ? home : "/tmp", "/.cache/sparkstack/kernel_config.json");
}

absl::StatusOr<KernelConfig> ReadCachedKernelConfig(const std::string& path,
                                                    const std::string& key) {
  absl::StatusOr<nlohmann::json> json = ReadCache(path);
  if (!json.ok()) return json.status();
  const auto it = json->find(key);
  if (it == json->end()) {
    return absl::NotFoundError(absl::StrCat("no entry '", key, "' in ", path));
  }
  const nlohmann::json& entry = *it;
  KernelConfig config;
  auto read = [&](const char* field, int64_t& out) -> bool {
    const auto f = entry.find(field);
    if (f == entry.end() || !f->is_number_integer() || f->get<int64_t>() < 1) return false;
    out = f->get<int64_t>();
    return true;
  };
  if (!entry.is_object() || !read("dense_gemv_max_m", config.dense_gemv_max_m) ||
      !read("nvfp4_decode_max_m", config.nvfp4_decode_max_m)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kernel configuration cache ", path, ": entry '", key,
        "' needs integers >= 1 dense_gemv_max_m and nvfp4_decode_max_m"));
  }
  return config;
}

absl::Status WriteCachedKernelConfig(const std::string& path, const std::string& key,
                                     const KernelConfig& config) {
  nlohmann::json json = nlohmann::json::object();
  if (absl::StatusOr<nlohmann::json> old = ReadCache(path); old.ok()) json = *std::move(old);
  json[key] = {{"dense_gemv_max_m", config.dense_gemv_max_m},
               {"nvfp4_decode_max_m", config.nvfp4_decode_max_m}};
  std::error_code error;
  const std::filesystem::path target(path);
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path(), error);
  const std::string temp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(temp);
    out << json.dump(2) << "\n";
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", temp));
  }
  std::filesystem::rename(temp, target, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot rename ", temp, " to ", path, ": ",
                                            error.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<KernelConfig> TuneKernelConfig(
    const std::function<absl::StatusOr<double>(const std::string& kernel, int64_t m)>& time_us) {
  KernelConfig config;
  absl::StatusOr<int64_t> dense = Crossover(time_us, "dense_gemv", "dense_gemm");
  if (!dense.ok()) return dense.status();
  config.dense_gemv_max_m = *dense;
  absl::StatusOr<int64_t> fp4 = Crossover(time_us, "nvfp4_decode", "nvfp4_prefill");
  if (!fp4.ok()) return fp4.status();
  config.nvfp4_decode_max_m = *fp4;
  return config;
}

}  // namespace sparkstack
