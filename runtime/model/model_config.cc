#include "runtime/model/model_config.h"

#include <cmath>
#include <filesystem>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/core/read_file.h"
#include "runtime/core/status_macros.h"

namespace sparkstack {
namespace {

using Json = nlohmann::json;

// One row per architecture: the HF class names (architectures[0]) and model_type values that
// select it. The first class name and model type are the ones ModelConfigToJson writes.
struct ArchitectureInfo {
  Architecture architecture;
  std::vector<std::string_view> class_names;
  std::vector<std::string_view> model_types;
};

const std::vector<ArchitectureInfo>& ArchitectureTable() {
  // Mistral's dense models are Llama's graph (plus sliding-window attention, rejected below
  // unless it is disabled or covers the whole context).
  static const auto* table = new std::vector<ArchitectureInfo>{
      {Architecture::kLlama, {"LlamaForCausalLM", "MistralForCausalLM"}, {"llama", "mistral"}},
      {Architecture::kQwen3, {"Qwen3ForCausalLM"}, {"qwen3"}},
      {Architecture::kQwen3Moe, {"Qwen3MoeForCausalLM"}, {"qwen3_moe"}},
      // Kimi K2 ships this class too.
      {Architecture::kDeepseekV3, {"DeepseekV3ForCausalLM"}, {"deepseek_v3"}},
      {Architecture::kGlm4Moe, {"Glm4MoeForCausalLM"}, {"glm4_moe"}},
      {Architecture::kMiniMaxM2, {"MiniMaxM2ForCausalLM"}, {"minimax_m2"}},
  };
  return *table;
}

const ArchitectureInfo& InfoFor(Architecture architecture) {
  for (const ArchitectureInfo& info : ArchitectureTable()) {
    if (info.architecture == architecture) return info;
  }
  return ArchitectureTable().front();  // unreachable: every enum value has a row
}

std::string SupportedClassNames() {
  std::vector<std::string> names;
  for (const ArchitectureInfo& info : ArchitectureTable()) {
    for (std::string_view name : info.class_names) names.emplace_back(name);
  }
  return absl::StrJoin(names, ", ");
}

// Field readers. A JSON null counts as absent (HF writes null for "use the default").
class Reader {
 public:
  Reader(const Json& json, const std::string& source) : json_(json), source_(source) {}

  const Json* Field(const char* key) const {
    auto it = json_.find(key);
    if (it == json_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  absl::Status WrongType(const char* key, const char* expected, const Json& found) const {
    return absl::InvalidArgumentError(absl::StrCat("model config ", source_, ": field '", key,
                                                   "' must be ", expected, ", found ",
                                                   found.dump()));
  }

  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat("model config ", source_, ": ", what));
  }

  absl::StatusOr<int64_t> RequiredInt(const char* key) const {
    const Json* j = Field(key);
    if (j == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("model config ", source_, ": missing required field '", key, "'"));
    }
    return ToInt(key, *j);
  }

  absl::StatusOr<int64_t> Int(const char* key, int64_t default_value) const {
    const Json* j = Field(key);
    return j == nullptr ? absl::StatusOr<int64_t>(default_value) : ToInt(key, *j);
  }

  absl::StatusOr<double> Double(const char* key, double default_value) const {
    const Json* j = Field(key);
    if (j == nullptr) return default_value;
    if (!j->is_number()) return WrongType(key, "a number", *j);
    return j->get<double>();
  }

  absl::StatusOr<bool> Bool(const char* key, bool default_value) const {
    const Json* j = Field(key);
    if (j == nullptr) return default_value;
    if (!j->is_boolean()) return WrongType(key, "true or false", *j);
    return j->get<bool>();
  }

  absl::StatusOr<std::string> String(const char* key, const std::string& default_value) const {
    const Json* j = Field(key);
    if (j == nullptr) return default_value;
    if (!j->is_string()) return WrongType(key, "a string", *j);
    return j->get<std::string>();
  }

  // An int, a list of ints, or absent (empty list).
  absl::StatusOr<std::vector<int64_t>> IntList(const char* key) const {
    const Json* j = Field(key);
    std::vector<int64_t> out;
    if (j == nullptr) return out;
    if (j->is_number_integer()) {
      out.push_back(j->get<int64_t>());
      return out;
    }
    if (!j->is_array()) return WrongType(key, "an integer or a list of integers", *j);
    for (const Json& v : *j) {
      if (!v.is_number_integer()) return WrongType(key, "an integer or a list of integers", *j);
      out.push_back(v.get<int64_t>());
    }
    return out;
  }

 private:
  absl::StatusOr<int64_t> ToInt(const char* key, const Json& j) const {
    if (!j.is_number_integer()) return WrongType(key, "an integer", j);
    if (j.is_number_unsigned() &&
        j.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return WrongType(key, "an integer that fits in 64 bits", j);
    }
    return j.get<int64_t>();
  }

