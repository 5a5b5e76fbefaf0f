// config.json parsing of the mixture-of-experts families (Qwen3-MoE, DeepSeek-V3, GLM-4 MoE,
// MiniMax-M2): the published configs give the values of /work/shared/MODELS.md, inconsistent
// configs give errors naming the field.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/model/model_config.h"

namespace sparkstack {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// Qwen/Qwen3-235B-A22B config.json (hub), trimmed of training-only keys.
constexpr char kQwen3Moe[] = R"({
  "architectures": ["Qwen3MoeForCausalLM"], "attention_bias": false, "bos_token_id": 151643,
  "decoder_sparse_step": 1, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
  "hidden_size": 4096, "intermediate_size": 12288, "max_position_embeddings": 40960,
  "max_window_layers": 94, "mlp_only_layers": [], "model_type": "qwen3_moe",
  "moe_intermediate_size": 1536, "norm_topk_prob": true, "num_attention_heads": 64,
  "num_experts": 128, "num_experts_per_tok": 8, "num_hidden_layers": 94, "num_key_value_heads": 4,
  "output_router_logits": false, "rms_norm_eps": 1e-06, "rope_scaling": null,
  "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001, "sliding_window": null,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_cache": true,
  "use_sliding_window": false, "vocab_size": 151936})";

// deepseek-ai/DeepSeek-V3 config.json (hub), without auto_map.
constexpr char kDeepseekV3[] = R"({
  "architectures": ["DeepseekV3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "aux_loss_alpha": 0.001, "bos_token_id": 0, "eos_token_id": 1, "ep_size": 1,
  "first_k_dense_replace": 3, "hidden_act": "silu", "hidden_size": 7168,
  "initializer_range": 0.02, "intermediate_size": 18432, "kv_lora_rank": 512,
  "max_position_embeddings": 163840, "model_type": "deepseek_v3", "moe_intermediate_size": 2048,
  "moe_layer_freq": 1, "n_group": 8, "n_routed_experts": 256, "n_shared_experts": 1,
  "norm_topk_prob": true, "num_attention_heads": 128, "num_experts_per_tok": 8,
  "num_hidden_layers": 61, "num_key_value_heads": 128, "num_nextn_predict_layers": 1,
  "pretraining_tp": 1, "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
  "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                          "weight_block_size": [128, 128]},
  "rms_norm_eps": 1e-06,
  "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0,
                   "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096,
                   "type": "yarn"},
  "rope_theta": 10000, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "seq_aux": true,
  "tie_word_embeddings": false, "topk_group": 4, "topk_method": "noaux_tc",
  "torch_dtype": "bfloat16", "transformers_version": "4.33.1", "use_cache": true,
  "v_head_dim": 128, "vocab_size": 129280})";

// zai-org/GLM-4.6 config.json (hub).
constexpr char kGlm46[] = R"({
  "architectures": ["Glm4MoeForCausalLM"], "attention_bias": true, "attention_dropout": 0.0,
  "pad_token_id": 151329, "eos_token_id": [151329, 151336, 151338], "head_dim": 128,
  "hidden_act": "silu", "hidden_size": 5120, "partial_rotary_factor": 0.5,
  "initializer_range": 0.02, "intermediate_size": 12288, "max_position_embeddings": 202752,
  "model_type": "glm4_moe", "moe_intermediate_size": 1536, "norm_topk_prob": true,
  "num_attention_heads": 96, "n_group": 1, "topk_group": 1, "n_routed_experts": 160,
  "n_shared_experts": 1, "routed_scaling_factor": 2.5, "num_experts_per_tok": 8,
  "first_k_dense_replace": 3, "num_hidden_layers": 92, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 1000000,
  "num_nextn_predict_layers": 1, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.54.0", "use_cache": true, "use_qk_norm": true,
  "vocab_size": 151552})";

