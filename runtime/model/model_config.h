// The model hyper-parameters from a Hugging Face config.json.
#ifndef SPARKSTACK_RUNTIME_MODEL_MODEL_CONFIG_H_
#define SPARKSTACK_RUNTIME_MODEL_MODEL_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/core/dtype.h"

namespace sparkstack {

// Dense decoder architectures this runtime implements. Adding one: a value here, a row in the
// name table in model_config.cc (HF class names and model_type), and its defaults in
// ParseModelConfig; the switch statements without `default` then show what else needs a case.
enum class Architecture { kLlama, kQwen3 };

// "llama", "qwen3" (the HF model_type).
std::string_view ArchitectureName(Architecture architecture);

// RoPE frequency scaling. type is "none" or "llama3" (Llama 3.1's piecewise scaling of the
// inverse frequencies); the other fields matter only for "llama3".
struct RopeScaling {
  std::string type = "none";
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;

  bool operator==(const RopeScaling&) const = default;
};

struct ModelConfig {
  Architecture architecture = Architecture::kLlama;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;     // num_hidden_layers
  int64_t num_heads = 0;      // num_attention_heads
  int64_t num_kv_heads = 0;   // num_key_value_heads (defaults to num_heads)
  int64_t head_dim = 0;       // explicit head_dim, else hidden_size / num_heads
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;  // lm_head shares embed_tokens
  bool qk_norm = false;              // per-head RMSNorm of q and k before RoPE (Qwen3)
  bool attention_bias = false;       // q/k/v/o projections have biases
  std::vector<int64_t> bos_token_ids;
  std::vector<int64_t> eos_token_ids;  // HF allows an int or a list
  DType torch_dtype = DType::kBF16;    // the checkpoint's dtype: f32, f16 or bf16

  bool operator==(const ModelConfig&) const = default;
};

// Parses a config.json object. `source` names the file in messages. Errors:
//   InvalidArgument — unknown architecture (the message lists the supported ones); a missing
//     required field (hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
//     vocab_size) or a field of the wrong JSON type (named, with the file); non-positive sizes;
//     num_attention_heads not a multiple of num_key_value_heads; hidden_size not divisible by
//     num_attention_heads when head_dim is implicit; an unknown torch_dtype; an odd head_dim
//     (RoPE rotates pairs); a size past int32 or a weight matrix past 2^48 elements.
//   Unimplemented — a feature this runtime does not run: rope_scaling types other than llama3
//     (linear, dynamic, yarn, ...), sliding-window attention, hidden_act other than silu, MLP bias.
absl::StatusOr<ModelConfig> ParseModelConfig(const nlohmann::json& json, const std::string& source);

// Reads and parses DIR/config.json: NotFound if absent; InvalidArgument if it is not a regular file
// (a directory, FIFO or device is refused without reading), larger than kMaxConfigFileBytes, or
// not JSON; ResourceExhausted if it does not fit the memory budget.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir);

// A Hugging Face compatible config.json object: architectures, model_type, every field above under
// its HF name, rope_scaling null or {"rope_type": "llama3", ...}. ParseModelConfig(ModelConfigToJson(c))
// gives back c.
nlohmann::json ModelConfigToJson(const ModelConfig& config);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_MODEL_CONFIG_H_
