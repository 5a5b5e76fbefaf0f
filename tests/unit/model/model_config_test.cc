#include "runtime/model/model_config.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/model/test_util.h"

namespace sparkstack {
namespace {

using ::sparkstack::testing::ScratchDir;
using ::sparkstack::testing::WriteBytes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// meta-llama/Llama-3.1-8B-Instruct config.json as published on the Hugging Face hub.
constexpr char kLlama31Config[] = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256})";

// Qwen/Qwen3-0.6B config.json as published on the Hugging Face hub.
constexpr char kQwen3Config[] = R"({
  "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
  "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
  "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
  "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null,
  "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
  "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})";

Json Minimal(const std::string& architecture) {
  return {{"architectures", {architecture}}, {"hidden_size", 96},     {"intermediate_size", 200},
          {"num_hidden_layers", 3},          {"num_attention_heads", 6}, {"vocab_size", 301}};
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(ModelConfigTest, Llama31) {
  auto c = ParseModelConfig(Json::parse(kLlama31Config), "llama/config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, Architecture::kLlama);
  EXPECT_EQ(ArchitectureName(c->architecture), "llama");
  EXPECT_EQ(c->hidden_size, 4096);
  EXPECT_EQ(c->intermediate_size, 14336);
  EXPECT_EQ(c->num_layers, 32);
  EXPECT_EQ(c->num_heads, 32);
  EXPECT_EQ(c->num_kv_heads, 8);  // GQA
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->vocab_size, 128256);
  EXPECT_EQ(c->max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
  EXPECT_EQ(c->rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_FALSE(c->qk_norm);
  EXPECT_FALSE(c->attention_bias);
  EXPECT_THAT(c->bos_token_ids, ElementsAre(128000));
  EXPECT_THAT(c->eos_token_ids, ElementsAre(128001, 128008, 128009));
  EXPECT_EQ(c->torch_dtype, DType::kBF16);
}

TEST(ModelConfigTest, Qwen3) {
  auto c = ParseModelConfig(Json::parse(kQwen3Config), "qwen3/config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, Architecture::kQwen3);
  EXPECT_EQ(ArchitectureName(c->architecture), "qwen3");
  EXPECT_EQ(c->hidden_size, 1024);
  EXPECT_EQ(c->num_heads, 16);
  EXPECT_EQ(c->num_kv_heads, 8);
  EXPECT_EQ(c->head_dim, 128);  // explicit, not 1024 / 16
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);
  EXPECT_EQ(c->rope_scaling.type, "none");
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_FALSE(c->attention_bias);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(151645));
}

TEST(ModelConfigTest, Defaults) {
  auto llama = ParseModelConfig(Minimal("LlamaForCausalLM"), "x");
  ASSERT_TRUE(llama.ok()) << llama.status();
  EXPECT_EQ(llama->num_kv_heads, 6);
  EXPECT_EQ(llama->head_dim, 16);
  EXPECT_DOUBLE_EQ(llama->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(llama->rope_theta, 10000.0);
  EXPECT_EQ(llama->rope_scaling, RopeScaling());
  EXPECT_FALSE(llama->tie_word_embeddings);
  EXPECT_FALSE(llama->qk_norm);
  EXPECT_FALSE(llama->attention_bias);
  EXPECT_TRUE(llama->bos_token_ids.empty());
  EXPECT_TRUE(llama->eos_token_ids.empty());
  EXPECT_EQ(llama->torch_dtype, DType::kBF16);
  EXPECT_GT(llama->max_position_embeddings, 0);

  auto qwen = ParseModelConfig(Minimal("Qwen3ForCausalLM"), "x");
  ASSERT_TRUE(qwen.ok()) << qwen.status();
  EXPECT_DOUBLE_EQ(qwen->rms_norm_eps, 1e-6);
  EXPECT_TRUE(qwen->qk_norm);
  EXPECT_EQ(qwen->head_dim, 16);

  // Mistral maps to llama; model_type is the fallback without "architectures".
  auto mistral = ParseModelConfig(Minimal("MistralForCausalLM"), "x");
  ASSERT_TRUE(mistral.ok()) << mistral.status();
  EXPECT_EQ(mistral->architecture, Architecture::kLlama);
  Json no_arch = Minimal("x");
  no_arch.erase("architectures");
  no_arch["model_type"] = "qwen3";
  auto by_type = ParseModelConfig(no_arch, "x");
  ASSERT_TRUE(by_type.ok()) << by_type.status();
  EXPECT_EQ(by_type->architecture, Architecture::kQwen3);
}

TEST(ModelConfigTest, OptionalFieldsAndVariants) {
  Json j = Minimal("LlamaForCausalLM");
  j["torch_dtype"] = "float16";
  j["attention_bias"] = true;
  j["tie_word_embeddings"] = true;
  j["head_dim"] = 40;  // explicit head_dim wins even when hidden_size / heads differs
  j["rope_scaling"] = {{"type", "llama3"}, {"factor", 32.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  j["eos_token_id"] = nullptr;
  auto c = ParseModelConfig(j, "x");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->torch_dtype, DType::kF16);
  EXPECT_TRUE(c->attention_bias);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->head_dim, 40);
  EXPECT_EQ(c->rope_scaling.type, "llama3");  // the older "type" key
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 32.0);
  EXPECT_TRUE(c->eos_token_ids.empty());

  // transformers 5 writes "dtype" and "rope_parameters" (with rope_theta inside).
  Json v5 = Minimal("LlamaForCausalLM");
  v5["dtype"] = "float32";
  v5["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  auto c5 = ParseModelConfig(v5, "x");
  ASSERT_TRUE(c5.ok()) << c5.status();
  EXPECT_EQ(c5->torch_dtype, DType::kF32);
  EXPECT_DOUBLE_EQ(c5->rope_theta, 500000.0);
  EXPECT_EQ(c5->rope_scaling.type, "none");

  // A sliding window that covers the whole context is ordinary causal attention.
  Json mistral = Minimal("MistralForCausalLM");
  mistral["max_position_embeddings"] = 4096;
  mistral["sliding_window"] = 4096;
  EXPECT_TRUE(ParseModelConfig(mistral, "x").ok());
}

TEST(ModelConfigTest, JsonRoundTrip) {
  for (const char* text : {kLlama31Config, kQwen3Config}) {
    auto c = ParseModelConfig(Json::parse(text), "x");
    ASSERT_TRUE(c.ok());
    const Json written = ModelConfigToJson(*c);
    auto again = ParseModelConfig(written, "written");
    ASSERT_TRUE(again.ok()) << again.status() << "\n" << written.dump(2);
    EXPECT_EQ(*again, *c) << written.dump(2);
  }
  auto llama = ParseModelConfig(Json::parse(kLlama31Config), "x");
  const Json j = ModelConfigToJson(*llama);
  EXPECT_EQ(j["architectures"], Json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(j["model_type"], "llama");
  EXPECT_EQ(j["rope_scaling"]["rope_type"], "llama3");
  EXPECT_EQ(j["num_key_value_heads"], 8);
  EXPECT_EQ(j["eos_token_id"], Json::array({128001, 128008, 128009}));
  EXPECT_EQ(j["bos_token_id"], 128000);
  EXPECT_EQ(j["torch_dtype"], "bfloat16");
  auto qwen = ParseModelConfig(Json::parse(kQwen3Config), "x");
  EXPECT_EQ(ModelConfigToJson(*qwen)["model_type"], "qwen3");
  EXPECT_TRUE(ModelConfigToJson(*qwen)["rope_scaling"].is_null());
}

TEST(ModelConfigTest, MissingRequiredFields) {
  for (const char* field : {"hidden_size", "intermediate_size", "num_hidden_layers",
                            "num_attention_heads", "vocab_size"}) {
    SCOPED_TRACE(field);
    Json j = Minimal("LlamaForCausalLM");
    j.erase(field);
    auto c = ParseModelConfig(j, "models/m/config.json");
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(c.status()), HasSubstr(std::string("missing required field '") + field));
    EXPECT_THAT(Message(c.status()), HasSubstr("models/m/config.json"));
  }
}

struct ErrorCase {
  const char* label;
  Json patch;  // merged into the minimal llama config
  std::string expected;
  absl::StatusCode code = absl::StatusCode::kInvalidArgument;
};

TEST(ModelConfigTest, EachErrorIsSpecific) {
  const std::vector<ErrorCase> cases = {
      {"unknown architecture", {{"architectures", {"GPT2LMHeadModel"}}},
       "unsupported architecture 'GPT2LMHeadModel'; supported: LlamaForCausalLM, "
       "MistralForCausalLM, Qwen3ForCausalLM"},
      {"architectures not a list", {{"architectures", "LlamaForCausalLM"}},
       "field 'architectures' must be a non-empty list"},
      {"wrong type", {{"hidden_size", "96"}}, "field 'hidden_size' must be an integer"},
      {"float size", {{"vocab_size", 301.5}}, "field 'vocab_size' must be an integer"},
      {"bool type", {{"tie_word_embeddings", 1}}, "field 'tie_word_embeddings' must be true or false"},
      {"eps type", {{"rms_norm_eps", "small"}}, "field 'rms_norm_eps' must be a number"},
      {"eos type", {{"eos_token_id", {1, "2"}}}, "field 'eos_token_id' must be an integer or a list"},
      {"zero size", {{"intermediate_size", 0}}, "field 'intermediate_size' must be positive, found 0"},
      {"negative layers", {{"num_hidden_layers", -2}}, "'num_hidden_layers' must be positive"},
      {"gqa not divisible", {{"num_key_value_heads", 4}},
       "num_attention_heads (6) must be a multiple of num_key_value_heads (4)"},
      {"implicit head_dim", {{"hidden_size", 100}},
       "hidden_size (100) is not divisible by num_attention_heads (6)"},
      {"bad head_dim", {{"head_dim", 0}}, "field 'head_dim' must be positive"},
      {"bad eps", {{"rms_norm_eps", 0.0}}, "'rms_norm_eps' must be positive"},
      {"bad theta", {{"rope_theta", -1.0}}, "'rope_theta' must be positive"},
      {"torch_dtype", {{"torch_dtype", "int8"}}, "field 'torch_dtype' is 'int8'"},
      {"rope linear", {{"rope_scaling", {{"type", "linear"}, {"factor", 2.0}}}},
       "rope_scaling type 'linear' is not supported", absl::StatusCode::kUnimplemented},
      {"rope dynamic", {{"rope_scaling", {{"rope_type", "dynamic"}, {"factor", 2.0}}}},
       "rope_scaling type 'dynamic' is not supported", absl::StatusCode::kUnimplemented},
      {"rope yarn", {{"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}}},
       "rope_scaling type 'yarn' is not supported", absl::StatusCode::kUnimplemented},
      {"rope not object", {{"rope_scaling", 2}}, "field 'rope_scaling' must be an object"},
      {"llama3 bad factors",
       {{"rope_scaling", {{"rope_type", "llama3"}, {"low_freq_factor", 4.0},
                          {"high_freq_factor", 1.0}}}},
       "0 < low_freq_factor < high_freq_factor"},
      {"activation", {{"hidden_act", "gelu"}}, "hidden_act 'gelu' is not supported",
       absl::StatusCode::kUnimplemented},
      {"mlp bias", {{"mlp_bias", true}}, "mlp_bias true is not supported",
       absl::StatusCode::kUnimplemented},
      {"sliding window",
       {{"sliding_window", 4096}, {"max_position_embeddings", 32768}},
       "sliding_window 4096", absl::StatusCode::kUnimplemented},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.label);
    Json j = Minimal("LlamaForCausalLM");
    j.update(c.patch);
    auto config = ParseModelConfig(j, "dir/config.json");
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.status().code(), c.code) << config.status();
    EXPECT_THAT(Message(config.status()), HasSubstr(c.expected));
    EXPECT_THAT(Message(config.status()), HasSubstr("dir/config.json"));
  }
  Json qwen = Minimal("Qwen3ForCausalLM");
  qwen["use_sliding_window"] = true;
  qwen["sliding_window"] = 4096;
  qwen["max_position_embeddings"] = 40960;
  EXPECT_EQ(ParseModelConfig(qwen, "q").status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(Message(ParseModelConfig(Json::array(), "arr").status()),
              HasSubstr("must be a JSON object"));
}

TEST(ModelConfigTest, LoadFromDirectory) {
  ScratchDir dir;
  auto missing = LoadModelConfig(dir.path());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(missing.status()), HasSubstr("config.json"));
  WriteBytes(dir.File("config.json"), "{\"architectures\": [");
  auto bad = LoadModelConfig(dir.path());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(bad.status()), HasSubstr("not valid JSON"));
  WriteBytes(dir.File("config.json"), kQwen3Config);
  auto good = LoadModelConfig(dir.path());
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->architecture, Architecture::kQwen3);
}

}  // namespace
}  // namespace sparkstack
