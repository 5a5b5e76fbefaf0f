// The deployment plan: for every way of laying a model out on exactly N Sparks (tensor x pipeline
// parallel, and for mixtures of experts the expert-parallel groups inside each stage), the bytes
// each node holds, whether that fits a Spark's allocatable memory, how many sequences fit at a
// context, and the speed DESIGN.md's performance model predicts. Pure arithmetic over a
// CheckpointCensus: nothing is loaded, nothing is measured.
//
// Layout rules (those of runtime/model): one rank per node; rank = stage * tp + tp_rank; stages
// hold contiguous layers (the first also the embedding, the last the final norm and lm_head),
// split where the running byte count is closest to an equal share; inside a stage, ep groups of
// tp / ep ranks each hold BalancedSplit(E, ep, g) routed experts, every expert's width sliced over
// the group's ranks; dense tensors are split tp ways, k/v projections min(tp, kv_heads) ways,
// norms, routers and MLA's latent down-projections replicated.
//
// Performance model (DESIGN.md), per decode step and node:
//   time = bytes read / read bandwidth + collectives x all-reduce latency(size) + host overhead
// where bytes read are the node's dense weights, the routed experts actually touched (uniform
// routing; the busiest expert-parallel group sets the pace) and the KV of every sequence at the
// given context; tp > 1 costs two all-reduces of [batch, hidden] f32 per layer, one for the
// vocab-parallel embedding and one gather of the logits. Pipeline stages run up to pp micro-batches
// in flight. Prefill is the larger of compute (matmul and attention FLOPs at an assumed tensor
// throughput) and weight reads, plus the all-reduces of [chunk, hidden] f32.
#ifndef SPARKSTACK_RUNTIME_DEPLOY_PLAN_H_
#define SPARKSTACK_RUNTIME_DEPLOY_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/core/dtype.h"
#include "runtime/deploy/checkpoint_census.h"

namespace sparkstack::deploy {

inline constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// The constants of the performance and memory model; every one is printed with the plan.
struct PerfConstants {
  // A read kernel on a Spark's LPDDR5X (273 GB/s spec).
  double read_bandwidth = 232e9;  // bytes/s
  // NCCL all-reduce between Sparks over RoCE, both HCAs: latency by message size. Below the
  // small point: the small latency; between the points: linear; above the large point: the large
  // latency plus 2(n-1)/n x the extra bytes at the bus bandwidth.
  double allreduce_small_bytes = 8 * 1024;
  double allreduce_small_s = 30e-6;
  double allreduce_large_bytes = 64 * 1024;
  double allreduce_large_s = 65e-6;
  double bus_bandwidth = 24e9;  // bytes/s, NCCL bus bandwidth with both halves of the port
  // Scheduling, launching (CUDA graphs) and sampling on the host, per engine step.
  double host_overhead_s = 0.5e-3;
  // Assumed achieved tensor throughput (not measured here): about half the GB10's dense peaks.
  double fp4_flops = 250e12;
  double bf16_flops = 62e12;
  // What one process can allocate of a Spark's ~121 GiB, and what the runtime keeps for itself
  // (CUDA context, NCCL buffers, cuBLAS workspace, graphs).
  double allocatable_bytes = 102 * kGiB;
  double runtime_reserve_bytes = 2 * kGiB;
};

struct PlanOptions {
  int nodes = 1;
  // 0: every value. ep applies to mixtures of experts (dense models have ep 1).
  int tp = 0;
  int pp = 0;
  int ep = 0;
  int64_t max_context = 0;  // tokens per sequence for "sequences that fit"; 0: the model's maximum
  DType kv_dtype = DType::kBF16;
  int64_t perf_context = 2048;  // each sequence's context in the decode prediction
  // The engine's step limits (EngineOptions defaults); they size the workspace and the prefill
  // chunk.
  int64_t max_num_batched_tokens = 2048;
  int64_t max_num_seqs = 256;
  PerfConstants perf;
};

struct NodePlan {
  int node = 0;  // = rank
  int stage = 0;
  int tp_rank = 0;
  int64_t layer_begin = 0;  // this stage's layers [begin, end)
  int64_t layer_end = 0;
  int64_t expert_begin = 0;  // routed experts of this node's ep group [begin, end); 0,0 if dense
  int64_t expert_end = 0;
  uint64_t weight_bytes = 0;
  uint64_t kv_bytes_per_token = 0;
  uint64_t workspace_bytes = 0;
  uint64_t reserve_bytes = 0;
  int64_t kv_budget_bytes = 0;  // allocatable - weights - workspace - reserve (may be negative)
  int64_t max_sequences = 0;    // at max_context on this node alone
};

struct LayoutPlan {
  int tp = 1;
  int pp = 1;
  int ep = 1;
  int nodes = 1;
  bool fits = false;
  std::string reason;  // why it does not fit (empty when it fits)
  std::vector<NodePlan> per_node;
  int64_t max_sequences = 0;  // min over nodes, 0 when it does not fit
  double decode_tokens_per_s_batch1 = 0;
  double decode_tokens_per_s_batch32 = 0;
  double prefill_tokens_per_s = 0;
};

struct Plan {
  std::string model;  // model directory
  std::string architecture;
  uint64_t total_weight_bytes = 0;  // resident bytes of the whole model
  uint64_t checkpoint_bytes = 0;    // as stored (MTP layers and FP8 scales included)
  uint64_t skipped_bytes = 0;       // MTP layers
  bool fp8_converted = false;
  bool header_only = false;
  int64_t max_context = 0;  // resolved
  PlanOptions options;
  std::vector<LayoutPlan> layouts;
};

// Every layout for exactly options.nodes nodes that the filters allow, ordered by tp descending
// then ep descending. InvalidArgument for nodes < 1, filters that leave no layout (naming them:
// tp * pp != nodes, ep not dividing tp, pp above the layer count, ep on a dense model), a
// kv_dtype other than bf16, f16, f32 or f8_e4m3, or non-positive context/limits.
absl::StatusOr<Plan> MakePlan(const CheckpointCensus& census, const PlanOptions& options);

// NCCL all-reduce latency of `bytes` among `ranks` ranks under `perf` (0 for one rank).
double AllReduceSeconds(const PerfConstants& perf, double bytes, int ranks);

// Expected number of distinct routed experts that the busiest of `groups` equal groups (of
// num_experts / groups experts) receives when `tokens` tokens each pick top_k distinct experts
// uniformly at random. Exact for tokens == 1 (a generating-function count); for more tokens a
// deterministic Monte Carlo estimate (fixed seed, 4096 draws).
double ExpectedBusiestGroupExperts(int64_t num_experts, int64_t top_k, int64_t groups,
                                   int64_t tokens);

}  // namespace sparkstack::deploy

#endif  // SPARKSTACK_RUNTIME_DEPLOY_PLAN_H_
