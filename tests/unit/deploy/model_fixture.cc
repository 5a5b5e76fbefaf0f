#include "tests/unit/deploy/model_fixture.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace sparkstack::testing {
namespace {

namespace fs = std::filesystem;

class TensorList {
 public:
  TensorList(FixtureWeights weights) : weights_(weights) {}

  void Add(std::string name, DType dtype, std::vector<int64_t> shape) {
    tensors_.push_back({std::move(name), dtype, std::move(shape)});
  }
  void Norm(const std::string& name, int64_t width) {
    Add(name + ".weight", DType::kBF16, {width});
  }

  // A linear layer's weight [n, k] in the fixture's storage.
  void Linear(const std::string& prefix, int64_t n, int64_t k) {
    switch (weights_) {
      case FixtureWeights::kNvfp4:
        Add(prefix + ".weight", DType::kU8, {n, k / 2});
        Add(prefix + ".weight_scale", DType::kF8E4M3, {n, k / 16});
        Add(prefix + ".weight_scale_2", DType::kF32, {});
        Add(prefix + ".input_scale", DType::kF32, {});
        break;
      case FixtureWeights::kFp8:
        Add(prefix + ".weight", DType::kF8E4M3, {n, k});
        Add(prefix + ".weight_scale_inv", DType::kF32, {(n + 127) / 128, (k + 127) / 128});
        break;
      case FixtureWeights::kBf16:
        Add(prefix + ".weight", DType::kBF16, {n, k});
        break;
    }
  }
  void SwiGlu(const std::string& prefix, int64_t width, int64_t hidden, const char* gate,
              const char* up, const char* down) {
    Linear(prefix + gate, width, hidden);
    Linear(prefix + up, width, hidden);
    Linear(prefix + down, hidden, width);
  }

  std::vector<FixtureTensor> Take() { return std::move(tensors_); }

 private:
  FixtureWeights weights_;
  std::vector<FixtureTensor> tensors_;
};

void AddAttention(TensorList& t, const ModelConfig& c, const std::string& p) {
  const int64_t h = c.hidden_size;
  if (c.mla.kv_lora_rank > 0) {
    const MlaConfig& a = c.mla;
    const int64_t q_width = c.num_heads * (a.qk_nope_head_dim + a.qk_rope_head_dim);
    if (a.q_lora_rank > 0) {
      t.Linear(p + "self_attn.q_a_proj", a.q_lora_rank, h);
      t.Norm(p + "self_attn.q_a_layernorm", a.q_lora_rank);
      t.Linear(p + "self_attn.q_b_proj", q_width, a.q_lora_rank);
    } else {
      t.Linear(p + "self_attn.q_proj", q_width, h);
    }
    t.Linear(p + "self_attn.kv_a_proj_with_mqa", a.kv_lora_rank + a.qk_rope_head_dim, h);
    t.Norm(p + "self_attn.kv_a_layernorm", a.kv_lora_rank);
    t.Linear(p + "self_attn.kv_b_proj", c.num_heads * (a.qk_nope_head_dim + a.v_head_dim),
             a.kv_lora_rank);
    t.Linear(p + "self_attn.o_proj", h, c.num_heads * a.v_head_dim);
    return;
  }
  const int64_t q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  t.Linear(p + "self_attn.q_proj", q, h);
  t.Linear(p + "self_attn.k_proj", kv, h);
  t.Linear(p + "self_attn.v_proj", kv, h);
  t.Linear(p + "self_attn.o_proj", h, q);
  if (c.attention_bias) {  // GLM-4 MoE: q/k/v only
    t.Add(p + "self_attn.q_proj.bias", DType::kBF16, {q});
    t.Add(p + "self_attn.k_proj.bias", DType::kBF16, {kv});
    t.Add(p + "self_attn.v_proj.bias", DType::kBF16, {kv});
  }
  if (c.qk_norm) {
    t.Norm(p + "self_attn.q_norm", c.qk_norm_across_heads ? q : c.head_dim);
    t.Norm(p + "self_attn.k_norm", c.qk_norm_across_heads ? kv : c.head_dim);
  }
}

void AddFfn(TensorList& t, const ModelConfig& c, const std::string& p, bool moe) {
  const int64_t h = c.hidden_size;
  if (!moe) {
    t.SwiGlu(p + "mlp.", c.intermediate_size, h, "gate_proj", "up_proj", "down_proj");
    return;
  }
  const MoeConfig& m = c.moe;
  const bool minimax = c.architecture == Architecture::kMiniMaxM2;
  const std::string block = p + (minimax ? "block_sparse_moe." : "mlp.");
  t.Add(block + "gate.weight", DType::kBF16, {m.num_experts, h});
  if (m.score_correction_bias) {
    t.Add(block + (minimax ? "e_score_correction_bias" : "gate.e_score_correction_bias"),
          DType::kF32, {m.num_experts});
  }
  for (int64_t e = 0; e < m.num_experts; ++e) {
    const std::string expert = absl::StrCat(block, "experts.", e, ".");
    if (minimax) {
      t.SwiGlu(expert, m.moe_intermediate_size, h, "w1", "w3", "w2");
    } else {
      t.SwiGlu(expert, m.moe_intermediate_size, h, "gate_proj", "up_proj", "down_proj");
    }
  }
  if (m.num_shared_experts > 0) {
    t.SwiGlu(block + "shared_experts.", m.num_shared_experts * m.moe_intermediate_size, h,
             "gate_proj", "up_proj", "down_proj");
  }
}

std::string LayerShard(int64_t shard, int64_t shards) {
  char name[64];
  std::snprintf(name, sizeof(name), "model-%05lld-of-%05lld.safetensors",
                static_cast<long long>(shard + 1), static_cast<long long>(shards));
  return name;
}

absl::Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.good()) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

}  // namespace

