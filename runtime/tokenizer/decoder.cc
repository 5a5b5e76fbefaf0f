#include "runtime/tokenizer/decoder.h"

#include "absl/strings/str_cat.h"
#include "runtime/tokenizer/byte_level.h"
#include "runtime/tokenizer/split_regex.h"
#include "runtime/tokenizer/utf8.h"

namespace sparkstack::tokenizer {
namespace {

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

// Each token's characters are mapped back through the GPT-2 byte map (a token with a character
// outside the map contributes its UTF-8 as is); the bytes are joined and decoded lossily.
class ByteLevelDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens) const override {
    std::string bytes;
    for (const std::string& token : *tokens) {
      if (auto raw = VocabStringToBytes(token)) {
        bytes += *raw;
      } else {
        bytes += token;
      }
    }
    tokens->assign(1, Utf8Lossy(bytes));
  }
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(std::string literal, std::unique_ptr<SplitRegex> regex, std::string content)
      : literal_(std::move(literal)), regex_(std::move(regex)), content_(std::move(content)) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    std::vector<ByteRange> matches;
    for (std::string& token : *tokens) {
      matches.clear();
      if (regex_ != nullptr) {
        regex_->FindAll(token, 0, &matches);
      } else if (!literal_.empty()) {
        for (size_t p = token.find(literal_); p != std::string::npos;
             p = token.find(literal_, p + literal_.size())) {
          matches.push_back({static_cast<uint32_t>(p), static_cast<uint32_t>(p + literal_.size())});
        }
      }
      if (matches.empty()) continue;
      std::string out;
      uint32_t last = 0;
      for (const ByteRange& m : matches) {
        out.append(token, last, m.begin - last);
        out += content_;
        last = m.end;
      }
      out.append(token, last);
      token.swap(out);
    }
  }

 private:
  std::string literal_;
  std::unique_ptr<SplitRegex> regex_;
  std::string content_;
};

// "<0xXX>" tokens are gathered into bytes; a run that is not valid UTF-8 becomes one U+FFFD per
// byte.
class ByteFallbackDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (ValidateUtf8(pending).ok()) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending.size(); ++i) out.emplace_back(kReplacementChar);
      }
      pending.clear();
    };
    for (std::string& token : *tokens) {
      int byte = ParseByteToken(token);
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    tokens->swap(out);
  }

 private:
  static int ParseByteToken(std::string_view t) {
    if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
    int value = 0;
    for (char c : t.substr(3, 2)) {
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (c >= 'A' && c <= 'F') {
        d = c - 'A' + 10;
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else {
        return -1;
      }
      value = value * 16 + d;
    }
    return value;
  }
};

class FuseDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens) const override {
    std::string all;
    for (const std::string& t : *tokens) all += t;
    tokens->assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing characters equal to `content` from each token.
class StripDecoder : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (std::string& token : *tokens) {
      std::string_view view = token;
      for (size_t i = 0; i < start_ && view.substr(0, content_.size()) == content_; ++i) {
        view.remove_prefix(content_.size());
      }
      for (size_t i = 0; i < stop_ && view.size() >= content_.size() &&
                         view.substr(view.size() - content_.size()) == content_;
           ++i) {
        view.remove_suffix(content_.size());
      }
      token = std::string(view);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first)
      : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      std::string& token = (*tokens)[i];
      std::string out;
      size_t pos = 0;
      if (i == 0 && strip_first_ && token.compare(0, replacement_.size(), replacement_) == 0) {
        pos = replacement_.size();
      }
      while (pos < token.size()) {
        if (token.compare(pos, replacement_.size(), replacement_) == 0) {
          out.push_back(' ');
          pos += replacement_.size();
        } else {
          out.push_back(token[pos++]);
        }
      }
      token.swap(out);
    }
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (const auto& part : parts_) part->DecodeChain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Decoder>> DecoderFromJson(const Json& json, std::string_view where) {
  if (json.is_null()) return nullptr;
  auto type = ComponentType(json, where);
  if (!type.ok()) return type.status();
  if (*type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (*type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (*type == "Fuse") return std::make_unique<FuseDecoder>();
  if (*type == "Strip") {
    auto content = RequiredString(json, where, "content");
    if (!content.ok()) return content.status();
    auto start = OptionalInt(json, where, "start", 0);
    if (!start.ok()) return start.status();
    auto stop = OptionalInt(json, where, "stop", 0);
    if (!stop.ok()) return stop.status();
    if (content->empty() || *start < 0 || *stop < 0) {
      return FieldError(where, "a non-empty content and non-negative start/stop", &json);
    }
    return std::make_unique<StripDecoder>(*content, static_cast<size_t>(*start),
                                          static_cast<size_t>(*stop));
  }
  if (*type == "Replace") {
    auto pattern = RequiredField(json, where, "pattern");
    if (!pattern.ok()) return pattern.status();
    auto content = RequiredString(json, where, "content");
    if (!content.ok()) return content.status();
    const Json& p = **pattern;
    const std::string pattern_path = FieldPath(where, "pattern");
    if (p.is_object() && p.contains("String") && p["String"].is_string()) {
      return std::make_unique<ReplaceDecoder>(p["String"].get<std::string>(), nullptr, *content);
    }
    if (p.is_object() && p.contains("Regex") && p["Regex"].is_string()) {
      auto regex = SplitRegex::Compile(p["Regex"].get<std::string>());
      if (!regex.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(pattern_path, ".Regex: ", regex.status().message()));
      }
      return std::make_unique<ReplaceDecoder>("", std::move(*regex), *content);
    }
    return FieldError(pattern_path, "{\"String\": string} or {\"Regex\": string}", &p);
  }
  if (*type == "Metaspace") {
    auto replacement = OptionalString(json, where, "replacement", "\xE2\x96\x81");
    if (!replacement.ok()) return replacement.status();
    if (replacement->empty()) return FieldError(FieldPath(where, "replacement"), "a character", &json);
    bool strip_first = true;
    if (json.contains("prepend_scheme") && json["prepend_scheme"].is_string()) {
      strip_first = json["prepend_scheme"].get<std::string>() != "never";
    } else {
      auto add_prefix_space = OptionalBool(json, where, "add_prefix_space", true);
      if (!add_prefix_space.ok()) return add_prefix_space.status();
      strip_first = *add_prefix_space;
    }
    return std::make_unique<MetaspaceDecoder>(*replacement, strip_first);
  }
  if (*type == "Sequence") {
    auto list = RequiredField(json, where, "decoders");
    if (!list.ok()) return list.status();
    const std::string list_path = FieldPath(where, "decoders");
    if (!(*list)->is_array()) return FieldError(list_path, "an array", *list);
    std::vector<std::unique_ptr<Decoder>> parts;
    for (size_t i = 0; i < (*list)->size(); ++i) {
      auto part = DecoderFromJson((**list)[i], absl::StrCat(list_path, "[", i, "]"));
      if (!part.ok()) return part.status();
      if (*part != nullptr) parts.push_back(std::move(*part));
    }
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  return absl::UnimplementedError(
      absl::StrCat(FieldPath(where, "type"), ": decoder type '", *type, "' is not supported"));
}

}  // namespace sparkstack::tokenizer
