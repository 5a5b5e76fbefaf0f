// Host checks (no GPU) of the data layouts of the sm_121a W4A4 prefill GEMM
// (kernels/nvfp4/prefill_fp4_mma_layout.h):
//   * the fragment helpers cover every element of A, B, D and of the scale operands exactly once;
//   * fragment loads are 4-byte aligned, bank-conflict free and stay inside their smem regions;
//   * an emulation of the kernel's block tile (staging with the kernel's item mapping, then the
//     m16n8k64 block-scaled MMAs, each executed by an emulator written from the PTX fragment
//     description of /work/shared/NVFP4.md) equals Nvfp4W4A4GemmReference in float64.
// This proves the helpers and the documented layout agree with each other; whether the hardware
// agrees with the documented layout can only be checked on a GB10 (nvfp4_fp4_mma_test.cc).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/nvfp4_reference.h"
#include "kernels/nvfp4/prefill_fp4_mma_layout.h"
#include "runtime/core/float8.h"

namespace sparkstack::kernels::nvfp4 {
namespace {

TEST(Fp4MmaLayout, AFragmentsCoverTheTileOnce) {
  std::set<std::pair<int, int>> seen;  // (row, k)
  for (int lane = 0; lane < 32; ++lane) {
    for (int reg = 0; reg < 4; ++reg) {
      for (int i = 0; i < 8; ++i) {
        const int row = Fp4FragARow(lane, reg);
        const int k = Fp4FragAK(lane, reg) + i;
        ASSERT_GE(row, 0);
        ASSERT_LT(row, 16);
        ASSERT_LT(k, 64);
        EXPECT_TRUE(seen.insert({row, k}).second) << "lane " << lane << " reg " << reg;
      }
    }
  }
  EXPECT_EQ(seen.size(), 16u * 64u);
}

TEST(Fp4MmaLayout, BFragmentsCoverTheTileOnce) {
  std::set<std::pair<int, int>> seen;  // (col, k)
  for (int lane = 0; lane < 32; ++lane) {
    for (int reg = 0; reg < 2; ++reg) {
      for (int i = 0; i < 8; ++i) {
        const int col = Fp4FragBCol(lane);
        const int k = Fp4FragBK(lane, reg) + i;
        ASSERT_LT(col, 8);
        ASSERT_LT(k, 64);
        EXPECT_TRUE(seen.insert({col, k}).second);
      }
    }
  }
  EXPECT_EQ(seen.size(), 8u * 64u);
}

TEST(Fp4MmaLayout, AccumulatorsCoverTheTileOnce) {
  std::set<std::pair<int, int>> seen;
  for (int lane = 0; lane < 32; ++lane) {
    for (int e = 0; e < 4; ++e) {
      EXPECT_TRUE(seen.insert({Fp4FragDRow(lane, e), Fp4FragDCol(lane, e)}).second);
    }
  }
  EXPECT_EQ(seen.size(), 16u * 8u);
  for (const auto& [row, col] : seen) {
    EXPECT_LT(row, 16);
    EXPECT_LT(col, 8);
  }
}

TEST(Fp4MmaLayout, ScaleLanesProvideEveryRowOnce) {
  std::set<int> sfa_rows, sfb_cols;
  for (int lane = 0; lane < 32; ++lane) {
    // Every lane of a group provides the row of the group's lane that the instruction reads.
    EXPECT_EQ(Fp4FragSfaRow(lane), Fp4FragSfaRow((lane & ~3) | (lane & 1)));
    EXPECT_EQ(Fp4FragSfbCol(lane), Fp4FragSfbCol(lane & ~3));
    if (Fp4SfaLaneIsRead(lane)) {
      EXPECT_TRUE(sfa_rows.insert(Fp4FragSfaRow(lane)).second);
    }
    if (Fp4SfbLaneIsRead(lane)) {
      EXPECT_TRUE(sfb_cols.insert(Fp4FragSfbCol(lane)).second);
    }
  }
  EXPECT_EQ(sfa_rows.size(), 16u);
  EXPECT_EQ(sfb_cols.size(), 8u);
}

TEST(Fp4MmaLayout, SharedMemoryFitsGb10AndLoadsAreAlignedAndConflictFree) {
  static_assert(Fp4MmaSmemBytes() <= 101376);
  EXPECT_EQ(Fp4MmaSmemBytes(), kFp4MmaSmemBScales + kFp4MmaBN * kFp4MmaScaleRowBytes);
  for (int s = 0; s < 2; ++s) {
    for (int reg = 0; reg < 4; ++reg) {
      std::set<int> a_banks, b_banks;
      for (int lane = 0; lane < 32; ++lane) {
        const int a = Fp4SmemAOffset(0, s, lane, reg);
        EXPECT_EQ(a % 4, 0);
        a_banks.insert((a / 4) % 32);
        if (reg < 2) {
          const int b = Fp4SmemBOffset(0, s, lane, reg);
          EXPECT_EQ(b % 4, 0);
          b_banks.insert((b / 4) % 32);
        }
      }
      EXPECT_EQ(a_banks.size(), 32u) << "A register " << reg << " has bank conflicts";
      if (reg < 2) {
        EXPECT_EQ(b_banks.size(), 32u) << "B register " << reg << " has bank conflicts";
      }
    }
  }
  // The last tile of the block stays inside its region, with room for the 4-byte load.
  for (int lane = 0; lane < 32; ++lane) {
    EXPECT_LE(Fp4SmemAOffset(kFp4MmaBM - 16, 1, lane, 3) + 4, kFp4MmaBM * kFp4MmaCodeRowBytes);
    EXPECT_LE(Fp4SmemBOffset(kFp4MmaBN - 8, 1, lane, 1) + 4, kFp4MmaBN * kFp4MmaCodeRowBytes);
    EXPECT_LE(Fp4SmemSfaOffset(kFp4MmaBM - 16, 1, lane) + 4, kFp4MmaBM * kFp4MmaScaleRowBytes);
    EXPECT_LE(Fp4SmemSfbOffset(kFp4MmaBN - 8, 1, lane) + 4, kFp4MmaBN * kFp4MmaScaleRowBytes);
    // Data bytes only: a fragment never reads the 16 pad bytes of a code row.
    EXPECT_LT(Fp4SmemAOffset(0, 1, lane, 3) % kFp4MmaCodeRowBytes, kFp4MmaBK / 2);
  }
}

// The m16n8k64 block-scaled MMA as the PTX fragment description states it, written out
// independently of the helpers: lane l = 4g + t; a0 row g k 8t.., a1 row g+8, a2 row g k 32+8t..,
// a3 row g+8 k 32+8t..; b0 col g k 8t.., b1 col g k 32+8t..; d0,d1 row g cols 2t,2t+1; d2,d3
// row g+8; SFA of row g from lane 4g, of row g+8 from lane 4g+1; SFB of col g from lane 4g; byte
// j of a scale register scales k in [16j, 16j+16). Accumulates in float64.
void EmulateMma(const uint32_t (&a)[32][4], const uint32_t (&b)[32][2], const uint32_t (&sfa)[32],
                const uint32_t (&sfb)[32], double (&d)[32][4]) {
  double am[16][64], bm[8][64], sa[16][4], sb[8][4];
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    for (int i = 0; i < 8; ++i) {
      am[g][8 * t + i] = kE2M1Values[(a[l][0] >> (4 * i)) & 0xf];
      am[g + 8][8 * t + i] = kE2M1Values[(a[l][1] >> (4 * i)) & 0xf];
      am[g][32 + 8 * t + i] = kE2M1Values[(a[l][2] >> (4 * i)) & 0xf];
      am[g + 8][32 + 8 * t + i] = kE2M1Values[(a[l][3] >> (4 * i)) & 0xf];
      bm[g][8 * t + i] = kE2M1Values[(b[l][0] >> (4 * i)) & 0xf];
      bm[g][32 + 8 * t + i] = kE2M1Values[(b[l][1] >> (4 * i)) & 0xf];
    }
    for (int j = 0; j < 4; ++j) {
      const auto byte = [](uint32_t r, int j) { return static_cast<uint8_t>(r >> (8 * j)); };
      if (t == 0) sa[g][j] = E4M3ToFloat(byte(sfa[l], j));
      if (t == 1) sa[g + 8][j] = E4M3ToFloat(byte(sfa[l], j));
      if (t == 0) sb[g][j] = E4M3ToFloat(byte(sfb[l], j));
    }
  }
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    for (int e = 0; e < 4; ++e) {
      const int row = g + (e >= 2 ? 8 : 0);
      const int col = 2 * t + (e & 1);
      double sum = 0.0;
      for (int k = 0; k < 64; ++k) sum += am[row][k] * sa[row][k / 16] * bm[col][k] * sb[col][k / 16];
      d[l][e] += sum;
    }
  }
}

