// The model hyper-parameters from a Hugging Face config.json.
#ifndef SPARKSTACK_RUNTIME_MODEL_MODEL_CONFIG_H_
#define SPARKSTACK_RUNTIME_MODEL_MODEL_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/core/dtype.h"

namespace sparkstack {

// Decoder architectures this runtime implements. Adding one: a value here, a row in the
// name table in model_config.cc (HF class names and model_type), and its defaults in
// ParseModelConfig; the switch statements without `default` then show what else needs a case.
// The last four are mixtures of experts (see /work/shared/MODELS.md).
enum class Architecture { kLlama, kQwen3, kQwen3Moe, kDeepseekV3, kGlm4Moe, kMiniMaxM2 };

// "llama", "qwen3", "qwen3_moe", "deepseek_v3", "glm4_moe", "minimax_m2" (the HF model_type).
std::string_view ArchitectureName(Architecture architecture);

// The architecture whose ArchitectureName is `name`; nullopt for any other name.
std::optional<Architecture> ArchitectureFromName(std::string_view name);

// RoPE frequency scaling. type is "none", "llama3" (Llama 3.1's piecewise scaling of the inverse
// frequencies) or "yarn" (YaRN: interpolation ramped between beta_fast and beta_slow rotations,
// plus an attention temperature; see runtime/model/yarn_rope.h). factor and
// original_max_position_embeddings serve both; low/high_freq_factor only llama3; the rest only
// yarn.
struct RopeScaling {
  std::string type = "none";
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
  // YaRN (transformers' _compute_yarn_parameters). 0 for mscale/mscale_all_dim/attention_factor
  // means "absent" (HF's None); the attention factor is then derived from factor and the mscales.
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 0.0;
  double mscale_all_dim = 0.0;
  double attention_factor = 0.0;
  bool truncate = true;  // round the correction range outwards to whole dimensions

  bool operator==(const RopeScaling&) const = default;
};

// How a mixture-of-experts layer picks and weighs its experts (router math in
// kernels/cpu/moe_router.h). Routed experts are SwiGLU MLPs of width moe_intermediate_size; the
// shared expert (DeepSeek, GLM) is one SwiGLU MLP of width num_shared_experts *
// moe_intermediate_size that every token passes through.
enum class MoeScoring : uint8_t { kSoftmax, kSigmoid };

struct MoeConfig {
  int64_t num_experts = 0;          // routed experts; 0: the model is dense
  int64_t num_experts_per_tok = 0;  // top-k
  int64_t moe_intermediate_size = 0;
  int64_t num_shared_experts = 0;
  MoeScoring scoring = MoeScoring::kSoftmax;
  // e_score_correction_bias [num_experts] is added to the scores to choose experts (not to weigh
  // them): DeepSeek-V3's noaux_tc, GLM-4 MoE, MiniMax-M2 (use_routing_bias).
  bool score_correction_bias = false;
  bool norm_topk_prob = false;         // divide the chosen weights by their sum
  double routed_scaling_factor = 1.0;  // multiplies the routed experts' weights
  // Group-limited top-k (DeepSeek-V3): experts form n_group equal groups, a group scores the sum
  // of its two best (biased) scores, and only the topk_group best groups compete. 1/1: no limit.
  int64_t n_group = 1;
  int64_t topk_group = 1;
  // Which layers are MoE (the rest use the dense MLP of intermediate_size); see IsMoeLayer.
  int64_t first_k_dense_replace = 0;     // DeepSeek, GLM: layers below this are dense
  int64_t moe_layer_freq = 1;            // DeepSeek: MoE where (layer - 0) % freq == 0
  int64_t decoder_sparse_step = 1;       // Qwen3-MoE: MoE where (layer + 1) % step == 0
  std::vector<int64_t> mlp_only_layers;  // Qwen3-MoE: dense regardless

