// RoPE tables of the MoE families: DeepSeek-V3's YaRN frequencies, attention factor and MLA
// softmax scale against values worked out from the published formula and config, and the tables'
// partial-rotary and interleave settings.
#include "runtime/model/moe_rope.h"

#include <cmath>

#include "gtest/gtest.h"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/model/tiny_model.h"

namespace sparkstack {
namespace {

ModelConfig DeepseekV3() {
  auto c = TinyModelConfigWithOverrides(Architecture::kDeepseekV3,
                                        {{"qk_nope_head_dim", 128},
                                         {"qk_rope_head_dim", 64},
                                         {"v_head_dim", 128},
                                         {"kv_lora_rank", 512},
                                         {"max_position_embeddings", 163840},
                                         {"rope_theta", 10000},
                                         {"rope_scaling",
                                          {{"type", "yarn"},
                                           {"factor", 40},
                                           {"original_max_position_embeddings", 4096},
                                           {"beta_fast", 32},
                                           {"beta_slow", 1},
                                           {"mscale", 1.0},
                                           {"mscale_all_dim", 1.0}}}});
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

// d = 64, theta = 1e4, L = 4096: corr(32) = 64 ln(4096 / 64 pi) / (2 ln 1e4) = 10.47 -> low 10;
// corr(1) = 64 ln(4096 / 2 pi) / (2 ln 1e4) = 22.50 -> high 23. Dims below 10 keep theta^(-2i/64),
// dims from 23 on are divided by 40, the 13 between are mixed linearly.
TEST(MoeRopeTest, DeepseekV3Yarn) {
  const ModelConfig c = DeepseekV3();
  auto inv = RotaryInverseFrequencies(c);
  ASSERT_TRUE(inv.ok()) << inv.status();
  ASSERT_EQ(inv->size(), 32u);
  auto base = [](int i) { return std::pow(10000.0, -2.0 * i / 64.0); };
  EXPECT_NEAR((*inv)[0], 1.0, 1e-7);
  EXPECT_NEAR((*inv)[9], base(9), 1e-7 * base(9));
  EXPECT_NEAR((*inv)[23], base(23) / 40, 1e-6 * base(23));
  EXPECT_NEAR((*inv)[31], base(31) / 40, 1e-6 * base(31));
  const double r = (16.0 - 10.0) / 13.0;
  EXPECT_NEAR((*inv)[16], base(16) * (1 - r) + base(16) / 40 * r, 1e-6 * base(16));
  EXPECT_DOUBLE_EQ(RotaryAttentionFactor(c), 1.0);  // mscale == mscale_all_dim
  // 1/sqrt(192) * (0.1 ln 40 + 1)^2 (MODELS.md: mscale 1.369).
  const double m = 0.1 * std::log(40.0) + 1.0;
  EXPECT_NEAR(MlaSoftmaxScale(c), m * m / std::sqrt(192.0), 1e-12);
  EXPECT_NEAR(m, 1.369, 1e-3);
}

TEST(MoeRopeTest, YarnAttentionFactorWithoutMscales) {
  ModelConfig c = DeepseekV3();
  c.rope_scaling.mscale = 0;
  c.rope_scaling.mscale_all_dim = 0;
  EXPECT_NEAR(RotaryAttentionFactor(c), 0.1 * std::log(40.0) + 1.0, 1e-12);
  EXPECT_NEAR(MlaSoftmaxScale(c), 1 / std::sqrt(192.0), 1e-12);
  c.rope_scaling.attention_factor = 0.75;
  EXPECT_DOUBLE_EQ(RotaryAttentionFactor(c), 0.75);
}

TEST(MoeRopeTest, TablesFollowTheConfig) {
  auto backend = MakeCpuBackend();
  const ModelConfig glm = TinyModelConfig(Architecture::kGlm4Moe);  // head 16, rotary 8
  auto tables = MakeMoeRopeTables(glm, 11, *backend);
  ASSERT_TRUE(tables.ok()) << tables.status();
  EXPECT_EQ(tables->rotary_dim, 8);
  EXPECT_FALSE(tables->interleaved);
  EXPECT_EQ(tables->cos.shape(), (Shape{11, 4}));
  // Position 3, pair 1: angle 3 * theta^(-2/8).
  const double angle = 3.0 * static_cast<float>(std::pow(glm.rope_theta, -2.0 / 8.0));
  EXPECT_NEAR(tables->cos.data_as<float>()[3 * 4 + 1], std::cos(angle), 1e-6);
  EXPECT_NEAR(tables->sin.data_as<float>()[3 * 4 + 1], std::sin(angle), 1e-6);
  const ModelConfig ds = DeepseekV3();
  auto ds_tables = MakeMoeRopeTables(ds, 5, *backend);
  ASSERT_TRUE(ds_tables.ok());
  EXPECT_TRUE(ds_tables->interleaved);
  EXPECT_EQ(ds_tables->rotary_dim, 64);

  ModelConfig llama3 = glm;
  llama3.rope_scaling.type = "llama3";
  EXPECT_EQ(MakeMoeRopeTables(llama3, 5, *backend).status().code(),
            absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace sparkstack