// One block tile of the kernel emulated on the host at odd sizes: m and n below the tile (rows
// and columns out of range), k with a partial last slice. Activation codes come from the float64
// reference quantizer (the device quantizer is checked on hardware); the staging loop uses the
// kernel's item mapping and zero fill, the MMA loop the kernel's offsets and warp layout.
TEST(Fp4MmaLayout, EmulatedBlockTileMatchesW4A4Reference) {
  const int64_t m = 101, n = 77, k = 336;  // k = 21 blocks of 16: 2 full slices + 5 blocks
  std::mt19937 rng(11);
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<float> x(m * k), w(n * k);
  for (float& v : x) v = static_cast<float>(dist(rng));
  for (float& v : w) v = static_cast<float>(dist(rng) * 0.05);
  float amax = 0.0f;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  const float input_scale = amax / (6.0f * 448.0f);

  std::vector<uint8_t> xc(m * k / 2), xs(m * k / 16), wc(n * k / 2), ws(n * k / 16);
  float global = 0.0f;
  Nvfp4QuantizeActivationReference(x.data(), m, k, k, input_scale, xc.data(), k / 2, xs.data(),
                                   k / 16);
  Nvfp4QuantizeWeightReference(w.data(), n, k, k, wc.data(), k / 2, ws.data(), k / 16, &global);
  std::vector<double> ref(m * n);
  Nvfp4W4A4GemmReference(xc.data(), k / 2, xs.data(), k / 16, input_scale, m, k, wc.data(), k / 2,
                         ws.data(), k / 16, global, n, ref.data(), n);

  std::vector<uint8_t> smem(Fp4MmaSmemBytes());
  std::vector<double> acc(kFp4MmaThreads * 64, 0.0);  // [thread][i][j][e]
  constexpr int kBlocksPerRow = kFp4MmaBK / 16;
  for (int64_t k0 = 0; k0 < k; k0 += kFp4MmaBK) {
    const int64_t kb0 = k0 / 16;
    std::fill(smem.begin(), smem.end(), 0xAB);  // garbage in the pads: must never be read
    for (int tid = 0; tid < kFp4MmaThreads; ++tid) {
      for (int it = 0; it < kFp4MmaBM * kBlocksPerRow / kFp4MmaThreads; ++it) {
        const int item = tid + it * kFp4MmaThreads;
        const int row = item / kBlocksPerRow, blk = item % kBlocksPerRow;
        const bool k_ok = kb0 + blk < k / 16;
        uint8_t* a_codes = &smem[kFp4MmaSmemACodes + row * kFp4MmaCodeRowBytes + blk * 8];
        uint8_t* a_scale = &smem[kFp4MmaSmemAScales + row * kFp4MmaScaleRowBytes + blk];
        uint8_t* b_codes = &smem[kFp4MmaSmemBCodes + row * kFp4MmaCodeRowBytes + blk * 8];
        uint8_t* b_scale = &smem[kFp4MmaSmemBScales + row * kFp4MmaScaleRowBytes + blk];
        std::memset(a_codes, 0, 8);
        *a_scale = 0;
        std::memset(b_codes, 0, 8);
        *b_scale = 0;
        if (k_ok && row < m) {
          std::memcpy(a_codes, &xc[row * (k / 2) + (kb0 + blk) * 8], 8);
          *a_scale = xs[row * (k / 16) + kb0 + blk];
        }
        if (k_ok && row < n) {
          std::memcpy(b_codes, &wc[row * (k / 2) + (kb0 + blk) * 8], 8);
          *b_scale = ws[row * (k / 16) + kb0 + blk];
        }
      }
    }
    for (int warp = 0; warp < kFp4MmaThreads / 32; ++warp) {
      const int wm = warp / (kFp4MmaBN / kFp4MmaWarpN), wn = warp % (kFp4MmaBN / kFp4MmaWarpN);
      for (int s = 0; s < 2; ++s) {
        for (int i = 0; i < 4; ++i) {
          for (int j = 0; j < 4; ++j) {
            uint32_t a[32][4], b[32][2], sfa[32], sfb[32];
            double d[32][4] = {};
            const int arow0 = wm * kFp4MmaWarpM + 16 * i, brow0 = wn * kFp4MmaWarpN + 8 * j;
            for (int lane = 0; lane < 32; ++lane) {
              for (int r = 0; r < 4; ++r) {
                a[lane][r] = Fp4LoadWord(&smem[kFp4MmaSmemACodes + Fp4SmemAOffset(arow0, s, lane, r)]);
              }
              for (int r = 0; r < 2; ++r) {
                b[lane][r] = Fp4LoadWord(&smem[kFp4MmaSmemBCodes + Fp4SmemBOffset(brow0, s, lane, r)]);
              }
              sfa[lane] = Fp4LoadWord(&smem[kFp4MmaSmemAScales + Fp4SmemSfaOffset(arow0, s, lane)]);
              sfb[lane] = Fp4LoadWord(&smem[kFp4MmaSmemBScales + Fp4SmemSfbOffset(brow0, s, lane)]);
            }
            EmulateMma(a, b, sfa, sfb, d);
            for (int lane = 0; lane < 32; ++lane) {
              for (int e = 0; e < 4; ++e) acc[(warp * 32 + lane) * 64 + (i * 4 + j) * 4 + e] += d[lane][e];
            }
          }
        }
      }
    }
  }
  // Epilogue with the kernel's mapping; every in-range output written exactly once.
  const double alpha = static_cast<double>(input_scale) * global;
  std::vector<double> y(m * n, NAN);
  for (int tid = 0; tid < kFp4MmaThreads; ++tid) {
    const int lane = tid % 32, warp = tid / 32;
    const int wm = warp / (kFp4MmaBN / kFp4MmaWarpN), wn = warp % (kFp4MmaBN / kFp4MmaWarpN);
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 4; ++j) {
        for (int e = 0; e < 4; ++e) {
          const int row = wm * kFp4MmaWarpM + 16 * i + Fp4FragDRow(lane, e);
          const int col = wn * kFp4MmaWarpN + 8 * j + Fp4FragDCol(lane, e);
          if (row < m && col < n) {
            ASSERT_TRUE(std::isnan(y[row * n + col])) << "written twice: " << row << "," << col;
            y[row * n + col] = alpha * acc[tid * 64 + (i * 4 + j) * 4 + e];
          }
        }
      }
    }
  }
  double diff = 0.0, norm = 0.0;
  for (int64_t i = 0; i < m * n; ++i) {
    ASSERT_FALSE(std::isnan(y[i])) << "output " << i << " never written";
    diff += (y[i] - ref[i]) * (y[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  ASSERT_GT(norm, 0.0);
  EXPECT_LT(std::sqrt(diff / norm), 1e-12);
}

}  // namespace
}  // namespace sparkstack::kernels::nvfp4
