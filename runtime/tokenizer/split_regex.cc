#include "runtime/tokenizer/split_regex.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/tokenizer/unicode_tables.h"
#include "runtime/tokenizer/utf8.h"

namespace sparkstack::tokenizer {
namespace {

constexpr std::string_view kLookaheadAlternative = "\\s+(?!\\S)";
// Members (for use inside [...]) of the Unicode 16 categories `names`, as \x{..}-\x{..} ranges.
std::string CategoryMembers(std::initializer_list<std::string_view> names) {
  std::string members;
  for (std::string_view name : names) {
    for (const CodePointRange& r : UnicodeCategoryRanges(name)) {
      absl::StrAppend(&members, "\\x{", absl::Hex(static_cast<uint32_t>(r.first)), "}");
      if (r.last != r.first) {
        absl::StrAppend(&members, "-\\x{", absl::Hex(static_cast<uint32_t>(r.last)), "}");
      }
    }
  }
  return members;
}

// Oniguruma's Unicode classes, as Hugging Face's build behaves (probed, not as its docs say):
// \s = 0009-000D, 0085 and White_Space (the rest of which is Z); \d = Decimal_Number;
// \w = Alphabetic | Mark | Decimal_Number | Connector_Punctuation, where Alphabetic is L, Nl and
// the symbol-category Other_Alphabetic letters (circled/squared Latin letters), plus Latin-1's
// superscripts and vulgar fractions (onig's Latin-1 table); other No (e.g. U+2460) is not \w.
const std::string& WhitespaceClassBody() {
  static const std::string* body = new std::string("\\t-\\r\\x{85}" + CategoryMembers({"Z"}));
  return *body;
}
const std::string& WordClassBody() {
  static const std::string* body = new std::string(
      CategoryMembers({"L", "M", "Nd", "Nl", "Pc"}) +
      "\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}\\x{24B6}-\\x{24E9}\\x{1F130}-\\x{1F149}"
      "\\x{1F150}-\\x{1F169}\\x{1F170}-\\x{1F189}");
  return *body;
}
const std::string& DigitClassBody() {
  static const std::string* body = new std::string(CategoryMembers({"Nd"}));
  return *body;
}

// Splits a pattern at its top-level `|` (outside groups and character classes).
std::vector<std::string> SplitTopLevelAlternatives(std::string_view pattern) {
  std::vector<std::string> alternatives;
  std::string current;
  int depth = 0;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      current.push_back(c);
      current.push_back(pattern[++i]);
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
    } else if (c == '[') {
      in_class = true;
      current.push_back(c);
      // A ']' right after '[' or '[^' is a literal member.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') current.push_back(pattern[++i]);
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') current.push_back(pattern[++i]);
      continue;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      --depth;
    } else if (c == '|' && depth == 0) {
      alternatives.push_back(std::move(current));
      current.clear();
      continue;
    }
    current.push_back(c);
  }
  alternatives.push_back(std::move(current));
  return alternatives;
}

bool IsWhitespaceAt(std::string_view text, size_t pos, size_t* len) {
  return IsUnicodeWhitespace(DecodeUtf8(text, pos, len));
}

}  // namespace

