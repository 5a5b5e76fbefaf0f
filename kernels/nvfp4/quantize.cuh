// NVFP4 quantize kernels. One thread per 16-element block: it loads the block with two 16-byte
// (bf16) or four 16-byte (f32) loads, finds the block's amax, rounds the block scale to E4M3 in
// float64 (cvt with round-to-nearest-even, satfinite) and writes 8 bytes of codes (element 2i in
// the low nibble) and one scale byte. The weight path first reduces amax(|w|) over the tensor
// (grid-stride loop, warp shuffles, one atomicMax per block on the float's bits: non-negative
// floats order like their bit patterns).
#ifndef SPARKSTACK_KERNELS_NVFP4_QUANTIZE_CUH_
#define SPARKSTACK_KERNELS_NVFP4_QUANTIZE_CUH_

#include <cstdint>

#include "kernels/cuda/device.h"
#include "kernels/cuda/shared_memory.h"
#include "kernels/nvfp4/dequant.cuh"

namespace sparkstack::kernels::nvfp4::detail {

// RNE e2m1 code of v, saturating at +-6; negative values rounding to zero keep the sign (0x8).
__device__ __forceinline__ uint32_t RoundE2M1(double v) {
  const uint32_t sign = v < 0.0 ? 0x8u : 0x0u;
  const double a = fabs(v);
  uint32_t code;
  if (a <= 0.25) {
    code = 0;
  } else if (a < 0.75) {
    code = 1;
  } else if (a <= 1.25) {
    code = 2;
  } else if (a < 1.75) {
    code = 3;
  } else if (a <= 2.5) {
    code = 4;
  } else if (a < 3.5) {
    code = 5;
  } else if (a <= 5.0) {
    code = 6;
  } else {
    code = 7;
  }
  return sign | code;
}

__device__ __forceinline__ uint32_t RoundE4M3(double v) {
  return static_cast<uint32_t>(__nv_cvt_double_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}

__device__ __forceinline__ double E4M3Value(uint32_t bits) {
  return static_cast<double>(DecodeScaleTimes2m8(bits)) * 256.0;
}

template <typename T>
__device__ __forceinline__ void LoadBlock16(const T* p, float (&v)[16]);

template <>
__device__ __forceinline__ void LoadBlock16<__nv_bfloat16>(const __nv_bfloat16* p, float (&v)[16]) {
  const uint4* q = reinterpret_cast<const uint4*>(p);
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const uint4 w = q[i];
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      v[8 * i + 2 * j] = Bf16Lo(words[j]);
      v[8 * i + 2 * j + 1] = Bf16Hi(words[j]);
    }
  }
}

template <>
__device__ __forceinline__ void LoadBlock16<float>(const float* p, float (&v)[16]) {
  const float4* q = reinterpret_cast<const float4*>(p);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float4 w = q[i];
    v[4 * i] = w.x;
    v[4 * i + 1] = w.y;
    v[4 * i + 2] = w.z;
    v[4 * i + 3] = w.w;
  }
}

// Writes 16 codes (8 bytes) to `dst`, element 2i in the low nibble of byte i.
__device__ __forceinline__ void StoreCodes16(uint8_t* dst, const uint32_t (&code)[16]) {
#pragma unroll
  for (int i = 0; i < 8; ++i) dst[i] = static_cast<uint8_t>(code[2 * i] | (code[2 * i + 1] << 4));
}

__global__ void QuantizeActivationKernel(const __nv_bfloat16* x, int64_t ldx, int64_t m, int64_t k,
                                         double inv_input_scale, uint8_t* codes, int64_t ldc,
                                         uint8_t* scales, int64_t lds) {
  const int64_t kb = k / 16;
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= m * kb) return;
  const int64_t row = b / kb;
  const int64_t blk = b % kb;
  float v[16];
  LoadBlock16(x + row * ldx + blk * 16, v);
  double amax = 0.0;
#pragma unroll
  for (int i = 0; i < 16; ++i) amax = fmax(amax, fabs(static_cast<double>(v[i])));
  const uint32_t bits = RoundE4M3(inv_input_scale * amax / 6.0);
  const double scale = E4M3Value(bits);
  uint32_t code[16];
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const double xv = static_cast<double>(v[i]);
    code[i] = RoundE2M1(scale == 0.0 ? xv * 0.0 : xv / (scale / inv_input_scale));
  }
  StoreCodes16(codes + row * ldc + blk * 8, code);
  scales[row * lds + blk] = static_cast<uint8_t>(bits);
}

template <typename T>
__global__ void AmaxKernel(const T* w, int64_t ldw, int64_t n, int64_t k, uint32_t* amax_bits) {
  const int64_t kb = k / 16;
  const int64_t total = n * kb;
  float amax = 0.0f;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < total;
       b += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v[16];
    LoadBlock16(w + (b / kb) * ldw + (b % kb) * 16, v);
#pragma unroll
    for (int i = 0; i < 16; ++i) amax = fmaxf(amax, fabsf(v[i]));  // fmaxf drops NaN
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
  }
  SPARKSTACK_SHARED_ARRAY(float, warp_max, 32);
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  if (lane == 0) warp_max[warp] = amax;
  __syncthreads();
  if (threadIdx.x == 0) {
    float block_max = 0.0f;
    for (int i = 0; i < static_cast<int>(blockDim.x + 31) / 32; ++i) {
      block_max = fmaxf(block_max, warp_max[i]);
    }
    atomicMax(amax_bits, __float_as_uint(block_max));
  }
}

template <typename T>
__global__ void QuantizeWeightKernel(const T* w, int64_t ldw, int64_t n, int64_t k,
                                     const uint32_t* amax_bits, uint8_t* codes, int64_t ldc,
                                     uint8_t* scales, int64_t lds, float* global_scale) {
  const double amax = static_cast<double>(__uint_as_float(*amax_bits));
  const float global = static_cast<float>(amax / (6.0 * 448.0));
  const int64_t kb = k / 16;
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b == 0) *global_scale = global;
  if (b >= n * kb) return;
  const int64_t row = b / kb;
  const int64_t blk = b % kb;
  float v[16];
  LoadBlock16(w + row * ldw + blk * 16, v);
  double bamax = 0.0;
#pragma unroll
  for (int i = 0; i < 16; ++i) bamax = fmax(bamax, fabs(static_cast<double>(v[i])));
  uint32_t bits;
  if (bamax == 0.0 || global == 0.0f) {
    bits = 0x38u;  // e4m3(1.0)
  } else {
    const double s = bamax / (6.0 * static_cast<double>(global));
    bits = RoundE4M3(fmin(fmax(s, 1.0 / 512.0), 448.0));
  }
  const double divisor = E4M3Value(bits) * static_cast<double>(global);
  uint32_t code[16];
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    code[i] = divisor == 0.0 ? 0u : RoundE2M1(static_cast<double>(v[i]) / divisor);
  }
  StoreCodes16(codes + row * ldc + blk * 8, code);
  scales[row * lds + blk] = static_cast<uint8_t>(bits);
}

}  // namespace sparkstack::kernels::nvfp4::detail

#endif  // SPARKSTACK_KERNELS_NVFP4_QUANTIZE_CUH_
