#include "runtime/serving/openai_response.h"

#include <chrono>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "runtime/serving/status_mapping.h"

namespace sparkstack::serving {
namespace {

// JSON has no -inf; a token the model cannot produce reports vLLM's stand-in.
double FiniteLogprob(float logprob) { return std::isfinite(logprob) ? logprob : -9999.0; }

Json Bytes(const std::string& text) {
  Json bytes = Json::array();
  for (unsigned char c : text) bytes.push_back(static_cast<int>(c));
  return bytes;
}

}  // namespace

std::string NewResponseId(absl::string_view prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(prefix);
  for (int i = 0; i < 24; ++i) id += kHex[rng() & 15];
  return id;
}

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::string_view OpenAiFinishReason(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos:
    case FinishReason::kStopToken:
    case FinishReason::kStopString:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
    case FinishReason::kError:
      return "error";
    case FinishReason::kNone:
      return "";
  }
  return "";
}

Json UsageJson(int64_t prompt_tokens, int64_t completion_tokens, int64_t cached_prompt_tokens) {
  Json usage = {{"prompt_tokens", prompt_tokens},
                {"completion_tokens", completion_tokens},
                {"total_tokens", prompt_tokens + completion_tokens}};
  usage["prompt_tokens_details"] = {{"cached_tokens", cached_prompt_tokens}};
  return usage;
}

Json ErrorJson(const absl::Status& status) {
  Json code = nullptr;
  if (absl::IsNotFound(status)) code = "model_not_found";
  if (absl::IsUnauthenticated(status)) code = "invalid_api_key";
  if (absl::IsResourceExhausted(status)) code = "rate_limit_exceeded";
  return {{"error",
           {{"message", std::string(status.message())},
            {"type", std::string(OpenAiErrorType(status.code()))},
            {"param", nullptr},
            {"code", code}}}};
}

std::string DumpJson(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string SseData(const Json& json) { return absl::StrCat("data: ", DumpJson(json), "\n\n"); }

void AppendCompletionLogprobs(std::span<const SampledToken> tokens, const TokenTextFn& text,
                              int64_t* text_offset, Json* logprobs) {
  if (logprobs->is_null()) {
    *logprobs = {{"tokens", Json::array()},
                 {"token_logprobs", Json::array()},
                 {"top_logprobs", Json::array()},
                 {"text_offset", Json::array()}};
  }
  for (const SampledToken& token : tokens) {
    const std::string token_text = text(token.token);
    (*logprobs)["tokens"].push_back(token_text);
    (*logprobs)["token_logprobs"].push_back(FiniteLogprob(token.logprob));
    Json top = Json::object();
    for (int i = 0; i < token.num_top; ++i) {
      top[text(token.top[i].token)] = FiniteLogprob(token.top[i].logprob);
    }
    (*logprobs)["top_logprobs"].push_back(std::move(top));
    (*logprobs)["text_offset"].push_back(*text_offset);
    *text_offset += static_cast<int64_t>(token_text.size());
  }
}

void AppendChatLogprobs(std::span<const SampledToken> tokens, const TokenTextFn& text,
                        Json* logprobs) {
  if (logprobs->is_null()) *logprobs = {{"content", Json::array()}};
  for (const SampledToken& token : tokens) {
    const std::string token_text = text(token.token);
    Json top = Json::array();
    for (int i = 0; i < token.num_top; ++i) {
      const std::string alt = text(token.top[i].token);
      top.push_back({{"token", alt},
                     {"logprob", FiniteLogprob(token.top[i].logprob)},
                     {"bytes", Bytes(alt)}});
    }
    (*logprobs)["content"].push_back({{"token", token_text},
                                      {"logprob", FiniteLogprob(token.logprob)},
                                      {"bytes", Bytes(token_text)},
                                      {"top_logprobs", std::move(top)}});
  }
}

}  // namespace sparkstack::serving
