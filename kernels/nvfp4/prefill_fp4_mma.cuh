// The sm_121a W4A4 prefill GEMM: y = alpha * (quant(x) . W^T) on the block-scaled FP4 tensor
// cores (mma.sync m16n8k64 kind::mxf4nvf4, scale_vec::4X, ue4m3 scales), with the per-16
// activation quantization fused into the staging of each activation tile.
//
// Layouts, tile and thread mapping: prefill_fp4_mma_layout.h. Per k-slice of 128 values:
//   1. Activations. The tile's 128 rows x 8 blocks of 16 bf16 values are 1024 blocks; thread
//      `tid` quantizes blocks tid, tid + 256, tid + 512, tid + 768 (block b is row b / 8, k-block
//      b % 8, so 8 neighbouring threads read one row's 256 contiguous bytes). It loads the block
//      with two 16-byte loads, computes the ue4m3 scale from the block's amax and the static
//      input_scale, and writes 8 code bytes and 1 scale byte to shared memory. Rows >= m and
//      k-blocks >= k are written as zero codes and zero scales, so they add nothing.
//   2. Weights. The tile's 128 rows x 64 code bytes are 1024 8-byte chunks (chunk c = one
//      16-value block), copied the same way, plus 1024 scale bytes; out-of-range ones are zero.
//   3. Each warp runs 2 k-steps x 4 (m16) x 4 (n8) MMAs on its 64 x 32 sub-tile, loading every
//      fragment with one 32-bit shared-memory load (offset helpers of the layout header).
// The epilogue multiplies by alpha = input_scale * global_scale and stores each accumulator
// directly (bf16 or f32), skipping rows >= m and columns >= n.
//
// The instruction exists only on arch-specific targets (sm_120a / sm_121a); on every other target
// the kernel body is a trap, and the launcher (prefill_fp4_mma.cu) refuses devices that are not
// compute capability 12.x before launching.
#ifndef SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_CUH_
#define SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_CUH_

#include <cstdint>

#include "kernels/cuda/device.h"
#include "kernels/cuda/mma.h"
#include "kernels/cuda/shared_memory.h"
#include "kernels/nvfp4/dequant.cuh"
#include "kernels/nvfp4/launch_config.h"
#include "kernels/nvfp4/prefill_fp4_mma_layout.h"
#include "kernels/nvfp4/prefill_fp4_mma_quant.h"

