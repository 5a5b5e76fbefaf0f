// Philox4x32-10 against the Known Answer Test vectors published with Random123, and the uniform
// mappings the samplers share.
#include "runtime/core/philox.h"

#include <cstdint>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/core/chi_square.h"

namespace sparkstack {
namespace {

struct KnownAnswer {
  uint32_t counter[4];
  uint32_t key[2];
  uint32_t expected[4];
};

// The "philox4x32 10" lines of Random123's tests/kat_vectors (the first three: counter and key all
// zeros, all ones, digits of pi) and tests/old_kat_vectors (single bits and pi digits in each
// word), D. E. Shaw Research, https://github.com/DEShawResearch/random123 (commit 9545ff6),
// transcribed as data: columns counter[4], key[2], expected output[4].
constexpr KnownAnswer kKnownAnswers[] = {
    {{0x00000000, 0x00000000, 0x00000000, 0x00000000},
     {0x00000000, 0x00000000},
     {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    {{0x00000001, 0x00000000, 0x00000000, 0x00000000},
     {0x00000001, 0x00000000},
     {0xac08141b, 0xdfc5ccbe, 0x79c07a47, 0xa7f66093}},
    {{0x00000000, 0x00000001, 0x00000000, 0x00000000},
     {0x00000001, 0x00000000},
     {0x833ff8dc, 0x225c963c, 0x232b88b3, 0x0b334b07}},
    {{0x00000000, 0x00000000, 0x00000001, 0x00000000},
     {0x00000001, 0x00000000},
     {0x07071c12, 0x428264b6, 0x3909104b, 0x6da2bda2}},
    {{0x00000000, 0x00000000, 0x00000000, 0x00000001},
     {0x00000001, 0x00000000},
     {0x127bee41, 0x1e047488, 0x48842b20, 0x0a393496}},
    {{0x00000000, 0xffffffff, 0x00000000, 0x00000000},
     {0x00000001, 0x00000000},
     {0x04e2eae1, 0x463cc999, 0xe7786310, 0x65b3dc49}},
    {{0x00000000, 0x80000000, 0x00000000, 0x00000000},
     {0x00000001, 0x00000000},
     {0x34a4d61d, 0x340e4017, 0xf6945830, 0xe9f52b96}},
    {{0x00000000, 0x00000000, 0xffffffff, 0x00000000},
     {0x00000001, 0x00000000},
     {0xfb0905e2, 0x78378790, 0xca37926b, 0xcdf58cfa}},
    {{0x00000000, 0x00000000, 0x80000000, 0x00000000},
     {0x00000001, 0x00000000},
     {0xf2e15c7d, 0x3fedcd99, 0x90046f6c, 0x6657f0ca}},
    {{0x00000000, 0x00000000, 0x00000000, 0xffffffff},
     {0x00000001, 0x00000000},
     {0xf50c9398, 0xb36cdab2, 0x436bdc89, 0xcc49431b}},
    {{0x00000000, 0x00000000, 0x00000000, 0x80000000},
     {0x00000001, 0x00000000},
     {0xdde26e4e, 0x17666f3b, 0xfc1f5b3a, 0x83ac805d}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0x00000001, 0x00000000},
     {0x38527b8f, 0xfad9a48c, 0x20e675c0, 0xf2fea26a}},
    {{0xa4093822, 0x299f31d0, 0x082efa98, 0xec4e6c89},
     {0x00000001, 0x00000000},
     {0xfb9877f8, 0x482895e2, 0x60b01453, 0x198ea67b}},
    {{0x452821e6, 0x38d01377, 0xbe5466cf, 0x34e90c6c},
     {0x00000001, 0x00000000},
     {0xf7b7fa0a, 0x8d970e2c, 0x205c9c76, 0x83b16ce5}},
    {{0x00000001, 0x00000000, 0x00000000, 0x00000000},
     {0x00000000, 0x00000001},
     {0xccf3076a, 0x6306f434, 0xbea71965, 0xd96fe48a}},
    {{0x00000000, 0x00000001, 0x00000000, 0x00000000},
     {0x00000000, 0x00000001},
     {0x532f1322, 0x36c890fb, 0x6504b937, 0x07bbfef7}},
    {{0x00000000, 0x00000000, 0x00000001, 0x00000000},
     {0x00000000, 0x00000001},
     {0x7f6c13ff, 0x114b2447, 0x0550eced, 0xea1fc805}},
    {{0x00000000, 0x00000000, 0x00000000, 0x00000001},
     {0x00000000, 0x00000001},
     {0x96b27e8c, 0x28826d0f, 0x66d958ef, 0x081509dc}},
    {{0x00000000, 0xffffffff, 0x00000000, 0x00000000},
     {0x00000000, 0x00000001},
     {0x00e94a67, 0x3524f44e, 0x22995230, 0xbb54df1e}},
    {{0x00000000, 0x80000000, 0x00000000, 0x00000000},
     {0x00000000, 0x00000001},
     {0xce1afc4e, 0x4fbf97a1, 0x6110bee9, 0xa559be2f}},
    {{0x00000000, 0x00000000, 0xffffffff, 0x00000000},
     {0x00000000, 0x00000001},
     {0x576241af, 0xd3b45bee, 0x619bd94d, 0x15dd8793}},
    {{0x00000000, 0x00000000, 0x80000000, 0x00000000},
     {0x00000000, 0x00000001},
     {0xd9da65af, 0xeced57ba, 0xc34d2661, 0x91fe931f}},
    {{0x00000000, 0x00000000, 0x00000000, 0xffffffff},
     {0x00000000, 0x00000001},
     {0x36241728, 0x4d42c858, 0xfea737d6, 0x49f40347}},
    {{0x00000000, 0x00000000, 0x00000000, 0x80000000},
     {0x00000000, 0x00000001},
     {0x0436a39b, 0x31be9efa, 0x6abd0c76, 0xe7a68f83}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0x00000000, 0x00000001},
     {0x126514c3, 0xd1898b69, 0xda2707b3, 0x6e6fb436}},
    {{0xa4093822, 0x299f31d0, 0x082efa98, 0xec4e6c89},
     {0x00000000, 0x00000001},
     {0x1c28fa3f, 0x8c5bf977, 0xbb989783, 0x0c1a3737}},
    {{0x452821e6, 0x38d01377, 0xbe5466cf, 0x34e90c6c},
     {0x00000000, 0x00000001},
     {0xac87a8c1, 0xf240abdb, 0xadd6c012, 0x68a32a78}},
    {{0x00000001, 0x00000000, 0x00000000, 0x00000000},
     {0x00000000, 0xffffffff},
     {0x473ab778, 0x330bacc0, 0xacd5fc9a, 0x5ede76b3}},
    {{0x00000000, 0x00000001, 0x00000000, 0x00000000},
     {0x00000000, 0xffffffff},
     {0xcdfbd51c, 0xcaae5f2e, 0x10739cfc, 0x79e95162}},
    {{0x00000000, 0x00000000, 0x00000001, 0x00000000},
     {0x00000000, 0xffffffff},
     {0x6c4b0e80, 0x357e5a94, 0x3255445d, 0x6f433f0b}},
    {{0x00000000, 0x00000000, 0x00000000, 0x00000001},
     {0x00000000, 0xffffffff},
     {0x5c4ecd0c, 0x64c12cf9, 0x8f9fb4c8, 0x40c4a01f}},
    {{0x00000000, 0xffffffff, 0x00000000, 0x00000000},
     {0x00000000, 0xffffffff},
     {0x5f9c47aa, 0x19861d86, 0xff2be81d, 0x4c7db17e}},
    {{0x00000000, 0x80000000, 0x00000000, 0x00000000},
     {0x00000000, 0xffffffff},
     {0x715a87cf, 0xf966a7f0, 0x3e6dd95f, 0xe884e2fd}},
    {{0x00000000, 0x00000000, 0xffffffff, 0x00000000},
     {0x00000000, 0xffffffff},
     {0x07678411, 0x9e524307, 0xba634e67, 0x94ee8cb7}},
    {{0x00000000, 0x00000000, 0x80000000, 0x00000000},
     {0x00000000, 0xffffffff},
     {0xb6f48e28, 0xf2fa9414, 0x00b64f66, 0x4810cdb4}},
    {{0x00000000, 0x00000000, 0x00000000, 0xffffffff},
     {0x00000000, 0xffffffff},
     {0x9f18bb20, 0x62161056, 0x7ea8c028, 0x4c01fc6e}},
    {{0x00000000, 0x00000000, 0x00000000, 0x80000000},
     {0x00000000, 0xffffffff},
     {0x2a460458, 0x0a2709e5, 0x47bc9115, 0x0f96d8af}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0x00000000, 0xffffffff},
     {0x08f7720c, 0x845ee9e0, 0x502ccd3d, 0xa9a00e27}},
    {{0xa4093822, 0x299f31d0, 0x082efa98, 0xec4e6c89},
     {0x00000000, 0xffffffff},
     {0x9fcce05d, 0x837d3f3c, 0x5cdf3e61, 0xdb2544c0}},
    {{0x452821e6, 0x38d01377, 0xbe5466cf, 0x34e90c6c},
     {0x00000000, 0xffffffff},
     {0x72ce44b3, 0xb44f9b78, 0x49af0267, 0x726813ac}},
    {{0x00000001, 0x00000000, 0x00000000, 0x00000000},
     {0x00000000, 0x80000000},
     {0xe29b9f84, 0x2903d316, 0x42a1f56f, 0x1ad02eab}},
    {{0x00000000, 0x00000001, 0x00000000, 0x00000000},
     {0x00000000, 0x80000000},
     {0x94f419f8, 0x1116c316, 0x99f2fa30, 0xbc048ad6}},
    {{0x00000000, 0x00000000, 0x00000001, 0x00000000},
     {0x00000000, 0x80000000},
     {0x488b0258, 0x9eea6420, 0xafe7062e, 0x768f5637}},
    {{0x00000000, 0x00000000, 0x00000000, 0x00000001},
     {0x00000000, 0x80000000},
     {0xdbec6d70, 0x69cea528, 0xf7e22262, 0x2e9f3e8f}},
    {{0x00000000, 0xffffffff, 0x00000000, 0x00000000},
     {0x00000000, 0x80000000},
     {0x905ee550, 0xc7520e9a, 0x9af9d0ad, 0x69b97e98}},
    {{0x00000000, 0x80000000, 0x00000000, 0x00000000},
     {0x00000000, 0x80000000},
     {0x1b89d963, 0x0defe9af, 0x60c9d3fb, 0x3cfae97d}},
    {{0x00000000, 0x00000000, 0xffffffff, 0x00000000},
     {0x00000000, 0x80000000},
     {0x601b5460, 0xfe29678b, 0x54510a02, 0xc72ed094}},
    {{0x00000000, 0x00000000, 0x80000000, 0x00000000},
     {0x00000000, 0x80000000},
     {0xae56ca02, 0x7609ba67, 0x25abd7df, 0x46ce39a3}},
    {{0x00000000, 0x00000000, 0x00000000, 0xffffffff},
     {0x00000000, 0x80000000},
     {0x09812238, 0x47b8470d, 0x3e0d0a26, 0x92d96c9a}},
    {{0x00000000, 0x00000000, 0x00000000, 0x80000000},
     {0x00000000, 0x80000000},
     {0xf7a0b371, 0xe51dc93d, 0x56ce135d, 0x1d4b5580}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0x00000000, 0x80000000},
     {0x63675d2c, 0x422d7c4d, 0x3145d30d, 0x3bce33a4}},
    {{0xa4093822, 0x299f31d0, 0x082efa98, 0xec4e6c89},
     {0x00000000, 0x80000000},
     {0xaa74e81c, 0xc9ddb97b, 0x2c2cd881, 0x9390c78d}},
    {{0x452821e6, 0x38d01377, 0xbe5466cf, 0x34e90c6c},
     {0x00000000, 0x80000000},
     {0x94ca5566, 0x14924b2f, 0x28214292, 0x59faeaee}},
};

