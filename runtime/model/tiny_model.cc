#include "runtime/model/tiny_model.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/core/half.h"
#include "runtime/core/status_macros.h"
#include "runtime/core/tensor.h"
#include "runtime/model/safetensors.h"
#include "runtime/quant/fp8_block.h"

namespace sparkstack {
namespace {

class TensorFactory {
 public:
  TensorFactory(uint64_t seed, DType dtype) : rng_(seed), dtype_(dtype) {}

  Tensor Uniform(const Shape& shape, double bound) {
    std::uniform_real_distribution<double> dist(-bound, bound);
    return Fill(shape, [&] { return dist(rng_); });
  }
  Tensor Normal(const Shape& shape, double mean, double stddev) {
    std::normal_distribution<double> dist(mean, stddev);
    return Fill(shape, [&] { return dist(rng_); });
  }

 private:
  template <typename Draw>
  Tensor Fill(const Shape& shape, Draw draw) {
    Tensor t = Tensor::Zeros(dtype_, shape);
    for (int64_t i = 0; i < t.numel(); ++i) {
      const float value = static_cast<float>(draw());
      if (dtype_ == DType::kF32) {
        t.data_as<float>()[i] = value;
      } else {
        t.data_as<uint16_t>()[i] = FloatToBf16(value);
      }
    }
    return t;
  }

  std::mt19937_64 rng_;
  DType dtype_;
};

}  // namespace

ModelConfig TinyModelConfig(Architecture architecture) {
  ModelConfig c;
  c.architecture = architecture;
  c.hidden_size = 64;
  c.intermediate_size = 160;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 16;
  c.vocab_size = 256;
  c.max_position_embeddings = 2048;
  c.rms_norm_eps = architecture == Architecture::kQwen3 ? 1e-6 : 1e-5;
  c.rope_theta = architecture == Architecture::kQwen3 ? 1000000.0 : 500000.0;
  c.qk_norm = architecture == Architecture::kQwen3;
  c.bos_token_ids = {1};
  c.eos_token_ids = {2};
  c.torch_dtype = DType::kBF16;
  c.rotary_dim = c.head_dim;
  MoeConfig& m = c.moe;
  switch (architecture) {
    case Architecture::kLlama:
    case Architecture::kQwen3:
      break;
    case Architecture::kQwen3Moe:
      c.rms_norm_eps = 1e-6;
      c.rope_theta = 1000000.0;
      c.qk_norm = true;
      m = {.num_experts = 6,
           .num_experts_per_tok = 2,
           .moe_intermediate_size = 32,
           .norm_topk_prob = true};
      break;
    case Architecture::kDeepseekV3:
      c.num_layers = 3;
      c.num_kv_heads = c.num_heads;
      c.intermediate_size = 96;
      c.rope_theta = 10000.0;
      c.rms_norm_eps = 1e-6;
      c.mla = {.q_lora_rank = 48,
               .kv_lora_rank = 32,
               .qk_nope_head_dim = 16,
               .qk_rope_head_dim = 8,
               .v_head_dim = 16};
      c.head_dim = 24;
      c.rotary_dim = 8;
      c.rope_interleaved = true;
      m = {.num_experts = 8,
           .num_experts_per_tok = 3,
           .moe_intermediate_size = 32,
           .num_shared_experts = 1,
           .scoring = MoeScoring::kSigmoid,
           .score_correction_bias = true,
           .norm_topk_prob = true,
           .routed_scaling_factor = 2.5,
           .n_group = 4,
           .topk_group = 2,
           .first_k_dense_replace = 1};
      break;
    case Architecture::kGlm4Moe:
      c.num_layers = 3;
      c.intermediate_size = 96;
      c.rope_theta = 1000000.0;
      c.rotary_dim = c.head_dim / 2;
      c.attention_bias = true;
      c.qk_norm = true;
      m = {.num_experts = 6,
           .num_experts_per_tok = 2,
           .moe_intermediate_size = 32,
           .num_shared_experts = 1,
           .scoring = MoeScoring::kSigmoid,
           .score_correction_bias = true,
           .norm_topk_prob = true,
           .routed_scaling_factor = 2.5,
           .first_k_dense_replace = 1};
      break;
    case Architecture::kMiniMaxM2:
      c.intermediate_size = 32;
      c.rms_norm_eps = 1e-6;
      c.rope_theta = 5000000.0;
      c.rotary_dim = c.head_dim / 2;
      c.qk_norm = true;
      c.qk_norm_across_heads = true;
      m = {.num_experts = 6,
           .num_experts_per_tok = 2,
           .moe_intermediate_size = 32,
           .scoring = MoeScoring::kSigmoid,
           .score_correction_bias = true,
           .norm_topk_prob = true};
      break;
  }
  return c;
}

absl::StatusOr<ModelConfig> TinyModelConfigWithOverrides(Architecture architecture,
                                                         const nlohmann::json& overrides) {
  if (!overrides.is_null() && !overrides.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config overrides must be a JSON object, found ", overrides.dump()));
  }
  nlohmann::json json = ModelConfigToJson(TinyModelConfig(architecture));
  if (overrides.is_object()) json.update(overrides);
  return ParseModelConfig(json, "tiny model config overrides");
}

namespace {

using TensorList = std::vector<std::pair<std::string, Tensor>>;

// Draws the tensors of one model in a fixed order, so the same options give the same bytes.
class TinyWriter {
 public:
  explicit TinyWriter(const TinyModelOptions& options)
      : c_(options.config),
        make_(options.seed, options.config.torch_dtype),
        fp8_(options.fp8_block),
        bias_rng_(options.seed ^ 0x5eedb1a5ULL) {}