// MiniMaxAI/MiniMax-M2 config.json (hub) without auto_map and quantization_config; the 62-entry
// attn_type_list is filled in by MiniMaxM2().
constexpr char kMiniMaxM2[] = R"({
  "architectures": ["MiniMaxM2ForCausalLM"], "head_dim": 128, "hidden_act": "silu",
  "hidden_size": 3072, "intermediate_size": 1536, "max_position_embeddings": 196608,
  "model_type": "minimax_m2", "mtp_transformer_layers": 1, "num_attention_heads": 48,
  "num_experts_per_tok": 8, "num_hidden_layers": 62, "num_key_value_heads": 8,
  "num_local_experts": 256, "num_mtp_modules": 3, "output_router_logits": false,
  "qk_norm_type": "per_layer", "rms_norm_eps": 1e-06, "rope_theta": 5000000, "rotary_dim": 64,
  "router_aux_loss_coef": 0.001, "router_jitter_noise": 0.0, "scoring_func": "sigmoid",
  "shared_intermediate_size": 0, "shared_moe_mode": "sigmoid", "sliding_window": null,
  "tie_word_embeddings": false, "use_cache": true, "use_mtp": true, "use_qk_norm": true,
  "use_routing_bias": true, "vocab_size": 200064, "torch_dtype": "bfloat16"})";

Json MiniMaxM2() {
  Json j = Json::parse(kMiniMaxM2);
  j["attn_type_list"] = std::vector<int>(62, 1);
  return j;
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(MoeConfigTest, Qwen3Moe235B) {
  auto c = ParseModelConfig(Json::parse(kQwen3Moe), "qwen3moe/config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, Architecture::kQwen3Moe);
  EXPECT_EQ(ArchitectureName(c->architecture), "qwen3_moe");
  EXPECT_EQ(c->hidden_size, 4096);
  EXPECT_EQ(c->num_layers, 94);
  EXPECT_EQ(c->num_heads, 64);
  EXPECT_EQ(c->num_kv_heads, 4);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->rotary_dim, 128);
  EXPECT_FALSE(c->rope_interleaved);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_FALSE(c->qk_norm_across_heads);
  EXPECT_EQ(c->moe.num_experts, 128);
  EXPECT_EQ(c->moe.num_experts_per_tok, 8);
  EXPECT_EQ(c->moe.moe_intermediate_size, 1536);
  EXPECT_EQ(c->moe.num_shared_experts, 0);
  EXPECT_EQ(c->moe.scoring, MoeScoring::kSoftmax);
  EXPECT_FALSE(c->moe.score_correction_bias);
  EXPECT_TRUE(c->moe.norm_topk_prob);
  EXPECT_DOUBLE_EQ(c->moe.routed_scaling_factor, 1.0);
  EXPECT_EQ(c->moe.n_group, 1);
  EXPECT_EQ(c->mla.kv_lora_rank, 0);
  for (int64_t layer : {0, 1, 93}) EXPECT_TRUE(IsMoeLayer(*c, layer)) << layer;
}

TEST(MoeConfigTest, Qwen3MoeSparseStepAndMlpOnlyLayers) {
  Json j = Json::parse(kQwen3Moe);
  j["num_hidden_layers"] = 6;
  j["decoder_sparse_step"] = 2;
  j["mlp_only_layers"] = {3};
  auto c = ParseModelConfig(j, "x");
  ASSERT_TRUE(c.ok()) << c.status();
  // (layer + 1) % 2 == 0 and not listed: layers 1 and 5 (3 is listed).
  std::vector<bool> moe;
  for (int64_t layer = 0; layer < 6; ++layer) moe.push_back(IsMoeLayer(*c, layer));
  EXPECT_THAT(moe, ElementsAre(false, true, false, false, false, true));
}

TEST(MoeConfigTest, DeepseekV3) {
  auto c = ParseModelConfig(Json::parse(kDeepseekV3), "dsv3/config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, Architecture::kDeepseekV3);
  EXPECT_EQ(c->hidden_size, 7168);
  EXPECT_EQ(c->num_layers, 61);
  EXPECT_EQ(c->num_heads, 128);
  EXPECT_EQ(c->head_dim, 192);  // qk_nope 128 + qk_rope 64
  EXPECT_EQ(c->rotary_dim, 64);
  EXPECT_TRUE(c->rope_interleaved);
  EXPECT_FALSE(c->qk_norm);
  EXPECT_EQ(c->mla.q_lora_rank, 1536);
  EXPECT_EQ(c->mla.kv_lora_rank, 512);
  EXPECT_EQ(c->mla.qk_nope_head_dim, 128);
  EXPECT_EQ(c->mla.qk_rope_head_dim, 64);
  EXPECT_EQ(c->mla.v_head_dim, 128);
  EXPECT_EQ(c->moe.num_experts, 256);
  EXPECT_EQ(c->moe.num_experts_per_tok, 8);
  EXPECT_EQ(c->moe.moe_intermediate_size, 2048);
  EXPECT_EQ(c->moe.num_shared_experts, 1);
  EXPECT_EQ(c->moe.scoring, MoeScoring::kSigmoid);
  EXPECT_TRUE(c->moe.score_correction_bias);
  EXPECT_TRUE(c->moe.norm_topk_prob);
  EXPECT_DOUBLE_EQ(c->moe.routed_scaling_factor, 2.5);
  EXPECT_EQ(c->moe.n_group, 8);
  EXPECT_EQ(c->moe.topk_group, 4);
  EXPECT_EQ(c->num_mtp_layers, 1);
  EXPECT_FALSE(IsMoeLayer(*c, 0));
  EXPECT_FALSE(IsMoeLayer(*c, 2));
  EXPECT_TRUE(IsMoeLayer(*c, 3));
  EXPECT_TRUE(IsMoeLayer(*c, 60));
  EXPECT_EQ(c->rope_scaling.type, "yarn");
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 40.0);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(c->rope_scaling.beta_fast, 32.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.beta_slow, 1.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.mscale, 1.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.mscale_all_dim, 1.0);
}

TEST(MoeConfigTest, DeepseekWithoutQLora) {
  Json j = Json::parse(kDeepseekV3);
  j["q_lora_rank"] = nullptr;  // as DeepSeek-V2-Lite writes it
  auto c = ParseModelConfig(j, "x");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->mla.q_lora_rank, 0);
}