  const Json& json_;
  const std::string& source_;
};

absl::StatusOr<Architecture> ResolveArchitecture(const Reader& r, const std::string& source) {
  if (const Json* archs = r.Field("architectures")) {
    if (!archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
      return r.WrongType("architectures", "a non-empty list of class names", *archs);
    }
    const std::string& name = (*archs)[0].get_ref<const std::string&>();
    for (const ArchitectureInfo& info : ArchitectureTable()) {
      for (std::string_view candidate : info.class_names) {
        if (candidate == name) return info.architecture;
      }
    }
    return absl::InvalidArgumentError(absl::StrCat("model config ", source,
                                                   ": unsupported architecture '", name,
                                                   "'; supported: ", SupportedClassNames()));
  }
  // No "architectures": fall back to model_type, which every HF config has.
  SPARKSTACK_ASSIGN_OR_RETURN(std::string model_type, r.String("model_type", ""));
  if (model_type.empty()) {
    return r.Error(absl::StrCat("neither 'architectures' nor 'model_type' is set; supported: ",
                                SupportedClassNames()));
  }
  for (const ArchitectureInfo& info : ArchitectureTable()) {
    for (std::string_view candidate : info.model_types) {
      if (candidate == model_type) return info.architecture;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("model config ", source,
                                                 ": unsupported model_type '", model_type,
                                                 "'; supported architectures: ",
                                                 SupportedClassNames()));
}

absl::StatusOr<DType> ParseTorchDType(const Reader& r) {
  const char* key = r.Field("torch_dtype") != nullptr ? "torch_dtype" : "dtype";
  SPARKSTACK_ASSIGN_OR_RETURN(std::string name, r.String(key, "bfloat16"));
  if (name == "bfloat16") return DType::kBF16;
  if (name == "float16" || name == "half") return DType::kF16;
  if (name == "float32" || name == "float") return DType::kF32;
  return r.Error(absl::StrCat("field '", key, "' is '", name,
                              "'; expected bfloat16, float16 or float32"));
}

// YaRN fields of rope_scaling (`sub`); absent ones take transformers' defaults. The original
// context defaults to max_position_embeddings, as in transformers.
absl::Status ParseYarn(const Reader& r, const Reader& sub, const char* key, ModelConfig* c) {
  RopeScaling& s = c->rope_scaling;
  s.type = "yarn";
  SPARKSTACK_ASSIGN_OR_RETURN(s.factor, sub.Double("factor", s.factor));
  SPARKSTACK_ASSIGN_OR_RETURN(
      s.original_max_position_embeddings,
      sub.Int("original_max_position_embeddings", c->max_position_embeddings));
  SPARKSTACK_ASSIGN_OR_RETURN(s.beta_fast, sub.Double("beta_fast", s.beta_fast));
  SPARKSTACK_ASSIGN_OR_RETURN(s.beta_slow, sub.Double("beta_slow", s.beta_slow));
  SPARKSTACK_ASSIGN_OR_RETURN(s.mscale, sub.Double("mscale", s.mscale));
  SPARKSTACK_ASSIGN_OR_RETURN(s.mscale_all_dim, sub.Double("mscale_all_dim", s.mscale_all_dim));
  SPARKSTACK_ASSIGN_OR_RETURN(s.attention_factor,
                              sub.Double("attention_factor", s.attention_factor));
  SPARKSTACK_ASSIGN_OR_RETURN(s.truncate, sub.Bool("truncate", s.truncate));
  if (!(s.factor >= 1) || !std::isfinite(s.factor) || s.original_max_position_embeddings <= 0 ||
      !(s.beta_fast > s.beta_slow) || !(s.beta_slow > 0) || !std::isfinite(s.beta_fast) ||
      s.mscale < 0 || s.mscale_all_dim < 0 || s.attention_factor < 0) {
    return r.Error(absl::StrCat(
        key,
        " yarn needs factor >= 1, original_max_position_embeddings > 0, beta_fast > "
        "beta_slow > 0 and non-negative mscale, mscale_all_dim, attention_factor; found "
        "factor ",
        s.factor, ", original_max_position_embeddings ", s.original_max_position_embeddings,
        ", beta_fast ", s.beta_fast, ", beta_slow ", s.beta_slow, ", mscale ", s.mscale,
        ", mscale_all_dim ", s.mscale_all_dim, ", attention_factor ", s.attention_factor));
  }
  return absl::OkStatus();
}

// rope_scaling (transformers <= 4.x) or rope_parameters (transformers 5), which also carries
// rope_theta.
absl::Status ParseRope(const Reader& r, const std::string& source, ModelConfig* c) {
  SPARKSTACK_ASSIGN_OR_RETURN(c->rope_theta, r.Double("rope_theta", 10000.0));
  const char* key = "rope_scaling";
  const Json* rope = r.Field("rope_scaling");
  if (rope == nullptr && (rope = r.Field("rope_parameters")) != nullptr) {
    key = "rope_parameters";
    if (rope->is_object() && r.Field("rope_theta") == nullptr) {
      Reader sub(*rope, source);
      SPARKSTACK_ASSIGN_OR_RETURN(c->rope_theta, sub.Double("rope_theta", 10000.0));
    }
  }
  c->rope_scaling = RopeScaling();
  if (rope == nullptr) return absl::OkStatus();
  if (!rope->is_object()) return r.WrongType(key, "an object or null", *rope);
  Reader sub(*rope, source);
  std::string type;
  SPARKSTACK_ASSIGN_OR_RETURN(type, sub.String("rope_type", ""));
  if (type.empty()) {
    SPARKSTACK_ASSIGN_OR_RETURN(type, sub.String("type", "default"));
  }
  if (type == "default" || type == "none") return absl::OkStatus();
  // YaRN is implemented by the mixture-of-experts families' model code (DeepSeek-V3 uses it).
  const bool yarn_ok =
      c->architecture != Architecture::kLlama && c->architecture != Architecture::kQwen3;
  if (type == "yarn" && yarn_ok) return ParseYarn(r, sub, key, c);
  if (type != "llama3") {
    return absl::UnimplementedError(absl::StrCat("model config ", source, ": ", key, " type '",
                                                 type, "' is not supported (supported: llama3",
                                                 yarn_ok ? ", yarn)" : ")"));
  }
  RopeScaling& s = c->rope_scaling;
  s.type = "llama3";
  SPARKSTACK_ASSIGN_OR_RETURN(s.factor, sub.Double("factor", s.factor));
  SPARKSTACK_ASSIGN_OR_RETURN(s.low_freq_factor, sub.Double("low_freq_factor", s.low_freq_factor));
  SPARKSTACK_ASSIGN_OR_RETURN(s.high_freq_factor,
                              sub.Double("high_freq_factor", s.high_freq_factor));
  SPARKSTACK_ASSIGN_OR_RETURN(
      s.original_max_position_embeddings,
      sub.Int("original_max_position_embeddings", s.original_max_position_embeddings));
  if (!(s.factor > 0) || !(s.low_freq_factor > 0) || !(s.high_freq_factor > s.low_freq_factor) ||
      s.original_max_position_embeddings <= 0) {
    return r.Error(absl::StrCat(key, " llama3 needs factor > 0, 0 < low_freq_factor < "
                                     "high_freq_factor and original_max_position_embeddings > 0; "
                                     "found factor ", s.factor, ", low_freq_factor ",
                                s.low_freq_factor, ", high_freq_factor ", s.high_freq_factor,
                                ", original_max_position_embeddings ",
                                s.original_max_position_embeddings));
  }
  return absl::OkStatus();
}

absl::Status RejectUnsupportedFeatures(const Reader& r, const std::string& source,
                                       const ModelConfig& c) {
  auto unimplemented = [&](const std::string& what) {
    return absl::UnimplementedError(absl::StrCat("model config ", source, ": ", what));
  };
  for (const char* key : {"hidden_act", "hidden_activation"}) {
    SPARKSTACK_ASSIGN_OR_RETURN(std::string act, r.String(key, "silu"));
    if (act != "silu") {
      return unimplemented(absl::StrCat(key, " '", act, "' is not supported (supported: silu)"));
    }
  }
  SPARKSTACK_ASSIGN_OR_RETURN(bool mlp_bias, r.Bool("mlp_bias", false));
  if (mlp_bias) return unimplemented("mlp_bias true is not supported");
  // Sliding-window attention: Qwen3 has an explicit switch; Llama/Mistral configs set
  // sliding_window to a window size (null when disabled). A window covering the whole context is
  // plain causal attention.
  const bool qwen =
      c.architecture == Architecture::kQwen3 || c.architecture == Architecture::kQwen3Moe;
  SPARKSTACK_ASSIGN_OR_RETURN(bool use_sliding_window, r.Bool("use_sliding_window", !qwen));
  if (use_sliding_window) {
    SPARKSTACK_ASSIGN_OR_RETURN(int64_t window, r.Int("sliding_window", 0));
    if (window > 0 && window < c.max_position_embeddings) {
      return unimplemented(absl::StrCat("sliding_window ", window,
                                        " (sliding-window attention) is not supported"));
    }
  }
  return absl::OkStatus();
}

// Token ids and positions are int32: sizes past that are refused with the field named.
constexpr int64_t kMaxSize = std::numeric_limits<int32_t>::max();

absl::Status CheckSizeInRange(const Reader& r, const char* key, int64_t value) {
  if (value <= 0) return r.Error(absl::StrCat("field '", key, "' must be positive, found ", value));
  if (value > kMaxSize) {
    return r.Error(absl::StrCat("field '", key, "' is ", value, ", more than ", kMaxSize,
                                " (token ids, positions and sizes are 32-bit)"));
  }
  return absl::OkStatus();
}

// Sizes that the rest of the runtime can compute with: RoPE rotates pairs of dimensions, and no
// weight's element count (or its byte size) may overflow. Values far past any real model are
// refused here, with the field named, instead of failing later as an allocation of petabytes or
// an internal shape error.
absl::Status CheckSizesUsable(const Reader& r, const ModelConfig& c) {
  // Partial rotary widths (MoE families) are checked where they are parsed.
  if (c.rotary_dim == c.head_dim && c.head_dim % 2 != 0) {
    return r.Error(absl::StrCat("head_dim ", c.head_dim,
                                " is odd; rotary position embeddings rotate pairs of dimensions, "
                                "so head_dim must be even"));
  }
  // Largest weights: embedding/lm_head [vocab, hidden], MLP [intermediate, hidden], q/o
  // projections [heads * head_dim, hidden]. 2^48 elements is ~1000x the largest real tensor.
  constexpr int64_t kMaxWeightElements = int64_t{1} << 48;
  struct Matrix {
    const char* what;
    int64_t rows;
  };
  for (const Matrix& m : {Matrix{"vocab_size x hidden_size", c.vocab_size},
                          Matrix{"intermediate_size x hidden_size", c.intermediate_size},
                          Matrix{"num_attention_heads x head_dim x hidden_size",
                                 c.num_heads * c.head_dim}}) {
    if (m.rows > kMaxWeightElements / c.hidden_size) {
      return r.Error(absl::StrCat(m.what, " (", m.rows, " x ", c.hidden_size,
                                  ") is too large for a weight matrix (limit 2^48 elements)"));
    }
  }
  return absl::OkStatus();
}

// ---- Mixture-of-experts families: MoE routing, MLA and partial-rotary fields -----------------

absl::StatusOr<MoeScoring> ParseScoring(const Reader& r, const char* default_value) {
  SPARKSTACK_ASSIGN_OR_RETURN(std::string name, r.String("scoring_func", default_value));
  if (name == "softmax") return MoeScoring::kSoftmax;
  if (name == "sigmoid") return MoeScoring::kSigmoid;
  return r.Error(absl::StrCat("field 'scoring_func' is '", name, "'; expected softmax or sigmoid"));
}

// rotary_dim from partial_rotary_factor (transformers: int(head_dim * factor)) or the legacy
// rotary_dim key (MiniMax-M2's remote code); full rotary when neither is present.
absl::Status ParseRotaryDim(const Reader& r, double default_factor, ModelConfig* c) {
  if (r.Field("rotary_dim") != nullptr) {
    SPARKSTACK_ASSIGN_OR_RETURN(c->rotary_dim, r.Int("rotary_dim", c->head_dim));
    return absl::OkStatus();
  }
  SPARKSTACK_ASSIGN_OR_RETURN(double factor, r.Double("partial_rotary_factor", default_factor));
  if (!(factor > 0) || factor > 1) {
    return r.Error(absl::StrCat("field 'partial_rotary_factor' must be in (0, 1], found ", factor));
  }
  // transformers truncates; the epsilon keeps factors written as rotary_dim / head_dim exact.
  c->rotary_dim =
      static_cast<int64_t>(std::floor(static_cast<double>(c->head_dim) * factor + 1e-9));
  return absl::OkStatus();
}

absl::Status ParseQwen3Moe(const Reader& r, ModelConfig* c) {
  MoeConfig& m = c->moe;
  SPARKSTACK_ASSIGN_OR_RETURN(m.num_experts, r.RequiredInt("num_experts"));
  SPARKSTACK_ASSIGN_OR_RETURN(m.num_experts_per_tok, r.RequiredInt("num_experts_per_tok"));
  SPARKSTACK_ASSIGN_OR_RETURN(m.moe_intermediate_size, r.RequiredInt("moe_intermediate_size"));
  SPARKSTACK_ASSIGN_OR_RETURN(m.norm_topk_prob, r.Bool("norm_topk_prob", false));
  SPARKSTACK_ASSIGN_OR_RETURN(m.decoder_sparse_step, r.Int("decoder_sparse_step", 1));
  SPARKSTACK_ASSIGN_OR_RETURN(m.mlp_only_layers, r.IntList("mlp_only_layers"));
  m.scoring = MoeScoring::kSoftmax;
  return absl::OkStatus();
}

// The routing keys DeepSeek-V3 and GLM-4 MoE share; their transformers defaults differ.
struct GroupedRoutingDefaults {
  double routed_scaling_factor;
  int64_t n_group;
  int64_t topk_group;
  int64_t first_k_dense_replace;
};

absl::Status ParseGroupedRouting(const Reader& r, const GroupedRoutingDefaults& d, MoeConfig* m) {
  SPARKSTACK_ASSIGN_OR_RETURN(m->num_experts, r.RequiredInt("n_routed_experts"));
  SPARKSTACK_ASSIGN_OR_RETURN(m->num_experts_per_tok, r.RequiredInt("num_experts_per_tok"));
  SPARKSTACK_ASSIGN_OR_RETURN(m->moe_intermediate_size, r.RequiredInt("moe_intermediate_size"));
  SPARKSTACK_ASSIGN_OR_RETURN(m->num_shared_experts, r.Int("n_shared_experts", 1));
  SPARKSTACK_ASSIGN_OR_RETURN(m->norm_topk_prob, r.Bool("norm_topk_prob", true));
  SPARKSTACK_ASSIGN_OR_RETURN(m->routed_scaling_factor,
                              r.Double("routed_scaling_factor", d.routed_scaling_factor));
  SPARKSTACK_ASSIGN_OR_RETURN(m->n_group, r.Int("n_group", d.n_group));
  SPARKSTACK_ASSIGN_OR_RETURN(m->topk_group, r.Int("topk_group", d.topk_group));
  SPARKSTACK_ASSIGN_OR_RETURN(m->first_k_dense_replace,
                              r.Int("first_k_dense_replace", d.first_k_dense_replace));
  m->score_correction_bias = true;
  return absl::OkStatus();
}

// DeepSeek-V3 (and Kimi K2): transformers' DeepseekV3Config defaults for absent optional keys.
absl::Status ParseDeepseekV3(const Reader& r, ModelConfig* c) {
  MoeConfig& m = c->moe;
  SPARKSTACK_RETURN_IF_ERROR(ParseGroupedRouting(r, {2.5, 8, 4, 3}, &m));
  SPARKSTACK_ASSIGN_OR_RETURN(m.moe_layer_freq, r.Int("moe_layer_freq", 1));
  SPARKSTACK_ASSIGN_OR_RETURN(m.scoring, ParseScoring(r, "sigmoid"));
  SPARKSTACK_ASSIGN_OR_RETURN(std::string topk_method, r.String("topk_method", "noaux_tc"));
  if (topk_method != "noaux_tc" || m.scoring != MoeScoring::kSigmoid) {
    return absl::UnimplementedError(absl::StrCat(
        "model config: DeepseekV3ForCausalLM with topk_method '", topk_method,
        "' and scoring_func '", m.scoring == MoeScoring::kSigmoid ? "sigmoid" : "softmax",
        "' is not supported (supported: noaux_tc with sigmoid, as DeepSeek-V3/R1 and Kimi K2)"));
  }
  MlaConfig& a = c->mla;
  SPARKSTACK_ASSIGN_OR_RETURN(a.q_lora_rank, r.Int("q_lora_rank", 0));  // null: no q LoRA
  SPARKSTACK_ASSIGN_OR_RETURN(a.kv_lora_rank, r.RequiredInt("kv_lora_rank"));
  SPARKSTACK_ASSIGN_OR_RETURN(a.qk_nope_head_dim, r.RequiredInt("qk_nope_head_dim"));
  SPARKSTACK_ASSIGN_OR_RETURN(a.qk_rope_head_dim, r.RequiredInt("qk_rope_head_dim"));
  SPARKSTACK_ASSIGN_OR_RETURN(a.v_head_dim, r.RequiredInt("v_head_dim"));
  for (const auto& [key, value] : {std::pair<const char*, int64_t>{"kv_lora_rank", a.kv_lora_rank},
                                   {"qk_nope_head_dim", a.qk_nope_head_dim},
                                   {"qk_rope_head_dim", a.qk_rope_head_dim},
                                   {"v_head_dim", a.v_head_dim}}) {
    if (value <= 0)
      return r.Error(absl::StrCat("field '", key, "' must be positive, found ", value));
  }
  if (a.q_lora_rank < 0) {
    return r.Error(
        absl::StrCat("field 'q_lora_rank' must be positive or null, found ", a.q_lora_rank));
  }
  c->head_dim = a.qk_nope_head_dim + a.qk_rope_head_dim;
  c->rotary_dim = a.qk_rope_head_dim;
  SPARKSTACK_ASSIGN_OR_RETURN(c->rope_interleaved, r.Bool("rope_interleave", true));
  SPARKSTACK_ASSIGN_OR_RETURN(c->num_mtp_layers, r.Int("num_nextn_predict_layers", 0));
  return absl::OkStatus();
}

// GLM-4.5/4.6/4.7 (and 4.5-Air): transformers' Glm4MoeConfig defaults for absent optional keys.
absl::Status ParseGlm4Moe(const Reader& r, ModelConfig* c) {
  MoeConfig& m = c->moe;
  SPARKSTACK_RETURN_IF_ERROR(ParseGroupedRouting(r, {1.0, 1, 1, 1}, &m));
  m.scoring = MoeScoring::kSigmoid;
  SPARKSTACK_RETURN_IF_ERROR(ParseRotaryDim(r, 0.5, c));
  SPARKSTACK_ASSIGN_OR_RETURN(c->qk_norm, r.Bool("use_qk_norm", false));
  SPARKSTACK_ASSIGN_OR_RETURN(c->num_mtp_layers, r.Int("num_nextn_predict_layers", 0));
  return absl::OkStatus();
}

absl::Status ParseMiniMaxM2(const Reader& r, ModelConfig* c) {
  MoeConfig& m = c->moe;
  SPARKSTACK_ASSIGN_OR_RETURN(m.num_experts, r.RequiredInt("num_local_experts"));
  SPARKSTACK_ASSIGN_OR_RETURN(m.num_experts_per_tok, r.RequiredInt("num_experts_per_tok"));
  m.moe_intermediate_size = c->intermediate_size;  // every layer is MoE; no dense MLP width
  m.norm_topk_prob = true;
  SPARKSTACK_ASSIGN_OR_RETURN(m.scoring, ParseScoring(r, "sigmoid"));
  SPARKSTACK_ASSIGN_OR_RETURN(m.score_correction_bias, r.Bool("use_routing_bias", true));
  SPARKSTACK_ASSIGN_OR_RETURN(int64_t shared, r.Int("shared_intermediate_size", 0));
  if (shared != 0) {
    return absl::UnimplementedError(
        absl::StrCat("model config: MiniMaxM2ForCausalLM with shared_intermediate_size ", shared,
                     " (a shared expert) is not supported"));
  }
  if (const Json* types = r.Field("attn_type_list")) {
    if (!types->is_array()) return r.WrongType("attn_type_list", "a list of 0/1", *types);
    for (size_t i = 0; i < types->size(); ++i) {
      if (!(*types)[i].is_number_integer() || (*types)[i].get<int64_t>() != 1) {
        return absl::UnimplementedError(absl::StrCat(
            "model config: attn_type_list[", i, "] is ", (*types)[i].dump(),
            "; only full softmax attention (1) is supported, not MiniMax linear attention"));
      }
    }
  }
  SPARKSTACK_RETURN_IF_ERROR(ParseRotaryDim(r, 1.0, c));
  SPARKSTACK_ASSIGN_OR_RETURN(c->qk_norm, r.Bool("use_qk_norm", true));
  SPARKSTACK_ASSIGN_OR_RETURN(std::string norm_type, r.String("qk_norm_type", "per_layer"));
  if (c->qk_norm && norm_type != "per_layer") {
    return absl::UnimplementedError(absl::StrCat("model config: qk_norm_type '", norm_type,
                                                 "' is not supported (supported: per_layer)"));
  }
  c->qk_norm_across_heads = c->qk_norm;
  SPARKSTACK_ASSIGN_OR_RETURN(bool use_mtp, r.Bool("use_mtp", false));
  if (use_mtp) {
    SPARKSTACK_ASSIGN_OR_RETURN(c->num_mtp_layers, r.Int("num_mtp_modules", 0));
  }
  return absl::OkStatus();
}

// Consistency of the MoE fields; every message names the fields and values involved.
absl::Status ValidateMoe(const Reader& r, const ModelConfig& c) {
  const MoeConfig& m = c.moe;
  if (m.num_experts <= 0 || m.moe_intermediate_size <= 0) {
    return r.Error(
        absl::StrCat("a mixture of experts needs a positive expert count and width; "
                     "found ",
                     m.num_experts, " experts of width ", m.moe_intermediate_size));
  }
  if (m.num_experts_per_tok < 1 || m.num_experts_per_tok > m.num_experts) {
    return r.Error(absl::StrCat("field 'num_experts_per_tok' must be in [1, ", m.num_experts,
                                "] (the expert count), found ", m.num_experts_per_tok));
  }
  if (m.num_shared_experts < 0) {
    return r.Error(absl::StrCat("field 'n_shared_experts' must not be negative, found ",
                                m.num_shared_experts));
  }
  if (!(m.routed_scaling_factor > 0) || !std::isfinite(m.routed_scaling_factor)) {
    return r.Error(absl::StrCat("field 'routed_scaling_factor' must be positive, found ",
                                m.routed_scaling_factor));
  }
  if (m.n_group < 1 || m.num_experts % m.n_group != 0) {
    return r.Error(absl::StrCat("field 'n_group' (", m.n_group,
                                ") must be positive and divide the expert count (", m.num_experts,
                                ")"));
  }
  const int64_t per_group = m.num_experts / m.n_group;
  if (m.topk_group < 1 || m.topk_group > m.n_group) {
    return r.Error(absl::StrCat("field 'topk_group' must be in [1, n_group = ", m.n_group,
                                "], found ", m.topk_group));
  }
  if (m.topk_group * per_group < m.num_experts_per_tok) {
    return r.Error(absl::StrCat("topk_group (", m.topk_group, ") groups of ", per_group,
                                " experts cannot supply num_experts_per_tok (",
                                m.num_experts_per_tok, ") experts"));
  }
  if (m.n_group > 1 && per_group < 2) {
    return r.Error(absl::StrCat("n_group ", m.n_group, " leaves ", per_group,
                                " expert per group; a group scores its two best experts"));
  }
  if (m.first_k_dense_replace < 0 || m.first_k_dense_replace > c.num_layers) {
    return r.Error(absl::StrCat("field 'first_k_dense_replace' must be in [0, ", c.num_layers,
                                "] (num_hidden_layers), found ", m.first_k_dense_replace));
  }
  if (m.moe_layer_freq < 1 || m.decoder_sparse_step < 1) {
    return r.Error(
        absl::StrCat("fields 'moe_layer_freq' and 'decoder_sparse_step' must be "
                     "positive, found ",
                     m.moe_layer_freq, " and ", m.decoder_sparse_step));
  }
  for (int64_t layer : m.mlp_only_layers) {
    if (layer < 0 || layer >= c.num_layers) {
      return r.Error(absl::StrCat("field 'mlp_only_layers' names layer ", layer, "; layers are 0..",
                                  c.num_layers - 1));
    }
  }
  if (c.num_mtp_layers < 0) {
    return r.Error(
        absl::StrCat("the multi-token-prediction layer count must not be negative, "
                     "found ",
                     c.num_mtp_layers));
  }
  return absl::OkStatus();
}

absl::Status ParseMoeAndMla(const Reader& r, ModelConfig* c) {
  c->rotary_dim = c->head_dim;
  switch (c->architecture) {
    case Architecture::kLlama:
    case Architecture::kQwen3:
      return absl::OkStatus();
    case Architecture::kQwen3Moe:
      SPARKSTACK_RETURN_IF_ERROR(ParseQwen3Moe(r, c));
      break;
    case Architecture::kDeepseekV3:
      SPARKSTACK_RETURN_IF_ERROR(ParseDeepseekV3(r, c));
      break;
    case Architecture::kGlm4Moe:
      SPARKSTACK_RETURN_IF_ERROR(ParseGlm4Moe(r, c));
      break;
    case Architecture::kMiniMaxM2:
      SPARKSTACK_RETURN_IF_ERROR(ParseMiniMaxM2(r, c));
      break;
  }
  if (c->rotary_dim <= 0 || c->rotary_dim % 2 != 0 || c->rotary_dim > c->head_dim) {
    return r.Error(
        absl::StrCat("the rotary width (rotary_dim / partial_rotary_factor / "
                     "qk_rope_head_dim) must be even and in [2, head_dim = ",
                     c->head_dim, "], found ", c->rotary_dim));
  }
  return ValidateMoe(r, *c);
}

// The MoE, MLA and partial-rotary keys of each family, under their Hugging Face names.
void AddMoeFieldsToJson(const ModelConfig& c, Json& j) {
  const MoeConfig& m = c.moe;
  auto routing = [&](const char* experts_key) {
    j[experts_key] = m.num_experts;
    j["num_experts_per_tok"] = m.num_experts_per_tok;
    j["norm_topk_prob"] = m.norm_topk_prob;
  };
  auto grouped = [&] {
    j["moe_intermediate_size"] = m.moe_intermediate_size;
    j["n_shared_experts"] = m.num_shared_experts;
    j["routed_scaling_factor"] = m.routed_scaling_factor;
    j["n_group"] = m.n_group;
    j["topk_group"] = m.topk_group;
    j["first_k_dense_replace"] = m.first_k_dense_replace;
    j["num_nextn_predict_layers"] = c.num_mtp_layers;
  };
  switch (c.architecture) {
    case Architecture::kLlama:
    case Architecture::kQwen3:
      return;
    case Architecture::kQwen3Moe:
      routing("num_experts");
      j["moe_intermediate_size"] = m.moe_intermediate_size;
      j["decoder_sparse_step"] = m.decoder_sparse_step;
      j["mlp_only_layers"] = m.mlp_only_layers;
      j["use_sliding_window"] = false;
      return;
    case Architecture::kDeepseekV3: {
      routing("n_routed_experts");
      grouped();
      const MlaConfig& a = c.mla;
      j.erase("head_dim");  // derived from the MLA widths
      j["moe_layer_freq"] = m.moe_layer_freq;
      j["scoring_func"] = "sigmoid";
      j["topk_method"] = "noaux_tc";
      j["q_lora_rank"] = a.q_lora_rank > 0 ? Json(a.q_lora_rank) : Json(nullptr);
      j["kv_lora_rank"] = a.kv_lora_rank;
      j["qk_nope_head_dim"] = a.qk_nope_head_dim;
      j["qk_rope_head_dim"] = a.qk_rope_head_dim;
      j["v_head_dim"] = a.v_head_dim;
      j["rope_interleave"] = c.rope_interleaved;
      return;
    }
    case Architecture::kGlm4Moe:
      routing("n_routed_experts");
      grouped();
      j["partial_rotary_factor"] =
          static_cast<double>(c.rotary_dim) / static_cast<double>(c.head_dim);
      j["use_qk_norm"] = c.qk_norm;
      return;
    case Architecture::kMiniMaxM2:
      routing("num_local_experts");
      j["scoring_func"] = m.scoring == MoeScoring::kSigmoid ? "sigmoid" : "softmax";
      j["use_routing_bias"] = m.score_correction_bias;
      j["shared_intermediate_size"] = 0;
      j["rotary_dim"] = c.rotary_dim;
      j["use_qk_norm"] = c.qk_norm;
      j["qk_norm_type"] = "per_layer";
      j["attn_type_list"] = std::vector<int>(static_cast<size_t>(c.num_layers), 1);
      j["use_mtp"] = c.num_mtp_layers > 0;
      j["num_mtp_modules"] = c.num_mtp_layers;
      return;
  }
}

}  // namespace

bool IsMoeLayer(const ModelConfig& config, int64_t layer) {
  const MoeConfig& m = config.moe;
  switch (config.architecture) {
    case Architecture::kLlama:
    case Architecture::kQwen3:
      return false;
    case Architecture::kQwen3Moe:
      for (int64_t dense : m.mlp_only_layers) {
        if (dense == layer) return false;
      }
      return m.num_experts > 0 && (layer + 1) % m.decoder_sparse_step == 0;
    case Architecture::kDeepseekV3:
      return layer >= m.first_k_dense_replace && layer % m.moe_layer_freq == 0;
    case Architecture::kGlm4Moe:
      return layer >= m.first_k_dense_replace;
    case Architecture::kMiniMaxM2:
      return true;
  }
  return false;
}

std::string_view ArchitectureName(Architecture architecture) {
  switch (architecture) {
    case Architecture::kLlama: return "llama";
    case Architecture::kQwen3: return "qwen3";
    case Architecture::kQwen3Moe: return "qwen3_moe";
    case Architecture::kDeepseekV3: return "deepseek_v3";
    case Architecture::kGlm4Moe: return "glm4_moe";
    case Architecture::kMiniMaxM2: return "minimax_m2";
  }
  return "unknown";
}

std::optional<Architecture> ArchitectureFromName(std::string_view name) {
  for (const ArchitectureInfo& info : ArchitectureTable()) {
    if (ArchitectureName(info.architecture) == name) return info.architecture;
  }
  return std::nullopt;
}

absl::StatusOr<ModelConfig> ParseModelConfig(const Json& json, const std::string& source) {
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model config ", source, ": must be a JSON object, found ", json.type_name()));
  }
  const Reader r(json, source);
  ModelConfig c;
  SPARKSTACK_ASSIGN_OR_RETURN(c.architecture, ResolveArchitecture(r, source));
  const bool qwen3 =
      c.architecture == Architecture::kQwen3 || c.architecture == Architecture::kQwen3Moe;

