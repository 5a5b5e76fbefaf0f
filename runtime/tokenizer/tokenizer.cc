#include "runtime/tokenizer/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/core/read_file.h"
#include "runtime/core/status_macros.h"
#include "runtime/tokenizer/bpe_model.h"
#include "runtime/tokenizer/jinja/chat_template.h"
#include "runtime/tokenizer/decoder.h"
#include "runtime/tokenizer/json_util.h"
#include "runtime/tokenizer/normalizer.h"
#include "runtime/tokenizer/pre_tokenizer.h"
#include "runtime/tokenizer/utf8.h"

namespace sparkstack::tokenizer {
namespace {

// Bounded: a FIFO, device or directory is refused, and so is a file too large to hold.
absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path) {
  return ReadRegularFile(path.string(), kMaxTokenizerFileBytes, "tokenizer file",
                         kJsonDomBytesPerTextByte);
}

absl::StatusOr<Json> ParseJson(std::string_view text, std::string_view name) {
  Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(name), ": not valid JSON"));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(name), ": expected a JSON object at the top level"));
  }
  return json;
}

// Special tokens in tokenizer_config.json are either strings or {"content": ...} objects.
absl::StatusOr<std::string> ConfigTokenContent(const Json& config, std::string_view name,
                                               std::string_view key) {
  auto it = config.find(std::string(key));
  if (it == config.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return FieldError(FieldPath(name, key), "a string or {\"content\": string}", &*it);
}

// Post-processors only matter for ids through the tokens they add around a single sequence.
absl::Status ParsePostProcessor(const Json& json, std::string_view where,
                                std::vector<int32_t>* prefix, std::vector<int32_t>* suffix) {
  if (json.is_null()) return absl::OkStatus();
  SPARKSTACK_ASSIGN_OR_RETURN(std::string type, ComponentType(json, where));
  if (type == "ByteLevel") return absl::OkStatus();  // only adjusts offsets
  if (type == "Sequence") {
    SPARKSTACK_ASSIGN_OR_RETURN(const Json* list, RequiredField(json, where, "processors"));
    const std::string list_path = FieldPath(where, "processors");
    if (!list->is_array()) return FieldError(list_path, "an array", list);
    for (size_t i = 0; i < list->size(); ++i) {
      SPARKSTACK_RETURN_IF_ERROR(
          ParsePostProcessor((*list)[i], absl::StrCat(list_path, "[", i, "]"), prefix, suffix));
    }
    return absl::OkStatus();
  }
  if (type != "TemplateProcessing") {
    return absl::UnimplementedError(absl::StrCat(FieldPath(where, "type"), ": post-processor '",
                                                 type, "' is not supported"));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(const Json* single, RequiredField(json, where, "single"));
  SPARKSTACK_ASSIGN_OR_RETURN(const Json* specials, RequiredField(json, where, "special_tokens"));
  const std::string single_path = FieldPath(where, "single");
  const std::string specials_path = FieldPath(where, "special_tokens");
  if (!single->is_array()) return FieldError(single_path, "an array", single);
  if (!specials->is_object()) return FieldError(specials_path, "an object", specials);
  std::vector<int32_t> before, after;
  bool seen_sequence = false;
  for (size_t i = 0; i < single->size(); ++i) {
    const Json& item = (*single)[i];
    const std::string item_path = absl::StrCat(single_path, "[", i, "]");
    if (item.is_object() && item.contains("Sequence")) {
      seen_sequence = true;
      continue;
    }
    if (!item.is_object() || !item.contains("SpecialToken")) {
      return FieldError(item_path, "{\"SpecialToken\": ...} or {\"Sequence\": ...}", &item);
    }
    SPARKSTACK_ASSIGN_OR_RETURN(std::string name,
                                RequiredString(item["SpecialToken"], item_path + ".SpecialToken", "id"));
    auto special = specials->find(name);
    if (special == specials->end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          item_path, ": special token '", name, "' is not defined in ", specials_path));
    }
    const std::string special_path = FieldPath(specials_path, name);
    SPARKSTACK_ASSIGN_OR_RETURN(const Json* ids, RequiredField(*special, special_path, "ids"));
    if (!ids->is_array()) return FieldError(special_path + ".ids", "an array of ids", ids);
    for (const Json& id : *ids) {
      if (!id.is_number_integer()) return FieldError(special_path + ".ids", "integer ids", &id);
      (seen_sequence ? after : before).push_back(id.get<int32_t>());
    }
  }
  // Composition: a later processor wraps what the earlier ones produced.
  prefix->insert(prefix->begin(), before.begin(), before.end());
  suffix->insert(suffix->end(), after.begin(), after.end());
  return absl::OkStatus();
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& model_dir) {
  const std::filesystem::path dir(model_dir);
  const std::filesystem::path tokenizer_path = dir / "tokenizer.json";
  std::error_code ec;
  if (!std::filesystem::exists(tokenizer_path, ec)) {
    return absl::NotFoundError(absl::StrCat("tokenizer file not found: ", tokenizer_path.string(),
                                            " (expected a Hugging Face tokenizer.json)"));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(std::string tokenizer_json, ReadFile(tokenizer_path));
  std::string config_json;
  if (std::filesystem::exists(dir / "tokenizer_config.json", ec)) {
    SPARKSTACK_ASSIGN_OR_RETURN(config_json, ReadFile(dir / "tokenizer_config.json"));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                              FromJson(tokenizer_json, config_json, tokenizer_path.string()));
  // generation_config.json may list more end-of-sequence ids (e.g. Llama 3's <|eom_id|>).
  const std::filesystem::path generation_path = dir / "generation_config.json";
  if (std::filesystem::exists(generation_path, ec)) {
    SPARKSTACK_ASSIGN_OR_RETURN(std::string text, ReadFile(generation_path));
    SPARKSTACK_ASSIGN_OR_RETURN(Json generation, ParseJson(text, generation_path.string()));
    auto it = generation.find("eos_token_id");
    if (it != generation.end() && !it->is_null()) {
      std::vector<Json> values = it->is_array() ? it->get<std::vector<Json>>() : std::vector<Json>{*it};
      for (const Json& v : values) {
        if (!v.is_number_integer()) {
          return FieldError(generation_path.string() + ": eos_token_id", "integer ids", &*it);
        }
        const auto id = v.get<int32_t>();
        if (std::find(tokenizer->eos_ids_.begin(), tokenizer->eos_ids_.end(), id) ==
            tokenizer->eos_ids_.end()) {
          tokenizer->eos_ids_.push_back(id);
        }
      }
    }
  }
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view tokenizer_json,
                                                               std::string_view config_json,
                                                               std::string_view name) {
  const std::string file(name);
  SPARKSTACK_ASSIGN_OR_RETURN(Json json, ParseJson(tokenizer_json, file));
  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  static const Json kNull;
  auto field = [&](const char* key) -> const Json& {
    auto it = json.find(key);
    return it == json.end() ? kNull : *it;
  };

  SPARKSTACK_ASSIGN_OR_RETURN(tok->normalizer_,
                              NormalizerFromJson(field("normalizer"), file + ": normalizer"));
  PreTokenizerInfo info;
  SPARKSTACK_ASSIGN_OR_RETURN(
      tok->pre_tokenizer_,
      PreTokenizerFromJson(field("pre_tokenizer"), file + ": pre_tokenizer", &info));
  if (field("model").is_null()) return FieldError(file + ": model", "an object", nullptr);
  SPARKSTACK_ASSIGN_OR_RETURN(tok->model_,
                              BpeModel::FromJson(field("model"), file + ": model", info.byte_level));
  SPARKSTACK_ASSIGN_OR_RETURN(tok->decoder_, DecoderFromJson(field("decoder"), file + ": decoder"));
  SPARKSTACK_RETURN_IF_ERROR(ParsePostProcessor(field("post_processor"), file + ": post_processor",
                                                &tok->prefix_ids_, &tok->suffix_ids_));
  tok->vocab_size_ = tok->model_->vocab_size();

  // Added tokens.
  const Json& added = field("added_tokens");
  const std::string added_path = file + ": added_tokens";
  if (!added.is_null() && !added.is_array()) return FieldError(added_path, "an array", &added);
  for (size_t i = 0; !added.is_null() && i < added.size(); ++i) {
    const Json& item = added[i];
    const std::string where = absl::StrCat(added_path, "[", i, "]");
    AddedToken token;
    SPARKSTACK_ASSIGN_OR_RETURN(int64_t id, OptionalInt(item, where, "id", -1));
    if (id < 0 || id >= (int64_t{1} << 24)) {
      return FieldError(FieldPath(where, "id"), "a non-negative id", item.is_object() && item.contains("id") ? &item["id"] : nullptr);
    }
    token.id = static_cast<int32_t>(id);
    SPARKSTACK_ASSIGN_OR_RETURN(token.content, RequiredString(item, where, "content"));
    if (token.content.empty()) return FieldError(FieldPath(where, "content"), "a non-empty string", &item);
    SPARKSTACK_RETURN_IF_ERROR(ValidateUtf8(token.content));
    SPARKSTACK_ASSIGN_OR_RETURN(token.single_word, OptionalBool(item, where, "single_word", false));
    SPARKSTACK_ASSIGN_OR_RETURN(token.lstrip, OptionalBool(item, where, "lstrip", false));
    SPARKSTACK_ASSIGN_OR_RETURN(token.rstrip, OptionalBool(item, where, "rstrip", false));
    SPARKSTACK_ASSIGN_OR_RETURN(token.special, OptionalBool(item, where, "special", false));
    SPARKSTACK_ASSIGN_OR_RETURN(token.normalized,
                                OptionalBool(item, where, "normalized", !token.special));
    if (token.normalized && tok->normalizer_ != nullptr) {
      std::string pattern = token.content;
      tok->normalizer_->Normalize(&pattern);
      tok->normalized_added_.Add(pattern, token);
    } else if (token.normalized) {
      tok->normalized_added_.Add(token.content, token);
    } else {
      tok->raw_added_.Add(token.content, token);
    }
    tok->vocab_size_ = std::max(tok->vocab_size_, token.id + 1);
    tok->added_by_content_[token.content] = token.id;
    tok->added_by_id_[token.id] = std::move(token);
  }

  // tokenizer_config.json: BOS/EOS, add_bos_token/add_eos_token, chat template.
  if (!config_json.empty()) {
    const std::string config_name = "tokenizer_config.json";
    SPARKSTACK_ASSIGN_OR_RETURN(Json config, ParseJson(config_json, config_name));
    SPARKSTACK_ASSIGN_OR_RETURN(tok->bos_token_, ConfigTokenContent(config, config_name, "bos_token"));
    SPARKSTACK_ASSIGN_OR_RETURN(tok->eos_token_, ConfigTokenContent(config, config_name, "eos_token"));
    if (!tok->bos_token_.empty()) {
      tok->bos_id_ = tok->TokenToId(tok->bos_token_);
      if (!tok->bos_id_) {
        return absl::InvalidArgumentError(absl::StrCat(config_name, ": bos_token '",
                                                       tok->bos_token_, "' is not in the vocabulary"));
      }
    }
    if (!tok->eos_token_.empty()) {
      auto eos = tok->TokenToId(tok->eos_token_);
      if (!eos) {
        return absl::InvalidArgumentError(absl::StrCat(config_name, ": eos_token '",
                                                       tok->eos_token_, "' is not in the vocabulary"));
      }
      tok->eos_ids_.push_back(*eos);
    }
    // transformers' Llama-family fast tokenizers rebuild the post-processor from these flags.
    SPARKSTACK_ASSIGN_OR_RETURN(std::string tokenizer_class,
                                OptionalString(config, config_name, "tokenizer_class", ""));
    const bool llama_family = tokenizer_class == "LlamaTokenizerFast" ||
                              tokenizer_class == "LlamaTokenizer" ||
                              tokenizer_class == "CodeLlamaTokenizerFast" ||
                              tokenizer_class == "GemmaTokenizerFast";
    if (llama_family && (config.contains("add_bos_token") || config.contains("add_eos_token"))) {
      SPARKSTACK_ASSIGN_OR_RETURN(bool add_bos, OptionalBool(config, config_name, "add_bos_token", true));
      SPARKSTACK_ASSIGN_OR_RETURN(bool add_eos, OptionalBool(config, config_name, "add_eos_token", false));
      tok->prefix_ids_.clear();
      tok->suffix_ids_.clear();
      if (add_bos && tok->bos_id_) tok->prefix_ids_.push_back(*tok->bos_id_);
      if (add_eos && !tok->eos_ids_.empty()) tok->suffix_ids_.push_back(tok->eos_ids_.front());
    }
    auto tmpl = config.find("chat_template");
    if (tmpl != config.end() && tmpl->is_string()) {
      tok->chat_template_ = tmpl->get<std::string>();
    } else if (tmpl != config.end() && tmpl->is_array()) {
      for (const Json& entry : *tmpl) {
        if (entry.is_object() && entry.value("name", "") == "default" &&
            entry.contains("template") && entry["template"].is_string()) {
          tok->chat_template_ = entry["template"].get<std::string>();
        }
      }
    } else if (tmpl != config.end() && !tmpl->is_null()) {
      return FieldError(config_name + ": chat_template", "a string or a list of named templates",
                        &*tmpl);
    }
  }
  if (!tok->chat_template_.empty()) {
    auto parsed = ChatTemplate::Parse(tok->chat_template_);
    if (parsed.ok()) {
      tok->parsed_template_ = std::make_shared<const ChatTemplate>(std::move(*parsed));
    } else {
      tok->template_status_ = absl::InvalidArgumentError(
          absl::StrCat("tokenizer_config.json: chat_template: ", parsed.status().message()));
    }
  }
  for (int32_t id : tok->prefix_ids_) {
    if (id < 0 || id >= tok->vocab_size_) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": post_processor adds id ", id,
                                                     " outside the vocabulary"));
    }
  }
  return tok;
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (auto it = added_by_content_.find(absl::string_view(token.data(), token.size()));
      it != added_by_content_.end()) {
    return it->second;
  }
  return model_->TokenToId(token);
}