TEST(MoeConfigTest, Glm46) {
  auto c = ParseModelConfig(Json::parse(kGlm46), "glm/config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, Architecture::kGlm4Moe);
  EXPECT_EQ(c->hidden_size, 5120);
  EXPECT_EQ(c->num_heads, 96);
  EXPECT_EQ(c->num_kv_heads, 8);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->rotary_dim, 64);  // partial_rotary_factor 0.5
  EXPECT_FALSE(c->rope_interleaved);
  EXPECT_TRUE(c->attention_bias);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_FALSE(c->qk_norm_across_heads);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_EQ(c->moe.num_experts, 160);
  EXPECT_EQ(c->moe.num_shared_experts, 1);
  EXPECT_EQ(c->moe.scoring, MoeScoring::kSigmoid);
  EXPECT_TRUE(c->moe.score_correction_bias);
  EXPECT_DOUBLE_EQ(c->moe.routed_scaling_factor, 2.5);
  EXPECT_EQ(c->moe.n_group, 1);
  EXPECT_EQ(c->num_mtp_layers, 1);
  EXPECT_FALSE(IsMoeLayer(*c, 2));
  EXPECT_TRUE(IsMoeLayer(*c, 3));
  EXPECT_THAT(c->eos_token_ids, ElementsAre(151329, 151336, 151338));

  Json air = Json::parse(kGlm46);
  air.erase("use_qk_norm");  // GLM-4.5-Air: no q/k norm (transformers' default)
  auto a = ParseModelConfig(air, "x");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_FALSE(a->qk_norm);
}

