// The CPU sampling op (kernels/cpu/sampling.h) against its float64 reference
// (kernels/cpu/sampling_reference.h) on random logits at odd vocabulary sizes with every
// combination of parameters; chi-square tests of the distributions it draws from, against
// probabilities worked out by hand; determinism of the counter-based draws; errors; and no heap
// allocation once warm.
#include "kernels/cpu/sampling.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <new>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/sampling_reference.h"
#include "runtime/core/philox.h"
#include "tests/unit/core/chi_square.h"

// Counts heap allocations of this binary, so a test can check that the op makes none once warm.
// (GCC cannot see that these replace the global operators and warns about mismatched frees.)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
std::atomic<int64_t> g_allocations{0};
}  // namespace
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace sparkstack::kernels {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Random logits of a few shapes real models produce, plus ties and impossible tokens.
enum class LogitShape { kGaussian, kPeaked, kTied, kWithMinusInf };

std::vector<float> RandomLogits(std::mt19937& rng, int64_t vocab, LogitShape shape) {
  std::vector<float> logits(vocab);
  std::normal_distribution<float> bulk(0.0f,
                                       std::uniform_real_distribution<float>(0.5f, 4.0f)(rng));
  for (float& v : logits) v = bulk(rng);
  std::uniform_int_distribution<int64_t> any_id(0, vocab - 1);
  switch (shape) {
    case LogitShape::kGaussian:
      break;
    case LogitShape::kPeaked:  // a few plausible tokens far above the rest
      for (int i = 0; i < 5; ++i) logits[any_id(rng)] = 12.0f + 3.0f * bulk(rng) / bulk.stddev();
      break;
    case LogitShape::kTied:  // quantized: many exact ties, also at the maximum
      for (float& v : logits) v = std::round(v * 2.0f) / 2.0f;
      break;
    case LogitShape::kWithMinusInf:
      for (int64_t i = 0; i < vocab / 3; ++i) logits[any_id(rng)] = -kInf;
      if (std::all_of(logits.begin(), logits.end(), [](float v) { return v == -kInf; })) {
        logits[0] = 0.0f;
      }
      break;
  }
  return logits;
}

std::vector<int32_t> RandomIds(std::mt19937& rng, int64_t vocab, int count) {
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> ids(count);
  for (int32_t& v : ids) v = id(rng);
  return ids;
}

// A logprob within float rounding of the reference's (-inf only where the reference has -inf).
void ExpectLogprobNear(float got, double want) {
  if (std::isinf(want)) {
    EXPECT_EQ(got, want);
  } else {
    EXPECT_NEAR(got, want, 1e-5 * std::max(1.0, std::abs(want)));
  }
}

struct PenaltyCase {
  float repetition = 1.0f, presence = 0.0f, frequency = 0.0f;
  bool ban = false;
};

TEST(SamplingTest, MatchesFloat64ReferenceForEveryParameterCombination) {
  std::mt19937 rng(2024);
  const std::vector<int64_t> vocabs = {1, 2, 3, 7, 33, 100, 257, 1001};
  const std::vector<float> temperatures = {0.0f, 0.3f, 1.0f, 2.5f};
  const std::vector<int32_t> top_ks = {0, 1, 5, 50};
  const std::vector<float> top_ps = {1.0f, 0.9f, 0.5f};
  const std::vector<float> min_ps = {0.0f, 0.05f, 0.3f};
  const std::vector<PenaltyCase> penalties = {
      {},
      {.repetition = 1.3f},
      {.repetition = 0.8f, .presence = -0.7f, .frequency = 0.5f},
      {.presence = 1.5f, .ban = true}};
  const std::vector<int32_t> logprobs = {-1, 0, 5};
  CpuSampler sampler;
  int rows = 0, close_calls = 0;
  for (float temperature : temperatures) {
    for (int32_t top_k : top_ks) {
      for (float top_p : top_ps) {
        for (float min_p : min_ps) {
          for (const PenaltyCase& penalty : penalties) {
            for (int32_t num_logprobs : logprobs) {
              const int64_t vocab = vocabs[rng() % vocabs.size()];
              const int64_t vocab_limit =
                  std::max<int64_t>(1, vocab - static_cast<int64_t>(rng() % 3));
              const auto shape = static_cast<LogitShape>(rng() % 4);
              std::vector<float> logits = RandomLogits(rng, vocab, shape);
              // Ids past vocab_limit are never looked at, whatever they hold.
              for (int64_t i = vocab_limit; i < vocab; ++i) logits[i] = (i % 2) ? NAN : 1e30f;
              const std::vector<int32_t> prompt = RandomIds(rng, vocab, 20);
              const std::vector<int32_t> output = RandomIds(rng, vocab, 12);
              std::vector<int32_t> banned;
              if (penalty.ban) banned = RandomIds(rng, vocab, static_cast<int>(vocab / 4));
              SamplingRow row{.params = {.temperature = temperature,
                                         .top_k = top_k,
                                         .top_p = top_p,
                                         .min_p = min_p,
                                         .repetition_penalty = penalty.repetition,
                                         .presence_penalty = penalty.presence,
                                         .frequency_penalty = penalty.frequency,
                                         .logprobs = num_logprobs},
                              .prompt_tokens = prompt,
                              .output_tokens = output,
                              .banned_tokens = banned};
              for (int draw = 0; draw < 2; ++draw) {
                const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
                SCOPED_TRACE(::testing::Message()
                             << "vocab " << vocab << " limit " << vocab_limit << " shape "
                             << static_cast<int>(shape) << " T " << temperature << " k " << top_k
                             << " p " << top_p << " min_p " << min_p << " rep "
                             << penalty.repetition << " ban " << penalty.ban << " logprobs "
                             << num_logprobs << " u " << u);
                auto want = SampleReference(logits, vocab_limit, row, u);
                SampledToken got;
                SamplingTrace trace;
                const absl::Status status =
                    sampler.SampleRow(logits, vocab_limit, row, u, got, &trace);
                if (!want.ok()) {  // every allowed id banned or -inf: both refuse
                  EXPECT_EQ(status.code(), want.status().code()) << status;
                  continue;
                }
                ASSERT_TRUE(status.ok()) << status;
                ++rows;
                if (want->margin < 1e-5) {
                  ++close_calls;  // rounding may legitimately decide differently
                } else {
                  EXPECT_EQ(got.token, want->token);
                  std::vector<double> probs(vocab_limit, 0.0);
                  for (size_t j = 0; j < trace.ids.size(); ++j)
                    probs[trace.ids[j]] = trace.probs[j];
                  for (int64_t i = 0; i < vocab_limit; ++i) {
                    ASSERT_NEAR(probs[i], want->probs[i], 1e-6 + 1e-5 * want->probs[i])
                        << "id " << i;
                  }
                }
                if (num_logprobs >= 0) {
                  ExpectLogprobNear(got.logprob, want->logprobs[got.token]);
                  ASSERT_EQ(got.num_top, static_cast<int32_t>(want->top.size()));
                  for (int32_t j = 0; j < got.num_top; ++j) {
                    EXPECT_EQ(got.top[j].token, want->top[j]) << "top " << j;
                    ExpectLogprobNear(got.top[j].logprob, want->logprobs[want->top[j]]);
                  }
                } else {
                  EXPECT_EQ(got.num_top, 0);
                }
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(rows, 3000);
  EXPECT_LT(close_calls, rows / 100) << "too many rows within rounding of a boundary";
}

// Full-size vocabularies take the paths small ones do not: windows that widen, blocks of the
// draw, nuclei or top-k sets of thousands of ids.
TEST(SamplingTest, MatchesReferenceAtFullVocabularySize) {
  std::mt19937 rng(7);
  constexpr int64_t kVocab = 151936;
  CpuSampler sampler;
  struct Case {
    LogitShape shape;
    SamplingParams params;
  };
  const std::vector<Case> cases = {
      {LogitShape::kPeaked, {.temperature = 0.7f, .top_p = 0.95f, .logprobs = 20}},
      {LogitShape::kPeaked, {.temperature = 1.0f}},
      {LogitShape::kGaussian, {.temperature = 1.0f}},
      {LogitShape::kGaussian, {.temperature = 1.0f, .top_p = 0.5f}},  // nucleus of thousands
      {LogitShape::kGaussian, {.temperature = 0.8f, .top_k = 40, .top_p = 0.9f, .min_p = 0.01f}},
      {LogitShape::kGaussian, {.temperature = 1.2f, .top_k = 100000}},
      {LogitShape::kTied, {.temperature = 1.0f, .top_k = 3000, .top_p = 0.7f}},
      {LogitShape::kWithMinusInf, {.temperature = 2.0f, .min_p = 0.001f, .logprobs = 3}},
      {LogitShape::kPeaked, {.temperature = 0.0f, .repetition_penalty = 1.2f}},
  };
  const std::vector<int32_t> history = RandomIds(rng, kVocab, 500);
  for (const Case& c : cases) {
    const std::vector<float> logits = RandomLogits(rng, kVocab, c.shape);
    const SamplingRow row{.params = c.params, .prompt_tokens = history, .output_tokens = history};
    SCOPED_TRACE(::testing::Message()
                 << "shape " << static_cast<int>(c.shape) << " T " << c.params.temperature << " k "
                 << c.params.top_k << " p " << c.params.top_p);
    auto want = SampleReference(logits, kVocab, row, 0.1234);
    ASSERT_TRUE(want.ok()) << want.status();
    SampledToken got;
    SamplingTrace trace;
    ASSERT_TRUE(sampler.SampleRow(logits, kVocab, row, 0.1234, got, &trace).ok());
    if (want->margin >= 1e-5) {
      EXPECT_EQ(got.token, want->token);
    }
    double worst = 0.0;
    std::vector<double> probs(kVocab, 0.0);
    for (size_t j = 0; j < trace.ids.size(); ++j) probs[trace.ids[j]] = trace.probs[j];
    for (int64_t i = 0; i < kVocab; ++i) {
      worst = std::max(worst, std::abs(probs[i] - want->probs[i]) / (1e-6 + want->probs[i]));
    }
    EXPECT_LT(worst, 1e-5);
    if (c.params.logprobs >= 0) {
      EXPECT_NEAR(got.logprob, want->logprobs[got.token], 1e-5);
      for (int32_t j = 0; j < got.num_top; ++j) EXPECT_EQ(got.top[j].token, want->top[j]);
    }
    // The largest uniform picks the last id that can be chosen (the draw walks ids upwards).
    int32_t last = kVocab - 1;
    while (want->probs[last] == 0.0) --last;
    ASSERT_TRUE(sampler.SampleRow(logits, kVocab, row, 1.0 - 0x1.0p-53, got).ok());
    EXPECT_EQ(got.token, last);
  }
}

// ---- Distributions: chi-square over many Philox draws against probabilities worked by hand.

const std::vector<float> kLogits = {1.0f, 3.0f, -2.0f, 2.5f, 0.0f, 2.9f};

// softmax(logits / temperature) in double, over the ids in `allowed` only.
std::vector<double> Softmax(const std::vector<float>& logits, double temperature,
                            const std::vector<int>& allowed) {
  std::vector<double> p(logits.size(), 0.0);
  double total = 0.0;
  for (int i : allowed) total += p[i] = std::exp(logits[i] / temperature);
  for (double& v : p) v /= total;
  return p;
}

// Draws `draws` tokens for output indices 0.. with the batched entry point (Philox uniforms),
// several rows per call, and checks the counts against `want` by chi-square.
void ExpectDistribution(const std::vector<float>& logits, const SamplingRow& row,
                        const std::vector<double>& want, int64_t draws = 40000) {
  constexpr int kRowsPerCall = 64;
  const int64_t vocab = static_cast<int64_t>(logits.size());
  std::vector<float> batch(kRowsPerCall * vocab);
  for (int r = 0; r < kRowsPerCall; ++r) std::copy(logits.begin(), logits.end(), &batch[r * vocab]);
  std::vector<SamplingRow> rows(kRowsPerCall, row);
  std::vector<SampledToken> out(kRowsPerCall);
  std::vector<int64_t> counts(vocab, 0);
  CpuSampler sampler;
  for (int64_t done = 0; done < draws; done += kRowsPerCall) {
    for (int r = 0; r < kRowsPerCall; ++r) rows[r].output_index = static_cast<uint64_t>(done + r);
    ASSERT_TRUE(sampler.Sample(batch.data(), vocab, vocab, vocab, rows, out).ok());
    for (const SampledToken& t : out) ++counts[t.token];
  }
  const int64_t total = (draws + kRowsPerCall - 1) / kRowsPerCall * kRowsPerCall;
  const int df = testing::DegreesOfFreedom(want);
  const double chi2 = testing::ChiSquare(counts, want, total);
  if (df == 0) {
    EXPECT_EQ(chi2, 0.0);
  } else {
    EXPECT_LT(chi2, testing::ChiSquareCritical(df)) << "df " << df;
  }
}

TEST(SamplingDistributionTest, TemperatureFollowsTheSoftmax) {
  for (float t : {0.4f, 1.0f, 3.0f}) {
    SCOPED_TRACE(t);
    ExpectDistribution(kLogits, {.params = {.temperature = t, .seed = 11}},
                       Softmax(kLogits, t, {0, 1, 2, 3, 4, 5}));
  }
}

TEST(SamplingDistributionTest, TopKKeepsTheKBest) {
  ExpectDistribution(kLogits, {.params = {.temperature = 1.0f, .top_k = 3, .seed = 5}},
                     Softmax(kLogits, 1.0, {1, 3, 5}));
  // Ties with the k-th logit are kept (HF, vLLM): ids 3 and 4 tie for second place.
  const std::vector<float> tied = {1.0f, 3.0f, -2.0f, 2.0f, 2.0f};
  ExpectDistribution(tied, {.params = {.temperature = 1.0f, .top_k = 2, .seed = 6}},
                     Softmax(tied, 1.0, {1, 3, 4}));
}

TEST(SamplingDistributionTest, TopPKeepsTheSmallestNucleus) {
  // At T = 1 the probabilities are id 1: .370, id 5: .335, id 3: .224, id 0: .050, ...
  // top_p 0.7 keeps ids 1 and 5 (preceding mass 0 and .370 < .7; id 3's .705 is not); 0.75 also
  // keeps id 3.
  ExpectDistribution(kLogits, {.params = {.temperature = 1.0f, .top_p = 0.7f, .seed = 9}},
                     Softmax(kLogits, 1.0, {1, 5}));
  ExpectDistribution(kLogits, {.params = {.temperature = 1.0f, .top_p = 0.75f, .seed = 9}},
                     Softmax(kLogits, 1.0, {1, 3, 5}));
  // Temperature first: at T = 0.5 id 1 holds .453 of the mass, so top_p 0.5 keeps id 1 and
  // id 5 (preceding mass .453 < .5) but not id 3 (.824).
  ExpectDistribution(kLogits, {.params = {.temperature = 0.5f, .top_p = 0.5f, .seed = 3}},
                     Softmax(kLogits, 0.5, {1, 5}));
}

TEST(SamplingDistributionTest, TopPStopsWhenThePrecedingMassReachesTheLimit) {
  // Two equal tokens and top_p 0.5: the second's preceding mass equals the limit exactly, so it
  // is dropped (as vLLM's cumsum <= 1 - p mask drops it); ties put the lower id first.
  ExpectDistribution({0.0f, 0.0f}, {.params = {.temperature = 1.0f, .top_p = 0.5f, .seed = 2}},
                     {1.0, 0.0}, 1000);
}

TEST(SamplingDistributionTest, MinPDropsTokensBelowAFractionOfTheBest) {
  // p_i / p_max = e^(l_i - 3): id 3 .607, id 5 .905, id 0 .135, id 4 .0498.
  ExpectDistribution(kLogits, {.params = {.temperature = 1.0f, .min_p = 0.5f, .seed = 4}},
                     Softmax(kLogits, 1.0, {1, 3, 5}));
  ExpectDistribution(kLogits, {.params = {.temperature = 1.0f, .min_p = 0.1f, .seed = 4}},
                     Softmax(kLogits, 1.0, {0, 1, 3, 5}));
  // At T = 2 the ratios are square roots: id 4 at .223 passes min_p 0.2.
  ExpectDistribution(kLogits, {.params = {.temperature = 2.0f, .min_p = 0.2f, .seed = 4}},
                     Softmax(kLogits, 2.0, {0, 1, 3, 4, 5}));
}

TEST(SamplingDistributionTest, FiltersCombine) {
  // min_p 0.1 keeps {0, 1, 3, 5}, top_k 3 keeps {1, 5, 3}; renormalized over those, id 1 .397,
  // id 5 .359, id 3 .241: top_p 0.7 keeps ids 1 and 5.
  ExpectDistribution(
      kLogits,
      {.params = {.temperature = 1.0f, .top_k = 3, .top_p = 0.7f, .min_p = 0.1f, .seed = 8}},
      Softmax(kLogits, 1.0, {1, 5}));
}

TEST(SamplingDistributionTest, PenaltiesShiftTheDistribution) {
  // Prompt {1, 4}, output {3, 3, 0}: repetition 2 halves the positive logits of 0, 1, 3 and
  // doubles 4's (0 stays 0); frequency 0.5 and presence 0.25 then take 1.25 from id 3 and 0.75
  // from id 0.
  const std::vector<int32_t> prompt = {1, 4}, output = {3, 3, 0};
  const std::vector<float> penalized = {0.5f - 0.75f, 1.5f, -2.0f, 1.25f - 1.25f, 0.0f, 2.9f};
  ExpectDistribution(kLogits,
                     {.params = {.temperature = 1.0f,
                                 .repetition_penalty = 2.0f,
                                 .presence_penalty = 0.25f,
                                 .frequency_penalty = 0.5f,
                                 .seed = 10},
                      .prompt_tokens = prompt,
                      .output_tokens = output},
                     Softmax(penalized, 1.0, {0, 1, 2, 3, 4, 5}));
  // Banned ids are never drawn.
  const std::vector<int32_t> banned = {1, 5};
  ExpectDistribution(kLogits,
                     {.params = {.temperature = 1.0f, .seed = 12}, .banned_tokens = banned},
                     Softmax(kLogits, 1.0, {0, 2, 3, 4}));
}

// A vocabulary of 301 near-equal logits: every token is drawn about as often as its reference
// probability says (this exercises the block walk of the draw over many ids).
TEST(SamplingDistributionTest, WideDistributionMatchesReference) {
  std::mt19937 rng(5);
  std::vector<float> logits(301);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  for (float& v : logits) v = normal(rng);
  const SamplingRow row{.params = {.temperature = 1.0f, .seed = 77}};
  auto want = SampleReference(logits, 301, row, 0.5);
  ASSERT_TRUE(want.ok());
  ExpectDistribution(logits, row, want->probs, 60000);
}

// ---- Determinism of the counter-based draws.

TEST(SamplingDeterminismTest, TokenDependsOnlyOnSeedAndIndexNotOnBatchMates) {
  std::mt19937 rng(31);
  constexpr int kRows = 48;
  constexpr int64_t kVocab = 777;
  std::vector<float> logits;
  std::vector<SamplingRow> rows(kRows);
  for (int r = 0; r < kRows; ++r) {
    const std::vector<float> row_logits = RandomLogits(rng, kVocab, static_cast<LogitShape>(r % 4));
    logits.insert(logits.end(), row_logits.begin(), row_logits.end());
    rows[r].params = {.temperature = 0.5f + 0.1f * (r % 7),
                      .top_k = (r % 3) * 20,
                      .top_p = (r % 2) ? 0.9f : 1.0f,
                      .seed = rng()};
    rows[r].output_index = rng() % 1000;
  }
  CpuSampler sampler;
  std::vector<SampledToken> together(kRows);
  ASSERT_TRUE(sampler.Sample(logits.data(), kVocab, kVocab, kVocab, rows, together).ok());
  // Each row alone, in reverse order, with a fresh sampler, and inside a padded batch (stride).
  CpuSampler other;
  for (int r = kRows - 1; r >= 0; --r) {
    SampledToken alone;
    ASSERT_TRUE(
        other.Sample(&logits[r * kVocab], kVocab, kVocab, kVocab, {&rows[r], 1}, {&alone, 1}).ok());
    EXPECT_EQ(alone.token, together[r].token) << "row " << r;
  }
  std::vector<float> padded(kRows * (kVocab + 5), 0.0f);
  for (int r = 0; r < kRows; ++r) {
    std::copy(&logits[r * kVocab], &logits[(r + 1) * kVocab], &padded[r * (kVocab + 5)]);
  }
  std::vector<SamplingRow> reversed(rows.rbegin(), rows.rend());
  std::vector<SampledToken> out(kRows);
  std::vector<float> reversed_logits(padded.size());
  for (int r = 0; r < kRows; ++r) {
    std::copy(&padded[r * (kVocab + 5)], &padded[(r + 1) * (kVocab + 5)],
              &reversed_logits[(kRows - 1 - r) * (kVocab + 5)]);
  }
  ASSERT_TRUE(other.Sample(reversed_logits.data(), kVocab, kVocab + 5, kVocab, reversed, out).ok());
  for (int r = 0; r < kRows; ++r) EXPECT_EQ(out[kRows - 1 - r].token, together[r].token);
  // And the token is the one the row's own Philox uniform picks.
  for (int r = 0; r < kRows; ++r) {
    SampledToken direct;
    ASSERT_TRUE(sampler
                    .SampleRow({&logits[r * kVocab], kVocab}, kVocab, rows[r],
                               SamplingUniform(rows[r].params.seed, rows[r].output_index), direct)
                    .ok());
    EXPECT_EQ(direct.token, together[r].token);
  }
}

// With two equally likely tokens each draw is a fair coin: pairs of consecutive indices, and the
// same index under neighbouring seeds, fall into the four outcomes equally often.
TEST(SamplingDeterminismTest, DifferentIndicesAndSeedsGiveIndependentDraws) {
  const std::vector<float> coin = {0.25f, 0.25f};
  CpuSampler sampler;
  auto flip = [&](uint64_t seed, uint64_t index) {
    const SamplingRow row{.params = {.temperature = 1.0f, .seed = seed}, .output_index = index};
    SampledToken out;
    EXPECT_TRUE(sampler.Sample(coin.data(), 2, 2, 2, {&row, 1}, {&out, 1}).ok());
    return out.token;
  };
  constexpr int kPairs = 40000;
  const std::vector<double> quarter(4, 0.25);
  std::vector<int64_t> along_index(4, 0), along_seed(4, 0);
  for (int i = 0; i < kPairs; ++i) {
    ++along_index[2 * flip(1234, 2 * i) + flip(1234, 2 * i + 1)];
    ++along_seed[2 * flip(2 * i, 17) + flip(2 * i + 1, 17)];
  }
  EXPECT_LT(testing::ChiSquare(along_index, quarter, kPairs), testing::ChiSquareCritical(3));
  EXPECT_LT(testing::ChiSquare(along_seed, quarter, kPairs), testing::ChiSquareCritical(3));
  // Same (seed, index), same token, every time.
  for (int i = 0; i < 100; ++i) EXPECT_EQ(flip(99, i), flip(99, i));
}

TEST(SamplingDeterminismTest, UniformPicksByCumulativeMassInIdOrder) {
  // Weights 1, 1, 2 (T = 1): u in [0, .25) -> id 0, [.25, .5) -> 1, [.5, 1) -> 2.
  const std::vector<float> logits = {0.0f, 0.0f, std::log(2.0f)};
  CpuSampler sampler;
  const SamplingRow row{.params = {.temperature = 1.0f}};
  for (auto [u, want] : std::vector<std::pair<double, int>>{
           {0.0, 0}, {0.2499, 0}, {0.2501, 1}, {0.4999, 1}, {0.5001, 2}, {1.0 - 0x1.0p-53, 2}}) {
    SampledToken out;
    ASSERT_TRUE(sampler.SampleRow(logits, 3, row, u, out).ok());
    EXPECT_EQ(out.token, want) << u;
  }
}

// ---- Greedy, masking, logprobs by hand, errors.

SampledToken SampleOne(const std::vector<float>& logits, const SamplingRow& row,
                       int64_t vocab_limit = -1) {
  CpuSampler sampler;
  SampledToken out;
  const int64_t vocab = static_cast<int64_t>(logits.size());
  const absl::Status status = sampler.Sample(
      logits.data(), vocab, vocab, vocab_limit < 0 ? vocab : vocab_limit, {&row, 1}, {&out, 1});
  EXPECT_TRUE(status.ok()) << status;
  return out;
}

TEST(SamplingTest, GreedyIsArgmaxWithLowestIdOnTies) {
  EXPECT_EQ(SampleOne(kLogits, {}).token, 1);
  EXPECT_EQ(SampleOne({0.5f, 2.0f, 2.0f}, {}).token, 1);
  EXPECT_EQ(SampleOne({-kInf, -3.0f, -kInf}, {}).token, 1);
  // Ids at or past vocab_limit are never chosen, even when they hold the maximum.
  EXPECT_EQ(SampleOne({0.5f, 2.0f, 9.0f}, {}, 2).token, 1);
  // Penalties come before greedy: repetition 2 halves id 1's 3.0 to 1.5 and id 5's 2.9 to 1.45,
  // so 2.5 (id 3) wins; a ban moves it on again.
  const std::vector<int32_t> seen = {1, 5}, banned = {3};
  EXPECT_EQ(
      SampleOne(kLogits, {.params = {.repetition_penalty = 2.0f}, .prompt_tokens = seen}).token, 3);
  EXPECT_EQ(SampleOne(kLogits, {.params = {.repetition_penalty = 2.0f},
                                .prompt_tokens = seen,
                                .banned_tokens = banned})
                .token,
            1);
  // Negative logits are multiplied: -1 * 2 = -2 loses to -1.5.
  const std::vector<int32_t> zero = {0};
  EXPECT_EQ(
      SampleOne({-1.0f, -1.5f}, {.params = {.repetition_penalty = 2.0f}, .prompt_tokens = zero})
          .token,
      1);
  // top_k 1 at any temperature is greedy too.
  EXPECT_EQ(SampleOne(kLogits, {.params = {.temperature = 5.0f, .top_k = 1, .seed = 3}}).token, 1);
}

TEST(SamplingTest, LogprobsAreOfTheRawDistribution) {
  // log_softmax({0, ln 3, -inf}) = {-ln 4, ln 3 - ln 4, -inf}, whatever bans, penalties and
  // temperature do to the choice.
  const std::vector<float> logits = {0.0f, std::log(3.0f), -kInf};
  const std::vector<int32_t> banned = {1};
  const SampledToken out = SampleOne(logits, {.params = {.logprobs = 3}, .banned_tokens = banned});
  EXPECT_EQ(out.token, 0);
  EXPECT_NEAR(out.logprob, -std::log(4.0), 1e-6);
  ASSERT_EQ(out.num_top, 3);
  EXPECT_EQ(out.top[0].token, 1);
  EXPECT_NEAR(out.top[0].logprob, std::log(0.75), 1e-6);
  EXPECT_EQ(out.top[1].token, 0);
  EXPECT_EQ(out.top[2].token, 2);
  EXPECT_EQ(out.top[2].logprob, -kInf);
  // Ties: lower id first; and no more entries than allowed ids.
  const SampledToken tied =
      SampleOne({1.0f, 2.0f, 2.0f, 2.0f, 0.0f}, {.params = {.logprobs = 20}}, 4);
  ASSERT_EQ(tied.num_top, 4);
  EXPECT_EQ(tied.top[0].token, 1);
  EXPECT_EQ(tied.top[1].token, 2);
  EXPECT_EQ(tied.top[2].token, 3);
  EXPECT_EQ(tied.top[3].token, 0);
  // logprobs -1: nothing reported.
  EXPECT_EQ(SampleOne(logits, {}).num_top, 0);
}

TEST(SamplingTest, RejectsBadInputWithClearErrors) {
  CpuSampler sampler;
  SampledToken out;
  auto sample = [&](const std::vector<float>& logits, const SamplingRow& row, int64_t vocab_limit) {
    const int64_t vocab = static_cast<int64_t>(logits.size());
    return sampler.Sample(logits.data(), vocab, vocab, vocab_limit, {&row, 1}, {&out, 1});
  };
  auto expect_error = [](const absl::Status& status, const std::string& text) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_NE(status.message().find(text), std::string::npos) << status;
  };
  expect_error(sample({1.0f, NAN, 0.0f}, {}, 3), "logit of id 1 is nan");
  expect_error(sample({1.0f, 0.0f, kInf}, {.params = {.temperature = 1.0f}}, 3),
               "logit of id 2 is inf");
  EXPECT_TRUE(sample({1.0f, 0.0f, NAN}, {}, 2).ok());  // masked ids are not looked at
  expect_error(sample({-kInf, -kInf}, {.params = {.temperature = 1.0f}}, 2),
               "no token can be chosen");
  const std::vector<int32_t> all = {0, 1};
  expect_error(sample({1.0f, 2.0f}, {.banned_tokens = all}, 2), "no token can be chosen");
  expect_error(sample({1.0f, 2.0f}, {.params = {.top_p = 0.0f}}, 2), "top_p");
  expect_error(sample({1.0f, 2.0f}, {.params = {.logprobs = 21}}, 2), "logprobs");
  const std::vector<int32_t> bad = {0, 7};
  expect_error(
      sample({1.0f, 2.0f}, {.params = {.frequency_penalty = 1.0f}, .output_tokens = bad}, 2),
      "output_tokens[1] = 7");
  expect_error(
      sample({1.0f, 2.0f}, {.params = {.repetition_penalty = 1.1f}, .prompt_tokens = bad}, 2),
      "prompt_tokens[1] = 7");
  expect_error(sample({1.0f, 2.0f}, {.banned_tokens = bad}, 2), "banned_tokens[1] = 7");
  expect_error(sample({1.0f, 2.0f}, {}, 3), "vocab_limit");
  expect_error(sample({1.0f, 2.0f}, {}, 0), "vocab_limit");
  const std::vector<float> two = {1.0f, 2.0f};
  const SamplingRow row;
  expect_error(sampler.Sample(two.data(), 2, 2, 2, {&row, 1}, {}), "1 rows but 0 outputs");
  // The row is named in batched errors.
  const std::vector<float> rows = {1.0f, 2.0f, NAN, 0.0f};
  const std::vector<SamplingRow> params(2);
  std::vector<SampledToken> outs(2);
  expect_error(sampler.Sample(rows.data(), 2, 2, 2, params, outs), "row 1: logit of id 0");
}

TEST(SamplingTest, ValidatesParameters) {
  EXPECT_TRUE(ValidateSamplingParams({}).ok());
  EXPECT_TRUE(ValidateSamplingParams({.temperature = 0.7f,
                                      .top_k = 40,
                                      .top_p = 0.9f,
                                      .min_p = 0.05f,
                                      .repetition_penalty = 1.1f,
                                      .presence_penalty = -2.0f,
                                      .frequency_penalty = 2.0f,
                                      .logprobs = 20})
                  .ok());
  EXPECT_FALSE(ValidateSamplingParams({.temperature = -1.0f}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.temperature = NAN}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.temperature = kInf}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.top_k = -3}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.top_p = 0.0f}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.top_p = 1.5f}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.min_p = -0.1f}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.min_p = 1.1f}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.repetition_penalty = 0.0f}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.presence_penalty = 2.5f}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.frequency_penalty = -2.5f}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.logprobs = -2}).ok());
}

