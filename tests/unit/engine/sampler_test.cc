#include "runtime/engine/sampler.h"

#include <cmath>
#include <map>
#include <vector>

#include "gtest/gtest.h"

namespace sparkstack {
namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, -2.0f, 2.5f, 0.0f};

std::vector<double> Frequencies(const SamplingParams& params, int draws) {
  Sampler sampler(params);
  std::vector<double> counts(kLogits.size());
  for (int i = 0; i < draws; ++i) counts[*sampler.Sample(kLogits)] += 1.0 / draws;
  return counts;
}

// softmax(logits / temperature) in double, renormalized over `allowed`.
std::vector<double> Expected(float temperature, const std::vector<int>& allowed) {
  std::vector<double> p(kLogits.size(), 0.0);
  double total = 0;
  for (int i : allowed) total += p[i] = std::exp(kLogits[i] / temperature);
  for (double& v : p) v /= total;
  return p;
}

TEST(SamplerTest, GreedyIsArgmaxWithLowestIdOnTies) {
  Sampler sampler({});
  EXPECT_EQ(*sampler.Sample(kLogits), 1);
  const std::vector<float> tied = {0.5f, 2.0f, 2.0f};
  EXPECT_EQ(*sampler.Sample(tied), 1);
}

TEST(SamplerTest, TemperatureFollowsTheSoftmax) {
  const auto got = Frequencies({.temperature = 0.7f, .seed = 11}, 40000);
  const auto want = Expected(0.7f, {0, 1, 2, 3, 4});
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 0.01) << i;
}

TEST(SamplerTest, TopKKeepsOnlyTheKBest) {
  const auto got = Frequencies({.temperature = 1.0f, .top_k = 2, .seed = 5}, 20000);
  const auto want = Expected(1.0f, {1, 3});
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 0.01) << i;
}

TEST(SamplerTest, TopPKeepsTheSmallestNucleus) {
  // Probabilities at T = 1: ids 1 (0.52), 3 (0.32), 0 (0.12), ... top_p 0.8 needs ids 1 and 3.
  const auto got = Frequencies({.temperature = 1.0f, .top_p = 0.8f, .seed = 9}, 20000);
  const auto want = Expected(1.0f, {1, 3});
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 0.01) << i;
}

TEST(SamplerTest, SameSeedSameTokens) {
  EXPECT_EQ(Frequencies({.temperature = 1.0f, .seed = 42}, 500),
            Frequencies({.temperature = 1.0f, .seed = 42}, 500));
}

TEST(SamplerTest, RejectsBadParametersAndLogits) {
  EXPECT_FALSE(ValidateSamplingParams({.temperature = -1.0f}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.temperature = NAN}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.top_k = -3}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.top_p = 0.0f}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.top_p = 1.5f}).ok());
  Sampler sampler({.temperature = 1.0f});
  EXPECT_FALSE(sampler.Sample({}).ok());
  const std::vector<float> nan = {1.0f, NAN};
  EXPECT_FALSE(sampler.Sample(nan).ok());
}

}  // namespace
}  // namespace sparkstack
