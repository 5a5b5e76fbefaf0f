// Grouped mixture-of-experts SwiGLU MLPs (Backend::MoeExperts) on the GPU, without any
// device-to-host synchronisation (the launches can be captured into a CUDA graph):
//   1. LaunchMoePlan: one block groups the (token, slot) pairs by local expert on the device:
//      expert_offsets, permuted_token and slot_row exactly as kernels/cpu/moe_permute.h defines
//      them (rows of an expert in increasing (token, slot) order, slot_row -1 when not local).
//   2. Per local expert e (the host loops over the experts it holds, not over tokens):
//      LaunchMoeGateUp  g[r, :I_e] = gate_e · x[permuted_token[r]], u[r, :I_e] = up_e · x[...]
//      for the rows r of e; then one element-wise SwiGLU over all rows (LaunchSwiGlu of
//      elementwise.h, in place: h = g); then per local expert
//      LaunchMoeDown    y[r, :]    = down_e · h[r, :I_e]. The grid covers every row the call could
//      route to e (tokens * top_k, known on the host); row tiles past e's count, read from
//      expert_offsets on the device, exit at once. Each weight row is streamed by one warp for all
//      rows of its row tile (kMoeRowTile), so up to kMoeRowTile tokens of an expert (every decode
//      batch up to that size) read its weights from memory once; larger prefill batches read them
//      once per row tile.
//   3. LaunchMoeCombine: out[t, :] = sum over local slots j, in increasing j, of
//      weights[t, j] * y[slot_row[t, j], :]; zeros for a token with no local expert.
// Weights are dense (f32 / bf16 / f16) or NVFP4 (e2m1 codes [n, k/2], element 2i in the low
// nibble; E4M3 block scales [n, k/16]; an f32 global scale), with f32 activations and f32
// accumulation (W4A16 for NVFP4: the dequantized weight times the f32 activation, as the CPU
// backend computes it). The gate and up weights of an expert share one format.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_MOE_EXPERTS_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_MOE_EXPERTS_H_

#include <cstdint>

#include "kernels/cuda/ops/types.h"

namespace sparkstack::kernels::cuda_ops {

inline constexpr int64_t kMoeRowTile = 32;

// One weight matrix W [n, k] as the kernels read it.
struct MoeWeightView {
  bool nvfp4 = false;
  const void* data = nullptr;       // dense: [n, k] of `type`, row stride ld elements;
  int64_t ld = 0;                   // nvfp4: codes [n, k/2], row stride ld bytes
  ElemType type = ElemType::kBF16;  // dense only
  const uint8_t* scales = nullptr;  // nvfp4: E4M3 [n, k/16], row stride ld_scales bytes
  int64_t ld_scales = 0;
  float global_scale = 1.0f;  // nvfp4
  int64_t n = 0;
  int64_t k = 0;
};

// The workspace of one MoeExperts call, in bytes from its start (each part 256-byte aligned).
struct MoeExpertsLayout {
  int64_t offsets = 0;   // i32 [local + 1]
  int64_t perm = 0;      // i32 [slots]
  int64_t slot_row = 0;  // i32 [slots]
  int64_t g = 0;         // f32 [slots, max_width]: gate, then silu(gate) * up in place
  int64_t u = 0;         // f32 [slots, max_width]: up
  int64_t y = 0;         // f32 [slots, hidden]
  int64_t total = 0;
};

inline MoeExpertsLayout MoeExpertsWorkspaceLayout(int64_t slots, int64_t local, int64_t hidden,
                                                  int64_t max_width) {
  auto align = [](int64_t bytes) { return (bytes + 255) / 256 * 256; };
  MoeExpertsLayout l;
  int64_t at = 0;
  l.offsets = at;
  at += align((local + 1) * 4);
  l.perm = at;
  at += align(slots * 4);
  l.slot_row = at;
  at += align(slots * 4);
  l.g = at;
  at += align(slots * max_width * 4);
  l.u = at;
  at += align(slots * max_width * 4);
  l.y = at;
  at += align(slots * hidden * 4);
  l.total = at;
  return l;
}

// ids i32 [tokens, top_k] (global expert ids); local experts [first, first + local).
// expert_offsets [local + 1], permuted_token and slot_row [tokens * top_k].
int LaunchMoePlan(const int32_t* ids, int64_t tokens, int64_t top_k, int64_t first, int64_t local,
                  int32_t* expert_offsets, int32_t* permuted_token, int32_t* slot_row,
                  void* stream);

// g[r, :gate.n] and u[r, :up.n] for the rows r of local expert `expert`; x f32 [tokens, gate.k]
// (ldx = gate.k), g and u row stride ldh >= gate.n; max_rows = tokens * top_k. gate and up: same
// n, k and format.
int LaunchMoeGateUp(const float* x, const int32_t* expert_offsets, int64_t expert,
                    const int32_t* permuted_token, const MoeWeightView& gate,
                    const MoeWeightView& up, float* g, float* u, int64_t ldh, int64_t max_rows,
                    void* stream);

// y[r, :down.n] = down · h[r, :down.k] for the rows r of local expert `expert`; y row stride
// ldy >= down.n.
int LaunchMoeDown(const float* h, int64_t ldh, const int32_t* expert_offsets, int64_t expert,
                  const MoeWeightView& down, float* y, int64_t ldy, int64_t max_rows, void* stream);

// out f32 [tokens, hidden] (overwritten) from y f32 [*, hidden], slot_row and weights
// [tokens, top_k].
int LaunchMoeCombine(const float* y, int64_t hidden, const int32_t* slot_row, const float* weights,
                     int64_t tokens, int64_t top_k, float* out, void* stream);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_MOE_EXPERTS_H_
