// Plain C++ pieces of the CUDA backend, tested without a device: the memory plan (unified memory
// bounded by the host, every term named when it does not fit), the per-device kernel
// configuration (sweep and disk cache), and the backend choice (--backend).
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "runtime/backend/backend_factory.h"
#include "runtime/backend/cuda/kernel_config.h"
#include "runtime/backend/cuda/memory_plan.h"

namespace sparkstack {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kGiB = int64_t{1} << 30;

// ---- Memory plan

MemoryNeeds Needs() {
  return {.weights = 40 * kGiB,
          .workspace = kGiB,
          .scratch = kGiB / 2,
          .buffers = kGiB / 4,
          .kv_block_bytes = 8 << 20,
          .kv_min_blocks = 16,
          .kv_max_blocks = 0,
          .kv_bytes = 0,
          .kv_fraction = 0.5};
}

TEST(MemoryPlanTest, UnifiedMemoryIsBoundedByTheHostsAvailableMemory) {
  // A GB10: the device claims 119 GiB free, but the host can spare only 70.
  const cuda_backend::MemoryFacts facts{.device_free = 119 * kGiB, .device_total = 120 * kGiB,
                                        .unified_memory = true, .host_available = 70 * kGiB};
  auto plan = PlanMemory(facts, Needs());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->budget, 70 * kGiB - MemoryReserve(facts));
  EXPECT_LE(plan->arena, plan->budget);
  // Half of what the fixed parts leave goes to the KV cache.
  const int64_t fixed = 40 * kGiB + kGiB + kGiB / 2 + kGiB / 4 + (64 << 20);
  EXPECT_EQ(plan->kv_blocks, (plan->budget - fixed) / 2 / (8 << 20));
  EXPECT_EQ(plan->arena, fixed + plan->kv_blocks * (8 << 20));
  // A discrete device ignores the host's memory.
  auto discrete = PlanMemory({.device_free = 119 * kGiB, .device_total = 120 * kGiB,
                              .unified_memory = false, .host_available = 10 * kGiB},
                             Needs());
  ASSERT_TRUE(discrete.ok());
  EXPECT_GT(discrete->budget, 100 * kGiB);
}

TEST(MemoryPlanTest, TooLittleMemoryNamesEveryTerm) {
  const cuda_backend::MemoryFacts facts{.device_free = 119 * kGiB, .device_total = 120 * kGiB,
                                        .unified_memory = true, .host_available = 41 * kGiB};
  auto plan = PlanMemory(facts, Needs());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted);
  for (const char* term : {"weights 40960 MiB", "workspace", "scratch", "KV for 16 blocks",
                           "host MemAvailable 41984 MiB"}) {
    EXPECT_NE(plan.status().message().find(term), std::string::npos)
        << term << " in " << plan.status().message();
  }
}

TEST(MemoryPlanTest, ExplicitKvBytesAndTheUsefulCap) {
  const cuda_backend::MemoryFacts facts{.device_free = 80 * kGiB, .device_total = 80 * kGiB,
                                        .unified_memory = false};
  MemoryNeeds needs = Needs();
  needs.kv_bytes = 10 * kGiB;
  auto plan = PlanMemory(facts, needs);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->kv_blocks, 10 * kGiB / (8 << 20));
  needs.kv_max_blocks = 100;
  plan = PlanMemory(facts, needs);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->kv_blocks, 100);
  needs.kv_bytes = 60 * kGiB;  // more than is left
  plan = PlanMemory(facts, needs);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted);
}

// ---- Kernel configuration

TEST(KernelConfigTest, TheSweepFindsTheCrossovers) {
  // The GEMV is faster up to m = 8 for dense weights; the NVFP4 decode kernel up to m = 16.
  auto config = TuneKernelConfig([](const std::string& kernel, int64_t m) -> absl::StatusOr<double> {
    if (kernel == "dense_gemv") return 10.0 * m;
    if (kernel == "dense_gemm") return 75.0;
    if (kernel == "nvfp4_decode") return 5.0 * m;
    if (kernel == "nvfp4_prefill") return 90.0;
    return absl::NotFoundError(kernel);
  });
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->dense_gemv_max_m, 4);  // 80 > 75 at m = 8
  EXPECT_EQ(config->nvfp4_decode_max_m, 16);
  auto failing = TuneKernelConfig([](const std::string&, int64_t) -> absl::StatusOr<double> {
    return absl::InternalError("launch failed");
  });
  EXPECT_EQ(failing.status().code(), absl::StatusCode::kInternal);
}

TEST(KernelConfigTest, TheCacheKeepsOneEntryPerDeviceAndShape) {
  const fs::path dir = fs::temp_directory_path() /
                       ("sparkstack_kernel_cache_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string path = (dir / "sub" / "kernel_config.json").string();
  const std::string gb10 = KernelConfigKey("NVIDIA GB10", 12, 1, 101376, {.n = 8192, .k = 8192});
  const std::string h100 = KernelConfigKey("NVIDIA H100", 9, 0, 232448, {.n = 8192, .k = 8192});
  EXPECT_EQ(gb10, "NVIDIA GB10|12.1|101376|8192x8192");
  EXPECT_EQ(ReadCachedKernelConfig(path, gb10).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(WriteCachedKernelConfig(path, gb10, {.dense_gemv_max_m = 4}).ok());
  ASSERT_TRUE(WriteCachedKernelConfig(path, h100, {.dense_gemv_max_m = 16}).ok());
  auto read = ReadCachedKernelConfig(path, gb10);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->dense_gemv_max_m, 4);
  EXPECT_EQ(ReadCachedKernelConfig(path, h100)->dense_gemv_max_m, 16);
  std::ofstream(path) << "{\"" << gb10 << "\": {\"dense_gemv_max_m\": 0}}";
  EXPECT_EQ(ReadCachedKernelConfig(path, gb10).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::ofstream(path) << "not json";
  EXPECT_NE(ReadCachedKernelConfig(path, gb10).status().message().find(path), std::string::npos);
  fs::remove_all(dir);
}

// ---- Backend choice

TEST(BackendFactoryTest, NamesParseAndCpuAlwaysWorks) {
  EXPECT_EQ(*ParseBackendKind("cpu"), BackendKind::kCpu);
  EXPECT_EQ(*ParseBackendKind("cuda"), BackendKind::kCuda);
  auto bad = ParseBackendKind("gpu");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'gpu' is not one of: cpu, cuda"), std::string::npos);
  EXPECT_TRUE(BackendAvailable(BackendKind::kCpu).ok());
  auto cpu = MakeBackend(BackendKind::kCpu, {});
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ((*cpu)->name(), "cpu");
}

}  // namespace
}  // namespace sparkstack
