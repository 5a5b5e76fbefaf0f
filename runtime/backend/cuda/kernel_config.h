// Per-device kernel configuration of the CUDA backend: which kernel serves which shape. Chosen
// at first load by a short timed sweep on the device (TuneKernelConfig) and cached on disk per
// device (name, compute capability, shared memory) and shape, so later loads reuse it.
#ifndef SPARKSTACK_RUNTIME_BACKEND_CUDA_KERNEL_CONFIG_H_
#define SPARKSTACK_RUNTIME_BACKEND_CUDA_KERNEL_CONFIG_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace sparkstack {

struct KernelConfig {
  // Dense linear layers: the weight-streaming GEMV up to this m, a GEMM above it.
  int64_t dense_gemv_max_m = 8;
  // NVFP4 linear layers: the decode variant (kernels/nvfp4 kDecodeSimt) up to this m, the
  // verified prefill variant above it.
  int64_t nvfp4_decode_max_m = 16;

  bool operator==(const KernelConfig&) const = default;
};

// The shape a configuration is tuned for: the widths of the model's linear layers.
struct TuningShape {
  int64_t n = 0;  // output features (a typical layer of the model)
  int64_t k = 0;  // input features
  bool operator==(const TuningShape&) const = default;
};

// "name|cc major.minor|smem|n x k": the cache key of a device and shape.
std::string KernelConfigKey(const std::string& device_name, int cc_major, int cc_minor,
                            int smem_per_block, const TuningShape& shape);

// The cache file: $SPARKSTACK_KERNEL_CACHE, else $XDG_CACHE_HOME/sparkstack/kernel_config.json,
// else ~/.cache/sparkstack/kernel_config.json.
std::string KernelConfigCachePath();

// Reads the configuration stored under `key` in the JSON cache at `path`; NotFound when the file
// or the key is missing; InvalidArgument naming the file for a malformed entry.
absl::StatusOr<KernelConfig> ReadCachedKernelConfig(const std::string& path,
                                                    const std::string& key);
// Stores `config` under `key` (other keys kept; the file written atomically).
absl::Status WriteCachedKernelConfig(const std::string& path, const std::string& key,
                                     const KernelConfig& config);

// The sweep: `time_us(kernel, m)` returns microseconds for one run of `kernel` ("dense_gemv",
// "dense_gemm", "nvfp4_decode", "nvfp4_prefill") at m rows of the shape. For each pair, the
// crossover is the largest m of {1, 2, 4, 8, 16, 32, 64} up to which the small-m kernel is not
// slower (at least 1).
absl::StatusOr<KernelConfig> TuneKernelConfig(
    const std::function<absl::StatusOr<double>(const std::string& kernel, int64_t m)>& time_us);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_BACKEND_CUDA_KERNEL_CONFIG_H_
