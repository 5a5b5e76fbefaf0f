#include "runtime/serving/openai_request.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status_macros.h"
#include "runtime/serving/chat_input.h"

namespace sparkstack::serving {
namespace {

using Json = nlohmann::ordered_json;

constexpr int64_t kMaxTokenId = std::numeric_limits<int32_t>::max();
constexpr int kMaxLogprobs = kMaxTopLogprobs;

absl::string_view TypeName(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "an integer";
    case Json::value_t::number_float:
      return "a number";
    case Json::value_t::binary:
    case Json::value_t::discarded:
      return "an unsupported value";
  }
  return "an unsupported value";
}

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::Status Expected(absl::string_view field, absl::string_view expected, const Json& got) {
  return Invalid(field, absl::StrCat("expected ", expected, ", got ", TypeName(got)));
}

// A JSON integer (or a number with an integral value) as int64, if it fits.
bool AsInt64(const Json& value, int64_t* out) {
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(u);
    return true;
  }
  if (value.is_number_integer()) {
    *out = value.get<int64_t>();
    return true;
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    // 2^63 is exactly representable; anything at or beyond it does not fit.
    if (!std::isfinite(d) || d != std::floor(d) || d < -9.2233720368547758e18 ||
        d >= 9.2233720368547758e18) {
      return false;
    }
    *out = static_cast<int64_t>(d);
    return true;
  }
  return false;
}

// Reads the optional fields of one JSON object; null counts as absent.
class Fields {
 public:
  explicit Fields(const Json& object) : object_(object) {}

