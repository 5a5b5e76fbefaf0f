// Sampling kernel: grid (rows), 256 threads; every pass below is a loop of the block over the
// row's ids, so a row's logits are read from L2 a few times and nothing is allocated.
//   1. scan the raw logits: NaN / +inf (the row fails), their maximum
//   2. logprobs (when asked): log Z and the top ids of the raw logits (radix selection)
//   3. apply the row's edits (penalties, bans) in place, keeping the originals
//   4. greedy: the first id of the largest l; otherwise thresholds (min-p; top-k by radix
//      selection on (logit desc, id asc) keys), the top-p nucleus by radix selection on the same
//      keys weighted by w, and the draw: per-thread contiguous id ranges, an exclusive scan of
//      their weight sums, and one walk in the range where u * total falls
//   5. undo the edits
// Radix selection finds the element, in ascending key order, where the cumulative mass (a count or
// a fixed-point weight) first reaches a target: 8 passes of 8-bit digits, each a histogram of the
// mass of the elements matching the digits chosen so far (shared-memory atomics on integers, so
// the result is exact and independent of thread timing).
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_SAMPLING_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_SAMPLING_CUH_

#include <cstdint>

#include "kernels/cuda/ops/common.cuh"
#include "kernels/cuda/ops/sampling.h"
#include "kernels/cuda/shared_memory.h"
#include "runtime/core/philox.h"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr int kSamplingThreads = 256;  // 255 registers a thread; 512 spilled
inline constexpr int kSamplingWarps = kSamplingThreads / 32;
inline constexpr float kSampleMaxFloat = 3.40282346638528859812e+38f;
inline constexpr uint64_t kNoKey = ~uint64_t{0};

// kernels/cpu/sampling.cc's ExpNonPositive, operation for operation (each rounded to f32, no
// fused multiply-add), so that every weight equals the CPU's bit for bit.
__device__ __forceinline__ float ExpNonPositive(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f;
  constexpr float kLn2Lo = 1.42860682030941723e-6f;
  constexpr float kRound = 12582912.0f;
  const float xc = x < -87.0f ? -87.0f : x;
  const float n = SubRn(AddRn(MulRn(xc, kLog2e), kRound), kRound);
  const float r = SubRn(SubRn(xc, MulRn(n, kLn2Hi)), MulRn(n, kLn2Lo));
  float p = 1.0f / 5040.0f;
  p = AddRn(MulRn(p, r), 1.0f / 720.0f);
  p = AddRn(MulRn(p, r), 1.0f / 120.0f);
  p = AddRn(MulRn(p, r), 1.0f / 24.0f);
  p = AddRn(MulRn(p, r), 1.0f / 6.0f);
  p = AddRn(MulRn(p, r), 0.5f);
  p = AddRn(MulRn(p, r), 1.0f);
  p = AddRn(MulRn(p, r), 1.0f);
  const float scale = __int_as_float((static_cast<int32_t>(n) + 127) << 23);
  return x < -87.0f ? 0.0f : MulRn(p, scale);
}

// Float bits mapped to integers of the same order.
__device__ __forceinline__ int32_t OrderedBits(float v) {
  const int32_t bits = __float_as_int(v);
  return bits ^ ((bits >> 31) & 0x7fffffff);
}
__device__ __forceinline__ float FromOrderedBits(int32_t key) {
  return __int_as_float(key ^ ((key >> 31) & 0x7fffffff));
}

// Ascending key order is logit descending, then id ascending (kernels/cpu/sampling.cc SortKey).
__device__ __forceinline__ uint64_t SortKey(float logit, int32_t id) {
  const uint32_t bits = __float_as_uint(logit + 0.0f);  // -0 becomes +0
  const uint32_t ordered = (bits & 0x80000000u) != 0 ? ~bits : (bits | 0x80000000u);
  return (static_cast<uint64_t>(~ordered) << 32) | static_cast<uint32_t>(id);
}
__device__ __forceinline__ float KeyLogit(uint64_t key) {
  const uint32_t ordered = ~static_cast<uint32_t>(key >> 32);
  return __uint_as_float((ordered & 0x80000000u) != 0 ? (ordered & 0x7fffffffu) : ~ordered);
}

