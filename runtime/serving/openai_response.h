// Pieces of OpenAI's response shapes, shared by the completions and chat handlers: ids, finish
// reasons, usage, errors, logprobs, and server-sent-event framing. Pure functions.
#ifndef SPARKSTACK_RUNTIME_SERVING_OPENAI_RESPONSE_H_
#define SPARKSTACK_RUNTIME_SERVING_OPENAI_RESPONSE_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "runtime/engine/request.h"

namespace sparkstack::serving {

using Json = nlohmann::ordered_json;

// "<prefix><24 random hex digits>", e.g. "chatcmpl-3f0c...".
std::string NewResponseId(absl::string_view prefix);
int64_t UnixSeconds();

// "stop" (EOS, a stop token or string), "length", "abort", "error".
absl::string_view OpenAiFinishReason(FinishReason reason);

Json UsageJson(int64_t prompt_tokens, int64_t completion_tokens, int64_t cached_prompt_tokens);

// {"error": {"message", "type", "param": null, "code"}} for a non-OK status.
Json ErrorJson(const absl::Status& status);

// Serializes with invalid UTF-8 (never expected) replaced rather than thrown.
std::string DumpJson(const Json& json);
// One server-sent event carrying `json`: "data: <json>\n\n".
std::string SseData(const Json& json);
inline constexpr absl::string_view kSseDone = "data: [DONE]\n\n";

// The text of one token id, for logprobs.
using TokenTextFn = std::function<std::string(int32_t)>;

// Appends `tokens` to a completions logprobs object {"tokens", "token_logprobs", "top_logprobs",
// "text_offset"} (created when null). `text_offset` is the completion text's length so far and
// advances by each token's text.
void AppendCompletionLogprobs(std::span<const SampledToken> tokens, const TokenTextFn& text,
                              int64_t* text_offset, Json* logprobs);
// Appends `tokens` to a chat logprobs object {"content": [{"token", "logprob", "bytes",
// "top_logprobs"}]} (created when null).
void AppendChatLogprobs(std::span<const SampledToken> tokens, const TokenTextFn& text,
                        Json* logprobs);

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_RUNTIME_SERVING_OPENAI_RESPONSE_H_
