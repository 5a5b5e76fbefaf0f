// Warp-collective operations of the emulation: shuffles and votes against the PTX shfl.sync
// formulas applied by hand, and the tensor-core instructions against plain matrix products. The
// ldmatrix and mma fragment tables (kernels/emu/fragments.h) were transcribed separately from the
// PTX ISA; loading tiles with ldmatrix in the way the ISA describes and multiplying them with mma
// only gives the plain product when both tables are right. The block-scaled FP4 MMA is fed through
// the FP4 GEMM's own fragment helpers (kernels/nvfp4/prefill_fp4_mma_layout.h, derived from
// CUTLASS), a third, independent reading.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/ldmatrix.h"
#include "kernels/cuda/mma.h"
#include "kernels/cuda/shared_memory.h"
#include "kernels/nvfp4/prefill_fp4_mma_layout.h"
#include "runtime/core/float8.h"
#include "runtime/core/half.h"
#include "tests/unit/kernels/emu/emu_test_util.h"

namespace sparkstack::emu {
namespace {

constexpr unsigned kFull = 0xffffffffu;

__global__ void Shuffles(int* out) {
  const int lane = static_cast<int>(threadIdx.x);
  const int v = 100 + lane;
  out[0 * 32 + lane] = __shfl_xor_sync(kFull, v, 5);
  out[1 * 32 + lane] = __shfl_sync(kFull, v, 3);            // broadcast lane 3
  out[2 * 32 + lane] = __shfl_sync(kFull, v, lane + 2, 8);  // within segments of 8
  out[3 * 32 + lane] = __shfl_up_sync(kFull, v, 3);
  out[4 * 32 + lane] = __shfl_up_sync(kFull, v, 3, 16);
  out[5 * 32 + lane] = __shfl_down_sync(kFull, v, 5);
  out[6 * 32 + lane] = __shfl_down_sync(kFull, v, 5, 8);
  out[7 * 32 + lane] = __shfl_xor_sync(kFull, v, 9, 8);  // xor beyond the segment
  out[8 * 32 + lane] = static_cast<int>(__ballot_sync(kFull, lane % 3 == 0));
  out[9 * 32 + lane] = __any_sync(kFull, lane == 17);
  out[10 * 32 + lane] = __all_sync(kFull, lane < 31);
  const double d = __shfl_xor_sync(kFull, 0.5 + lane, 1);  // 64-bit values move whole
  out[11 * 32 + lane] = static_cast<int>(d * 2);
}

TEST_F(EmuTest, ShufflesAndVotesFollowThePtxFormulas) {
  std::vector<int> out(12 * 32, 0);
  ASSERT_EQ(cuda::LaunchKernel(&Shuffles, 1, 32, 0, nullptr, out.data()), cudaSuccess);
  uint32_t ballot = 0;
  for (int l = 0; l < 32; l += 3) ballot |= 1u << l;
  for (int l = 0; l < 32; ++l) {
    const int seg8 = l & ~7, seg16 = l & ~15;
    EXPECT_EQ(out[0 * 32 + l], 100 + (l ^ 5));
    EXPECT_EQ(out[1 * 32 + l], 103);
    EXPECT_EQ(out[2 * 32 + l], 100 + seg8 + ((l + 2) & 7));
    EXPECT_EQ(out[3 * 32 + l], 100 + (l >= 3 ? l - 3 : l));
    EXPECT_EQ(out[4 * 32 + l], 100 + (l - seg16 >= 3 ? l - 3 : l));
    EXPECT_EQ(out[5 * 32 + l], 100 + (l + 5 <= 31 ? l + 5 : l));
    EXPECT_EQ(out[6 * 32 + l], 100 + (l + 5 <= seg8 + 7 ? l + 5 : l));
    // (l ^ 9) leaves the segment of 8 upwards for l % 16 < 8: those lanes keep their own value.
    EXPECT_EQ(out[7 * 32 + l], 100 + ((l ^ 9) <= seg8 + 7 ? (l ^ 9) : l));
    EXPECT_EQ(static_cast<uint32_t>(out[8 * 32 + l]), ballot);
    EXPECT_EQ(out[9 * 32 + l], 1);
    EXPECT_EQ(out[10 * 32 + l], 0);
    EXPECT_EQ(out[11 * 32 + l], 2 * (l ^ 1) + 1);
  }
}

// C[16x8] = A[16x16] . B[16x8] on one warp: A (row-major) loaded with ldmatrix.x4 as the
// quadrants (rows 0-7 / 8-15) x (k 0-7 / 8-15) in the order a0..a3; B given twice, as Bt
// (rows n, k contiguous: ldmatrix.x2 of k 0-7 and 8-15) and as B (rows k, n contiguous:
// ldmatrix.x2.trans of rows k 0-7 and 8-15); both products must be A . B.
__global__ void LdMatrixMma(const uint16_t* a, const uint16_t* b_nk, const uint16_t* b_kn,
                            float* c_from_nk, float* c_from_kn) {
  uint16_t* s = cuda::DynamicSharedMemory<uint16_t>();
  uint16_t* sa = s;           // [16][16]
  uint16_t* sb_nk = s + 256;  // [8][16]
  uint16_t* sb_kn = s + 384;  // [16][8]
  const int lane = static_cast<int>(threadIdx.x);
  for (int i = lane; i < 256; i += 32) sa[i] = a[i];
  for (int i = lane; i < 128; i += 32) sb_nk[i] = b_nk[i];
  for (int i = lane; i < 128; i += 32) sb_kn[i] = b_kn[i];
  __syncthreads();
  uint32_t af[4], bf[2], bt[2];
  cuda::LdMatrix<4>(af, sa + (lane & 15) * 16 + (lane >> 4) * 8);
  cuda::LdMatrix<2>(bf, sb_nk + (lane & 7) * 16 + ((lane >> 3) & 1) * 8);
  cuda::LdMatrix<2, true>(bt, sb_kn + (lane & 15) * 8);
  float d1[4] = {0, 0, 0, 0}, d2[4] = {1, 1, 1, 1};
  cuda::MmaM16N8K16Bf16(d1, af, bf);
  cuda::MmaM16N8K16Bf16(d2, af, bt);
  const int g = lane >> 2, t = lane & 3;
  for (int e = 0; e < 4; ++e) {
    const int row = g + (e >> 1) * 8, col = 2 * t + (e & 1);
    c_from_nk[row * 8 + col] = d1[e];
    c_from_kn[row * 8 + col] = d2[e] - 1.0f;
  }
}

TEST_F(EmuTest, LdMatrixFragmentsFeedMmaM16N8K16AsThePlainProduct) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> small(-8, 8);  // exact bf16 values and exact f32 sums
  std::vector<uint16_t> a(256), b_nk(128), b_kn(128);
  std::vector<double> af(256), bf(128);
  for (int i = 0; i < 256; ++i) {
    af[i] = small(rng) * 0.25;
    a[i] = FloatToBf16(static_cast<float>(af[i]));
  }
  for (int k = 0; k < 16; ++k) {
    for (int n = 0; n < 8; ++n) {
      bf[k * 8 + n] = small(rng) * 0.5;
      b_kn[k * 8 + n] = FloatToBf16(static_cast<float>(bf[k * 8 + n]));
      b_nk[n * 16 + k] = b_kn[k * 8 + n];
    }
  }
  std::vector<float> c1(128, NAN), c2(128, NAN);
  ASSERT_EQ(cuda::LaunchKernel(&LdMatrixMma, 1, 32, 512 * sizeof(uint16_t), nullptr, a.data(),
                               b_nk.data(), b_kn.data(), c1.data(), c2.data()),
            cudaSuccess);
  for (int m = 0; m < 16; ++m) {
    for (int n = 0; n < 8; ++n) {
      double want = 0;
      for (int k = 0; k < 16; ++k) want += af[m * 16 + k] * bf[k * 8 + n];
      EXPECT_EQ(c1[m * 8 + n], want) << m << "," << n;
      EXPECT_EQ(c2[m * 8 + n], want) << m << "," << n;
    }
  }
}

// One block-scaled FP4 MMA whose fragments come from the FP4 GEMM's layout helpers reading a
// row-major shared tile (16 rows of 64 codes for A, 8 weight rows for B, 4 scale bytes per row);
// the scale registers of the lanes the selectors do not pick hold garbage.
template <int kThreadIdA, int kThreadIdB>
__global__ void Fp4Mma(const uint8_t* a_codes, const uint8_t* a_scales, const uint8_t* b_codes,
                       const uint8_t* b_scales, float* d_out) {
  using namespace sparkstack::kernels::nvfp4;
  uint8_t* s = cuda::DynamicSharedMemory<uint8_t>();
  uint8_t* sa = s;                              // 16 rows x kFp4MmaCodeRowBytes
  uint8_t* sb = s + 16 * kFp4MmaCodeRowBytes;   // 8 rows
  uint8_t* ssa = sb + 8 * kFp4MmaCodeRowBytes;  // 16 rows x kFp4MmaScaleRowBytes
  uint8_t* ssb = ssa + 16 * kFp4MmaScaleRowBytes;
  const int lane = static_cast<int>(threadIdx.x);
  if (lane == 0) {
    for (int r = 0; r < 16; ++r) {
      std::memcpy(sa + r * kFp4MmaCodeRowBytes, a_codes + r * 32, 32);
      std::memcpy(ssa + r * kFp4MmaScaleRowBytes, a_scales + r * 4, 4);
    }
    for (int r = 0; r < 8; ++r) {
      std::memcpy(sb + r * kFp4MmaCodeRowBytes, b_codes + r * 32, 32);
      std::memcpy(ssb + r * kFp4MmaScaleRowBytes, b_scales + r * 4, 4);
    }
  }
  __syncthreads();
  uint32_t a[4], b[2];
  for (int r = 0; r < 4; ++r) a[r] = Fp4LoadWord(sa + Fp4SmemAOffset(0, 0, lane, r));
  for (int r = 0; r < 2; ++r) b[r] = Fp4LoadWord(sb + Fp4SmemBOffset(0, 0, lane, r));
  // Fp4FragSfaRow gives even t row g and odd t row g + 8, so it serves either thread pair.
  const int t = lane & 3;
  const uint32_t sfa =
      t / 2 == kThreadIdA ? Fp4LoadWord(ssa + Fp4SmemSfaOffset(0, 0, lane)) : 0xdeadbeefu;
  const uint32_t sfb =
      t == kThreadIdB ? Fp4LoadWord(ssb + Fp4SmemSfbOffset(0, 0, lane)) : 0xfeedfaceu;
  float d[4] = {0.5f, 0.5f, 0.5f, 0.5f};
  cuda::MmaM16N8K64Fp4BlockScaled<kThreadIdA, kThreadIdB>(d, a, b, sfa, sfb);
  for (int e = 0; e < 4; ++e) {
    d_out[Fp4FragDRow(lane, e) * 8 + Fp4FragDCol(lane, e)] = d[e] - 0.5f;
  }
}

template <int kThreadIdA, int kThreadIdB>
void CheckFp4Mma(uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> scale(0x20, 0x48);  // e4m3 2^-3 .. 2^2
  std::vector<uint8_t> a_codes(16 * 32), b_codes(8 * 32), a_scales(16 * 4), b_scales(8 * 4);
  for (auto& v : a_codes) v = static_cast<uint8_t>(byte(rng));
  for (auto& v : b_codes) v = static_cast<uint8_t>(byte(rng));
  for (auto& v : a_scales) v = static_cast<uint8_t>(scale(rng));
  for (auto& v : b_scales) v = static_cast<uint8_t>(scale(rng));
  const auto code = [](const std::vector<uint8_t>& c, int row, int k) {
    const uint8_t b = c[row * 32 + k / 2];
    return static_cast<uint8_t>(k % 2 == 0 ? b & 0xf : b >> 4);
  };
  std::vector<float> d(128, NAN);
  const size_t smem = 24 * sparkstack::kernels::nvfp4::kFp4MmaCodeRowBytes +
                      24 * sparkstack::kernels::nvfp4::kFp4MmaScaleRowBytes;
  ASSERT_EQ(
      cuda::LaunchKernel(&Fp4Mma<kThreadIdA, kThreadIdB>, 1, 32, smem, nullptr, a_codes.data(),
                         a_scales.data(), b_codes.data(), b_scales.data(), d.data()),
      cudaSuccess)
      << LastKernelFailure();
  for (int m = 0; m < 16; ++m) {
    for (int n = 0; n < 8; ++n) {
      double want = 0;
      for (int k = 0; k < 64; ++k) {
        want += double{E2M1ToFloat(code(a_codes, m, k))} * E4M3ToFloat(a_scales[m * 4 + k / 16]) *
                E2M1ToFloat(code(b_codes, n, k)) * E4M3ToFloat(b_scales[n * 4 + k / 16]);
      }
      EXPECT_NEAR(d[m * 8 + n], want, 1e-6 * (1 + std::fabs(want))) << m << "," << n;
    }
  }
}

TEST_F(EmuTest, BlockScaledFp4MmaComputesTheScaledProduct) {
  CheckFp4Mma<0, 0>(11);
  CheckFp4Mma<1, 0>(12);
  CheckFp4Mma<0, 3>(13);
  CheckFp4Mma<1, 2>(14);
}

__global__ void LdMatrixOutsideShared(uint32_t* out) {
  uint8_t* s = cuda::DynamicSharedMemory<uint8_t>();
  uint32_t r[1];
  // Lane 7's row starts 16 bytes before the end of a 128-byte array: fine; lane 7 of a 112-byte
  // array would run past it.
  cuda::LdMatrix<1>(r, s + (threadIdx.x & 7) * 16);
  out[threadIdx.x] = r[0];
}

TEST_F(EmuTest, LdMatrixRowsMustLieInSharedMemory) {
  std::vector<uint32_t> out(32);
  ASSERT_EQ(cuda::LaunchKernel(&LdMatrixOutsideShared, 1, 32, 128, nullptr, out.data()),
            cudaSuccess);
  EXPECT_EQ(out[0], 0xffffffffu) << "never written: poison";
  ExpectFailure(cuda::LaunchKernel(&LdMatrixOutsideShared, 1, 32, 112, nullptr, out.data()),
                cudaErrorIllegalAddress, "shared memory");
}

__global__ void MmaInDivergentCode(float* out) {
  uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
  float d[4] = {0, 0, 0, 0};
  if (threadIdx.x == 31) return;  // mma needs every lane of the warp
  cuda::MmaM16N8K16Bf16(d, a, b);
  out[threadIdx.x] = d[0];
}

TEST_F(EmuTest, MmaWithAnExitedLaneFailsTheLaunch) {
  std::vector<float> out(32);
  ExpectFailure(cuda::LaunchKernel(&MmaInDivergentCode, 1, 32, 0, nullptr, out.data()),
                cudaErrorLaunchFailure, "every lane");
}

}  // namespace
}  // namespace sparkstack::emu