  SPARKSTACK_ASSIGN_OR_RETURN(c.hidden_size, r.RequiredInt("hidden_size"));
  SPARKSTACK_ASSIGN_OR_RETURN(c.intermediate_size, r.RequiredInt("intermediate_size"));
  SPARKSTACK_ASSIGN_OR_RETURN(c.num_layers, r.RequiredInt("num_hidden_layers"));
  SPARKSTACK_ASSIGN_OR_RETURN(c.num_heads, r.RequiredInt("num_attention_heads"));
  SPARKSTACK_ASSIGN_OR_RETURN(c.vocab_size, r.RequiredInt("vocab_size"));
  SPARKSTACK_ASSIGN_OR_RETURN(c.num_kv_heads, r.Int("num_key_value_heads", c.num_heads));
  SPARKSTACK_ASSIGN_OR_RETURN(c.max_position_embeddings,
                              r.Int("max_position_embeddings", qwen3 ? 32768 : 2048));
  SPARKSTACK_ASSIGN_OR_RETURN(c.rms_norm_eps, r.Double("rms_norm_eps", qwen3 ? 1e-6 : 1e-5));
  SPARKSTACK_RETURN_IF_ERROR(ParseRope(r, source, &c));
  SPARKSTACK_ASSIGN_OR_RETURN(c.tie_word_embeddings, r.Bool("tie_word_embeddings", false));
  SPARKSTACK_ASSIGN_OR_RETURN(c.attention_bias, r.Bool("attention_bias", false));
  c.qk_norm = qwen3;
  SPARKSTACK_ASSIGN_OR_RETURN(c.bos_token_ids, r.IntList("bos_token_id"));
  SPARKSTACK_ASSIGN_OR_RETURN(c.eos_token_ids, r.IntList("eos_token_id"));
  SPARKSTACK_ASSIGN_OR_RETURN(c.torch_dtype, ParseTorchDType(r));