  const Json* Get(absl::string_view key) const {
    auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  absl::Status Int(absl::string_view key, int64_t lo, int64_t hi,
                   std::optional<int64_t>* out) const {
    const Json* value = Get(key);
    if (value == nullptr) return absl::OkStatus();
    int64_t v = 0;
    if (!value->is_number() || !AsInt64(*value, &v)) {
      if (value->is_number()) {
        return Invalid(key, absl::StrCat("expected an integer in [", lo, ", ", hi, "]"));
      }
      return Expected(key, "an integer", *value);
    }
    if (v < lo || v > hi) {
      return Invalid(key, absl::StrCat("must be in [", lo, ", ", hi, "], got ", v));
    }
    *out = v;
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status Int(absl::string_view key, int64_t lo, int64_t hi, T* out) const {
    std::optional<int64_t> v;
    SPARKSTACK_RETURN_IF_ERROR(Int(key, lo, hi, &v));
    if (v.has_value()) *out = static_cast<T>(*v);
    return absl::OkStatus();
  }

  // A number in [lo, hi] (open at lo when lo_open).
  absl::Status Float(absl::string_view key, double lo, double hi, bool lo_open, float* out) const {
    const Json* value = Get(key);
    if (value == nullptr) return absl::OkStatus();
    if (!value->is_number()) return Expected(key, "a number", *value);
    const double v = value->get<double>();
    if (!(lo_open ? v > lo : v >= lo) || !(v <= hi)) {
      return Invalid(key, absl::StrCat("must be in ", lo_open ? "(" : "[", lo, ", ", hi, "], got ",
                                       value->dump()));
    }
    *out = static_cast<float>(v);
    return absl::OkStatus();
  }

  absl::Status Bool(absl::string_view key, bool* out) const {
    const Json* value = Get(key);
    if (value == nullptr) return absl::OkStatus();
    if (!value->is_boolean()) return Expected(key, "a boolean", *value);
    *out = value->get<bool>();
    return absl::OkStatus();
  }

  absl::Status String(absl::string_view key, std::string* out) const {
    const Json* value = Get(key);
    if (value == nullptr) return absl::OkStatus();
    if (!value->is_string()) return Expected(key, "a string", *value);
    *out = value->get<std::string>();
    return absl::OkStatus();
  }

 private:
  const Json& object_;
};

absl::StatusOr<int32_t> TokenId(const Json& value, absl::string_view field) {
  int64_t id = 0;
  if (!value.is_number() || !AsInt64(value, &id) || id < 0 || id > kMaxTokenId) {
    return Invalid(field,
                   absl::StrCat("expected a token id (an integer in [0, ", kMaxTokenId, "]), got ",
                                value.is_number() ? value.dump() : std::string(TypeName(value))));
  }
  return static_cast<int32_t>(id);
}

absl::StatusOr<std::vector<int32_t>> TokenIds(const Json& array, absl::string_view field) {
  std::vector<int32_t> ids;
  ids.reserve(array.size());
  for (size_t i = 0; i < array.size(); ++i) {
    SPARKSTACK_ASSIGN_OR_RETURN(int32_t id, TokenId(array[i], absl::StrCat(field, "[", i, "]")));
    ids.push_back(id);
  }
  return ids;
}

// prompt: "text" | ["text", ...] | [id, ...] | [[id, ...], ...]
absl::Status ParsePrompts(const Fields& fields, const ServingLimits& limits,
                          std::vector<PromptSpec>* prompts) {
  const Json* prompt = fields.Get("prompt");
  if (prompt == nullptr) return Invalid("prompt", "required");
  auto text_prompt = [](const std::string& text) {
    PromptSpec spec;
    spec.kind = PromptSpec::Kind::kText;
    spec.text = text;
    return spec;
  };
  if (prompt->is_string()) {
    prompts->push_back(text_prompt(prompt->get<std::string>()));
    return absl::OkStatus();
  }
  if (!prompt->is_array()) {
    return Expected("prompt", "a string, an array of strings or of token ids", *prompt);
  }
  if (prompt->empty()) return Invalid("prompt", "must not be empty");
  const Json& first = prompt->front();
  if (first.is_number()) {
    PromptSpec spec;
    spec.kind = PromptSpec::Kind::kTokenIds;
    SPARKSTACK_ASSIGN_OR_RETURN(spec.token_ids, TokenIds(*prompt, "prompt"));
    prompts->push_back(std::move(spec));
    return absl::OkStatus();
  }
  if (std::ssize(*prompt) > limits.max_prompts) {
    return Invalid("prompt", absl::StrCat(prompt->size(), " prompts in one request, at most ",
                                          limits.max_prompts));
  }
  for (size_t i = 0; i < prompt->size(); ++i) {
    const Json& item = (*prompt)[i];
    const std::string field = absl::StrCat("prompt[", i, "]");
    if (first.is_string()) {
      if (!item.is_string()) return Expected(field, "a string (like prompt[0])", item);
      prompts->push_back(text_prompt(item.get<std::string>()));
    } else if (first.is_array()) {
      if (!item.is_array()) return Expected(field, "an array of token ids (like prompt[0])", item);
      if (item.empty()) return Invalid(field, "must not be empty");
      PromptSpec spec;
      spec.kind = PromptSpec::Kind::kTokenIds;
      SPARKSTACK_ASSIGN_OR_RETURN(spec.token_ids, TokenIds(item, field));
      prompts->push_back(std::move(spec));
    } else {
      return Expected(field, "a string, a token id or an array of token ids", item);
    }
  }
  return absl::OkStatus();
}

absl::Status ParseStop(const Fields& fields, StoppingParams* stopping) {
  const Json* stop = fields.Get("stop");
  if (stop != nullptr) {
    if (stop->is_string()) {
      stopping->stop_strings.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (size_t i = 0; i < stop->size(); ++i) {
        if (!(*stop)[i].is_string()) {
          return Expected(absl::StrCat("stop[", i, "]"), "a string", (*stop)[i]);
        }
        stopping->stop_strings.push_back((*stop)[i].get<std::string>());
      }
    } else {
      return Expected("stop", "a string or an array of strings", *stop);
    }
  }
  const Json* ids = fields.Get("stop_token_ids");
  if (ids != nullptr) {
    if (!ids->is_array()) return Expected("stop_token_ids", "an array of token ids", *ids);
    SPARKSTACK_ASSIGN_OR_RETURN(stopping->stop_token_ids, TokenIds(*ids, "stop_token_ids"));
  }
  return absl::OkStatus();
}

// Fields OpenAI defines that this server does not implement: refused rather than ignored, so a
// client never gets silently different behaviour.
absl::Status RefuseUnsupported(const Fields& fields, int64_t n) {
  bool echo = false;
  SPARKSTACK_RETURN_IF_ERROR(fields.Bool("echo", &echo));
  if (echo) return Invalid("echo", "not supported");
  if (const Json* suffix = fields.Get("suffix");
      suffix != nullptr &&
      !(suffix->is_string() && suffix->get_ref<const std::string&>().empty())) {
    return Invalid("suffix", "not supported");
  }
  std::optional<int64_t> best_of;
  SPARKSTACK_RETURN_IF_ERROR(fields.Int("best_of", 1, 1 << 20, &best_of));
  if (best_of.has_value() && *best_of != n)
    return Invalid("best_of", "only best_of = n is supported");
  if (const Json* bias = fields.Get("logit_bias"); bias != nullptr) {
    if (!bias->is_object()) return Expected("logit_bias", "an object", *bias);
    if (!bias->empty()) return Invalid("logit_bias", "not supported");
  }
  if (const Json* tools = fields.Get("tools"); tools != nullptr) {
    if (!tools->is_array()) return Expected("tools", "an array", *tools);
    if (!tools->empty()) return Invalid("tools", "tool calling is not supported by this server");
  }
  if (const Json* choice = fields.Get("tool_choice");
      choice != nullptr && !(choice->is_string() && *choice == "none")) {
    return Invalid("tool_choice", "only \"none\" is supported");
  }
  if (const Json* format = fields.Get("response_format"); format != nullptr) {
    if (!format->is_object()) return Expected("response_format", "an object", *format);
    auto type = format->find("type");
    if (type == format->end() || !type->is_string() || *type != "text") {
      return Invalid("response_format", "only {\"type\": \"text\"} is supported");
    }
  }
  return absl::OkStatus();
}

absl::Status ParseSampling(const Fields& fields, GenerateSpec* params) {
  SamplingParams& s = params->sampling;
  s.temperature = 1.0f;  // OpenAI's default
  SPARKSTACK_RETURN_IF_ERROR(fields.Float("temperature", 0.0, 100.0, false, &s.temperature));
  SPARKSTACK_RETURN_IF_ERROR(fields.Float("top_p", 0.0, 1.0, true, &s.top_p));
  std::optional<int64_t> top_k;
  SPARKSTACK_RETURN_IF_ERROR(fields.Int("top_k", -1, std::numeric_limits<int32_t>::max(), &top_k));
  s.top_k = top_k.has_value() && *top_k > 0 ? static_cast<int32_t>(*top_k) : 0;
  SPARKSTACK_RETURN_IF_ERROR(fields.Float("min_p", 0.0, 1.0, false, &s.min_p));
  SPARKSTACK_RETURN_IF_ERROR(
      fields.Float("presence_penalty", -2.0, 2.0, false, &s.presence_penalty));
  SPARKSTACK_RETURN_IF_ERROR(
      fields.Float("frequency_penalty", -2.0, 2.0, false, &s.frequency_penalty));
  SPARKSTACK_RETURN_IF_ERROR(
      fields.Float("repetition_penalty", 0.0, 100.0, true, &s.repetition_penalty));
  if (const Json* seed = fields.Get("seed"); seed != nullptr) {
    if (seed->is_number_unsigned()) {
      params->seed = seed->get<uint64_t>();
    } else {
      int64_t v = 0;
      if (!seed->is_number() || !AsInt64(*seed, &v)) {
        return seed->is_number() ? Invalid("seed", "expected a 64-bit integer")
                                 : Expected("seed", "an integer", *seed);
      }
      params->seed = static_cast<uint64_t>(v);  // negative seeds wrap, as two's complement
    }
  }
  StoppingParams& stop = params->stopping;
  SPARKSTACK_RETURN_IF_ERROR(
      fields.Int("min_tokens", 0, std::numeric_limits<int32_t>::max(), &stop.min_tokens));
  SPARKSTACK_RETURN_IF_ERROR(fields.Bool("ignore_eos", &stop.ignore_eos));
  SPARKSTACK_RETURN_IF_ERROR(fields.Bool("include_stop_str_in_output", &stop.include_stop_string));
  SPARKSTACK_RETURN_IF_ERROR(fields.Bool("skip_special_tokens", &params->skip_special_tokens));
  return ParseStop(fields, &stop);
}

}  // namespace

absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(OpenAiEndpoint endpoint, absl::string_view body,
                                                 const ServingLimits& limits) {
  // The parser checks UTF-8 in strings and refuses numbers that overflow a double.
  Json json = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError("the request body is not valid JSON (or not UTF-8)");
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request body must be a JSON object, got ", TypeName(json)));
  }
  const Fields fields(json);
  OpenAiRequest request;
  request.endpoint = endpoint;
  SPARKSTACK_RETURN_IF_ERROR(fields.String("model", &request.model));
  SPARKSTACK_RETURN_IF_ERROR(fields.Int("n", 1, limits.max_n, &request.n));
  SPARKSTACK_RETURN_IF_ERROR(fields.Bool("stream", &request.stream));
  if (const Json* options = fields.Get("stream_options"); options != nullptr) {
    if (!options->is_object()) return Expected("stream_options", "an object", *options);
    if (!request.stream) return Invalid("stream_options", "only allowed with \"stream\": true");
    SPARKSTACK_RETURN_IF_ERROR(Fields(*options).Bool("include_usage", &request.include_usage));
  }
  SPARKSTACK_RETURN_IF_ERROR(RefuseUnsupported(fields, request.n));
  SPARKSTACK_RETURN_IF_ERROR(ParseSampling(fields, &request.params));
  if (const Json* user = fields.Get("user"); user != nullptr && !user->is_string()) {
    return Expected("user", "a string", *user);
  }

