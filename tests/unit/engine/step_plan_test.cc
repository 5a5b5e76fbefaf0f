// StepPlan v2 and StepResult wire formats: round trips, compactness, and untrusted bytes.
#include "runtime/engine/step_plan.h"

#include <random>

#include "gtest/gtest.h"
#include "runtime/engine/step_result.h"

namespace sparkstack {
namespace {

const StepPlanLimits kLimits = {.max_sequences = 8, .max_tokens = 1000, .num_blocks = 64,
                                .max_payload_bytes = 1 << 20};

StepPlan SamplePlan() {
  StepPlan plan;
  plan.step_id = 42;
  plan.released = {7, 9};
  PlannedSequence decode{.id = 3, .samples = true, .num_computed = 17, .num_scheduled = 1,
                         .block_ids = {}, .tokens = {250}};
  PlannedSequence fresh{.id = uint64_t{1} << 40, .is_new = true, .samples = false, .return_logits = false,
                        .num_computed = 16, .num_scheduled = 5, .block_ids = {63, 0},
                        .tokens = std::vector<int32_t>(30, 5), .num_prompt_tokens = 28};
  fresh.sampling = {.temperature = 0.7f, .top_k = 40, .top_p = 0.9f, .min_p = 0.05f,
                    .repetition_penalty = 1.1f, .presence_penalty = -0.5f,
                    .frequency_penalty = 0.25f, .seed = ~0ull, .logprobs = 3};
  plan.sequences = {decode, fresh};
  return plan;
}

TEST(StepPlanTest, RoundTrips) {
  const StepPlan plan = SamplePlan();
  const std::string payload = EncodeStepPlanPayload(plan);
  const std::string header = EncodeStepPlanHeader(plan.kind, payload.size());
  ASSERT_EQ(header.size(), kStepPlanHeaderBytes);
  StepKind kind;
  uint32_t bytes = 0;
  ASSERT_TRUE(DecodeStepPlanHeader(header, kLimits, kind, bytes).ok());
  EXPECT_EQ(kind, StepKind::kStep);
  EXPECT_EQ(bytes, payload.size());
  auto decoded = DecodeStepPlanPayload(kind, payload, kLimits);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, plan);
}

TEST(StepPlanTest, ADecodingSequenceCostsAFewBytes) {
  StepPlan plan;
  plan.step_id = 1000;
  for (uint64_t id = 100; id < 108; ++id) {
    plan.sequences.push_back({.id = id, .samples = true, .num_computed = 999 - id,
                              .num_scheduled = 1, .tokens = {151000}});
  }
  const std::string payload = EncodeStepPlanPayload(plan);
  EXPECT_LE(payload.size(), 8u * 12 + 8) << "bytes per decoding sequence grew";
}

TEST(StepPlanTest, HeaderRejectsWrongMagicVersionKindAndSize) {
  std::string header = EncodeStepPlanHeader(StepKind::kStep, 10);
  StepKind kind;
  uint32_t bytes;
  std::string bad = header;
  bad[0] ^= 1;
  EXPECT_NE(DecodeStepPlanHeader(bad, kLimits, kind, bytes).message().find("magic"),
            absl::string_view::npos);
  bad = header;
  bad[4] = 1;
  EXPECT_NE(DecodeStepPlanHeader(bad, kLimits, kind, bytes).message().find("version"),
            absl::string_view::npos);
  bad = header;
  bad[6] = 9;
  EXPECT_NE(DecodeStepPlanHeader(bad, kLimits, kind, bytes).message().find("kind"),
            absl::string_view::npos);
  EXPECT_FALSE(DecodeStepPlanHeader(EncodeStepPlanHeader(StepKind::kStep, 2 << 20), kLimits,
                                    kind, bytes)
                   .ok());
  EXPECT_FALSE(DecodeStepPlanHeader(header.substr(0, 15), kLimits, kind, bytes).ok());
}

TEST(StepPlanTest, PayloadViolatingLimitsIsRejected) {
  StepPlan plan = SamplePlan();
  auto rejects = [](const StepPlan& p, const char* what) {
    auto decoded = DecodeStepPlanPayload(StepKind::kStep, EncodeStepPlanPayload(p), kLimits);
    EXPECT_FALSE(decoded.ok()) << what;
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << what;
  };
  StepPlan p = plan;
  p.sequences[1].block_ids = {64};
  rejects(p, "block id past the pool");
  p = plan;
  p.sequences[0].num_scheduled = 0;
  rejects(p, "nothing scheduled");
  p = plan;
  p.sequences[0].num_computed = 1000;
  rejects(p, "past max_tokens");
  p = plan;
  p.sequences.resize(9, plan.sequences[0]);
  rejects(p, "too many sequences");
  p = plan;
  p.sequences[1].sampling.top_p = 0;
  rejects(p, "bad sampling parameters");
  p = plan;
  p.sequences[1].num_prompt_tokens = 31;
  rejects(p, "prompt longer than the tokens");
  p = plan;
  p.sequences[0].tokens = {-1};
  rejects(p, "negative token");
}

// Every truncation and many random corruptions of a valid payload decode to an error or a plan,
// never a crash (ASan/UBSan catch out-of-bounds reads).
TEST(StepPlanTest, TruncatedAndCorruptedPayloadsNeverCrash) {
  const std::string payload = EncodeStepPlanPayload(SamplePlan());
  for (size_t n = 0; n < payload.size(); ++n) {
    EXPECT_FALSE(DecodeStepPlanPayload(StepKind::kStep, payload.substr(0, n), kLimits).ok()) << n;
  }
  EXPECT_FALSE(DecodeStepPlanPayload(StepKind::kStep, payload + "x", kLimits).ok());
  std::mt19937 rng(11);
  for (int i = 0; i < 5000; ++i) {
    std::string mutated = payload;
    for (int flips = 1 + rng() % 4; flips > 0; --flips) mutated[rng() % mutated.size()] = rng();
    (void)DecodeStepPlanPayload(StepKind::kStep, mutated, kLimits);
  }
}

TEST(StepResultTest, RoundTripsAndRejectsMalformedBytes) {
  StepResult result;
  result.step_id = 9;
  SampledToken sample{.token = 17, .logprob = -0.5f, .num_top = 2};
  sample.top[0] = {17, -0.5f};
  sample.top[1] = {3, -1.25f};
  result.samples.push_back({.id = 5, .sample = sample});
  result.logits.push_back({.id = 5, .logits = {1.0f, -2.0f, 3.5f}});
  const std::string bytes = EncodeStepResult(result);
  auto decoded = DecodeStepResult(bytes, 4, 3);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->samples[0].sample.top[1].token, 3);
  EXPECT_EQ(decoded->logits[0].logits, result.logits[0].logits);
  EXPECT_FALSE(DecodeStepResult(bytes, 4, 4).ok()) << "wrong vocabulary width";
  EXPECT_FALSE(DecodeStepResult(bytes, 0, 3).ok()) << "more rows than allowed";
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(DecodeStepResult(bytes.substr(0, n), 4, 3).ok());
}

}  // namespace
}  // namespace sparkstack