  struct SizeField {
    const char* key;
    int64_t value;
  };
  for (const SizeField& f : {SizeField{"hidden_size", c.hidden_size},
                             SizeField{"intermediate_size", c.intermediate_size},
                             SizeField{"num_hidden_layers", c.num_layers},
                             SizeField{"num_attention_heads", c.num_heads},
                             SizeField{"num_key_value_heads", c.num_kv_heads},
                             SizeField{"vocab_size", c.vocab_size},
                             SizeField{"max_position_embeddings", c.max_position_embeddings}}) {
    SPARKSTACK_RETURN_IF_ERROR(CheckSizeInRange(r, f.key, f.value));
  }
  if (c.num_heads % c.num_kv_heads != 0) {
    return r.Error(absl::StrCat("num_attention_heads (", c.num_heads,
                                ") must be a multiple of num_key_value_heads (", c.num_kv_heads,
                                ")"));
  }
  if (c.architecture == Architecture::kDeepseekV3) {
    c.head_dim = 0;  // q/k head width from the MLA fields, in ParseMoeAndMla
  } else if (r.Field("head_dim") != nullptr) {
    SPARKSTACK_ASSIGN_OR_RETURN(c.head_dim, r.Int("head_dim", 0));
    SPARKSTACK_RETURN_IF_ERROR(CheckSizeInRange(r, "head_dim", c.head_dim));
  } else {
    if (c.hidden_size % c.num_heads != 0) {
      return r.Error(absl::StrCat("hidden_size (", c.hidden_size,
                                  ") is not divisible by num_attention_heads (", c.num_heads,
                                  ") and no head_dim is given"));
    }
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (!(c.rms_norm_eps > 0) || !std::isfinite(c.rms_norm_eps)) {
    return r.Error(absl::StrCat("field 'rms_norm_eps' must be positive, found ", c.rms_norm_eps));
  }
  if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta)) {
    return r.Error(absl::StrCat("field 'rope_theta' must be positive, found ", c.rope_theta));
  }
  SPARKSTACK_RETURN_IF_ERROR(ParseMoeAndMla(r, &c));
  SPARKSTACK_RETURN_IF_ERROR(RejectUnsupportedFeatures(r, source, c));
  SPARKSTACK_RETURN_IF_ERROR(CheckSizesUsable(r, c));
  return c;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "config.json").string();
  SPARKSTACK_ASSIGN_OR_RETURN(
      std::string text,
      ReadRegularFile(path, kMaxConfigFileBytes, "model config", kJsonDomBytesPerTextByte));
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    // Parse again only to get nlohmann's description of where the text goes wrong.
    try {
      json = Json::parse(text);
    } catch (const Json::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("model config ", path, ": not valid JSON: ", e.what()));
    }
  }
  return ParseModelConfig(json, path);
}

