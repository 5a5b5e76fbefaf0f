#include "runtime/deploy/checkpoint_census.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/model/safetensors.h"
#include "tests/unit/model/test_util.h"

namespace sparkstack::deploy {
namespace {

using ::sparkstack::testing::RawSafetensors;
using ::sparkstack::testing::ScratchDir;
using ::sparkstack::testing::WriteBytes;
using ::testing::HasSubstr;

// A tiny Llama config.json (hidden 64, 2 layers).
nlohmann::json TinyConfig() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"hidden_size", 64},
          {"intermediate_size", 128},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"vocab_size", 256},
          {"max_position_embeddings", 1024}};
}

std::string Entry(const std::string& dtype, const std::string& shape, uint64_t begin,
                  uint64_t end) {
  return "{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(end) + "]}";
}

TEST(ReadSafetensorsHeaderTest, AcceptsAFileWithoutItsDataSection) {
  ScratchDir dir;
  const std::string header = "{\"a\":" + Entry("BF16", "[1000,1000]", 0, 2000000) + "}";
  WriteBytes(dir.File("h.safetensors"), RawSafetensors(header, ""));
  bool has_data = true;
  absl::StatusOr<std::vector<SafetensorsEntry>> entries =
      ReadSafetensorsHeader(dir.File("h.safetensors"), &has_data);
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_FALSE(has_data);
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].nbytes(), 2000000u);
}

TEST(ReadSafetensorsHeaderTest, RefusesATruncatedDataSection) {
  ScratchDir dir;
  const std::string header = "{\"a\":" + Entry("F32", "[4]", 0, 16) + "}";
  WriteBytes(dir.File("t.safetensors"), RawSafetensors(header, std::string(10, 'x')));
  bool has_data = true;
  absl::StatusOr<std::vector<SafetensorsEntry>> entries =
      ReadSafetensorsHeader(dir.File("t.safetensors"), &has_data);
  ASSERT_FALSE(entries.ok());
  EXPECT_EQ(entries.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(entries.status().message(), HasSubstr("t.safetensors is truncated"));
  EXPECT_THAT(entries.status().message(), HasSubstr("declares 16 bytes"));
}

TEST(ReadSafetensorsHeaderTest, NamesTheFileForABadHeader) {
  ScratchDir dir;
  WriteBytes(dir.File("bad.safetensors"), RawSafetensors("{\"a\":{\"dtype\":\"Q9\"}}", ""));
  bool has_data = true;
  absl::StatusOr<std::vector<SafetensorsEntry>> entries =
      ReadSafetensorsHeader(dir.File("bad.safetensors"), &has_data);
  ASSERT_FALSE(entries.ok());
  EXPECT_THAT(entries.status().message(), HasSubstr("bad.safetensors"));
  WriteBytes(dir.File("short.safetensors"), "abc");
  EXPECT_EQ(ReadSafetensorsHeader(dir.File("short.safetensors"), &has_data).status().code(),
            absl::StatusCode::kDataLoss);
  std::string huge(8, '\0');
  huge[0] = '\x7f';
  huge[3] = '\x7f';
  WriteBytes(dir.File("huge.safetensors"), huge + "{}");
  EXPECT_THAT(ReadSafetensorsHeader(dir.File("huge.safetensors"), &has_data).status().message(),
              HasSubstr("runs past the end of the file"));
}

TEST(TakeCensusTest, ReadsARealCheckpointWithData) {
  ScratchDir dir;
  WriteBytes(dir.File("config.json"), TinyConfig().dump());
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"model.embed_tokens.weight", Tensor::Zeros(DType::kBF16, {256, 64})},
      {"model.layers.0.self_attn.k_proj.weight", Tensor::Zeros(DType::kBF16, {32, 64})},
      {"model.layers.1.mlp.up_proj.weight", Tensor::Zeros(DType::kBF16, {128, 64})},
      {"model.norm.weight", Tensor::Zeros(DType::kBF16, {64})}};
  ASSERT_TRUE(WriteSafetensors(dir.File("model.safetensors"), tensors).ok());
  absl::StatusOr<CheckpointCensus> census = TakeCensus(dir.path());
  ASSERT_TRUE(census.ok()) << census.status();
  EXPECT_FALSE(census->header_only);
  EXPECT_EQ(census->checkpoint_bytes, 2u * (256 * 64 + 32 * 64 + 128 * 64 + 64));
  EXPECT_EQ(census->resident_bytes, census->checkpoint_bytes);
  for (const TensorCensus& t : census->tensors) {
    if (t.name == "model.embed_tokens.weight") {
      EXPECT_EQ(t.placement, Placement::kEmbedding);
      EXPECT_EQ(t.matmul_elements, 0u);  // a lookup, not a matmul
    } else if (t.name == "model.layers.0.self_attn.k_proj.weight") {
      EXPECT_EQ(t.role, ShardRole::kKvSharded);
      EXPECT_EQ(t.layer, 0);
      EXPECT_EQ(t.matmul_elements, 32u * 64);
    } else if (t.name == "model.layers.1.mlp.up_proj.weight") {
      EXPECT_EQ(t.role, ShardRole::kSharded);
    } else {
      EXPECT_EQ(t.placement, Placement::kHead);
      EXPECT_EQ(t.role, ShardRole::kReplicated);
    }
  }
}