  constexpr int64_t kMaxTokens = std::numeric_limits<int32_t>::max();
  std::optional<int64_t> max_tokens;
  SPARKSTACK_RETURN_IF_ERROR(fields.Int("max_tokens", 1, kMaxTokens, &max_tokens));
  if (endpoint == OpenAiEndpoint::kCompletions) {
    request.params.max_tokens = max_tokens.value_or(16);  // OpenAI's default for completions
    std::optional<int64_t> logprobs;
    SPARKSTACK_RETURN_IF_ERROR(fields.Int("logprobs", 0, kMaxLogprobs, &logprobs));
    request.logprobs = logprobs.has_value() ? static_cast<int>(*logprobs) : -1;
    SPARKSTACK_RETURN_IF_ERROR(ParsePrompts(fields, limits, &request.prompts));
  } else {
    std::optional<int64_t> max_completion_tokens;
    SPARKSTACK_RETURN_IF_ERROR(
        fields.Int("max_completion_tokens", 1, kMaxTokens, &max_completion_tokens));
    if (max_completion_tokens.has_value()) max_tokens = max_completion_tokens;
    request.params.max_tokens = max_tokens;  // unset: up to the context
    bool logprobs = false;
    SPARKSTACK_RETURN_IF_ERROR(fields.Bool("logprobs", &logprobs));
    std::optional<int64_t> top;
    SPARKSTACK_RETURN_IF_ERROR(fields.Int("top_logprobs", 0, kMaxLogprobs, &top));
    if (top.has_value() && !logprobs) return Invalid("top_logprobs", "needs \"logprobs\": true");
    request.logprobs = logprobs ? static_cast<int>(top.value_or(0)) : -1;

    PromptSpec prompt;
    prompt.kind = PromptSpec::Kind::kChat;
    const Json* messages = fields.Get("messages");
    if (messages == nullptr) return Invalid("messages", "required");
    SPARKSTACK_ASSIGN_OR_RETURN(prompt.messages, ValidateChatMessages(*messages));
    SPARKSTACK_RETURN_IF_ERROR(fields.Bool("add_generation_prompt", &prompt.add_generation_prompt));
    if (const Json* kwargs = fields.Get("chat_template_kwargs"); kwargs != nullptr) {
      if (!kwargs->is_object()) return Expected("chat_template_kwargs", "an object", *kwargs);
      prompt.template_kwargs = *kwargs;
    }
    request.prompts.push_back(std::move(prompt));
  }
  request.params.sampling.logprobs = request.logprobs;
  return request;
}

}  // namespace sparkstack::serving
