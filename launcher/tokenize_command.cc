// `sparkstack tokenize --model DIR`: JSON lines in, JSON lines out.
//
//   {"text": "..."}                      -> {"ids": [...], "text": "..."}
//   {"messages": [...]}                  -> chat template rendered, then encoded as above
//   with --decode: {"ids": [...]}        -> {"text": "..."}
//
// Per-line overrides: "add_special_tokens", "parse_special_tokens" (encode), "skip_special_tokens"
// (decode), "add_generation_prompt", "tools", "chat_template_kwargs" (messages). A bad line
// produces {"error": "...", "line": N} and processing continues; the exit code is 1 if any line
// failed.
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "launcher/command_registry.h"
#include "nlohmann/json.hpp"
#include "runtime/core/read_file.h"
#include "runtime/core/status_macros.h"
#include "runtime/tokenizer/chat_messages.h"
#include "runtime/tokenizer/tokenizer.h"

namespace sparkstack::launcher {
namespace {

// Ordered, so that a template's `tojson` sees message keys in the order the user wrote them.
using json = nlohmann::ordered_json;
using tokenizer::Tokenizer;

struct TokenizeOptions {
  std::string model_dir;
  bool decode = false;
  bool add_special_tokens = true;
  bool skip_special_tokens = false;
  bool add_generation_prompt = true;
  bool parse_special_tokens = true;
};

absl::StatusOr<bool> LineBool(const json& line, const char* key, bool fallback) {
  auto it = line.find(key);
  if (it == line.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return absl::InvalidArgumentError(absl::StrCat("\"", key, "\" must be true or false"));
  return it->get<bool>();
}

// Renders {"messages": [...]} with the model's chat template. Optional line keys:
// "add_generation_prompt" (default from --add-generation-prompt), "tools", and
// "chat_template_kwargs" (an object of extra template variables, e.g. enable_thinking).
absl::StatusOr<std::string> RenderMessages(const Tokenizer& tok, const json& line,
                                           const TokenizeOptions& options) {
  SPARKSTACK_ASSIGN_OR_RETURN(bool add_generation_prompt,
                              LineBool(line, "add_generation_prompt", options.add_generation_prompt));
  json extra = json::object();
  if (auto it = line.find("chat_template_kwargs"); it != line.end() && !it->is_null()) {
    if (!it->is_object()) {
      return absl::InvalidArgumentError("\"chat_template_kwargs\" must be an object");
    }
    extra = *it;
  }
  if (auto it = line.find("tools"); it != line.end()) extra["tools"] = *it;
  SPARKSTACK_ASSIGN_OR_RETURN(json messages, tokenizer::PrepareChatMessages(line["messages"]));
  return tok.ApplyChatTemplate(messages, add_generation_prompt, extra);
}

absl::StatusOr<json> ProcessLine(const Tokenizer& tok, const std::string& text,
                                 const TokenizeOptions& options) {
  SPARKSTACK_RETURN_IF_ERROR(tokenizer::CheckJsonNesting(text));
  json line = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (line.is_discarded()) return absl::InvalidArgumentError("line is not valid JSON");
  if (!line.is_object()) return absl::InvalidArgumentError("line must be a JSON object");
  if (options.decode) {
    auto ids_it = line.find("ids");
    if (ids_it == line.end() || !ids_it->is_array()) {
      return absl::InvalidArgumentError("--decode expects {\"ids\": [integers]}");
    }
    std::vector<int32_t> ids;
    for (const json& id : *ids_it) {
      if (!id.is_number_integer()) {
        return absl::InvalidArgumentError(absl::StrCat("\"ids\" must hold integers, found ", id.dump()));
      }
      if ((id.is_number_unsigned() && id.get<uint64_t>() > INT32_MAX) ||
          (!id.is_number_unsigned() && (id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "\"ids\": ", id.dump(), " is out of range (token ids are 0 to ", INT32_MAX, ")"));
      }
      ids.push_back(id.get<int32_t>());
    }
    SPARKSTACK_ASSIGN_OR_RETURN(bool skip, LineBool(line, "skip_special_tokens", options.skip_special_tokens));
    SPARKSTACK_ASSIGN_OR_RETURN(std::string decoded, tok.Decode(ids, skip));
    return json{{"text", decoded}};
  }
  std::string input;
  bool add_special_default = options.add_special_tokens;
  if (auto it = line.find("text"); it != line.end()) {
    if (!it->is_string()) return absl::InvalidArgumentError("\"text\" must be a string");
    input = it->get<std::string>();
  } else if (line.contains("messages")) {
    SPARKSTACK_ASSIGN_OR_RETURN(input, RenderMessages(tok, line, options));
    // The rendered prompt already holds the template's BOS; like transformers'
    // apply_chat_template, do not add special tokens again unless the line asks for it.
    add_special_default = false;
  } else {
    return absl::InvalidArgumentError("expected {\"text\": ...} or {\"messages\": [...]}");
  }
  SPARKSTACK_ASSIGN_OR_RETURN(bool add_special, LineBool(line, "add_special_tokens", add_special_default));
  SPARKSTACK_ASSIGN_OR_RETURN(bool parse_special, LineBool(line, "parse_special_tokens",
                                                           options.parse_special_tokens));
  SPARKSTACK_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok.Encode(input, add_special, parse_special));
  return json{{"ids", ids}, {"text", input}};
}

// Longest input line accepted. Lines are read with this bound so that input without newlines
// (a binary file, /dev/zero) ends in an error instead of growing one string without limit.
constexpr size_t kMaxLineBytes = size_t{64} << 20;

enum class LineRead { kLine, kEnd, kTooLong };

// One line without its '\n', at most kMaxLineBytes.
LineRead ReadBoundedLine(std::istream& in, std::string& line) {
  line.clear();
  std::streambuf* buffer = in.rdbuf();
  bool any = false;
  for (int c = buffer->sbumpc(); c != std::char_traits<char>::eof(); c = buffer->sbumpc()) {
    any = true;
    if (c == '\n') return LineRead::kLine;
    if (line.size() == kMaxLineBytes) return LineRead::kTooLong;
    line.push_back(static_cast<char>(c));
  }
  return any ? LineRead::kLine : LineRead::kEnd;
}

absl::Status RunTokenize(const TokenizeOptions& options) {
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::Load(options.model_dir));
  std::ios::sync_with_stdio(false);
  std::string text;
  size_t line_number = 0, failures = 0;
  for (LineRead read; (read = ReadBoundedLine(std::cin, text)) != LineRead::kEnd;) {
    ++line_number;
    if (read == LineRead::kTooLong) {
      // Not line-structured input: stop rather than scan on for a newline that may never come.
      ++failures;
      json error{{"error", absl::StrCat("line is longer than ", HumanBytes(kMaxLineBytes),
                                        "; stopping")},
                 {"line", line_number}};
      std::cout << error.dump() << "\n";
      break;
    }
    if (text.empty() || text == "\r") continue;
    auto result = ProcessLine(*tok, text, options);
    if (result.ok()) {
      std::cout << result->dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    } else {
      ++failures;
      json error{{"error", std::string(result.status().message())}, {"line", line_number}};
      std::cout << error.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    }
  }
  std::cout.flush();
  if (failures > 0) {
    return absl::InvalidArgumentError(absl::StrCat(failures, " of ", line_number, " lines failed"));
  }
  return absl::OkStatus();
}

void SetupTokenizeCommand(CLI::App& root) {
  auto options = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = root.add_subcommand(
      "tokenize", "Encode JSON lines {\"text\"|\"messages\"} (or decode {\"ids\"}) from stdin");
  cmd->add_option("--model", options->model_dir,
                  "model directory holding tokenizer.json (and tokenizer_config.json)")
      ->required();
  cmd->add_flag("--decode", options->decode, "read {\"ids\": [...]} and write {\"text\": ...}");
  cmd->add_option("--add-special-tokens", options->add_special_tokens,
                  "apply the post-processor (BOS/EOS) when encoding (default true)");
  cmd->add_option("--skip-special-tokens", options->skip_special_tokens,
                  "drop special tokens when decoding (default false)");
  cmd->add_option("--parse-special-tokens", options->parse_special_tokens,
                  "recognize special tokens written in {\"text\"} (default true; false encodes "
                  "them as plain text)");
  cmd->add_option("--add-generation-prompt", options->add_generation_prompt,
                  "for {\"messages\"}: end with the assistant prompt (default true)");
  cmd->callback([options] { FinishCommand(RunTokenize(*options)); });
}

}  // namespace

SPARKSTACK_REGISTER_COMMAND(SetupTokenizeCommand);

}  // namespace sparkstack::launcher
