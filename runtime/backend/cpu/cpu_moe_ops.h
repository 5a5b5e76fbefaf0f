// The CPU backend's mixture-of-experts and latent-attention ops (Backend::MoeRoute, MoeExperts,
// StoreLatent, PagedLatentAttention): shape checks, then kernels/cpu/moe_* and mla_attention.
// CpuBackend's overrides forward here; `threads` is its thread count.
#ifndef SPARKSTACK_RUNTIME_BACKEND_CPU_CPU_MOE_OPS_H_
#define SPARKSTACK_RUNTIME_BACKEND_CPU_CPU_MOE_OPS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "runtime/backend/attention_metadata.h"
#include "runtime/backend/moe_ops.h"
#include "runtime/core/tensor.h"

namespace sparkstack::cpu {

absl::Status AddBias(Tensor& x, const Tensor& bias);

absl::Status MoeRoute(const Tensor& logits, const Tensor& bias, const MoeRouting& routing,
                      Tensor& ids, Tensor& weights, int threads);

int64_t MoeExpertsWorkspaceBytes(int64_t tokens, int64_t top_k, const ExpertSet& experts,
                                 int threads);

absl::Status MoeExperts(const Tensor& x, const Tensor& ids, const Tensor& weights,
                        const ExpertSet& experts, Tensor& workspace, Tensor& out, int threads);

absl::Status StoreLatent(const Tensor& latent, const Tensor& slot_mapping, Tensor& cache);

absl::Status PagedLatentAttention(const Tensor& q, const Tensor& cache, int64_t value_offset,
                                  int64_t value_width, const AttentionMetadata& metadata,
                                  float scale, Tensor& out, int threads);

}  // namespace sparkstack::cpu

#endif  // SPARKSTACK_RUNTIME_BACKEND_CPU_CPU_MOE_OPS_H_
