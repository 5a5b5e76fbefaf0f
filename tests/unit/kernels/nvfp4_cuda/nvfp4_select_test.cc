// Variant selection, shared-memory budgets and launch geometry of the NVFP4 CUDA kernels, checked
// without a GPU (all pure functions of DeviceInfo / GemmArgs).
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/nvfp4/bit_tricks.h"
#include "kernels/nvfp4/launch_config.h"
#include "kernels/nvfp4/selector.h"
#include "runtime/core/float8.h"
#include "runtime/core/half.h"

namespace sparkstack::kernels::nvfp4 {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Published per-block opt-in shared-memory limits.
constexpr DeviceInfo kH100{9, 0, 232448, 132};
constexpr DeviceInfo kA100{8, 0, 166912, 108};
constexpr DeviceInfo kGb10{12, 1, 101376, 48};
constexpr DeviceInfo kTuring{7, 5, 65536, 40};

// The kernels' decode tricks, checked exhaustively against the scalar decoders of float8.h.
template <int J>
void CheckPair(uint32_t q) {
  const uint32_t h = E2M1PairAsHalfBits<J>(q);
  const float lo = F16ToFloat(static_cast<uint16_t>(h & 0xffff));
  const float hi = F16ToFloat(static_cast<uint16_t>(h >> 16));
  const float want_lo = std::ldexp(E2M1ToFloat((q >> (4 * J)) & 0xf), -14);
  const float want_hi = std::ldexp(E2M1ToFloat((q >> (4 * (J + 4))) & 0xf), -14);
  ASSERT_EQ(lo, want_lo) << std::hex << q << " J=" << J;
  ASSERT_EQ(hi, want_hi) << std::hex << q << " J=" << J;
  ASSERT_EQ(std::signbit(lo), std::signbit(want_lo)) << std::hex << q;
  ASSERT_EQ(std::signbit(hi), std::signbit(want_hi)) << std::hex << q;
}

TEST(Nvfp4BitTricks, E2M1PairsDecodeExactly) {
  std::mt19937 rng(5);
  for (uint32_t a = 0; a < 16; ++a) {
    for (uint32_t b = 0; b < 16; ++b) {
      for (int rep = 0; rep < 8; ++rep) {
        const uint32_t noise = rng();
        for (int j = 0; j < 4; ++j) {
          // Codes a at element j and b at element j + 4, random codes elsewhere.
          uint32_t q = noise;
          q &= ~((0xfu << (4 * j)) | (0xfu << (4 * (j + 4))));
          q |= (a << (4 * j)) | (b << (4 * (j + 4)));
          switch (j) {
            case 0: CheckPair<0>(q); break;
            case 1: CheckPair<1>(q); break;
            case 2: CheckPair<2>(q); break;
            case 3: CheckPair<3>(q); break;
          }
        }
      }
    }
  }
}

TEST(Nvfp4BitTricks, E4M3ScalesDecodeExactly) {
  for (uint32_t b = 0; b < 256; ++b) {
    if ((b & 0x7f) == 0x7f) continue;  // NaN encodings are not scales
    const float got = F16ToFloat(static_cast<uint16_t>(E4M3AsHalfBits(b)));
    EXPECT_EQ(got, std::ldexp(E4M3ToFloat(static_cast<uint8_t>(b)), -8)) << b;
  }
}

TEST(Nvfp4BitTricks, DequantizedProductsAreExactInBf16) {
  // The prefill kernel stores code * scale * 2^-22 as bf16 and relies on it being exact.
  for (uint32_t c = 0; c < 16; ++c) {
    for (uint32_t b = 0; b < 256; ++b) {
      if ((b & 0x7f) == 0x7f) continue;
      const float v = std::ldexp(E2M1ToFloat(static_cast<uint8_t>(c)), -14) *
                      std::ldexp(E4M3ToFloat(static_cast<uint8_t>(b)), -8);
      ASSERT_EQ(Bf16ToFloat(FloatToBf16(v)), v) << c << " " << b;
      ASSERT_EQ(std::ldexp(v, 22), E2M1ToFloat(static_cast<uint8_t>(c)) *
                                       E4M3ToFloat(static_cast<uint8_t>(b)));
    }
  }
}

TEST(Nvfp4SmemBudget, EveryTileFitsGb10) {
  // Recomputed here from the layout described in prefill_gemm.cuh: per stage a padded bf16 x tile
  // (72 elements per row), 32 bytes of codes and 4 scale bytes per weight row; one padded bf16
  // dequantized weight tile.
  const auto bytes = [](int bm, int bn, int stages) {
    return stages * (bm * 72 * 2 + bn * 32 + bn * 4) + bn * 72 * 2;
  };
  EXPECT_EQ(PrefillSmemBytes(kPrefillTileLarge), bytes(128, 128, 3));
  EXPECT_EQ(PrefillSmemBytes(kPrefillTileSmall), bytes(64, 128, 2));
  for (Variant v : {Variant::kDecodeSimt, Variant::kPrefillMmaLarge, Variant::kPrefillMmaSmall}) {
    EXPECT_LE(VariantSmemBytes(v), 101376) << VariantName(v);
  }
  EXPECT_LE(VariantSmemBytes(Variant::kPrefillMmaSmall), 48 * 1024);
  EXPECT_EQ(VariantSmemBytes(Variant::kDecodeSimt), 0);
}

TEST(Nvfp4Selector, PreferenceOrderOnKnownDevices) {
  const SelectOptions none;
  for (const DeviceInfo& d : {kH100, kA100, kGb10}) {
    EXPECT_THAT(CandidateVariants(GemmOp::kPrefill, d, none),
                ElementsAre(Variant::kPrefillMmaLarge, Variant::kPrefillMmaSmall,
                            Variant::kDecodeSimt));
    EXPECT_THAT(CandidateVariants(GemmOp::kDecode, d, none), ElementsAre(Variant::kDecodeSimt));
  }
}

TEST(Nvfp4Selector, UnsupportedDeviceHasNoCandidates) {
  EXPECT_FALSE(DeviceSupported(kTuring));
  EXPECT_THAT(CandidateVariants(GemmOp::kPrefill, kTuring, {}), IsEmpty());
  EXPECT_THAT(CandidateVariants(GemmOp::kDecode, kTuring, {}), IsEmpty());
}

TEST(Nvfp4Selector, SharedMemoryCapDropsTilesThatDoNotFit) {
  SelectOptions gb10_cap;
  gb10_cap.smem_cap_bytes = 101376;
  EXPECT_EQ(EffectiveSmemLimit(kH100, gb10_cap), 101376);
  EXPECT_EQ(EffectiveSmemLimit(kH100, {}), 232448);
  EXPECT_THAT(CandidateVariants(GemmOp::kPrefill, kH100, gb10_cap),
              ElementsAre(Variant::kPrefillMmaLarge, Variant::kPrefillMmaSmall,
                          Variant::kDecodeSimt));

  SelectOptions cap;
  cap.smem_cap_bytes = PrefillSmemBytes(kPrefillTileLarge) - 1;
  EXPECT_THAT(CandidateVariants(GemmOp::kPrefill, kH100, cap),
              ElementsAre(Variant::kPrefillMmaSmall, Variant::kDecodeSimt));
  cap.smem_cap_bytes = PrefillSmemBytes(kPrefillTileSmall) - 1;
  EXPECT_THAT(CandidateVariants(GemmOp::kPrefill, kH100, cap), ElementsAre(Variant::kDecodeSimt));

  // A device whose own limit is small behaves like a cap.
  DeviceInfo small = kA100;
  small.max_smem_per_block_optin = 49152;
  EXPECT_THAT(CandidateVariants(GemmOp::kPrefill, small, {}),
              ElementsAre(Variant::kPrefillMmaSmall, Variant::kDecodeSimt));
  // A cap above the device limit changes nothing.
  cap.smem_cap_bytes = 1 << 20;
  EXPECT_EQ(EffectiveSmemLimit(kGb10, cap), 101376);
}

TEST(Nvfp4Selector, ParseSmemCap) {
  EXPECT_EQ(ParseSmemCap(nullptr).value(), 0);
  EXPECT_EQ(ParseSmemCap("").value(), 0);
  EXPECT_EQ(ParseSmemCap("101376").value(), 101376);
  for (const char* bad : {"abc", "12", "-5", "101376x", "99999999999"}) {
    const auto r = ParseSmemCap(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("SPARKSTACK_SMEM_CAP_BYTES"));
  }
}

TEST(Nvfp4Selector, FallsBackToTheFirstPassingVariant) {
  const std::vector<Variant> candidates = {Variant::kPrefillMmaLarge, Variant::kPrefillMmaSmall,
                                           Variant::kDecodeSimt};
  std::vector<Variant> tried;
  const auto result = SelectFirstPassing(candidates, [&](Variant v) {
    tried.push_back(v);
    return v == Variant::kPrefillMmaLarge ? absl::InternalError("error 0.5 > 0.001")
                                          : absl::OkStatus();
  });
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, Variant::kPrefillMmaSmall);
  EXPECT_THAT(tried, ElementsAre(Variant::kPrefillMmaLarge, Variant::kPrefillMmaSmall));
}