Json ModelConfigToJson(const ModelConfig& c) {
  const ArchitectureInfo& info = InfoFor(c.architecture);
  Json j;
  j["architectures"] = Json::array({std::string(info.class_names.front())});
  j["model_type"] = std::string(info.model_types.front());
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_layers;
  j["num_attention_heads"] = c.num_heads;
  j["num_key_value_heads"] = c.num_kv_heads;
  j["head_dim"] = c.head_dim;
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  if (c.rope_scaling.type == "none") {
    j["rope_scaling"] = nullptr;
  } else if (c.rope_scaling.type == "yarn") {
    const RopeScaling& s = c.rope_scaling;
    Json yarn = {{"rope_type", "yarn"},
                 {"factor", s.factor},
                 {"original_max_position_embeddings", s.original_max_position_embeddings},
                 {"beta_fast", s.beta_fast},
                 {"beta_slow", s.beta_slow}};
    if (s.mscale > 0) yarn["mscale"] = s.mscale;
    if (s.mscale_all_dim > 0) yarn["mscale_all_dim"] = s.mscale_all_dim;
    if (s.attention_factor > 0) yarn["attention_factor"] = s.attention_factor;
    if (!s.truncate) yarn["truncate"] = false;
    j["rope_scaling"] = yarn;
  } else {
    j["rope_scaling"] = {
        {"rope_type", c.rope_scaling.type},
        {"factor", c.rope_scaling.factor},
        {"low_freq_factor", c.rope_scaling.low_freq_factor},
        {"high_freq_factor", c.rope_scaling.high_freq_factor},
        {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
  }
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["attention_bias"] = c.attention_bias;
  j["hidden_act"] = "silu";
  auto ids = [](const std::vector<int64_t>& v) -> Json {
    if (v.empty()) return nullptr;
    if (v.size() == 1) return v.front();
    return v;
  };
  j["bos_token_id"] = ids(c.bos_token_ids);
  j["eos_token_id"] = ids(c.eos_token_ids);
  switch (c.torch_dtype) {
    case DType::kF32: j["torch_dtype"] = "float32"; break;
    case DType::kF16: j["torch_dtype"] = "float16"; break;
    default: j["torch_dtype"] = "bfloat16"; break;
  }
  if (c.architecture == Architecture::kQwen3) j["use_sliding_window"] = false;
  AddMoeFieldsToJson(c, j);
  return j;
}

}  // namespace sparkstack
