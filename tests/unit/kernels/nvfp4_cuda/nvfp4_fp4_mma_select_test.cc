// Selection of the opt-in sm_121a FP4 MMA prefill variant (kPrefillFp4Mma): plain C++, no GPU.
// It is unverified on GB10 hardware, so it must never be offered unless enabled
// (SPARKSTACK_ENABLE_FP4_MMA=1), and never on devices without block-scaled FP4 mma.sync.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/nvfp4/launch_config.h"
#include "kernels/nvfp4/prefill_fp4_mma_layout.h"
#include "kernels/nvfp4/selector.h"

namespace sparkstack::kernels::nvfp4 {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Not;

constexpr DeviceInfo kGb10{12, 1, 101376, 48};
constexpr DeviceInfo kH100{9, 0, 232448, 132};
constexpr DeviceInfo kA100{8, 0, 166912, 108};

SelectOptions Enabled() {
  SelectOptions o;
  o.enable_fp4_mma = true;
  return o;
}

TEST(Nvfp4Fp4MmaSelector, NotOfferedWithoutTheOptIn) {
  for (const DeviceInfo& d : {kGb10, kH100, kA100}) {
    EXPECT_THAT(CandidateVariants(GemmOp::kPrefill, d, {}), Not(Contains(Variant::kPrefillFp4Mma)));
    EXPECT_THAT(CandidateVariants(GemmOp::kDecode, d, {}), Not(Contains(Variant::kPrefillFp4Mma)));
  }
  // W4A16 stays the default on GB10.
  EXPECT_THAT(CandidateVariants(GemmOp::kPrefill, kGb10, {}),
              ElementsAre(Variant::kPrefillMmaLarge, Variant::kPrefillMmaSmall,
                          Variant::kDecodeSimt));
}

TEST(Nvfp4Fp4MmaSelector, OfferedFirstOnGb10WhenEnabled) {
  EXPECT_THAT(CandidateVariants(GemmOp::kPrefill, kGb10, Enabled()),
              ElementsAre(Variant::kPrefillFp4Mma, Variant::kPrefillMmaLarge,
                          Variant::kPrefillMmaSmall, Variant::kDecodeSimt));
  // Decode keeps the W4A16 GEMV.
  EXPECT_THAT(CandidateVariants(GemmOp::kDecode, kGb10, Enabled()),
              ElementsAre(Variant::kDecodeSimt));
  // Under the GB10 cap it still fits.
  SelectOptions capped = Enabled();
  capped.smem_cap_bytes = 101376;
  EXPECT_EQ(CandidateVariants(GemmOp::kPrefill, kGb10, capped).front(), Variant::kPrefillFp4Mma);
}

TEST(Nvfp4Fp4MmaSelector, NeverOfferedOnHopperOrAmpere) {
  for (const DeviceInfo& d : {kH100, kA100}) {
    EXPECT_THAT(CandidateVariants(GemmOp::kPrefill, d, Enabled()),
                Not(Contains(Variant::kPrefillFp4Mma)));
  }
}

TEST(Nvfp4Fp4MmaSelector, SharedMemoryAndName) {
  EXPECT_EQ(VariantSmemBytes(Variant::kPrefillFp4Mma), Fp4MmaSmemBytes());
  EXPECT_LE(VariantSmemBytes(Variant::kPrefillFp4Mma), kGb10MaxSmemPerBlock);
  EXPECT_EQ(VariantName(Variant::kPrefillFp4Mma), "prefill_fp4_mma_128x128");
  // A cap below the tile drops it.
  SelectOptions capped = Enabled();
  capped.smem_cap_bytes = Fp4MmaSmemBytes() - 1;
  EXPECT_THAT(CandidateVariants(GemmOp::kPrefill, kGb10, capped),
              Not(Contains(Variant::kPrefillFp4Mma)));
}

TEST(Nvfp4Fp4MmaSelector, ParseEnableFp4Mma) {
  EXPECT_FALSE(ParseEnableFp4Mma(nullptr).value());
  EXPECT_FALSE(ParseEnableFp4Mma("").value());
  EXPECT_FALSE(ParseEnableFp4Mma("0").value());
  EXPECT_TRUE(ParseEnableFp4Mma("1").value());
  for (const char* bad : {"yes", "true", "2", " 1"}) {
    const auto r = ParseEnableFp4Mma(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("SPARKSTACK_ENABLE_FP4_MMA"));
  }
}

}  // namespace
}  // namespace sparkstack::kernels::nvfp4
