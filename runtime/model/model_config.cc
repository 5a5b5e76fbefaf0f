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
  if (type != "llama3") {
    return absl::UnimplementedError(absl::StrCat("model config ", source, ": ", key,
                                                 " type '", type,
                                                 "' is not supported (supported: llama3)"));
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
  SPARKSTACK_ASSIGN_OR_RETURN(bool use_sliding_window,
                              r.Bool("use_sliding_window", c.architecture != Architecture::kQwen3));
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
  if (c.head_dim % 2 != 0) {
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

}  // namespace

std::string_view ArchitectureName(Architecture architecture) {
  switch (architecture) {
    case Architecture::kLlama: return "llama";
    case Architecture::kQwen3: return "qwen3";
  }
  return "unknown";
}

absl::StatusOr<ModelConfig> ParseModelConfig(const Json& json, const std::string& source) {
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model config ", source, ": must be a JSON object, found ", json.type_name()));
  }
  const Reader r(json, source);
  ModelConfig c;
  SPARKSTACK_ASSIGN_OR_RETURN(c.architecture, ResolveArchitecture(r, source));
  const bool qwen3 = c.architecture == Architecture::kQwen3;

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
  if (r.Field("head_dim") != nullptr) {
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
  return j;
}

}  // namespace sparkstack
