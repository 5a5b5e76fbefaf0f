// The protocol-neutral form of one generation request, as both frontends (OpenAI HTTP, gRPC)
// parse it: a prompt (text, token ids or chat messages) and the engine's parameters, with the
// fields whose default depends on the prompt or the server left optional. InferenceCore turns it
// into an engine Request.
#ifndef SPARKSTACK_RUNTIME_SERVING_GENERATE_SPEC_H_
#define SPARKSTACK_RUNTIME_SERVING_GENERATE_SPEC_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "runtime/engine/request.h"

namespace sparkstack::serving {

struct PromptSpec {
  enum class Kind { kText, kTokenIds, kChat };
  Kind kind = Kind::kText;
  std::string text;                // kText
  bool add_special_tokens = true;  // kText: the tokenizer's post-processor (BOS, ...)
  std::vector<int32_t> token_ids;  // kTokenIds
  // kChat: messages checked by ValidateChatMessages (an array of objects with "role" and string
  // "content"), rendered with the model's chat template.
  nlohmann::ordered_json messages;
  bool add_generation_prompt = true;
  nlohmann::ordered_json template_kwargs;  // an object, or null
};

struct GenerateSpec {
  PromptSpec prompt;
  SamplingParams sampling;            // seed is ignored when `seed` is unset
  std::optional<uint64_t> seed;       // unset: the server draws one
  StoppingParams stopping;            // max_tokens is ignored: see below
  std::optional<int64_t> max_tokens;  // unset: up to the context (and the server's limit)
  std::optional<bool> detokenize;     // unset: when the model has a tokenizer
  bool skip_special_tokens = true;
  std::chrono::steady_clock::time_point arrival = std::chrono::steady_clock::now();
};

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_RUNTIME_SERVING_GENERATE_SPEC_H_
