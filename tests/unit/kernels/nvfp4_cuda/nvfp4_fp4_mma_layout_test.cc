// Host checks (no GPU) of the data layouts of the sm_121a W4A4 prefill GEMM
// (kernels/nvfp4/prefill_fp4_mma_layout.h):
//   * the fragment helpers cover every element of A, B, D and of the scale operands exactly once;
//   * fragment loads are 4-byte aligned, bank-conflict free and stay inside their smem regions.
// The whole kernel, helpers included, runs on the CUDA emulation against the float64 W4A4
// reference in nvfp4_emulated_test.cc; whether the hardware agrees can only be checked on a GB10
// (nvfp4_fp4_mma_test.cc).
#include <cstdint>
#include <set>
#include <utility>

#include "gtest/gtest.h"
#include "kernels/nvfp4/prefill_fp4_mma_layout.h"

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

}  // namespace
}  // namespace sparkstack::kernels::nvfp4
