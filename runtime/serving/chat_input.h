// Checks OpenAI-style chat messages before they reach a chat template, and brings them to the
// form templates expect: an array of objects with a "role" string and a "content" string.
// INTERIM: the hardening engineer's runtime/tokenizer/chat_messages.{h,cc} replaces this file's
// checks when it lands; callers only use ValidateChatMessages.
#ifndef SPARKSTACK_RUNTIME_SERVING_CHAT_INPUT_H_
#define SPARKSTACK_RUNTIME_SERVING_CHAT_INPUT_H_

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace sparkstack::serving {

// `messages` must be a non-empty array (at most 4096 entries) of objects; each has "role" (a
// non-empty string of at most 64 bytes) and "content": a string, null (an assistant turn that
// only calls tools), or an array of {"type": "text", "text": "..."} parts, which are joined with
// "\n" as vLLM does for templates that take string content. Other keys (name, tool_calls,
// tool_call_id, reasoning_content) are passed through when they are strings, arrays or objects.
// Returns the normalized copy, or InvalidArgument naming the message index and the field
// ("messages[2].content: expected a string or an array of text parts").
absl::StatusOr<nlohmann::ordered_json> ValidateChatMessages(const nlohmann::ordered_json& messages);

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_RUNTIME_SERVING_CHAT_INPUT_H_