TEST(Nvfp4Selector, AllFailingIsAnErrorNamingEachVariant) {
  const auto result = SelectFirstPassing(
      {Variant::kPrefillMmaSmall, Variant::kDecodeSimt},
      [](Variant v) { return absl::InternalError(std::string("bad ") + std::string(VariantName(v))); });
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(result.status().message());
  EXPECT_THAT(message, HasSubstr("prefill_mma_64x128: bad prefill_mma_64x128"));
  EXPECT_THAT(message, HasSubstr("decode_simt: bad decode_simt"));

  const auto empty = SelectFirstPassing({}, [](Variant) { return absl::OkStatus(); });
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("no kernel variant"));
}

// Fake, suitably aligned device addresses: validation never dereferences them.
GemmArgs ValidArgs() {
  GemmArgs a;
  a.x = reinterpret_cast<const void*>(uintptr_t{0x10000});
  a.codes = reinterpret_cast<const uint8_t*>(uintptr_t{0x20000});
  a.scales = reinterpret_cast<const uint8_t*>(uintptr_t{0x30001});  // scales need no alignment
  a.y = reinterpret_cast<void*>(uintptr_t{0x40002});
  a.m = 3;
  a.n = 37;
  a.k = 208;
  a.ldx = 208;
  a.ldw = 104;
  a.lds = 13;
  a.ldy = 37;
  return a;
}