template <typename T, typename Op>
__device__ __forceinline__ T BlockReduce(T v, T* scratch, Op op) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v = op(v, __shfl_xor_sync(kFullMask, v, offset));
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = scratch[0];
  for (int w = 1; w < kSamplingWarps; ++w) total = op(total, scratch[w]);
  __syncthreads();
  return total;
}

// Exclusive prefix sum over the block's threads (in thread order) of v; `scratch` holds
// kSamplingWarps values.
__device__ __forceinline__ uint64_t BlockExclusiveScan(uint64_t v, uint64_t* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  uint64_t inclusive = v;
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    const uint64_t other = __shfl_up_sync(kFullMask, inclusive, offset);
    if (lane >= offset) inclusive += other;
  }
  if (lane == 31) scratch[warp] = inclusive;
  __syncthreads();
  uint64_t before = 0;
  for (int w = 0; w < warp; ++w) before += scratch[w];
  __syncthreads();
  return before + inclusive - v;
}

struct SelectShared {
  uint64_t hist[256];
  uint64_t prefix;
  uint64_t below;
  int32_t found;
};

// The key of the element first in ascending key order whose inclusive cumulative mass reaches
// `target`, among ids i < n with element(i, &key, &mass) true; kNoKey when the total mass stays
// below it. Keys must be unique.
template <typename Element>
__device__ uint64_t SelectByMass(int64_t n, uint64_t target, Element element, SelectShared& s) {
  uint64_t prefix = 0;
  uint64_t below = 0;
  for (int shift = 56; shift >= 0; shift -= 8) {
    const uint64_t high_mask = shift == 56 ? 0 : ~uint64_t{0} << (shift + 8);
    for (int i = threadIdx.x; i < 256; i += blockDim.x) s.hist[i] = 0;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      uint64_t key = 0, mass = 0;
      if (!element(i, &key, &mass) || (key & high_mask) != prefix || mass == 0) continue;
      atomicAdd(reinterpret_cast<unsigned long long*>(&s.hist[(key >> shift) & 255]),
                static_cast<unsigned long long>(mass));
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      uint64_t cumulative = below;
      int chosen = -1;
      for (int d = 0; d < 256; ++d) {
        if (cumulative + s.hist[d] >= target) {
          chosen = d;
          break;
        }
        cumulative += s.hist[d];
      }
      s.found = chosen >= 0;
      s.prefix = chosen >= 0 ? prefix | (static_cast<uint64_t>(chosen) << shift) : prefix;
      s.below = cumulative;
    }
    __syncthreads();
    const bool found = s.found != 0;
    prefix = s.prefix;
    below = s.below;
    __syncthreads();
    if (!found) return kNoKey;
  }
  return prefix;
}

struct SamplingShared {
  SelectShared select;
  double dscratch[kSamplingWarps];
  int32_t iscratch[kSamplingWarps];
  uint64_t uscratch[kSamplingWarps];
  uint64_t top[kSamplingMaxTop];
  int32_t top_count;
  int32_t chosen;
};