  bool operator==(const MoeConfig&) const = default;
};

// Multi-head latent attention (DeepSeek-V2/V3). Per head, q and k are [nope | rope] of widths
// qk_nope_head_dim + qk_rope_head_dim (= ModelConfig::head_dim) and v is v_head_dim wide; keys and
// values come from one latent c_kv of kv_lora_rank values plus one shared roped key of
// qk_rope_head_dim. q_lora_rank 0: q is projected straight from the hidden state.
struct MlaConfig {
  int64_t q_lora_rank = 0;
  int64_t kv_lora_rank = 0;  // 0: not MLA
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;

  bool operator==(const MlaConfig&) const = default;
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

  // Mixture-of-experts architectures. GLM-4 MoE's attention_bias covers q/k/v only (o_proj never
  // has a bias there).
  int64_t rotary_dim = 0;             // leading dims of each head that RoPE turns (partial rotary)
  bool rope_interleaved = false;      // RoPE turns adjacent pairs (2i, 2i+1), not halves (i, i+d/2)
  bool qk_norm_across_heads = false;  // q_norm/k_norm span the whole projection (MiniMax-M2)
  MoeConfig moe;
  MlaConfig mla;
  int64_t num_mtp_layers = 0;  // multi-token-prediction layers after num_layers (never run)

  bool operator==(const ModelConfig&) const = default;
};

// True if `layer` of a MoE architecture has routed experts (false for every layer of a dense one).
bool IsMoeLayer(const ModelConfig& config, int64_t layer);

// Parses a config.json object. `source` names the file in messages. Errors:
//   InvalidArgument — unknown architecture (the message lists the supported ones); a missing
//     required field (hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
//     vocab_size) or a field of the wrong JSON type (named, with the file); non-positive sizes;
//     num_attention_heads not a multiple of num_key_value_heads; hidden_size not divisible by
//     num_attention_heads when head_dim is implicit; an unknown torch_dtype; an odd head_dim
//     (RoPE rotates pairs); a size past int32 or a weight matrix past 2^48 elements.
//   Unimplemented — a feature this runtime does not run: rope_scaling types other than llama3
//     and yarn (linear, dynamic, longrope, ...), sliding-window attention, hidden_act other than
//     silu, MLP bias; for the MoE families also: DeepSeek topk_method other than noaux_tc,
//     MiniMax linear-attention layers (attn_type_list 0) or shared experts, qk_norm_type other
//     than per_layer.
//   MoE and MLA fields (num_experts / n_routed_experts / num_local_experts, num_experts_per_tok,
//   moe_intermediate_size, n_shared_experts, norm_topk_prob, scoring_func, n_group, topk_group,
//   routed_scaling_factor, first_k_dense_replace, moe_layer_freq, decoder_sparse_step,
//   mlp_only_layers, q_lora_rank, kv_lora_rank, qk_{nope,rope}_head_dim, v_head_dim,
//   partial_rotary_factor / rotary_dim, use_qk_norm, num_nextn_predict_layers / num_mtp_modules)
//   are read for their architectures; InvalidArgument names the field for an inconsistent set:
//   top-k above the expert count, groups that do not divide the experts or cannot supply top-k
//   experts, a layer index out of range, odd or oversized rotary dims, non-positive widths.
absl::StatusOr<ModelConfig> ParseModelConfig(const nlohmann::json& json, const std::string& source);

// Reads and parses DIR/config.json: NotFound if absent; InvalidArgument if it is not a regular file
// (a directory, FIFO or device is refused without reading), larger than kMaxConfigFileBytes, or
// not JSON; ResourceExhausted if it does not fit the memory budget.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir);

// A Hugging Face compatible config.json object: architectures, model_type, every field above under
// its HF name, rope_scaling null or {"rope_type": "llama3" | "yarn", ...}, and the MoE/MLA keys of
// the MoE families. ParseModelConfig(ModelConfigToJson(c)) gives back c.
nlohmann::json ModelConfigToJson(const ModelConfig& config);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_MODEL_CONFIG_H_