absl::StatusOr<std::string> TranslateOnigPattern(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 32);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      std::string_view body;
      bool negated = false;
      if ((e == 'p' || e == 'P') && i + 1 < pattern.size() && pattern[i + 1] == '{') {
        const size_t close = pattern.find('}', i + 2);
        const std::string_view name =
            close == std::string_view::npos ? std::string_view() : pattern.substr(i + 2, close - i - 2);
        if (!UnicodeCategoryRanges(name).empty()) {
          // Spell the category out with Unicode 16 ranges (RE2's tables are older).
          const std::string members = CategoryMembers({name});
          if (in_class && e == 'P') {
            return absl::InvalidArgumentError(absl::StrCat(
                "regex pattern '", std::string(pattern), "': \\P{...} inside [...] is not supported"));
          }
          if (in_class) {
            out += members;
          } else {
            absl::StrAppend(&out, e == 'P' ? "[^" : "[", members, "]");
          }
          i = close;
          continue;
        }
      }
      switch (e) {
        case 's': body = WhitespaceClassBody(); break;
        case 'S': body = WhitespaceClassBody(); negated = true; break;
        case 'w': body = WordClassBody(); break;
        case 'W': body = WordClassBody(); negated = true; break;
        case 'd': body = DigitClassBody(); break;
        case 'D': body = DigitClassBody(); negated = true; break;
        default:
          out.push_back('\\');
          out.push_back(e);
          continue;
      }
      if (in_class) {
        if (negated) {
          return absl::InvalidArgumentError(absl::StrCat(
              "regex pattern '", std::string(pattern), "': negated class \\", std::string(1, e),
              " inside [...] is not supported"));
        }
        out.append(body);
      } else {
        absl::StrAppend(&out, negated ? "[^" : "[", std::string(body), "]");
      }
      continue;
    }
    if (in_class) {
      if (c == '[') {
        return absl::InvalidArgumentError(absl::StrCat(
            "regex pattern '", std::string(pattern), "': nested character classes are not supported"));
      }
      if (c == ']') in_class = false;
      out.push_back(c);
      continue;
    }
    if (c == '[') {
      in_class = true;
      out.push_back(c);
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out.push_back(pattern[++i]);
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out.push_back(pattern[++i]);
      continue;
    }
    if (c == '(' && pattern.substr(i, 3) == "(?=" ) {
      return absl::InvalidArgumentError(absl::StrCat(
          "regex pattern '", std::string(pattern), "': look-ahead is only supported as the ",
          "alternative \\s+(?!\\S)"));
    }
    if (c == '(' && (pattern.substr(i, 3) == "(?!" || pattern.substr(i, 3) == "(?<")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "regex pattern '", std::string(pattern), "': look-around or named groups are only ",
          "supported as the alternative \\s+(?!\\S)"));
    }
    out.push_back(c);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<SplitRegex>> SplitRegex::Compile(std::string_view pattern) {
  std::unique_ptr<SplitRegex> regex(new SplitRegex());
  std::vector<std::string> alternatives = SplitTopLevelAlternatives(pattern);
  size_t lookahead_index = alternatives.size();
  for (size_t i = 0; i < alternatives.size(); ++i) {
    if (alternatives[i] == kLookaheadAlternative) {
      lookahead_index = i;
      break;
    }
  }
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(int64_t{64} << 20);  // spelled-out Unicode classes make larger programs
  auto compile = [&](const std::string& onig) -> absl::StatusOr<std::unique_ptr<RE2>> {
    auto translated = TranslateOnigPattern(onig);
    if (!translated.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(translated.status().message(), " (in '", std::string(pattern), "')"));
    }
    auto re = std::make_unique<RE2>(*translated, options);
    if (!re->ok()) {
      return absl::InvalidArgumentError(absl::StrCat("regex pattern '", std::string(pattern),
                                                     "' does not compile: ", re->error()));
    }
    return re;
  };
  std::string full_pattern(pattern);
  if (lookahead_index < alternatives.size()) {
    regex->has_lookahead_ = true;
    regex->lookahead_has_fallback_ = lookahead_index + 1 < alternatives.size() &&
                                     alternatives[lookahead_index + 1] == "\\s+";
    alternatives[lookahead_index] = "\\s+";
    full_pattern = absl::StrJoin(alternatives, "|");
    if (lookahead_index > 0) {
      std::vector<std::string> before(alternatives.begin(),
                                      alternatives.begin() + lookahead_index);
      auto before_re = compile(absl::StrJoin(before, "|"));
      if (!before_re.ok()) return before_re.status();
      regex->before_lookahead_ = std::move(*before_re);
    }
  }
  auto full = compile(full_pattern);
  if (!full.ok()) return full.status();
  regex->full_ = std::move(*full);
  return regex;
}

void SplitRegex::FindAll(std::string_view text, uint32_t base, std::vector<ByteRange>* out) const {
  const re2::StringPiece input(text.data(), text.size());
  const size_t n = text.size();
  size_t pos = 0;
  re2::StringPiece match;
  while (pos < n) {
    if (!full_->Match(input, pos, n, RE2::UNANCHORED, &match, 1)) break;
    const size_t s = static_cast<size_t>(match.data() - text.data());
    size_t e = s + match.size();
    if (e == s) {
      size_t len;
      DecodeUtf8(text, s, &len);
      pos = s + len;
      continue;
    }
    size_t len;
    if (has_lookahead_ && e < n && !IsWhitespaceAt(text, e, &len)) {
      // Is this an all-whitespace match, and did the look-ahead alternative produce it?
      bool all_space = true;
      size_t last = s;
      for (size_t p = s; p < e; p += len) {
        last = p;
        if (!IsWhitespaceAt(text, p, &len)) {
          all_space = false;
          break;
        }
      }
      if (all_space && (before_lookahead_ == nullptr ||
                        !before_lookahead_->Match(input, s, n, RE2::ANCHOR_START, nullptr, 0))) {
        if (last > s) {
          e = last;  // `\s+(?!\S)` leaves the last space for the next token
        } else if (!lookahead_has_fallback_) {
          pos = e;  // a single space before a non-space: no alternative matches here
          continue;
        }
      }
    }
    out->push_back({static_cast<uint32_t>(base + s), static_cast<uint32_t>(base + e)});
    pos = e;
  }
}

}  // namespace sparkstack::tokenizer
