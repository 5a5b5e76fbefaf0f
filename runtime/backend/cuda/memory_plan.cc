#include "runtime/backend/cuda/memory_plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/ops/paged_attention.h"
#include "kernels/cuda/ops/sampling.h"
#include "runtime/backend/cuda/device_arena.h"

namespace sparkstack {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;
constexpr int64_t kMiB = int64_t{1} << 20;

std::string Mib(int64_t bytes) { return absl::StrCat((bytes + kMiB - 1) / kMiB, " MiB"); }

}  // namespace

int64_t CudaScratchBytes(const CudaBackendOptions& o) {
  namespace ops = kernels::cuda_ops;
  const auto aligned = [](int64_t bytes) {
    const int64_t a = static_cast<int64_t>(cuda_backend::DeviceArena::kAlignment);
    return (std::max<int64_t>(bytes, 1) + a - 1) / a * a;
  };
  return aligned(o.max_tokens * o.max_linear_k * 2) +
         aligned(4 * ops::DecodeScratchFloats(o.max_decode_seqs, o.max_heads, o.max_head_dim,
                                              std::max<int64_t>(o.max_context, 1))) +
         aligned(static_cast<int64_t>(sizeof(ops::SamplingRowArgs)) * o.max_logit_rows) +
         aligned(static_cast<int64_t>(sizeof(ops::SamplingResult)) * o.max_logit_rows) +
         aligned(static_cast<int64_t>(sizeof(ops::SamplingEdit)) * o.sampling_edits);
}

int64_t MemoryReserve(const cuda_backend::MemoryFacts& facts) {
  return std::max(kGiB, facts.device_total / 20);
}

absl::StatusOr<MemoryPlan> PlanMemory(const cuda_backend::MemoryFacts& facts,
                                      const MemoryNeeds& needs) {
  MemoryPlan plan;
  int64_t available = facts.device_free;
  if (facts.unified_memory) available = std::min(available, facts.host_available);
  plan.budget = std::max<int64_t>(0, available - MemoryReserve(facts));
  // Every allocation of the arena is rounded to 256 bytes; a few hundred buffers at most.
  const int64_t slack = 64 * kMiB;
  const int64_t fixed = needs.weights + needs.workspace + needs.scratch + needs.buffers + slack;
  const int64_t left = plan.budget - fixed;
  const std::string terms = absl::StrCat(
      "weights ", Mib(needs.weights), " + workspace ", Mib(needs.workspace), " + scratch ",
      Mib(needs.scratch), " + step buffers ", Mib(needs.buffers), " + slack ", Mib(slack));
  const std::string budget = absl::StrCat(
      "budget ", Mib(plan.budget), " (", facts.unified_memory ? "unified memory: min of " : "",
      "device free ", Mib(facts.device_free),
      facts.unified_memory ? absl::StrCat(" and host MemAvailable ", Mib(facts.host_available))
                           : "",
      ", minus a reserve of ", Mib(MemoryReserve(facts)), ")");
  if (needs.kv_block_bytes <= 0) {
    return absl::InvalidArgumentError("memory plan: a KV block must take some bytes");
  }
  const int64_t min_kv = needs.kv_min_blocks * needs.kv_block_bytes;
  if (left < min_kv) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "memory plan: ", terms, " + KV for ", needs.kv_min_blocks, " blocks ", Mib(min_kv),
        " exceed the ", budget, "; use more tensor/pipeline parallel ranks, a smaller "
        "--max-num-batched-tokens / --max-num-seqs, or a shorter --max-model-len"));
  }
  int64_t kv_budget = needs.kv_bytes > 0
                          ? needs.kv_bytes
                          : static_cast<int64_t>(needs.kv_fraction * static_cast<double>(left));
  if (kv_budget > left) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "memory plan: the KV cache of ", Mib(kv_budget), " asked for does not fit: ", terms,
        " leave ", Mib(left), " of the ", budget));
  }
  plan.kv_blocks = std::max(needs.kv_min_blocks, kv_budget / needs.kv_block_bytes);
  if (needs.kv_max_blocks > 0) plan.kv_blocks = std::min(plan.kv_blocks, needs.kv_max_blocks);
  plan.kv_bytes = plan.kv_blocks * needs.kv_block_bytes;
  plan.arena = fixed + plan.kv_bytes;
  plan.summary = absl::StrCat("memory plan: ", terms, " + KV ", plan.kv_blocks, " blocks ",
                              Mib(plan.kv_bytes), " = arena ", Mib(plan.arena), " of the ",
                              budget);
  return plan;
}

}  // namespace sparkstack