std::optional<std::string> Tokenizer::IdToToken(int32_t id) const {
  if (auto it = added_by_id_.find(id); it != added_by_id_.end()) return it->second.content;
  if (const std::string* token = model_->IdToToken(id)) return *token;
  return std::nullopt;
}

absl::StatusOr<std::string> Tokenizer::ApplyChatTemplate(const nlohmann::ordered_json& messages,
                                                         bool add_generation_prompt,
                                                         const nlohmann::ordered_json& extra) const {
  if (chat_template_.empty()) {
    return absl::FailedPreconditionError("tokenizer_config.json has no chat_template");
  }
  SPARKSTACK_RETURN_IF_ERROR(template_status_);
  if (!messages.is_array()) {
    return absl::InvalidArgumentError("chat messages must be a JSON array");
  }
  return RenderChat(*parsed_template_, messages, add_generation_prompt, bos_token_, eos_token_,
                    extra);
}

bool Tokenizer::IsSpecial(int32_t id) const {
  auto it = added_by_id_.find(id);
  return it != added_by_id_.end() && it->second.special;
}

void Tokenizer::EncodeNormalized(std::string text, bool at_origin, std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  if (pre_tokenizer_ == nullptr) {
    model_->EncodeWord(text, ids);
    return;
  }
  PieceList list;
  list.text = std::move(text);
  list.pieces.push_back({0, static_cast<uint32_t>(list.text.size())});
  list.at_origin = at_origin;
  pre_tokenizer_->PreTokenize(&list);
  const std::string_view view = list.text;
  for (const ByteRange& piece : list.pieces) {
    model_->EncodeWord(view.substr(piece.begin, piece.end - piece.begin), ids);
  }
}

