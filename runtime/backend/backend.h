// Backend: the ops a model needs, on one device. Model code calls these and never knows whether it
// runs on the CPU or a GPU. Activations are f32 tensors laid out [tokens, features]; weights may be
// any format a `Weight` holds; norms and embeddings may be f32, f16 or bf16.
//
// Contract for every op: inputs and outputs live on this backend's device, `out` is allocated by
// the caller with the documented shape (ops never allocate), outputs may not alias inputs unless
// stated, and a shape or dtype mismatch returns InvalidArgument naming the op and both shapes.
// A backend instance is used by one thread at a time.
#ifndef SPARKSTACK_RUNTIME_BACKEND_BACKEND_H_
#define SPARKSTACK_RUNTIME_BACKEND_BACKEND_H_

#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "runtime/core/tensor.h"
#include "runtime/core/weight.h"

namespace sparkstack {

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;
  virtual Device device() const = 0;

  // A zeroed f32 (or other) tensor on this device.
  virtual Tensor Allocate(DType dtype, const Shape& shape) = 0;

  // Vocabulary-parallel embedding lookup: `table` [rows, hidden] holds the embeddings of ids
  // [first_id, first_id + rows). out[t, :] is the row of ids[t] when this table holds it, zeros
  // otherwise (another rank holds it; a sum over ranks completes the lookup). Callers validate ids
  // against the whole vocabulary.
  virtual absl::Status Embedding(const Tensor& table, std::span<const int32_t> ids,
                                 int64_t first_id, Tensor& out) = 0;

  // out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight, for x [rows, width], weight [width].
  // `out` may alias `x`.
  virtual absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) = 0;

  // out[M, N] = x[M, K] · W^T.
  virtual absl::Status Linear(const Tensor& x, const Weight& weight, Tensor& out) = 0;

  // Rotates x [tokens, heads, head_dim] in place with Hugging Face's rotate-half convention: pair
  // (i, i + head_dim/2) turns by positions[t] * inv_freq[i]. inv_freq has head_dim/2 entries.
  virtual absl::Status Rope(Tensor& x, std::span<const int32_t> positions,
                            std::span<const float> inv_freq) = 0;

  // Writes k, v [tokens, kv_heads, head_dim] into rows [start, start + tokens) of the caches
  // [capacity, kv_heads, head_dim].
  virtual absl::Status StoreKv(const Tensor& k, const Tensor& v, int64_t start, Tensor& k_cache,
                               Tensor& v_cache) = 0;

  // Causal grouped-query attention of q [tokens, heads, head_dim], whose token t sits at position
  // start + t, over cache rows [0, start + t]; query head h reads kv head h / (heads / kv_heads).
  // out [tokens, heads, head_dim].
  virtual absl::Status Attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                 int64_t start, float scale, Tensor& out) = 0;

  // out = silu(gate) * up, element-wise over [tokens, width]. `out` may alias `gate`.
  virtual absl::Status SwiGlu(const Tensor& gate, const Tensor& up, Tensor& out) = 0;

  // x += y, element-wise.
  virtual absl::Status AddInPlace(Tensor& x, const Tensor& y) = 0;

  // Copies a tensor of this device into host memory (a no-op view on the CPU).
  virtual absl::StatusOr<Tensor> ToHost(const Tensor& x) = 0;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_BACKEND_BACKEND_H_