  TensorList Build() {
    const int64_t h = c_.hidden_size;
    Add("model.embed_tokens.weight", make_.Normal({c_.vocab_size, h}, 0.0, 1.0));
    for (int64_t i = 0; i < c_.num_layers; ++i) {
      const std::string p = absl::StrCat("model.layers.", i, ".");
      Add(p + "input_layernorm.weight", Norm(h));
      Attention(p + "self_attn.");
      Add(p + "post_attention_layernorm.weight", Norm(h));
      if (IsMoeLayer(c_, i)) {
        Experts(p);
      } else {
        Mlp(p + "mlp.", c_.intermediate_size);
      }
    }
    // Multi-token-prediction layers (DeepSeek, GLM): a few of their tensors, which loaders skip.
    for (int64_t i = c_.num_layers; i < c_.num_layers + c_.num_mtp_layers; ++i) {
      const std::string p = absl::StrCat("model.layers.", i, ".");
      Add(p + "enorm.weight", Norm(h));
      Add(p + "hnorm.weight", Norm(h));
      Linear(p + "eh_proj", h, 2 * h);
    }
    Add("model.norm.weight", Norm(h));
    if (!c_.tie_word_embeddings) Add("lm_head.weight", Uniform(c_.vocab_size, h));
    return std::move(tensors_);
  }

 private:
  Tensor Uniform(int64_t out, int64_t in) {
    return make_.Uniform({out, in}, std::sqrt(3.0 / static_cast<double>(in)));
  }
  Tensor Norm(int64_t width) { return make_.Normal({width}, 1.0, 0.2); }
  void Add(std::string name, Tensor t) { tensors_.emplace_back(std::move(name), std::move(t)); }

  // A linear layer's weight (and its block scales when writing FP8).
  void Linear(const std::string& prefix, int64_t out, int64_t in) {
    Tensor w = Uniform(out, in);
    if (!fp8_) {
      Add(prefix + ".weight", std::move(w));
      return;
    }
    auto parts = QuantizeFp8Block(w);  // f32/bf16 rank 2: cannot fail
    Add(prefix + ".weight", parts->codes);
    Add(prefix + ".weight_scale_inv", parts->scale_inv);
  }

  void Bias(const std::string& name, int64_t width) { Add(name, make_.Uniform({width}, 0.5)); }