namespace sparkstack::kernels::nvfp4::detail {

#if defined(SPARKSTACK_HAS_FP4_MMA)

// Quantizes the 16 bf16 values at `src` (16-byte aligned) with the static input_scale
// (Fp4QuantizeBlock16); writes 8 code bytes to `codes` (8-byte aligned) and the scale byte.
__device__ __forceinline__ void QuantizeActivationBlock(const __nv_bfloat16* src, float input_scale,
                                                        uint8_t* codes, uint8_t* scale) {
  uint4 raw[2];
  raw[0] = __ldg(reinterpret_cast<const uint4*>(src));
  raw[1] = __ldg(reinterpret_cast<const uint4*>(src) + 1);
  const __nv_bfloat16* h = reinterpret_cast<const __nv_bfloat16*>(raw);
  float v[16];
#pragma unroll
  for (int i = 0; i < 16; ++i) v[i] = __bfloat162float(h[i]);
  uint32_t lo, hi;
  *scale = static_cast<uint8_t>(Fp4QuantizeBlock16(v, input_scale, &lo, &hi));
  *reinterpret_cast<uint2*>(codes) = make_uint2(lo, hi);
}

#endif  // SPARKSTACK_HAS_FP4_MMA

template <typename OutT>
__global__ void __launch_bounds__(kFp4MmaThreads) PrefillFp4MmaKernel(GemmArgs a) {
#if defined(SPARKSTACK_HAS_FP4_MMA)
  uint8_t* const smem = cuda::DynamicSharedMemory<uint8_t>();
  uint8_t* const s_a_codes = smem + kFp4MmaSmemACodes;
  uint8_t* const s_b_codes = smem + kFp4MmaSmemBCodes;
  uint8_t* const s_a_scales = smem + kFp4MmaSmemAScales;
  uint8_t* const s_b_scales = smem + kFp4MmaSmemBScales;

  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int wm = warp / (kFp4MmaBN / kFp4MmaWarpN);  // 0..1
  const int wn = warp % (kFp4MmaBN / kFp4MmaWarpN);  // 0..3
  const int64_t m0 = int64_t{blockIdx.y} * kFp4MmaBM;
  const int64_t n0 = int64_t{blockIdx.x} * kFp4MmaBN;
  const int64_t k_blocks = a.k / kBlockSize;
  const auto* x = static_cast<const __nv_bfloat16*>(a.x);

  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

  constexpr int kBlocksPerRow = kFp4MmaBK / kBlockSize;                        // 8
  constexpr int kItemsPerThread = kFp4MmaBM * kBlocksPerRow / kFp4MmaThreads;  // 4
  static_assert(kFp4MmaBM == kFp4MmaBN, "A and B staging share one loop");

  for (int64_t k0 = 0; k0 < a.k; k0 += kFp4MmaBK) {
    const int64_t kb0 = k0 / kBlockSize;
    // Stage the slice: activations quantized on the fly, weights copied.
#pragma unroll
    for (int it = 0; it < kItemsPerThread; ++it) {
      const int item = tid + it * kFp4MmaThreads;
      const int row = item / kBlocksPerRow;
      const int blk = item % kBlocksPerRow;
      const bool k_ok = kb0 + blk < k_blocks;
      uint8_t* a_codes = s_a_codes + row * kFp4MmaCodeRowBytes + blk * 8;
      uint8_t* a_scale = s_a_scales + row * kFp4MmaScaleRowBytes + blk;
      if (k_ok && m0 + row < a.m) {
        QuantizeActivationBlock(x + (m0 + row) * a.ldx + (kb0 + blk) * kBlockSize, a.input_scale,
                                a_codes, a_scale);
      } else {
        *reinterpret_cast<uint2*>(a_codes) = make_uint2(0, 0);
        *a_scale = 0;
      }
      uint2 w = make_uint2(0, 0);
      uint8_t ws = 0;
      if (k_ok && n0 + row < a.n) {
        w = __ldg(reinterpret_cast<const uint2*>(a.codes + (n0 + row) * a.ldw +
                                                 (kb0 + blk) * (kBlockSize / 2)));
        ws = __ldg(a.scales + (n0 + row) * a.lds + kb0 + blk);
      }
      *reinterpret_cast<uint2*>(s_b_codes + row * kFp4MmaCodeRowBytes + blk * 8) = w;
      s_b_scales[row * kFp4MmaScaleRowBytes + blk] = ws;
    }
    __syncthreads();

#pragma unroll
    for (int s = 0; s < 2; ++s) {
      uint32_t b[4][2];
      uint32_t sfb[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int row0 = wn * kFp4MmaWarpN + 8 * j;
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          b[j][r] =
              *reinterpret_cast<const uint32_t*>(s_b_codes + Fp4SmemBOffset(row0, s, lane, r));
        }
        sfb[j] = *reinterpret_cast<const uint32_t*>(s_b_scales + Fp4SmemSfbOffset(row0, s, lane));
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int row0 = wm * kFp4MmaWarpM + 16 * i;
        uint32_t af[4];
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          af[r] = *reinterpret_cast<const uint32_t*>(s_a_codes + Fp4SmemAOffset(row0, s, lane, r));
        }
        const uint32_t sfa =
            *reinterpret_cast<const uint32_t*>(s_a_scales + Fp4SmemSfaOffset(row0, s, lane));
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          // Selectors 0: lanes t = 0, 1 provide SF_A rows g, g+8; lane t = 0 provides SF_B.
          cuda::MmaM16N8K64Fp4BlockScaled<0, 0>(acc[i][j], af, b[j], sfa, sfb[j]);
        }
      }
    }
    // The next slice restages every data byte: nothing of this one may be read after here.
    cuda::ReleaseSharedAtNextBarrier(smem, Fp4MmaSmemBytes());
    __syncthreads();
  }

  // Epilogue: alpha scaling and bounds-checked stores straight from the accumulators.
  const float alpha = a.input_scale * a.global_scale;
  auto* y = static_cast<OutT*>(a.y);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t row = m0 + wm * kFp4MmaWarpM + 16 * i + Fp4FragDRow(lane, e);
        const int64_t col = n0 + wn * kFp4MmaWarpN + 8 * j + Fp4FragDCol(lane, e);
        if (row < a.m && col < a.n) StoreOut<OutT>(y + row * a.ldy + col, alpha * acc[i][j][e]);
      }
    }
  }
#else
  // No block-scaled FP4 tensor cores on this target: the launcher never launches this.
  __trap();
#endif
}

}  // namespace sparkstack::kernels::nvfp4::detail

#endif  // SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_CUH_