TEST(MoeConfigTest, MiniMaxM2) {
  auto c = ParseModelConfig(MiniMaxM2(), "minimax/config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, Architecture::kMiniMaxM2);
  EXPECT_EQ(c->hidden_size, 3072);
  EXPECT_EQ(c->num_heads, 48);
  EXPECT_EQ(c->num_kv_heads, 8);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->rotary_dim, 64);
  EXPECT_FALSE(c->rope_interleaved);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_TRUE(c->qk_norm_across_heads);
  EXPECT_EQ(c->moe.num_experts, 256);
  EXPECT_EQ(c->moe.num_experts_per_tok, 8);
  EXPECT_EQ(c->moe.moe_intermediate_size, 1536);
  EXPECT_EQ(c->moe.num_shared_experts, 0);
  EXPECT_EQ(c->moe.scoring, MoeScoring::kSigmoid);
  EXPECT_TRUE(c->moe.score_correction_bias);
  EXPECT_TRUE(c->moe.norm_topk_prob);
  EXPECT_DOUBLE_EQ(c->moe.routed_scaling_factor, 1.0);
  EXPECT_DOUBLE_EQ(c->rope_theta, 5e6);
  EXPECT_EQ(c->num_mtp_layers, 3);
  for (int64_t layer : {0, 61}) EXPECT_TRUE(IsMoeLayer(*c, layer));
}

TEST(MoeConfigTest, JsonRoundTrip) {
  for (const Json& j :
       {Json::parse(kQwen3Moe), Json::parse(kDeepseekV3), Json::parse(kGlm46), MiniMaxM2()}) {
    auto c = ParseModelConfig(j, "x");
    ASSERT_TRUE(c.ok()) << c.status();
    const Json written = ModelConfigToJson(*c);
    auto again = ParseModelConfig(written, "written");
    ASSERT_TRUE(again.ok()) << again.status() << "\n" << written.dump(2);
    EXPECT_EQ(*again, *c) << written.dump(2);
  }
  // Odd partial rotary (10 of 24 dims) survives the trip through partial_rotary_factor.
  Json glm = Json::parse(kGlm46);
  glm["head_dim"] = 24;
  glm["partial_rotary_factor"] = 10.0 / 24.0;
  auto c = ParseModelConfig(glm, "x");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rotary_dim, 10);
  auto again = ParseModelConfig(ModelConfigToJson(*c), "written");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->rotary_dim, 10);
}

struct BadCase {
  const char* name;
  const char* config;
  const char* key;
  Json value;  // null: erase the key
  absl::StatusCode code;
  const char* message;
};

class MoeConfigErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(MoeConfigErrorTest, NamesTheProblem) {
  const BadCase& b = GetParam();
  Json j = std::string(b.config) == "minimax" ? MiniMaxM2() : Json::parse(b.config);
  if (b.value.is_null()) {
    j.erase(b.key);
  } else {
    j[b.key] = b.value;
  }
  auto c = ParseModelConfig(j, "models/m/config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), b.code) << c.status();
  EXPECT_THAT(Message(c.status()), HasSubstr(b.message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MoeConfigErrorTest,
    ::testing::Values(
        BadCase{"missing_experts", kQwen3Moe, "num_experts", nullptr,
                absl::StatusCode::kInvalidArgument, "missing required field 'num_experts'"},
        BadCase{"topk_above_experts", kQwen3Moe, "num_experts_per_tok", 129,
                absl::StatusCode::kInvalidArgument, "'num_experts_per_tok' must be in [1, 128]"},
        BadCase{"zero_topk", kQwen3Moe, "num_experts_per_tok", 0,
                absl::StatusCode::kInvalidArgument, "num_experts_per_tok"},
        BadCase{"mlp_only_out_of_range", kQwen3Moe, "mlp_only_layers", Json::array({94}),
                absl::StatusCode::kInvalidArgument, "'mlp_only_layers' names layer 94"},
        BadCase{"sparse_step_zero", kQwen3Moe, "decoder_sparse_step", 0,
                absl::StatusCode::kInvalidArgument, "decoder_sparse_step"},
        BadCase{"groups_not_dividing", kDeepseekV3, "n_group", 7,
                absl::StatusCode::kInvalidArgument, "'n_group' (7) must be positive and divide"},
        BadCase{"topk_group_above", kDeepseekV3, "topk_group", 9,
                absl::StatusCode::kInvalidArgument, "'topk_group' must be in [1, n_group = 8]"},
        BadCase{"groups_too_few_experts", kDeepseekV3, "num_experts_per_tok", 200,
                absl::StatusCode::kInvalidArgument, "cannot supply num_experts_per_tok"},
        BadCase{"missing_kv_lora", kDeepseekV3, "kv_lora_rank", nullptr,
                absl::StatusCode::kInvalidArgument, "missing required field 'kv_lora_rank'"},
        BadCase{"odd_rope", kDeepseekV3, "qk_rope_head_dim", 63, absl::StatusCode::kInvalidArgument,
                "must be even"},
        BadCase{"negative_v", kDeepseekV3, "v_head_dim", -1, absl::StatusCode::kInvalidArgument,
                "'v_head_dim' must be positive"},
        BadCase{"dense_beyond_layers", kDeepseekV3, "first_k_dense_replace", 62,
                absl::StatusCode::kInvalidArgument, "'first_k_dense_replace' must be in [0, 61]"},
        BadCase{"softmax_deepseek", kDeepseekV3, "scoring_func", "softmax",
                absl::StatusCode::kUnimplemented, "scoring_func 'softmax'"},
        BadCase{"greedy_deepseek", kDeepseekV3, "topk_method", "group_limited_greedy",
                absl::StatusCode::kUnimplemented, "topk_method 'group_limited_greedy'"},
        BadCase{"bad_scoring", kDeepseekV3, "scoring_func", "relu",
                absl::StatusCode::kInvalidArgument, "'scoring_func' is 'relu'"},
        BadCase{"zero_scaling", kGlm46, "routed_scaling_factor", 0.0,
                absl::StatusCode::kInvalidArgument, "'routed_scaling_factor' must be positive"},
        BadCase{"rotary_factor_too_big", kGlm46, "partial_rotary_factor", 1.5,
                absl::StatusCode::kInvalidArgument, "'partial_rotary_factor' must be in (0, 1]"},
        BadCase{"odd_rotary", kGlm46, "partial_rotary_factor", 0.5078125,  // 65 of 128
                absl::StatusCode::kInvalidArgument, "found 65"},
        BadCase{"rotary_dim_too_big", "minimax", "rotary_dim", 130,
                absl::StatusCode::kInvalidArgument, "head_dim = 128], found 130"},
        BadCase{"linear_attention", "minimax", "attn_type_list", Json::array({1, 0}),
                absl::StatusCode::kUnimplemented, "attn_type_list[1] is 0"},
        BadCase{"shared_minimax", "minimax", "shared_intermediate_size", 512,
                absl::StatusCode::kUnimplemented, "shared_intermediate_size 512"},
        BadCase{"qk_norm_type", "minimax", "qk_norm_type", "per_head",
                absl::StatusCode::kUnimplemented, "qk_norm_type 'per_head'"},
        BadCase{"yarn_beta", kDeepseekV3, "rope_scaling",
                Json{{"type", "yarn"}, {"factor", 40}, {"beta_fast", 1}, {"beta_slow", 32}},
                absl::StatusCode::kInvalidArgument, "beta_fast > beta_slow"},
        BadCase{"rope_longrope", kGlm46, "rope_scaling", Json{{"rope_type", "longrope"}},
                absl::StatusCode::kUnimplemented, "type 'longrope' is not supported"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return std::string(info.param.name); });

TEST(MoeConfigTest, YarnDefaults) {
  Json j = Json::parse(kDeepseekV3);
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  auto c = ParseModelConfig(j, "x");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 163840);  // max_position
  EXPECT_DOUBLE_EQ(c->rope_scaling.beta_fast, 32.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.beta_slow, 1.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.mscale, 0.0);
  EXPECT_TRUE(c->rope_scaling.truncate);
}

}  // namespace
}  // namespace sparkstack