  void Attention(const std::string& p) {
    const int64_t h = c_.hidden_size;
    const int64_t d = c_.head_dim;
    if (c_.mla.kv_lora_rank > 0) {
      const MlaConfig& m = c_.mla;
      const int64_t q_width = c_.num_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim);
      if (m.q_lora_rank > 0) {
        Linear(p + "q_a_proj", m.q_lora_rank, h);
        Add(p + "q_a_layernorm.weight", Norm(m.q_lora_rank));
        Linear(p + "q_b_proj", q_width, m.q_lora_rank);
      } else {
        Linear(p + "q_proj", q_width, h);
      }
      Linear(p + "kv_a_proj_with_mqa", m.kv_lora_rank + m.qk_rope_head_dim, h);
      Add(p + "kv_a_layernorm.weight", Norm(m.kv_lora_rank));
      Linear(p + "kv_b_proj", c_.num_heads * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank);
      Linear(p + "o_proj", h, c_.num_heads * m.v_head_dim);
      return;
    }
    Linear(p + "q_proj", c_.num_heads * d, h);
    Linear(p + "k_proj", c_.num_kv_heads * d, h);
    Linear(p + "v_proj", c_.num_kv_heads * d, h);
    if (c_.attention_bias) {  // GLM-4 MoE: q/k/v biases, none on o_proj
      Bias(p + "q_proj.bias", c_.num_heads * d);
      Bias(p + "k_proj.bias", c_.num_kv_heads * d);
      Bias(p + "v_proj.bias", c_.num_kv_heads * d);
    }
    Linear(p + "o_proj", h, c_.num_heads * d);
    if (c_.qk_norm) {
      const bool across = c_.qk_norm_across_heads;  // MiniMax-M2: one norm over the projection
      Add(p + "q_norm.weight", Norm(across ? c_.num_heads * d : d));
      Add(p + "k_norm.weight", Norm(across ? c_.num_kv_heads * d : d));
    }
  }

  void Mlp(const std::string& p, int64_t width) {
    Linear(p + "gate_proj", width, c_.hidden_size);
    Linear(p + "up_proj", width, c_.hidden_size);
    Linear(p + "down_proj", c_.hidden_size, width);
  }

  void Experts(const std::string& layer) {
    const MoeConfig& m = c_.moe;
    const int64_t h = c_.hidden_size;
    const bool minimax = c_.architecture == Architecture::kMiniMaxM2;
    const std::string p = layer + (minimax ? "block_sparse_moe." : "mlp.");
    // Router rows in bf16/f32 like the rest; the correction bias is float32 in every release.
    Add(p + "gate.weight", Uniform(m.num_experts, h));
    if (m.score_correction_bias) {
      Tensor bias = Tensor::Zeros(DType::kF32, {m.num_experts});
      for (int64_t e = 0; e < m.num_experts; ++e) {
        bias.data_as<float>()[e] = static_cast<float>(bias_draw_(bias_rng_));
      }
      Add(p + (minimax ? "e_score_correction_bias" : "gate.e_score_correction_bias"), bias);
    }
    for (int64_t e = 0; e < m.num_experts; ++e) {
      const std::string x = absl::StrCat(p, "experts.", e, ".");
      if (minimax) {
        Linear(x + "w1", m.moe_intermediate_size, h);
        Linear(x + "w3", m.moe_intermediate_size, h);
        Linear(x + "w2", h, m.moe_intermediate_size);
      } else {
        Mlp(x, m.moe_intermediate_size);
      }
    }
    if (m.num_shared_experts > 0) {
      Mlp(p + "shared_experts.", m.num_shared_experts * m.moe_intermediate_size);
    }
  }

  const ModelConfig& c_;
  TensorFactory make_;
  bool fp8_;
  // A separate stream for the f32 biases (the factory writes the checkpoint's dtype). Scale 0.05:
  // comparable to the gaps between sigmoid scores, so the bias changes some choices.
  std::mt19937_64 bias_rng_;
  std::uniform_real_distribution<double> bias_draw_{-0.05, 0.05};
  TensorList tensors_;
};

}  // namespace

absl::Status WriteTinyModel(const TinyModelOptions& options, const std::string& dir) {
  const ModelConfig& c = options.config;
  if (c.torch_dtype != DType::kF32 && c.torch_dtype != DType::kBF16) {
    return absl::InvalidArgumentError("tiny models are written in f32 or bf16");
  }
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", error.message()));
  }
  const TensorList tensors = TinyWriter(options).Build();
  SPARKSTACK_RETURN_IF_ERROR(
      WriteSafetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}}));
  nlohmann::json json = ModelConfigToJson(c);
  if (options.fp8_block) {
    json["quantization_config"] = {{"activation_scheme", "dynamic"},
                                   {"fmt", "e4m3"},
                                   {"quant_method", "fp8"},
                                   {"weight_block_size", {kFp8BlockSize, kFp8BlockSize}}};
  }
  std::ofstream config(dir + "/config.json");
  config << json.dump(2) << "\n";
  if (!config) return absl::InternalError(absl::StrCat("cannot write ", dir, "/config.json"));
  return absl::OkStatus();
}

}  // namespace sparkstack
