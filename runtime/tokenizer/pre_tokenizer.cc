#include "runtime/tokenizer/pre_tokenizer.h"

#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/tokenizer/utf8.h"

namespace sparkstack::tokenizer {
namespace {

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Finds the delimiter matches inside `text` (offsets are relative to text, plus `base`).
using FindFn = std::function<void(std::string_view text, uint32_t base, std::vector<ByteRange>*)>;

struct Part {
  ByteRange range;
  bool is_match;
};

// Splits every piece by the matches of `find`, following Hugging Face's SplitDelimiterBehavior.
void SplitPieces(PieceList* list, Behavior behavior, bool invert, const FindFn& find) {
  std::vector<ByteRange> out;
  out.reserve(list->pieces.size() * 2);
  std::vector<ByteRange> matches;
  std::vector<Part> parts, merged;
  const std::string_view text = list->text;
  for (const ByteRange piece : list->pieces) {
    matches.clear();
    find(text.substr(piece.begin, piece.end - piece.begin), piece.begin, &matches);
    parts.clear();
    uint32_t pos = piece.begin;
    for (const ByteRange& m : matches) {
      if (m.begin > pos) parts.push_back({{pos, m.begin}, false});
      parts.push_back({m, true});
      pos = m.end;
    }
    if (pos < piece.end) parts.push_back({{pos, piece.end}, false});
    if (invert) {
      for (Part& p : parts) p.is_match = !p.is_match;
    }
    merged.clear();
    bool previous_match = false;
    switch (behavior) {
      case Behavior::kIsolated:
        merged = parts;
        break;
      case Behavior::kRemoved:
        for (const Part& p : parts) {
          if (!p.is_match) merged.push_back(p);
        }
        break;
      case Behavior::kMergedWithPrevious:
        for (const Part& p : parts) {
          if (p.is_match && !previous_match && !merged.empty()) {
            merged.back().range.end = p.range.end;
          } else {
            merged.push_back(p);
          }
          previous_match = p.is_match;
        }
        break;
      case Behavior::kMergedWithNext:
        for (size_t i = parts.size(); i-- > 0;) {
          const Part& p = parts[i];
          if (p.is_match && !previous_match && !merged.empty()) {
            merged.back().range.begin = p.range.begin;
          } else {
            merged.push_back(p);
          }
          previous_match = p.is_match;
        }
        std::reverse(merged.begin(), merged.end());
        break;
      case Behavior::kContiguous:
        for (size_t i = 0; i < parts.size(); ++i) {
          const Part& p = parts[i];
          if (i > 0 && p.is_match == previous_match) {
            merged.back().range.end = p.range.end;
          } else {
            merged.push_back(p);
          }
          previous_match = p.is_match;
        }
        break;
    }
    for (const Part& p : merged) {
      if (p.range.end > p.range.begin) out.push_back(p.range);
    }
  }
  list->pieces.swap(out);
}

// Rebuilds the buffer, letting `rewrite` produce each piece's new spelling.
void RewritePieces(PieceList* list,
                   const std::function<void(size_t index, std::string_view piece,
                                            std::string* out)>& rewrite) {
  std::string text;
  text.reserve(list->text.size() + list->pieces.size() * 3);
  std::vector<ByteRange> pieces;
  pieces.reserve(list->pieces.size());
  for (size_t i = 0; i < list->pieces.size(); ++i) {
    const ByteRange r = list->pieces[i];
    const auto begin = static_cast<uint32_t>(text.size());
    rewrite(i, std::string_view(list->text).substr(r.begin, r.end - r.begin), &text);
    if (text.size() > begin) pieces.push_back({begin, static_cast<uint32_t>(text.size())});
  }
  list->text.swap(text);
  list->pieces.swap(pieces);
}

bool IsNumeric(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return InUnicodeCategory(cp, "N");
}

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(FindFn find, Behavior behavior, bool invert)
      : find_(std::move(find)), behavior_(behavior), invert_(invert) {}
  void PreTokenize(PieceList* list) const override {
    SplitPieces(list, behavior_, invert_, find_);
  }