// Counter-based: the whole generator is a constexpr function, so the first vector is also checked
// at compile time (the same code nvcc compiles for the device).
static_assert(Philox4x32_10(PhiloxCounter{{0, 0, 0, 0}}, PhiloxKey{{0, 0}}).word[0] == 0x6627e8d5u);

TEST(PhiloxTest, MatchesRandom123KnownAnswers) {
  for (const KnownAnswer& kat : kKnownAnswers) {
    const PhiloxCounter counter{{kat.counter[0], kat.counter[1], kat.counter[2], kat.counter[3]}};
    const PhiloxKey key{{kat.key[0], kat.key[1]}};
    const PhiloxCounter out = Philox4x32_10(counter, key);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(out.word[i], kat.expected[i])
          << std::hex << "counter " << kat.counter[0] << " " << kat.counter[1] << " "
          << kat.counter[2] << " " << kat.counter[3] << " key " << kat.key[0] << " " << kat.key[1]
          << " word " << i;
    }
  }
}

TEST(PhiloxTest, UniformMappingsCoverZeroToJustBelowOne) {
  EXPECT_EQ(UniformDouble(0, 0), 0.0);
  EXPECT_EQ(UniformDouble(0xffffffffu, 0xffffffffu), 1.0 - 0x1.0p-53);
  EXPECT_EQ(UniformDouble(0x80000000u, 0), 0.5);
  EXPECT_EQ(UniformDouble(0, 0x20u), 0x1.0p-53);  // lowest bit that counts in `lo`
  EXPECT_EQ(UniformDouble(0, 0x1fu), 0.0);        // bits below it are dropped
  EXPECT_EQ(UniformDouble(0x40u, 0), 0x1.0p-26);  // lowest bit that counts in `hi`
  EXPECT_EQ(UniformFloat(0), 0.0f);
  EXPECT_EQ(UniformFloat(0xffffffffu), 1.0f - 0x1.0p-24f);
  EXPECT_EQ(UniformFloat(0x100u), 0x1.0p-24f);
  EXPECT_EQ(UniformFloat(0xffu), 0.0f);
}