std::vector<FixtureTensor> RealShapeTensors(const ModelConfig& c, FixtureWeights weights) {
  TensorList t(weights);
  const int64_t h = c.hidden_size;
  t.Add("model.embed_tokens.weight", DType::kBF16, {c.vocab_size, h});
  // DeepSeek-V3 and GLM-4 MoE publish their MTP layers in the checkpoint (MODELS.md); MiniMax-M2's
  // MTP modules are used by neither graph and not written here.
  const bool mtp_tensors =
      c.architecture == Architecture::kDeepseekV3 || c.architecture == Architecture::kGlm4Moe;
  const int64_t layers = c.num_layers + (mtp_tensors ? c.num_mtp_layers : 0);
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    const bool mtp = l >= c.num_layers;
    t.Norm(p + "input_layernorm", h);
    t.Norm(p + "post_attention_layernorm", h);
    AddAttention(t, c, p);
    AddFfn(t, c, p, mtp ? c.moe.num_experts > 0 : IsMoeLayer(c, l));
    if (mtp) {  // DeepSeek-V3 / GLM-4 MoE next-token-prediction module
      t.Norm(p + "enorm", h);
      t.Norm(p + "hnorm", h);
      t.Add(p + "eh_proj.weight", DType::kBF16, {h, 2 * h});
      t.Norm(p + "shared_head.norm", h);
      if (c.architecture == Architecture::kDeepseekV3) {
        t.Add(p + "shared_head.head.weight", DType::kBF16, {c.vocab_size, h});
      }
    }
  }
  t.Norm("model.norm", h);
  if (!c.tie_word_embeddings) t.Add("lm_head.weight", DType::kBF16, {c.vocab_size, h});
  return t.Take();
}

absl::Status WriteHeaderOnlyCheckpoint(const std::string& config_path, const std::string& out_dir,
                                       FixtureWeights weights, int tensors_per_shard) {
  std::ifstream in(config_path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", config_path));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, false);
  if (json.is_discarded()) return absl::InvalidArgumentError(config_path + " is not JSON");
  absl::StatusOr<ModelConfig> config = ParseModelConfig(json, config_path);
  if (!config.ok()) return config.status();

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  const fs::path dir(out_dir);
  if (weights != FixtureWeights::kFp8) json.erase("quantization_config");
  if (absl::Status s = WriteText(dir / "config.json", json.dump(2)); !s.ok()) return s;
  if (weights == FixtureWeights::kNvfp4) {
    const nlohmann::json quant = {{"producer", {{"name", "modelopt"}}},
                                  {"quantization",
                                   {{"quant_algo", "NVFP4"},
                                    {"group_size", 16},
                                    {"kv_cache_quant_algo", nullptr},
                                    {"exclude_modules",
                                     {"lm_head", "model.embed_tokens", "*.mlp.gate", "*eh_proj*",
                                      "*shared_head*", "*block_sparse_moe.gate"}}}}};
    if (absl::Status s = WriteText(dir / "hf_quant_config.json", quant.dump(2)); !s.ok()) {
      return s;
    }
  }

  const std::vector<FixtureTensor> tensors = RealShapeTensors(*config, weights);
  const int64_t per = std::max(1, tensors_per_shard);
  const int64_t shards = std::max<int64_t>(1, (tensors.size() + per - 1) / per);
  std::vector<std::vector<const FixtureTensor*>> by_shard(shards);
  for (size_t i = 0; i < tensors.size(); ++i) by_shard[i / per].push_back(&tensors[i]);
  std::string weight_map;
  for (int64_t s = 0; s < shards; ++s) {
    const std::string file = LayerShard(s, shards);
    std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
    uint64_t offset = 0;
    for (const FixtureTensor* t : by_shard[s]) {
      int64_t numel = 1;
      for (int64_t d : t->shape) numel *= d;
      const uint64_t bytes = DTypeByteSize(t->dtype, numel);
      absl::StrAppend(&header, ",\"", t->name, "\":{\"dtype\":\"",
                      std::string(SafetensorsName(t->dtype)), "\",\"shape\":[",
                      absl::StrJoin(t->shape, ","), "],\"data_offsets\":[", offset, ",",
                      offset + bytes, "]}");
      offset += bytes;
      absl::StrAppend(&weight_map, weight_map.empty() ? "" : ",", "\"", t->name, "\":\"", file,
                      "\"");
    }
    header += "}";
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
    if (absl::Status st = WriteText(dir / file, bytes + header); !st.ok()) return st;
  }
  return WriteText(dir / "model.safetensors.index.json",
                   absl::StrCat("{\"metadata\":{},\"weight_map\":{", weight_map, "}}"));
}

std::string FixtureConfigPath(const std::string& name) {
  const char* source = std::getenv("SPARKSTACK_SOURCE_DIR");
  const std::string root = source != nullptr ? source : SPARKSTACK_SOURCE_DIR_DEFAULT;
  return root + "/tests/unit/deploy/testdata/" + name + "/config.json";
}

}  // namespace sparkstack::testing