TEST(SamplingTest, NoHeapAllocationOnceWarm) {
  std::mt19937 rng(3);
  constexpr int64_t kVocab = 50021;
  constexpr int kRows = 8;
  std::vector<float> logits;
  for (int r = 0; r < kRows; ++r) {
    const std::vector<float> row = RandomLogits(rng, kVocab, static_cast<LogitShape>(r % 4));
    logits.insert(logits.end(), row.begin(), row.end());
  }
  const std::vector<int32_t> history = RandomIds(rng, kVocab, 300);
  std::vector<SamplingRow> rows(kRows);
  for (int r = 0; r < kRows; ++r) {
    rows[r] = {.params = {.temperature = r == 0 ? 0.0f : 0.9f,
                          .top_k = r % 3 == 1 ? 50 : 0,
                          .top_p = r % 2 ? 0.95f : 1.0f,
                          .min_p = r == 6 ? 0.02f : 0.0f,
                          .repetition_penalty = 1.1f,
                          .presence_penalty = 0.3f,
                          .frequency_penalty = 0.2f,
                          .seed = static_cast<uint64_t>(r),
                          .logprobs = r % 4 == 0 ? 20 : -1},
               .prompt_tokens = history,
               .output_tokens = history,
               .banned_tokens = {history.data(), 3}};
  }
  std::vector<SampledToken> out(kRows);
  CpuSampler sampler;
  ASSERT_TRUE(sampler.Sample(logits.data(), kVocab, kVocab, kVocab, rows, out).ok());  // warm-up
  const int64_t before = g_allocations.load();
  for (int step = 1; step < 4; ++step) {
    for (SamplingRow& row : rows) row.output_index = step;
    ASSERT_TRUE(sampler.Sample(logits.data(), kVocab, kVocab, kVocab, rows, out).ok());
  }
  EXPECT_EQ(g_allocations.load() - before, 0);
}

}  // namespace
}  // namespace sparkstack::kernels