TEST(PhiloxTest, SamplingUniformUsesSeedAsKeyAndIndexAsCounter) {
  // Counter (0, 0, 0, 0) and key (0, 0): the first known answer's words 0 and 1.
  EXPECT_EQ(SamplingUniform(0, 0), UniformDouble(0x6627e8d5u, 0xe169c58du));
  const uint64_t seed = 0x299f31d0a4093822ull, index = 0x85a308d3243f6a88ull;
  const PhiloxCounter out = Philox4x32_10(PhiloxCounter{{0x243f6a88u, 0x85a308d3u, 0, 0}},
                                          PhiloxKey{{0xa4093822u, 0x299f31d0u}});
  EXPECT_EQ(SamplingUniform(seed, index), UniformDouble(out.word[0], out.word[1]));
  // The high words of seed and index matter.
  EXPECT_NE(SamplingUniform(1, 0), SamplingUniform(1ull | (1ull << 32), 0));
  EXPECT_NE(SamplingUniform(1, 0), SamplingUniform(1, 1ull << 32));
}

// Draws over consecutive indices (how a sequence consumes them) and over consecutive seeds (how
// requests with nearby seeds do) are uniform: chi-square over 64 equal cells.
TEST(PhiloxTest, SamplingUniformIsUniformAlongIndicesAndSeeds) {
  constexpr int kCells = 64;
  constexpr int64_t kDraws = 200000;
  const std::vector<double> p(kCells, 1.0 / kCells);
  for (bool along_seeds : {false, true}) {
    std::vector<int64_t> observed(kCells);
    std::set<double> distinct;
    for (int64_t i = 0; i < kDraws; ++i) {
      const double u = along_seeds ? SamplingUniform(static_cast<uint64_t>(i), 7)
                                   : SamplingUniform(12345, static_cast<uint64_t>(i));
      ASSERT_GE(u, 0.0);
      ASSERT_LT(u, 1.0);
      ++observed[static_cast<int>(u * kCells)];
      if (i < 1000) distinct.insert(u);
    }
    EXPECT_LT(testing::ChiSquare(observed, p, kDraws), testing::ChiSquareCritical(kCells - 1))
        << (along_seeds ? "along seeds" : "along indices");
    EXPECT_EQ(distinct.size(), 1000u);
  }
}

// Neighbouring draws are not correlated: the lag-1 serial correlation of 100000 draws is within
// 5 standard errors (1 / sqrt(n)) of zero.
TEST(PhiloxTest, ConsecutiveDrawsAreUncorrelated) {
  constexpr int kDraws = 100000;
  double sum_xy = 0, sum_x = 0, sum_xx = 0;
  double previous = SamplingUniform(99, 0);
  for (int i = 1; i <= kDraws; ++i) {
    const double u = SamplingUniform(99, static_cast<uint64_t>(i));
    sum_xy += (previous - 0.5) * (u - 0.5);
    sum_x += u - 0.5;
    sum_xx += (u - 0.5) * (u - 0.5);
    previous = u;
  }
  const double correlation = sum_xy / sum_xx;
  EXPECT_LT(std::abs(correlation), 5.0 / std::sqrt(kDraws));
  EXPECT_LT(std::abs(sum_x / kDraws), 5.0 * std::sqrt(1.0 / 12.0 / kDraws));
}

}  // namespace
}  // namespace sparkstack
