// Chat messages as clients send them (OpenAI's chat-completions schema), checked and put into the
// shape chat templates expect before any template sees them.
//
// Templates are written for well-formed messages: given a message without a role they silently
// skip it, given content that is not a string they fail deep inside with errors such as
// "'startswith' is not callable". Every entry point that takes messages from outside (generate
// --chat, tokenize, /v1/chat/completions) calls PrepareChatMessages first, so the user gets an
// error naming the message and the field instead.
//
// The schema (OpenAI's, relaxed only where Hugging Face's chat-template convention differs):
//   messages      a non-empty array of objects
//   role          required: "system", "developer", "user", "assistant" or "tool"
//   content       a string, or a non-empty array of content parts; null or absent only for an
//                 assistant message that has tool_calls
//   content part  {"type": "text", "text": string}; assistant messages may also hold
//                 {"type": "refusal", "refusal": string}. Image, audio and file parts are
//                 refused (the models served here take text only).
//   name          optional string
//   tool_calls    assistant only: a non-empty array of {"id"?: string, "type"?: "function",
//                 "function": {"name": non-empty string, "arguments": string or object}} (id and
//                 type are optional and arguments may be an object, as in Hugging Face's
//                 examples)
//   tool_call_id  tool only: optional string (Hugging Face templates do not need it)
// Other keys (reasoning_content, ...) pass through unchecked for templates that use them.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_CHAT_MESSAGES_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_CHAT_MESSAGES_H_

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace sparkstack::tokenizer {

// Deepest nesting of arrays and objects accepted in chat input: real requests nest a few levels
// (tool schemas perhaps twenty), and copying or printing a parsed value recurses per level.
inline constexpr int kMaxChatJsonDepth = 128;

// InvalidArgument if `text` (JSON, not yet parsed) nests arrays and objects deeper than
// `max_depth`, naming the byte offset. A linear scan that does not validate the JSON otherwise;
// call it before parsing untrusted text. Thread-safe.
absl::Status CheckJsonNesting(std::string_view text, int max_depth = kMaxChatJsonDepth);

// OK if `messages` follows the schema above; otherwise InvalidArgument naming the message index
// and field, e.g. "messages[2].content: expected a string or an array of content parts, found
// number 5" or "messages[0].role: 'robot' is not a chat role (system, developer, user, assistant,
// tool)". Thread-safe.
absl::Status ValidateChatMessages(const nlohmann::ordered_json& messages);

// Validates, then returns a copy shaped for chat templates: content given as an array of parts
// becomes one string (the parts' text joined with "\n", as vLLM does for text-only models), and
// tool call arguments given as a JSON string (OpenAI's form) become the object it encodes (what
// Hugging Face templates pass to `tojson`; an empty string becomes {}). Errors: as
// ValidateChatMessages; InvalidArgument naming the field when arguments is a string that is not
// JSON. Key order is kept. Thread-safe.
absl::StatusOr<nlohmann::ordered_json> PrepareChatMessages(const nlohmann::ordered_json& messages);

}  // namespace sparkstack::tokenizer

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_CHAT_MESSAGES_H_
