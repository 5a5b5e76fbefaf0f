#include "launcher/prompt_input.h"

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status_macros.h"
#include "runtime/tokenizer/jinja/chat_template.h"

namespace sparkstack::launcher {
namespace {

absl::StatusOr<std::vector<int32_t>> ParseIds(const std::string& text) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(part, &id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--prompt-ids: '", part, "' is not an integer token id"));
    }
    ids.push_back(id);
  }
  if (ids.empty()) return absl::InvalidArgumentError("--prompt-ids is empty");
  return ids;
}

// The messages of a chat file, in file order (tojson in templates keeps key order).
absl::StatusOr<nlohmann::ordered_json> ReadMessages(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--chat: cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  auto json = nlohmann::ordered_json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, " is not JSON"));
  if (json.is_object() && json.contains("messages")) json = json["messages"];
  if (!json.is_array() || json.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": expected a non-empty array of messages or {\"messages\": [...]}"));
  }
  for (const auto& message : json) {
    if (!message.is_object() || !message.contains("role") || !message["role"].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": every message needs a \"role\" string"));
    }
  }
  return json;
}

}  // namespace

absl::StatusOr<PromptInput> BuildPrompt(const std::string& model_dir, const PromptFlags& flags) {
  const int given = !flags.ids.empty() + !flags.text.empty() + !flags.chat_file.empty();
  std::vector<int32_t> ids;
  if (given != 1) {
    return absl::InvalidArgumentError("give exactly one of --prompt-ids, --prompt and --chat");
  }
  PromptInput input;
  if (!flags.ids.empty()) {
    for (const std::string& text : flags.ids) {
      SPARKSTACK_ASSIGN_OR_RETURN(ids, ParseIds(text));
      input.sequences.push_back(std::move(ids));
    }
    return input;
  }
  SPARKSTACK_ASSIGN_OR_RETURN(input.tokenizer, tokenizer::Tokenizer::Load(model_dir));
  const tokenizer::Tokenizer& tok = *input.tokenizer;
  if (!flags.text.empty()) {
    SPARKSTACK_ASSIGN_OR_RETURN(ids, tok.Encode(flags.text, /*add_special_tokens=*/true));
  } else {
    if (tok.chat_template().empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("--chat: ", model_dir, "/tokenizer_config.json has no chat_template"));
    }
    SPARKSTACK_ASSIGN_OR_RETURN(nlohmann::ordered_json messages, ReadMessages(flags.chat_file));
    SPARKSTACK_ASSIGN_OR_RETURN(ChatTemplate chat_template, ChatTemplate::Parse(tok.chat_template()));
    SPARKSTACK_ASSIGN_OR_RETURN(
        std::string rendered,
        RenderChat(chat_template, messages, /*add_generation_prompt=*/true, tok.bos_token(),
                   tok.eos_token(), nlohmann::ordered_json::object()));
    // As transformers' apply_chat_template: the template already wrote BOS and friends.
    SPARKSTACK_ASSIGN_OR_RETURN(ids, tok.Encode(rendered, /*add_special_tokens=*/false));
  }
  if (ids.empty()) return absl::InvalidArgumentError("the prompt encodes to no tokens");
  input.sequences.push_back(std::move(ids));
  return input;
}

}  // namespace sparkstack::launcher
