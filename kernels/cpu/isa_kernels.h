// The vector kernels of one instruction set, as a table of plain functions. The same generic code
// (isa_kernels.inc) is compiled once per ISA over a small SIMD abstraction (a struct of inline
// load / store / fma / reduce functions) in its own file (kernels_<isa>.cc) under that ISA's target
// pragma; the drivers (packed_dense.cc, paged_attention.cc, ...) split the work over the thread
// pool and call the table of CpuIsa chosen at run time.
//
// Every path computes the same operations in the same order (fused multiply-adds along K in
// order, reductions as one fixed tree over 64 partial sums, one exp polynomial), so all ISAs give
// bit-identical results: the scalar path is the reference the vector paths are tested against, and
// a row's result never depends on the vector width, the thread split or the other rows.
#ifndef SPARKSTACK_KERNELS_CPU_ISA_KERNELS_H_
#define SPARKSTACK_KERNELS_CPU_ISA_KERNELS_H_

#include <cstdint>

#include "kernels/cpu/cpu_isa.h"
#include "runtime/core/dtype.h"

namespace sparkstack::kernels {

// Dense weights for the GEMM are packed in groups of kPackedGroupColumns output columns: group g
// holds columns [64g, 64g + 64) as K rows of 64 contiguous elements (element (k, c) of the group at
// offset k * 64 + c), groups one after the other; columns past N are zero. One row of a group is
// one cache line per 16 columns, and a decode step (M = 1) streams each group front to back.
inline constexpr int64_t kPackedGroupColumns = 64;

// y[i, c] = sum_k x[i, k] * W[c, k] over a packed weight, written for rows [row_begin, row_end)
// and column groups [group_begin, group_end).
struct GemmArgs {
  const float* x = nullptr;  // [m, k], row stride ldx
  int64_t ldx = 0;
  const void* packed = nullptr;  // dtype f32, bf16 or f16, packed as above
  DType dtype = DType::kF32;
  int64_t n = 0;  // real output columns
  int64_t k = 0;
  float* y = nullptr;  // [m, n], row stride ldy
  int64_t ldy = 0;
};

// Causal grouped-query attention over the paged cache (layouts of paged_attention.h). A tile is
// the query tokens [token_begin, token_end) of one sequence (indices into its query tokens) and
// every query head of one kv head.
struct AttentionArgs {
  const float* q = nullptr;  // [T, heads, head_dim]
  int64_t heads = 0;
  int64_t head_dim = 0;
  int64_t v_head_dim = 0;
  const float* k_cache = nullptr;  // [blocks, block_size, kv_heads, head_dim]
  const float* v_cache = nullptr;  // [blocks, block_size, kv_heads, v_head_dim]
  int64_t block_size = 0;
  int64_t kv_heads = 0;
  const int32_t* query_start = nullptr;  // [num_seqs + 1]
  const int32_t* seq_lens = nullptr;     // [num_seqs]
  const int32_t* block_table = nullptr;  // [num_seqs, max_blocks]
  int64_t max_blocks = 0;
  float scale = 1.0f;
  float* out = nullptr;  // [T, heads, v_head_dim]
};

// Rows of x a GEMM task works on at a time when there are many (a prefill): the block's rows are
// packed per K block and reused by every column group of the task.
inline constexpr int64_t kGemmRowBlock = 192;

// Rows (query token x query head pairs) one attention tile may hold: its online-softmax state
// lives on the stack.
inline constexpr int64_t kAttentionTileRows = 64;

struct IsaKernels {
  CpuIsa isa = CpuIsa::kScalar;

  // GEMM on a packed weight (see GemmArgs).
  void (*gemm)(const GemmArgs& args, int64_t row_begin, int64_t row_end, int64_t group_begin,
               int64_t group_end) = nullptr;

  // One attention tile (see AttentionArgs); at most kAttentionTileRows rows.
  void (*attention_tile)(const AttentionArgs& args, int64_t seq, int64_t kv_head,
                         int64_t token_begin, int64_t token_end) = nullptr;

  // out[r] = x[r] * rsqrt(mean(x[r]^2) + eps) * weight for rows [0, rows) of width `width`,
  // weight of dtype f32/bf16/f16. With `residual_delta` non-null, first x[r] += delta[r] (x is
  // then written: the fused residual add). out may alias x (or delta).
  void (*rms_norm_rows)(float* x, const float* residual_delta, int64_t rows, int64_t width,
                        const void* weight, DType weight_dtype, float eps, float* out) = nullptr;

  // out[i] = gate[i] / (1 + exp(-gate[i])) * up[i] for i < count. out may alias gate or up.
  void (*swiglu)(const float* gate, const float* up, int64_t count, float* out) = nullptr;

  // x[i] += y[i] for i < count.
  void (*add)(float* x, const float* y, int64_t count) = nullptr;

  // dst[i] = float(src[i]) for i < count, src of dtype f32/bf16/f16.
  void (*widen)(const void* src, DType dtype, int64_t count, float* dst) = nullptr;
};

// The table of `isa`; the scalar table when this build or CPU cannot run `isa`.
const IsaKernels& KernelsFor(CpuIsa isa);

// The tables each ISA file defines (null when the file was compiled for another architecture).
const IsaKernels* ScalarKernels();
const IsaKernels* Avx2Kernels();
const IsaKernels* Avx512Kernels();
const IsaKernels* NeonKernels();

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_ISA_KERNELS_H_