TEST(Nvfp4Validate, AcceptsOddSizesAndRejectsBrokenLayouts) {
  EXPECT_EQ(ValidateGemmArgs(ValidArgs()), nullptr);
  const auto rejects = [](auto mutate, const char* needle) {
    GemmArgs a = ValidArgs();
    mutate(a);
    const char* error = ValidateGemmArgs(a);
    ASSERT_NE(error, nullptr) << needle;
    EXPECT_THAT(std::string(error), HasSubstr(needle));
  };
  rejects([](GemmArgs& a) { a.k = 200; a.ldx = 200; }, "multiple of 16");
  rejects([](GemmArgs& a) { a.m = 0; }, ">= 1");
  rejects([](GemmArgs& a) { a.ldx = 204; }, "ldx");
  rejects([](GemmArgs& a) { a.ldw = 100; }, "ldw");
  rejects([](GemmArgs& a) { a.ldw = 108; }, "ldw");
  rejects([](GemmArgs& a) { a.lds = 12; }, "lds");
  rejects([](GemmArgs& a) { a.ldy = 36; }, "ldy");
  rejects([](GemmArgs& a) { a.x = reinterpret_cast<const void*>(uintptr_t{0x10008}); }, "x must");
  rejects([](GemmArgs& a) { a.codes = reinterpret_cast<const uint8_t*>(uintptr_t{0x20004}); },
          "codes must");
  rejects([](GemmArgs& a) { a.y = nullptr; }, "non-null");
}

TEST(Nvfp4Plan, DecodeGeometry) {
  GemmArgs a = ValidArgs();
  DecodeLaunch l = PlanDecode(a);
  EXPECT_EQ(l.block, kDecodeWarps * 32);
  EXPECT_EQ(l.grid_x, (37 + kDecodeRowsPerBlock - 1) / kDecodeRowsPerBlock);
  EXPECT_EQ(l.m_tile, 4);
  EXPECT_EQ(l.grid_y, 1);
  EXPECT_FALSE(l.vec16);  // 104-byte rows are not 16-byte aligned
  a.ldw = 112;
  EXPECT_TRUE(PlanDecode(a).vec16);
  a.codes = reinterpret_cast<const uint8_t*>(uintptr_t{0x20008});
  EXPECT_FALSE(PlanDecode(a).vec16);

  for (int64_t m : {1, 2, 3, 7, 16}) {
    a.m = m;
    l = PlanDecode(a);
    EXPECT_GE(l.m_tile, m);
    EXPECT_LT(l.m_tile, 2 * m) << m;
    EXPECT_EQ(l.grid_y, 1);
  }
  a.m = 40;
  l = PlanDecode(a);
  EXPECT_EQ(l.m_tile, 16);
  EXPECT_EQ(l.grid_y, 3);
  // Every row is covered exactly once: grid rows >= n > grid rows minus one block.
  for (int64_t n : {1, 7, 8, 9, 18432, 106497}) {
    a.n = n;
    l = PlanDecode(a);
    EXPECT_GE(int64_t{l.grid_x} * kDecodeRowsPerBlock, n);
    EXPECT_LT(int64_t{l.grid_x - 1} * kDecodeRowsPerBlock, n);
  }
}

TEST(Nvfp4Plan, PrefillGeometry) {
  GemmArgs a = ValidArgs();
  a.m = 130;
  a.n = 257;
  const PrefillLaunch large = PlanPrefill(a, kPrefillTileLarge);
  EXPECT_EQ(large.grid_x, 3);  // ceil(257 / 128)
  EXPECT_EQ(large.grid_y, 2);  // ceil(130 / 128)
  EXPECT_EQ(large.block, 256);
  EXPECT_EQ(large.smem_bytes, PrefillSmemBytes(kPrefillTileLarge));
  const PrefillLaunch small = PlanPrefill(a, kPrefillTileSmall);
  EXPECT_EQ(small.grid_y, 3);  // ceil(130 / 64)
}

}  // namespace
}  // namespace sparkstack::kernels::nvfp4
