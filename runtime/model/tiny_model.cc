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
  return c;
}

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
  TensorFactory make(options.seed, c.torch_dtype);
  const int64_t h = c.hidden_size;
  const int64_t d = c.head_dim;
  auto linear = [&](int64_t out, int64_t in) {
    return make.Uniform({out, in}, std::sqrt(3.0 / static_cast<double>(in)));
  };
  auto norm = [&](int64_t width) { return make.Normal({width}, 1.0, 0.2); };

  std::vector<std::pair<std::string, Tensor>> tensors;
  tensors.emplace_back("model.embed_tokens.weight", make.Normal({c.vocab_size, h}, 0.0, 1.0));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    tensors.emplace_back(p + "input_layernorm.weight", norm(h));
    tensors.emplace_back(p + "self_attn.q_proj.weight", linear(c.num_heads * d, h));
    tensors.emplace_back(p + "self_attn.k_proj.weight", linear(c.num_kv_heads * d, h));
    tensors.emplace_back(p + "self_attn.v_proj.weight", linear(c.num_kv_heads * d, h));
    tensors.emplace_back(p + "self_attn.o_proj.weight", linear(h, c.num_heads * d));
    if (c.qk_norm) {
      tensors.emplace_back(p + "self_attn.q_norm.weight", norm(d));
      tensors.emplace_back(p + "self_attn.k_norm.weight", norm(d));
    }
    tensors.emplace_back(p + "post_attention_layernorm.weight", norm(h));
    tensors.emplace_back(p + "mlp.gate_proj.weight", linear(c.intermediate_size, h));
    tensors.emplace_back(p + "mlp.up_proj.weight", linear(c.intermediate_size, h));
    tensors.emplace_back(p + "mlp.down_proj.weight", linear(h, c.intermediate_size));
  }
  tensors.emplace_back("model.norm.weight", norm(h));
  if (!c.tie_word_embeddings) tensors.emplace_back("lm_head.weight", linear(c.vocab_size, h));

  SPARKSTACK_RETURN_IF_ERROR(
      WriteSafetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}}));
  std::ofstream config(dir + "/config.json");
  config << ModelConfigToJson(c).dump(2) << "\n";
  if (!config) return absl::InternalError(absl::StrCat("cannot write ", dir, "/config.json"));
  return absl::OkStatus();
}

}  // namespace sparkstack
