// Backend: the ops a model needs, on one device. Model code calls these and never knows whether it
// runs on the CPU or a GPU (DESIGN.md, seam 1).
//
// Activations are f32 tensors laid out [tokens, features]; weights may be any format a `Weight`
// holds (after PrepareWeight); norm weights and embedding tables are f32, f16 or bf16. Ids,
// positions and attention metadata are i32 tensors on the device, written once per step.
//
// Contract for every op: inputs and outputs live on this backend's device; `out` is allocated by
// the caller with the documented shape (ops never allocate: a step's tensors come from an Arena);
// outputs may not alias inputs unless stated; a shape or dtype mismatch returns InvalidArgument
// naming the op and both shapes. Index contents (ids, slots, block tables) are trusted: callers
// validate them on the host before they upload them. Ops may run asynchronously on the device:
// CopyToHost and Sample wait for the work before them. A backend instance is used by one thread
// at a time; it may use its own worker threads inside an op.
#ifndef SPARKSTACK_RUNTIME_BACKEND_BACKEND_H_
#define SPARKSTACK_RUNTIME_BACKEND_BACKEND_H_

#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/backend/attention_metadata.h"
#include "runtime/backend/moe_ops.h"
#include "runtime/backend/rope_tables.h"
#include "runtime/backend/sampling.h"
#include "runtime/core/tensor.h"
#include "runtime/core/weight.h"

namespace sparkstack {

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;
  virtual Device device() const = 0;

  // ---- Memory: load time and workspace buffers only, never inside a step.

  // A zeroed tensor on this device. Large allocations are planned first (AvailableMemory).
  virtual absl::StatusOr<Tensor> Allocate(DType dtype, const Shape& shape) = 0;
  // Bytes this device can still allocate without overcommitting the machine.
  virtual int64_t AvailableMemory() const = 0;
  // A tensor of this device holding `host`'s values (for norm weights, embedding tables, rope
  // tables). May share `host`'s storage when the device is the host.
  virtual absl::StatusOr<Tensor> Upload(const Tensor& host) = 0;
  // The weight in this backend's layout on its device (a copy, a repacking, or `weight` itself).
  // Linear accepts only prepared weights.
  virtual absl::StatusOr<Weight> PrepareWeight(const Weight& weight) = 0;

  // ---- Transfers inside a step (into caller-owned memory; no allocation).

  // dst (a tensor of this device) <- `dst.nbytes()` bytes of host memory at `src`.
  virtual absl::Status CopyFromHost(const void* src, Tensor& dst) = 0;
  // `src.nbytes()` bytes of host memory at `dst` <- src. Waits for the work that writes src.
  virtual absl::Status CopyToHost(const Tensor& src, void* dst) = 0;
  // Waits until the device has finished all queued work (no-op on the CPU).
  virtual absl::Status Synchronize() = 0;

  // ---- Ops

  // Vocabulary-parallel embedding lookup: `table` [rows, hidden] holds the embeddings of ids
  // [first_id, first_id + rows). out[t, :] is the row of ids[t] when this table holds it, zeros
  // otherwise (another rank holds it; a sum over ranks completes the lookup). ids: i32 [T].
  virtual absl::Status Embedding(const Tensor& table, const Tensor& ids, int64_t first_id,
                                 Tensor& out) = 0;