__global__ void __launch_bounds__(kSamplingThreads, 1)
    SamplingKernel(float* logits, int64_t row_stride, int64_t n, const SamplingRowArgs* rows,
                   SamplingEdit* edits, SamplingResult* results) {
  SPARKSTACK_SHARED_ARRAY(SamplingShared, shared, 1);
  SamplingShared& sh = shared[0];
  const int64_t row = blockIdx.x;
  const SamplingRowArgs p = rows[row];
  float* x = logits + row * row_stride;
  SamplingResult* out = results + row;
  const int tid = threadIdx.x;
  auto max_op = [](int32_t a, int32_t b) { return a > b ? a : b; };
  auto min_op = [](int32_t a, int32_t b) { return a < b ? a : b; };
  auto dsum_op = [](double a, double b) { return a + b; };

  // 1. Raw scan.
  int32_t local_max = static_cast<int32_t>(0x80000000u);
  int32_t local_bad = 0x7fffffff;
  for (int64_t i = tid; i < n; i += blockDim.x) {
    const float v = x[i];
    if (!(v < INFINITY)) local_bad = min_op(local_bad, static_cast<int32_t>(i));
    local_max = max_op(local_max, OrderedBits(v));
  }
  const int32_t bad = BlockReduce(local_bad, sh.iscratch, min_op);
  if (bad != 0x7fffffff) {  // uniform: the whole block leaves
    if (tid == 0) {
      out->status = SamplingStatus::kBadLogit;
      out->bad_id = bad;
      out->token = -1;
    }
    return;
  }
  const float raw_max = FromOrderedBits(BlockReduce(local_max, sh.iscratch, max_op));

  // 2. Logprobs of the raw logits.
  double log_z = 0.0;
  int32_t num_top = 0;
  if (p.logprobs >= 0) {
    double local = 0.0;
    for (int64_t i = tid; i < n; i += blockDim.x) local += ExpNonPositive(SubRn(x[i], raw_max));
    log_z = static_cast<double>(raw_max) + log(BlockReduce(local, sh.dscratch, dsum_op));
    num_top = static_cast<int32_t>(p.logprobs < n ? p.logprobs : n);
    if (num_top > 0) {
      const uint64_t last = SelectByMass(
          n, static_cast<uint64_t>(num_top),
          [&](int64_t i, uint64_t* key, uint64_t* mass) {
            *key = SortKey(x[i], static_cast<int32_t>(i));
            *mass = 1;
            return true;
          },
          sh.select);
      if (tid == 0) sh.top_count = 0;
      __syncthreads();
      for (int64_t i = tid; i < n; i += blockDim.x) {
        const uint64_t key = SortKey(x[i], static_cast<int32_t>(i));
        if (key <= last) sh.top[atomicAdd(&sh.top_count, 1)] = key;
      }
      __syncthreads();
      if (tid == 0) {
        for (int a = 1; a < num_top; ++a) {  // insertion sort of at most 20 keys
          const uint64_t k = sh.top[a];
          int b = a - 1;
          for (; b >= 0 && sh.top[b] > k; --b) sh.top[b + 1] = sh.top[b];
          sh.top[b + 1] = k;
        }
        for (int a = 0; a < num_top; ++a) {
          const int32_t id = static_cast<int32_t>(static_cast<uint32_t>(sh.top[a]));
          out->top_ids[a] = id;
          out->top_logprobs[a] = static_cast<float>(x[id] - log_z);
        }
      }
      __syncthreads();
    }
  }

  // 3. Penalties and bans, in place.
  SamplingEdit* row_edits = edits + p.edit_begin;
  for (int e = tid; e < p.edit_count; e += blockDim.x) {
    SamplingEdit& edit = row_edits[e];
    float v = x[edit.id];
    edit.original = v;
    if (edit.seen != 0) {
      v = v > 0.0f ? DivRn(v, p.repetition_penalty) : MulRn(v, p.repetition_penalty);
    }
    if (edit.count > 0) {
      v = SubRn(v, MulRn(p.frequency_penalty, static_cast<float>(edit.count)));
      v = SubRn(v, p.presence_penalty);
    }
    v = v < kSampleMaxFloat ? v : kSampleMaxFloat;
    x[edit.id] = edit.banned != 0 ? -INFINITY : v;
  }
  __syncthreads();
  float max = raw_max;
  if (p.edit_count > 0) {
    int32_t m = static_cast<int32_t>(0x80000000u);
    for (int64_t i = tid; i < n; i += blockDim.x) m = max_op(m, OrderedBits(x[i]));
    max = FromOrderedBits(BlockReduce(m, sh.iscratch, max_op));
  }

  // 4. The token.
  int32_t token = -1;
  SamplingStatus status = SamplingStatus::kOk;
  if (max == -INFINITY) {
    status = SamplingStatus::kNothingToChoose;
  } else if (p.temperature == 0.0f) {
    int32_t first = 0x7fffffff;
    for (int64_t i = tid; i < n; i += blockDim.x) {
      if (x[i] == max) first = min_op(first, static_cast<int32_t>(i));
    }
    token = BlockReduce(first, sh.iscratch, min_op);
  } else {
    const float t = p.temperature;
    float threshold = -INFINITY;
    if (p.min_p > 0.0f) {
      threshold = static_cast<float>(static_cast<double>(max) + static_cast<double>(t) * log(static_cast<double>(p.min_p)));
    }
    bool thresholded = threshold > -INFINITY;
    if (p.top_k > 0 && p.top_k < n) {
      const uint64_t kth = SelectByMass(
          n, static_cast<uint64_t>(p.top_k),
          [&](int64_t i, uint64_t* key, uint64_t* mass) {
            *key = SortKey(x[i], static_cast<int32_t>(i));
            *mass = 1;
            return true;
          },
          sh.select);
      const float kth_logit = KeyLogit(kth);
      threshold = threshold > kth_logit ? threshold : kth_logit;
      thresholded = true;
    }
    // Weights as the CPU computes them on each of its paths, in fixed point.
    int bits = 0;
    while ((int64_t{1} << bits) <= n) ++bits;
    const int shift = 52 - bits < 40 ? 52 - bits : 40;
    const double one = static_cast<double>(uint64_t{1} << shift);
    const float inverse_t = 1.0f / t;
    auto weight = [&](int64_t i) -> uint64_t {
      const float l = x[i];
      float w;
      if (thresholded) {
        if (!(l >= threshold)) return 0;
        w = ExpNonPositive(DivRn(SubRn(l, max), t));
      } else {
        w = ExpNonPositive(inverse_t <= kSampleMaxFloat ? MulRn(SubRn(l, max), inverse_t)
                                                        : DivRn(SubRn(l, max), t));
      }
      return static_cast<uint64_t>(static_cast<double>(w) * one + 0.5);
    };
    uint64_t cut = kNoKey;  // kept: keys <= cut (top-p), among the thresholded ids
    if (p.top_p < 1.0f) {
      uint64_t local = 0;
      for (int64_t i = tid; i < n; i += blockDim.x) local += weight(i);
      const uint64_t mass = BlockReduce(local, sh.uscratch, [](uint64_t a, uint64_t b) { return a + b; });
      // The nucleus ends at the first element (in key order) whose inclusive cumulative weight
      // reaches top_p * mass; exact in double below 2^53.
      const double limit = static_cast<double>(p.top_p) * static_cast<double>(mass);
      const uint64_t target = static_cast<uint64_t>(ceil(limit));
      cut = SelectByMass(
          n, target > 0 ? target : 1,
          [&](int64_t i, uint64_t* key, uint64_t* m) {
            *m = weight(i);
            *key = SortKey(x[i], static_cast<int32_t>(i));
            return *m > 0;
          },
          sh.select);
    }
    // The draw over kept ids in id order.
    const int64_t per_thread = (n + blockDim.x - 1) / blockDim.x;
    const int64_t begin = tid * per_thread < n ? tid * per_thread : n;
    const int64_t end = begin + per_thread < n ? begin + per_thread : n;
    auto kept_weight = [&](int64_t i) -> uint64_t {
      if (cut != kNoKey && SortKey(x[i], static_cast<int32_t>(i)) > cut) return 0;
      return weight(i);
    };
    uint64_t mine = 0;
    int32_t last_id = -1;
    for (int64_t i = begin; i < end; ++i) {
      const uint64_t w = kept_weight(i);
      mine += w;
      if (w > 0) last_id = static_cast<int32_t>(i);
    }
    const uint64_t before = BlockExclusiveScan(mine, sh.uscratch);
    const uint64_t total = BlockReduce(mine, sh.uscratch, [](uint64_t a, uint64_t b) { return a + b; });
    const double u = SamplingUniform(p.seed, p.output_index);
    const double target = u * static_cast<double>(total);
    if (tid == 0) sh.chosen = -1;
    __syncthreads();
    if (mine > 0 && static_cast<double>(before) <= target &&
        target < static_cast<double>(before + mine)) {
      uint64_t cumulative = before;
      for (int64_t i = begin; i < end; ++i) {
        const uint64_t w = kept_weight(i);
        if (w == 0) continue;
        cumulative += w;
        if (target < static_cast<double>(cumulative)) {
          sh.chosen = static_cast<int32_t>(i);
          break;
        }
      }
    }
    __syncthreads();
    token = sh.chosen;
    if (token < 0) token = BlockReduce(last_id, sh.iscratch, max_op);  // u * total rounded up
    __syncthreads();
  }

  // 5. Undo the edits; the token's logprob is of the raw logit.
  for (int e = tid; e < p.edit_count; e += blockDim.x) x[row_edits[e].id] = row_edits[e].original;
  __syncthreads();
  if (tid == 0) {
    out->status = status;
    out->bad_id = -1;
    out->token = token;
    out->num_top = p.logprobs >= 0 ? num_top : 0;
    out->logprob = p.logprobs >= 0 && token >= 0 ? static_cast<float>(x[token] - log_z) : 0.0f;
  }
}

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_SAMPLING_CUH_