TEST(TakeCensusTest, ErrorsNameTheProblem) {
  ScratchDir dir;
  EXPECT_EQ(TakeCensus(dir.File("missing")).status().code(), absl::StatusCode::kNotFound);
  WriteBytes(dir.File("config.json"), TinyConfig().dump());
  EXPECT_THAT(TakeCensus(dir.path()).status().message(),
              HasSubstr("no weights in model directory"));
  WriteBytes(dir.File("a.safetensors"),
             RawSafetensors("{\"x\":" + Entry("F32", "[1]", 0, 4) + "}", ""));
  WriteBytes(dir.File("b.safetensors"),
             RawSafetensors("{\"x\":" + Entry("F32", "[1]", 0, 4) + "}", ""));
  EXPECT_THAT(TakeCensus(dir.path()).status().message(),
              HasSubstr("no model.safetensors.index.json"));
  WriteBytes(dir.File("model.safetensors.index.json"),
             R"({"weight_map": {"x": "a.safetensors", "y": "b.safetensors"}})");
  absl::Status twice = TakeCensus(dir.path()).status();
  EXPECT_THAT(twice.message(), HasSubstr("tensor x is in both"));
  WriteBytes(dir.File("model.safetensors.index.json"), R"({"weight_map": {"x": "c.safetensors"}})");
  EXPECT_THAT(TakeCensus(dir.path()).status().message(), HasSubstr("names shard c.safetensors"));
  WriteBytes(dir.File("model.safetensors.index.json"),
             R"({"weight_map": {"x": "../a.safetensors"}})");
  EXPECT_THAT(TakeCensus(dir.path()).status().message(), HasSubstr("outside the model directory"));
}

TEST(ClassifyTensorTest, Fp8WeightsBecomeNvfp4AndTheirScalesVanish) {
  ModelConfig config;
  config.num_layers = 61;
  auto exists = [](const std::string& name) {
    return name == "model.layers.5.mlp.experts.7.up_proj.weight_scale_inv";
  };
  SafetensorsEntry w{"model.layers.5.mlp.experts.7.up_proj.weight",
                     DType::kF8E4M3,
                     {2048, 7168},
                     0,
                     2048ull * 7168};
  const TensorCensus t = ClassifyTensor(w, config, exists);
  EXPECT_EQ(t.role, ShardRole::kExpert);
  EXPECT_EQ(t.expert, 7);
  EXPECT_TRUE(t.fp4);
  // e2m1 codes (half a byte each) + an e4m3 scale per 16 + one f32 global scale.
  EXPECT_EQ(t.resident_bytes, 2048ull * 7168 / 2 + 2048ull * 7168 / 16 + 4);
  EXPECT_EQ(t.matmul_elements, 2048ull * 7168);
  SafetensorsEntry s{"model.layers.5.mlp.experts.7.up_proj.weight_scale_inv",
                     DType::kF32,
                     {16, 56},
                     0,
                     16 * 56 * 4};
  EXPECT_EQ(ClassifyTensor(s, config, exists).resident_bytes, 0u);
}

TEST(ClassifyTensorTest, RolesOfTheMoeAndMlaTensors) {
  ModelConfig config;
  config.num_layers = 61;
  auto none = [](const std::string&) { return false; };
  auto role = [&](const std::string& name, Shape shape = {8, 8}) {
    return ClassifyTensor({name, DType::kBF16, shape, 0, 0}, config, none).role;
  };
  EXPECT_EQ(role("model.layers.3.mlp.gate.weight"), ShardRole::kReplicated);
  EXPECT_EQ(role("model.layers.3.mlp.gate.e_score_correction_bias", {8}), ShardRole::kReplicated);
  EXPECT_EQ(role("model.layers.3.block_sparse_moe.e_score_correction_bias", {8}),
            ShardRole::kReplicated);
  EXPECT_EQ(role("model.layers.3.mlp.gate_proj.weight"), ShardRole::kSharded);
  EXPECT_EQ(role("model.layers.3.mlp.shared_experts.gate_proj.weight"), ShardRole::kSharded);
  EXPECT_EQ(role("model.layers.3.block_sparse_moe.experts.255.w2.weight"), ShardRole::kExpert);
  EXPECT_EQ(role("model.layers.3.self_attn.q_a_proj.weight"), ShardRole::kReplicated);
  EXPECT_EQ(role("model.layers.3.self_attn.kv_a_proj_with_mqa.weight"), ShardRole::kReplicated);
  EXPECT_EQ(role("model.layers.3.self_attn.kv_b_proj.weight"), ShardRole::kSharded);
  EXPECT_EQ(role("model.layers.3.self_attn.kv_a_layernorm.weight", {512}), ShardRole::kReplicated);
  EXPECT_EQ(role("model.layers.3.self_attn.v_proj.bias", {8}), ShardRole::kKvSharded);
  EXPECT_EQ(role("model.layers.3.self_attn.q_proj.weight_scale_2", {}), ShardRole::kReplicated);
  const TensorCensus mtp = ClassifyTensor(
      {"model.layers.61.eh_proj.weight", DType::kBF16, {8, 16}, 0, 256}, config, none);
  EXPECT_EQ(mtp.placement, Placement::kSkipped);
  EXPECT_EQ(mtp.resident_bytes, 0u);
  EXPECT_EQ(mtp.checkpoint_bytes, 256u);
}

TEST(ClassifyTensorTest, ModelOptNvfp4CodesCountTwoElementsPerByte) {
  ModelConfig config;
  config.num_layers = 2;
  auto exists = [](const std::string& name) {
    return name == "model.layers.0.self_attn.o_proj.weight_scale";
  };
  const TensorCensus t = ClassifyTensor(
      {"model.layers.0.self_attn.o_proj.weight", DType::kU8, {64, 32}, 0, 2048}, config, exists);
  EXPECT_TRUE(t.fp4);
  EXPECT_EQ(t.matmul_elements, 64u * 64);
  EXPECT_EQ(t.resident_bytes, 2048u);
}

}  // namespace
}  // namespace sparkstack::deploy