  // out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight, for x [rows, width], weight
  // [width]. `out` may alias `x`.
  virtual absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) = 0;

  // The pre-norm residual step: residual += delta, then out = RmsNorm(residual). residual, delta
  // and out are [rows, width]; out may alias delta.
  virtual absl::Status AddRmsNorm(Tensor& residual, const Tensor& delta, const Tensor& weight,
                                  float eps, Tensor& out) = 0;

  // out[M, N] = x[M, K] · W^T for a prepared weight W [N, K]. A row's result does not depend on
  // the other rows of x (batched equals alone).
  virtual absl::Status Linear(const Tensor& x, const Weight& weight, Tensor& out) = 0;

  // x += y, element-wise.
  virtual absl::Status Add(Tensor& x, const Tensor& y) = 0;

  // out = silu(gate) * up, element-wise over [tokens, width]. `out` may alias `gate`.
  virtual absl::Status SwiGlu(const Tensor& gate, const Tensor& up, Tensor& out) = 0;

  // Rotates x [tokens, heads, head_dim] in place: token t at position positions[t] (i32 [T],
  // each < tables.max_positions()), the first tables.rotary_dim elements of every head.
  virtual absl::Status Rope(Tensor& x, const Tensor& positions, const RopeTables& tables) = 0;

  // Writes k [T, kv_heads, head_dim] and v [T, kv_heads, v_head_dim] into the paged pools
  // k_cache [blocks, block_size, kv_heads, head_dim] and v_cache [blocks, block_size, kv_heads,
  // v_head_dim] at slot_mapping[t] (i32 [T]); a negative slot skips the token.
  virtual absl::Status StoreKv(const Tensor& k, const Tensor& v, const Tensor& slot_mapping,
                               Tensor& k_cache, Tensor& v_cache) = 0;

  // Causal grouped-query attention over the paged cache: q [T, heads, head_dim] holds each
  // sequence's query tokens (AttentionMetadata); query token at position p of sequence b attends
  // to the cache positions [0, p] of b; query head h reads kv head h / (heads / kv_heads).
  // Scores are q·k * scale. out [T, heads, v_head_dim]. The keys and values of this step's tokens
  // must have been stored first.
  virtual absl::Status PagedAttention(const Tensor& q, const Tensor& k_cache,
                                      const Tensor& v_cache, const AttentionMetadata& metadata,
                                      float scale, Tensor& out) = 0;

  // out[r, :] = x[rows[r], :] for x [N, width], rows i32 [R], out [R, width].
  virtual absl::Status GatherRows(const Tensor& x, const Tensor& rows, Tensor& out) = 0;

  // dst[:, dst_column + j] = src[:, src_column + j] for j < width; src and dst f32 2-D with the
  // same number of rows, both column ranges inside their tensors.
  virtual absl::Status CopyColumns(const Tensor& src, int64_t src_column, Tensor& dst,
                                   int64_t dst_column, int64_t width) = 0;

  // x[r, :] += bias for x f32 [rows, width] and bias f32/f16/bf16 [width] (projection biases).
  virtual absl::Status AddBias(Tensor& x, const Tensor& bias) = 0;

  // ---- Mixture of experts (moe_ops.h)

  // Routes each token: logits f32 [T, E] and the correction bias f32 [E] (an undefined tensor
  // when the model has none) -> ids i32 [T, top_k] and weights f32 [T, top_k], by `routing`'s
  // rule (kernels/cpu/moe_router.h). Ties go to the lower expert id.
  virtual absl::Status MoeRoute(const Tensor& logits, const Tensor& bias,
                                const MoeRouting& routing, Tensor& ids, Tensor& weights) = 0;

  // Bytes of `workspace` MoeExperts needs for `tokens` tokens of `top_k` slots each.
  virtual int64_t MoeExpertsWorkspaceBytes(int64_t tokens, int64_t top_k,
                                           const ExpertSet& experts) const = 0;

  // out[t, :] = sum over j of weights[t, j] * E_ids[t, j](x[t, :]) for the slots whose expert
  // `experts` holds (zeros for a token with none): this rank's partial sum. x, out f32
  // [T, hidden]; ids, weights [T, top_k] from MoeRoute; workspace u8 of at least
  // MoeExpertsWorkspaceBytes. Each selected expert's weights are read once for all its tokens.
  virtual absl::Status MoeExperts(const Tensor& x, const Tensor& ids, const Tensor& weights,
                                  const ExpertSet& experts, Tensor& workspace, Tensor& out) = 0;

  // ---- Multi-head latent attention (DeepSeek MLA, absorbed form)

  // Writes rows latent f32 [T, width] into the pool cache [blocks, block_size, 1, width] at
  // slot_mapping[t]; a negative slot skips the token.
  virtual absl::Status StoreLatent(const Tensor& latent, const Tensor& slot_mapping,
                                   Tensor& cache) = 0;

  // Causal multi-query attention over a latent pool: q [T, heads, width] and the pool rows
  // [blocks, block_size, 1, width] are the keys (scores q·row * scale); the values are the rows'
  // elements [value_offset, value_offset + value_width). out [T, heads, value_width]. Positions
  // and causality as PagedAttention.
  virtual absl::Status PagedLatentAttention(const Tensor& q, const Tensor& cache,
                                            int64_t value_offset, int64_t value_width,
                                            const AttentionMetadata& metadata, float scale,
                                            Tensor& out) = 0;

  // Samples one token from each row of logits f32 [R, vocab] as rows[r] asks (sampling.h): ids >=
  // vocab_limit are never chosen. out[r] receives the token (and logprobs when asked); out and
  // rows have R entries. InvalidArgument on NaN logits.
  virtual absl::Status Sample(const Tensor& logits, int64_t vocab_limit,
                              std::span<const SamplingRow> rows,
                              std::span<SampledToken> out) = 0;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_BACKEND_BACKEND_H_