 private:
  FindFn find_;
  Behavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::unique_ptr<SplitRegex> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}
  void PreTokenize(PieceList* list) const override {
    if (add_prefix_space_) {
      RewritePieces(list, [](size_t, std::string_view piece, std::string* out) {
        if (piece.empty() || piece[0] != ' ') out->push_back(' ');
        out->append(piece);
      });
    }
    if (regex_ != nullptr) {
      const SplitRegex* regex = regex_.get();
      SplitPieces(list, Behavior::kIsolated, false,
                  [regex](std::string_view text, uint32_t base, std::vector<ByteRange>* out) {
                    regex->FindAll(text, base, out);
                  });
    }
    // The byte -> unicode spelling is not materialized: the BPE model keys its vocabulary by raw
    // bytes instead (see bpe_model.h).
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<SplitRegex> regex_;
};

class DigitsPreTokenizer : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
  void PreTokenize(PieceList* list) const override {
    const bool individual = individual_;
    SplitPieces(list, Behavior::kIsolated, false,
                [individual](std::string_view text, uint32_t base, std::vector<ByteRange>* out) {
                  size_t pos = 0, len;
                  while (pos < text.size()) {
                    const bool numeric = IsNumeric(DecodeUtf8(text, pos, &len));
                    if (numeric) {
                      const auto begin = static_cast<uint32_t>(base + pos);
                      const auto end = static_cast<uint32_t>(base + pos + len);
                      if (!individual && !out->empty() && out->back().end == begin) {
                        out->back().end = end;
                      } else {
                        out->push_back({begin, end});
                      }
                    }
                    pos += len;
                  }
                });
  }