void Tokenizer::EncodeSegment(std::string_view text, bool at_origin, bool parse_special,
                              std::vector<int32_t>* ids) const {
  std::string normalized(text);
  if (normalizer_ != nullptr) normalizer_->Normalize(&normalized);
  if (normalized_added_.empty()) {
    EncodeNormalized(std::move(normalized), at_origin, ids);
    return;
  }
  std::vector<TextSegment> segments;
  normalized_added_.Split(normalized, !parse_special, &segments);
  for (const TextSegment& s : segments) {
    if (s.token_id >= 0) {
      ids->push_back(s.token_id);
    } else {
      EncodeNormalized(normalized.substr(s.begin, s.end - s.begin), at_origin && s.begin == 0, ids);
    }
  }
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                                       bool add_special_tokens,
                                                       bool parse_special_tokens) const {
  SPARKSTACK_RETURN_IF_ERROR(ValidateUtf8(text));
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids = prefix_ids_;
  if (raw_added_.empty()) {
    EncodeSegment(text, true, parse_special_tokens, &ids);
  } else {
    std::vector<TextSegment> segments;
    raw_added_.Split(text, !parse_special_tokens, &segments);
    for (const TextSegment& s : segments) {
      if (s.token_id >= 0) {
        ids.push_back(s.token_id);
      } else {
        EncodeSegment(text.substr(s.begin, s.end - s.begin), s.begin == 0, parse_special_tokens,
                      &ids);
      }
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
  return ids;
}

absl::StatusOr<std::string> Tokenizer::Decode(std::span<const int32_t> ids,
                                              bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (auto it = added_by_id_.find(id); it != added_by_id_.end()) {
      if (!(skip_special_tokens && it->second.special)) tokens.push_back(it->second.content);
      continue;
    }
    const std::string* token = model_->IdToToken(id);
    if (token == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("cannot decode id ", id, " at position ", i,
                                                     ": not in the vocabulary (size ",
                                                     vocab_size_, ")"));
    }
    tokens.push_back(*token);
  }
  if (decoder_ == nullptr) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out.push_back(' ');
      out += tokens[i];
    }
    return out;
  }
  decoder_->DecodeChain(&tokens);
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

}  // namespace sparkstack::tokenizer
