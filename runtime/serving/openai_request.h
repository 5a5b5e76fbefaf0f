// Parses the bodies of POST /v1/completions and /v1/chat/completions (OpenAI's API, with vLLM's
// extra sampling fields) into native structs. Pure functions: no engine, no I/O — the request
// parser that tests/fuzz/serving fuzzes.
//
// Accepted fields. Both: model, max_tokens, temperature, top_p, top_k (-1 or 0: no limit), min_p,
// n, stream, stream_options.include_usage, stop (a string or strings), seed, presence_penalty,
// frequency_penalty, repetition_penalty, min_tokens, ignore_eos, stop_token_ids,
// include_stop_str_in_output, skip_special_tokens, user (ignored). Completions: prompt (a string,
// strings, token ids, or lists of token ids), logprobs (0..20). Chat: messages,
// max_completion_tokens, logprobs (bool) with top_logprobs (0..20), chat_template_kwargs,
// add_generation_prompt, response_format {"type": "text"}. null means absent; other fields are
// ignored. Refused with InvalidArgument naming the field: wrong types, values out of range,
// echo, suffix, best_of != n, a non-empty logit_bias, tools, a response_format other than text.
#ifndef SPARKSTACK_RUNTIME_SERVING_OPENAI_REQUEST_H_
#define SPARKSTACK_RUNTIME_SERVING_OPENAI_REQUEST_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/serving/generate_spec.h"
#include "runtime/serving/serving_options.h"

namespace sparkstack::serving {

enum class OpenAiEndpoint { kCompletions, kChatCompletions };

struct OpenAiRequest {
  OpenAiEndpoint endpoint = OpenAiEndpoint::kCompletions;
  std::string model;  // "" when not sent
  // One per prompt (chat: exactly one). Each produces `n` choices, numbered prompt * n + i.
  std::vector<PromptSpec> prompts;
  // Parameters shared by every choice; choice i samples with seed + i when a seed is given.
  GenerateSpec params;
  int64_t n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // -1: no logprobs. Completions: `logprobs` (the top-n alternatives). Chat: `top_logprobs` when
  // `logprobs` is true.
  int logprobs = -1;
};

// `limits` bounds n, the number of prompts and stop strings. InvalidArgument names the field and
// what was expected ("temperature: expected a number, got a string").
absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(OpenAiEndpoint endpoint, absl::string_view body,
                                                 const ServingLimits& limits);

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_RUNTIME_SERVING_OPENAI_REQUEST_H_