 private:
  bool individual_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void PreTokenize(PieceList* list) const override {
    const bool at_origin = list->at_origin;
    RewritePieces(list, [&](size_t index, std::string_view piece, std::string* out) {
      const bool starts_with_replacement =
          piece.substr(0, replacement_.size()) == replacement_ ||
          (!piece.empty() && piece[0] == ' ');
      const bool prepend = !starts_with_replacement &&
                           (scheme_ == PrependScheme::kAlways ||
                            (scheme_ == PrependScheme::kFirst && at_origin && index == 0));
      if (prepend) out->append(replacement_);
      for (char c : piece) {
        if (c == ' ') {
          out->append(replacement_);
        } else {
          out->push_back(c);
        }
      }
    });
    if (split_) {
      const std::string& rep = replacement_;
      SplitPieces(list, Behavior::kMergedWithNext, false,
                  [&rep](std::string_view text, uint32_t base, std::vector<ByteRange>* out) {
                    for (size_t pos = text.find(rep); pos != std::string_view::npos;
                         pos = text.find(rep, pos + rep.size())) {
                      out->push_back({static_cast<uint32_t>(base + pos),
                                      static_cast<uint32_t>(base + pos + rep.size())});
                    }
                  });
    }
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  void PreTokenize(PieceList* list) const override {
    for (const auto& part : parts_) part->PreTokenize(list);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

absl::StatusOr<Behavior> ParseBehavior(const Json& json, std::string_view where) {
  auto name = RequiredString(json, where, "behavior");
  if (!name.ok()) return name.status();
  if (*name == "Removed") return Behavior::kRemoved;
  if (*name == "Isolated") return Behavior::kIsolated;
  if (*name == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (*name == "MergedWithNext") return Behavior::kMergedWithNext;
  if (*name == "Contiguous") return Behavior::kContiguous;
  const Json& found = json["behavior"];
  return FieldError(FieldPath(where, "behavior"),
                    "one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous",
                    &found);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizerFromJson(const Json& json,
                                                                  std::string_view where,
                                                                  PreTokenizerInfo* info) {
  if (json.is_null()) return nullptr;
  auto type = ComponentType(json, where);
  if (!type.ok()) return type.status();
  if (*type == "Split") {
    auto behavior = ParseBehavior(json, where);
    if (!behavior.ok()) return behavior.status();
    auto invert = OptionalBool(json, where, "invert", false);
    if (!invert.ok()) return invert.status();
    auto pattern = RequiredField(json, where, "pattern");
    if (!pattern.ok()) return pattern.status();
    const std::string pattern_path = FieldPath(where, "pattern");
    const Json& p = **pattern;
    if (p.is_object() && p.contains("Regex") && p["Regex"].is_string()) {
      auto regex = SplitRegex::Compile(p["Regex"].get<std::string>());
      if (!regex.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(pattern_path, ".Regex: ", regex.status().message()));
      }
      std::shared_ptr<SplitRegex> shared = std::move(*regex);
      return std::make_unique<SplitPreTokenizer>(
          [shared](std::string_view text, uint32_t base, std::vector<ByteRange>* out) {
            shared->FindAll(text, base, out);
          },
          *behavior, *invert);
    }
    if (p.is_object() && p.contains("String") && p["String"].is_string()) {
      std::string literal = p["String"].get<std::string>();
      if (literal.empty()) return FieldError(FieldPath(pattern_path, "String"), "a non-empty string", &p);
      return std::make_unique<SplitPreTokenizer>(
          [literal](std::string_view text, uint32_t base, std::vector<ByteRange>* out) {
            for (size_t pos = text.find(literal); pos != std::string_view::npos;
                 pos = text.find(literal, pos + literal.size())) {
              out->push_back({static_cast<uint32_t>(base + pos),
                              static_cast<uint32_t>(base + pos + literal.size())});
            }
          },
          *behavior, *invert);
    }
    return FieldError(pattern_path, "{\"Regex\": string} or {\"String\": string}", &p);
  }
  if (*type == "ByteLevel") {
    auto add_prefix_space = OptionalBool(json, where, "add_prefix_space", true);
    if (!add_prefix_space.ok()) return add_prefix_space.status();
    auto use_regex = OptionalBool(json, where, "use_regex", true);
    if (!use_regex.ok()) return use_regex.status();
    std::unique_ptr<SplitRegex> regex;
    if (*use_regex) {
      auto compiled = SplitRegex::Compile(kGpt2Pattern);
      if (!compiled.ok()) return compiled.status();
      regex = std::move(*compiled);
    }
    info->byte_level = true;
    return std::make_unique<ByteLevelPreTokenizer>(*add_prefix_space, std::move(regex));
  }
  if (*type == "Digits") {
    auto individual = OptionalBool(json, where, "individual_digits", false);
    if (!individual.ok()) return individual.status();
    return std::make_unique<DigitsPreTokenizer>(*individual);
  }
  if (*type == "Metaspace") {
    auto replacement = OptionalString(json, where, "replacement", "\xE2\x96\x81");
    if (!replacement.ok()) return replacement.status();
    if (replacement->empty()) {
      return FieldError(FieldPath(where, "replacement"), "a non-empty string", &json["replacement"]);
    }
    auto split = OptionalBool(json, where, "split", true);
    if (!split.ok()) return split.status();
    PrependScheme scheme = PrependScheme::kAlways;
    if (json.contains("prepend_scheme") && !json["prepend_scheme"].is_null()) {
      auto name = RequiredString(json, where, "prepend_scheme");
      if (!name.ok()) return name.status();
      if (*name == "always") {
        scheme = PrependScheme::kAlways;
      } else if (*name == "first") {
        scheme = PrependScheme::kFirst;
      } else if (*name == "never") {
        scheme = PrependScheme::kNever;
      } else {
        return FieldError(FieldPath(where, "prepend_scheme"), "always, first or never",
                          &json["prepend_scheme"]);
      }
    } else {
      auto add_prefix_space = OptionalBool(json, where, "add_prefix_space", true);
      if (!add_prefix_space.ok()) return add_prefix_space.status();
      scheme = *add_prefix_space ? PrependScheme::kAlways : PrependScheme::kNever;
    }
    return std::make_unique<MetaspacePreTokenizer>(*replacement, scheme, *split);
  }
  if (*type == "Sequence") {
    auto list = RequiredField(json, where, "pretokenizers");
    if (!list.ok()) return list.status();
    const std::string list_path = FieldPath(where, "pretokenizers");
    if (!(*list)->is_array()) return FieldError(list_path, "an array", *list);
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < (*list)->size(); ++i) {
      auto part = PreTokenizerFromJson((**list)[i], absl::StrCat(list_path, "[", i, "]"), info);
      if (!part.ok()) return part.status();
      if (*part != nullptr) parts.push_back(std::move(*part));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  return absl::UnimplementedError(absl::StrCat(FieldPath(where, "type"), ": pre-tokenizer type '",
                                               *type, "' is not supported"));
}

}  // namespace sparkstack::tokenizer
