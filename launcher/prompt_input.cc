#include "launcher/prompt_input.h"

#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "runtime/core/read_file.h"
#include "runtime/core/status_macros.h"
#include "runtime/tokenizer/chat_messages.h"
#include "runtime/tokenizer/jinja/chat_template.h"

namespace sparkstack::launcher {
namespace {

// "1, 2,3": decimal token ids separated by commas (spaces around them allowed). Strict: an empty
// item ("1,,2", "1,", ""), a sign, a non-integer or an id past int32 is an error naming the item.
absl::StatusOr<std::vector<int32_t>> ParseIds(const std::string& text) {
  std::vector<int32_t> ids;
  int position = 0;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    ++position;
    part = absl::StripAsciiWhitespace(part);
    auto error = [&](const std::string& what) {
      return absl::InvalidArgumentError(
          absl::StrCat("--prompt-ids '", text, "': item ", position, " ", what));
    };
    if (part.empty()) return error("is empty (write ids as 1,2,3)");
    if (part.find_first_not_of("0123456789") != absl::string_view::npos) {
      return error(absl::StrCat("'", part, "' is not a token id (a non-negative integer)"));
    }
    uint64_t id = 0;
    if (!absl::SimpleAtoi(part, &id) || id > static_cast<uint64_t>(INT32_MAX)) {
      return error(absl::StrCat("'", part, "' is out of range (token ids are 0 to ", INT32_MAX,
                                ")"));
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

// The messages of a chat file, in file order (tojson in templates keeps key order), checked
// against the chat message schema and shaped for the template (runtime/tokenizer/chat_messages.h).
absl::StatusOr<nlohmann::ordered_json> ReadMessages(const std::string& path) {
  SPARKSTACK_ASSIGN_OR_RETURN(
      std::string text, ReadRegularFile(path, kMaxChatFileBytes, "--chat file",
                                        kJsonDomBytesPerTextByte));
  if (absl::Status nesting = tokenizer::CheckJsonNesting(text); !nesting.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--chat file ", path, ": ", nesting.message()));
  }
  auto json = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat("--chat file ", path, " is not JSON"));
  }
  if (json.is_object() && json.contains("messages")) json = json["messages"];
  if (!json.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--chat file ", path, ": expected an array of messages or {\"messages\": [...]}"));
  }
  auto prepared = tokenizer::PrepareChatMessages(json);
  if (!prepared.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--chat file ", path, ": ", prepared.status().message()));
  }
  return *std::move(prepared);
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
