#include "runtime/engine/step_plan.h"

#include "gtest/gtest.h"
#include "runtime/model/pipeline_split.h"
#include "runtime/model/tiny_model.h"

namespace sparkstack {
namespace {

TEST(StepPlanTest, HeaderRoundTrips) {
  StepPlan plan{.kind = StepKind::kPrefill,
                .sequence = 3,
                .start = 0,
                .kv_capacity = 4096,
                .sampling = {.temperature = 0.7f, .top_k = 40, .top_p = 0.9f, .seed = 1234567},
                .tokens = {5, 6, 7}};
  const std::string header = EncodeStepPlanHeader(plan);
  ASSERT_EQ(header.size(), kStepPlanHeaderBytes);
  StepPlan decoded;
  ASSERT_TRUE(DecodeStepPlanHeader(header, decoded).ok());
  EXPECT_EQ(decoded.kind, plan.kind);
  EXPECT_EQ(decoded.kv_capacity, 4096u);
  EXPECT_EQ(decoded.sequence, 3u);
  EXPECT_EQ(decoded.tokens.size(), 3u);
  EXPECT_EQ(decoded.sampling.top_k, 40);
  EXPECT_EQ(decoded.sampling.seed, 1234567u);
  EXPECT_FLOAT_EQ(decoded.sampling.top_p, 0.9f);
}

TEST(StepPlanTest, MalformedHeadersAreRejected) {
  StepPlan plan{.kind = StepKind::kDecode, .start = 9, .tokens = {1}};
  const std::string good = EncodeStepPlanHeader(plan);
  StepPlan out;
  EXPECT_NE(DecodeStepPlanHeader(good.substr(1), out).message().find("expected 48"),
            absl::string_view::npos);
  std::string bad_magic = good;
  bad_magic[0] ^= 1;
  EXPECT_NE(DecodeStepPlanHeader(bad_magic, out).message().find("magic"), absl::string_view::npos);
  std::string bad_version = good;
  bad_version[4] = 9;
  EXPECT_NE(DecodeStepPlanHeader(bad_version, out).message().find("version"),
            absl::string_view::npos);
  std::string bad_kind = good;
  bad_kind[6] = 77;
  EXPECT_NE(DecodeStepPlanHeader(bad_kind, out).message().find("kind"), absl::string_view::npos);
  std::string huge = good;
  huge[16] = huge[17] = huge[18] = huge[19] = '\xff';  // token count
  EXPECT_NE(DecodeStepPlanHeader(huge, out).message().find("limit"), absl::string_view::npos);
}

TEST(PipelineSplitTest, EqualLayersWithSmallVocabularySplitEvenly) {
  ModelConfig c = TinyModelConfig(Architecture::kLlama);
  c.num_layers = 8;
  c.vocab_size = 2;
  auto stages = SplitLayersByBytes(c, 4);
  ASSERT_TRUE(stages.ok());
  ASSERT_EQ(stages->size(), 4u);
  for (int s = 0; s < 4; ++s) {
    EXPECT_EQ((*stages)[s].begin, 2 * s);
    EXPECT_EQ((*stages)[s].end, 2 * s + 2);
  }
}

TEST(PipelineSplitTest, LargeVocabularyLeavesFewerLayersOnTheEndStages) {
  ModelConfig c = TinyModelConfig(Architecture::kLlama);
  c.num_layers = 12;
  // Embedding and lm_head each weigh about two layers.
  c.vocab_size = 2 * LayerParameters(c) / c.hidden_size;
  auto stages = SplitLayersByBytes(c, 2);
  ASSERT_TRUE(stages.ok());
  EXPECT_EQ((*stages)[0].size(), 6);  // symmetric: both ends carry one vocabulary matrix
  c.tie_word_embeddings = false;
  auto four = SplitLayersByBytes(c, 4);
  ASSERT_TRUE(four.ok());
  // Total 16 layer-equivalents, 4 each: 2 layers + embedding, 4, 4, 2 layers + lm_head.
  EXPECT_EQ((*four)[0].size(), 2);
  EXPECT_EQ((*four)[1].size(), 4);
  EXPECT_EQ((*four)[2].size(), 4);
  EXPECT_EQ((*four)[3].size(), 2);
  int64_t covered = 0;
  for (const Range& r : *four) covered += r.size();
  EXPECT_EQ(covered, 12);
}

TEST(PipelineSplitTest, MoreStagesThanLayersIsAnError) {
  ModelConfig c = TinyModelConfig(Architecture::kQwen3);
  c.num_layers = 2;
  EXPECT_FALSE(SplitLayersByBytes(c, 3).ok());
  EXPECT_FALSE(SplitLayersByBytes(c, 0).ok());
}

}  // namespace
}  // namespace sparkstack
