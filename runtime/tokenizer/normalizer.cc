#include "runtime/tokenizer/normalizer.h"

#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/tokenizer/split_regex.h"
#include "runtime/tokenizer/utf8.h"
#include "utf8proc.h"

namespace sparkstack::tokenizer {
namespace {

bool IsAscii(std::string_view text) {
  for (char c : text) {
    if (static_cast<uint8_t>(c) >= 0x80) return false;
  }
  return true;
}

class UnicodeNormalizer : public Normalizer {
 public:
  UnicodeNormalizer(int options, bool ascii_is_identity)
      : options_(options), ascii_is_identity_(ascii_is_identity) {}
  void Normalize(std::string* text) const override {
    if (ascii_is_identity_ && IsAscii(*text)) return;
    utf8proc_uint8_t* out = nullptr;
    const utf8proc_ssize_t n = utf8proc_map(
        reinterpret_cast<const utf8proc_uint8_t*>(text->data()),
        static_cast<utf8proc_ssize_t>(text->size()), &out,
        static_cast<utf8proc_option_t>(options_));
    // Input is validated UTF-8, so utf8proc only fails on allocation; then keep the text as is.
    if (n >= 0) text->assign(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
    std::free(out);
  }

 private:
  int options_;
  bool ascii_is_identity_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  void Normalize(std::string* text) const override {
    std::string out;
    out.reserve(text->size());
    size_t pos = 0, len;
    while (pos < text->size()) {
      const char32_t cp = DecodeUtf8(*text, pos, &len);
      AppendUtf8(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))), &out);
      pos += len;
    }
    text->swap(out);
  }
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void Normalize(std::string* text) const override {
    size_t begin = 0, end = text->size(), len;
    if (left_) {
      while (begin < end && IsUnicodeWhitespace(DecodeUtf8(*text, begin, &len))) begin += len;
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<uint8_t>((*text)[start]) & 0xC0) == 0x80) --start;
        if (!IsUnicodeWhitespace(DecodeUtf8(*text, start, &len))) break;
        end = start;
      }
    }
    *text = text->substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(std::string literal, std::unique_ptr<SplitRegex> regex, std::string content)
      : literal_(std::move(literal)), regex_(std::move(regex)), content_(std::move(content)) {}
  void Normalize(std::string* text) const override {
    std::vector<ByteRange> matches;
    if (regex_ != nullptr) {
      regex_->FindAll(*text, 0, &matches);
    } else if (!literal_.empty()) {
      for (size_t pos = text->find(literal_); pos != std::string::npos;
           pos = text->find(literal_, pos + literal_.size())) {
        matches.push_back({static_cast<uint32_t>(pos), static_cast<uint32_t>(pos + literal_.size())});
      }
    }
    if (matches.empty()) return;
    std::string out;
    out.reserve(text->size() + matches.size() * content_.size());
    uint32_t last = 0;
    for (const ByteRange& m : matches) {
      out.append(*text, last, m.begin - last);
      out.append(content_);
      last = m.end;
    }
    out.append(*text, last);
    text->swap(out);
  }

 private:
  std::string literal_;
  std::unique_ptr<SplitRegex> regex_;
  std::string content_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void Normalize(std::string* text) const override {
    if (!text->empty()) text->insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}
  void Normalize(std::string* text) const override {
    for (const auto& part : parts_) part->Normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Normalizer>> NormalizerFromJson(const Json& json,
                                                              std::string_view where) {
  if (json.is_null()) return nullptr;
  auto type = ComponentType(json, where);
  if (!type.ok()) return type.status();
  if (*type == "NFC") {
    return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_COMPOSE, true);
  }
  if (*type == "NFD") {
    return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE, true);
  }
  if (*type == "NFKC") {
    return std::make_unique<UnicodeNormalizer>(
        UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT, true);
  }
  if (*type == "NFKD") {
    return std::make_unique<UnicodeNormalizer>(
        UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, true);
  }
  if (*type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (*type == "Strip") {
    auto left = OptionalBool(json, where, "strip_left", true);
    if (!left.ok()) return left.status();
    auto right = OptionalBool(json, where, "strip_right", true);
    if (!right.ok()) return right.status();
    return std::make_unique<StripNormalizer>(*left, *right);
  }
  if (*type == "Prepend") {
    auto prefix = RequiredString(json, where, "prepend");
    if (!prefix.ok()) return prefix.status();
    return std::make_unique<PrependNormalizer>(*prefix);
  }
  if (*type == "Replace") {
    auto pattern = RequiredField(json, where, "pattern");
    if (!pattern.ok()) return pattern.status();
    auto content = RequiredString(json, where, "content");
    if (!content.ok()) return content.status();
    const std::string pattern_path = FieldPath(where, "pattern");
    if (auto it = (*pattern)->find("String"); (*pattern)->is_object() && it != (*pattern)->end()) {
      if (!it->is_string()) return FieldError(FieldPath(pattern_path, "String"), "a string", &*it);
      return std::make_unique<ReplaceNormalizer>(it->get<std::string>(), nullptr, *content);
    }
    if (auto it = (*pattern)->find("Regex"); (*pattern)->is_object() && it != (*pattern)->end()) {
      if (!it->is_string()) return FieldError(FieldPath(pattern_path, "Regex"), "a string", &*it);
      auto regex = SplitRegex::Compile(it->get<std::string>());
      if (!regex.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(pattern_path, ".Regex: ", regex.status().message()));
      }
      return std::make_unique<ReplaceNormalizer>("", std::move(*regex), *content);
    }
    return FieldError(pattern_path, "{\"String\": ...} or {\"Regex\": ...}", *pattern);
  }
  if (*type == "Sequence") {
    auto list = RequiredField(json, where, "normalizers");
    if (!list.ok()) return list.status();
    const std::string list_path = FieldPath(where, "normalizers");
    if (!(*list)->is_array()) return FieldError(list_path, "an array", *list);
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < (*list)->size(); ++i) {
      auto part = NormalizerFromJson((**list)[i], absl::StrCat(list_path, "[", i, "]"));
      if (!part.ok()) return part.status();
      if (*part != nullptr) parts.push_back(std::move(*part));
    }
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  return absl::UnimplementedError(
      absl::StrCat(FieldPath(where, "type"), ": normalizer type '", *type, "' is not supported"));
}

}  // namespace sparkstack::tokenizer
