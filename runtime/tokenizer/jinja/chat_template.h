// Chat templates: the Jinja templates Hugging Face ships in tokenizer_config.json
// ("chat_template"), rendered in C++ with no Python.
//
// The supported language is the subset real chat templates use: {{ }}, {% %}, {# #}, whitespace
// control with '-' (and Hugging Face's trim_blocks/lstrip_blocks), if/elif/else, for loops with
// `loop.*`, `if` filters and `else`, set (also block set and namespace attributes), macro and
// call blocks, filter blocks, namespace(), the common filters and tests, Python string/dict/list
// methods (startswith, split, strip, items, get, append, ...), slicing, raise_exception() and
// strftime_now(). Rendering is matched byte for byte against @huggingface/jinja, including its
// output conventions where Python Jinja differs: none/undefined print as "", booleans as
// "true"/"false", lists and dicts as JSON, integral JSON numbers are integers, a string plus a
// number concatenates, macros see their caller's variables.
//
// Where @huggingface/jinja departs from Jinja itself we follow Jinja (Python), the semantics the
// templates were written for: str.strip/lstrip/rstrip honour their `chars` argument (the
// reference strips all white space), % and // floor like Python, capitalize/title lower-case the
// rest of each word, string length and indexing count code points, == compares lists and dicts
// by value, tojson(sort_keys=true) sorts by code point, and filters the reference lacks (sum,
// min, max, reject, select, format, batch, ...) and {% raw %} exist. Undefined values print as
// "" and iterate as empty; attribute access on undefined or none yields undefined rather than an
// error; arithmetic on undefined is an error.
//
// Example:
//   SPARKSTACK_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::Parse(config["chat_template"]));
//   SPARKSTACK_ASSIGN_OR_RETURN(std::string prompt,
//       RenderChat(t, messages, /*add_generation_prompt=*/true, "<s>", "</s>"));
//
// Thread safety: a parsed ChatTemplate is immutable; Render may be called from many threads at
// once. Copies share the parsed tree.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_JINJA_CHAT_TEMPLATE_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_JINJA_CHAT_TEMPLATE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace sparkstack {

class ChatTemplate {
 public:
  // Parses `source`. Syntax errors are InvalidArgument: "chat template syntax error at line L,
  // column C: <what>".
  static absl::StatusOr<ChatTemplate> Parse(std::string source);

  // Renders with the top-level variables of `context` (a JSON object). Errors are
  // InvalidArgument with the line and column of the failing construct:
  //   "chat template raised an exception at line L, column C: <message>" for raise_exception(),
  //   "chat template render error at line L, column C: <what>" otherwise.
  // Renders are bounded (recursion depth, loop iterations, output size) and fail cleanly past
  // those bounds. Use the ordered_json overload when object key order matters: `tojson` writes
  // keys in the order it sees them, and nlohmann::json sorts keys alphabetically.
  absl::StatusOr<std::string> Render(const nlohmann::json& context) const;
  absl::StatusOr<std::string> Render(const nlohmann::ordered_json& context) const;

  const std::string& source() const { return *source_; }

 private:
  friend absl::StatusOr<std::string> RenderChat(const ChatTemplate&, const nlohmann::json&, bool,
                                                const std::string&, const std::string&,
                                                const nlohmann::json&);
  friend absl::StatusOr<std::string> RenderChat(const ChatTemplate&, const nlohmann::ordered_json&,
                                                bool, const std::string&, const std::string&,
                                                const nlohmann::ordered_json&);
  struct Parsed;
  std::shared_ptr<const std::string> source_;
  std::shared_ptr<const Parsed> parsed_;
};

// Renders a chat: sets `messages`, `add_generation_prompt`, `bos_token`, `eos_token`, then every
// key of `extra` (an object or null: e.g. "tools", "enable_thinking", "date_string"), which may
// override the former.
absl::StatusOr<std::string> RenderChat(const ChatTemplate& chat_template,
                                       const nlohmann::json& messages, bool add_generation_prompt,
                                       const std::string& bos_token, const std::string& eos_token,
                                       const nlohmann::json& extra = {});
absl::StatusOr<std::string> RenderChat(const ChatTemplate& chat_template,
                                       const nlohmann::ordered_json& messages,
                                       bool add_generation_prompt, const std::string& bos_token,
                                       const std::string& eos_token,
                                       const nlohmann::ordered_json& extra = {});

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_JINJA_CHAT_TEMPLATE_H_
