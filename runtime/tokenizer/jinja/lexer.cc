#include "runtime/tokenizer/jinja/lexer.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "runtime/tokenizer/jinja/unicode.h"
#include "runtime/tokenizer/jinja/value.h"

namespace sparkstack::jinja {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c); }
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  Lexer(std::string_view source, const LexOptions& options) : src_(source), options_(options) {
    // Jinja's default keep_trailing_newline=False: one trailing newline is dropped.
    if (!src_.empty() && src_.back() == '\n') src_.remove_suffix(1);
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> Run() {
    size_t pos = 0;
    while (pos <= src_.size()) {
      const size_t tag = FindTag(pos);
      size_t text_begin = pos;
      size_t text_end = tag == std::string_view::npos ? src_.size() : tag;
      // Whitespace control left over from the previous tag's end.
      if (strip_leading_) {
        text_begin = SkipUnicodeSpace(src_, text_begin, text_end);
      } else if (trim_newline_ && text_begin < text_end && src_[text_begin] == '\n') {
        ++text_begin;
      }
      strip_leading_ = trim_newline_ = false;
      if (tag != std::string_view::npos) {
        const char kind = src_[tag + 1];
        const char modifier = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
        if (modifier == '-') {
          text_end = TrimUnicodeSpaceBack(src_, text_begin, text_end);
        } else if (modifier != '+' && options_.lstrip_blocks && (kind == '%' || kind == '#')) {
          size_t j = tag;
          while (j > 0 && (src_[j - 1] == ' ' || src_[j - 1] == '\t')) --j;
          if (j == 0 || src_[j - 1] == '\n' || src_[j - 1] == '\r') {
            text_end = std::max(text_begin, std::min(text_end, j));
          }
        }
      }
      if (text_end > text_begin) {
        Push(TokenKind::kText, std::string(src_.substr(text_begin, text_end - text_begin)),
             text_begin);
      }
      if (tag == std::string_view::npos) break;
      pos = LexTag(tag);
    }
    Push(TokenKind::kEof, "", src_.size());
    return std::move(tokens_);
  }

 private:
  // Next "{{", "{%" or "{#" at or after `pos`.
  size_t FindTag(size_t pos) const {
    while (true) {
      pos = src_.find('{', pos);
      if (pos == std::string_view::npos || pos + 1 >= src_.size()) return std::string_view::npos;
      const char next = src_[pos + 1];
      if (next == '{' || next == '%' || next == '#') return pos;
      ++pos;
    }
  }

  [[noreturn]] void Fail(size_t offset, std::string message) const {
    int line = 0, column = 0;
    Position(offset, &line, &column);
    throw TemplateError{std::move(message), line, column};
  }

  void Position(size_t offset, int* line, int* column) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t line_index = static_cast<size_t>(it - line_starts_.begin()) - 1;
    *line = static_cast<int>(line_index) + 1;
    const size_t start = line_starts_[line_index];
    *column = static_cast<int>(CodePointCount(src_.substr(start, offset - start))) + 1;
  }

  Token& Push(TokenKind kind, std::string text, size_t offset) {
    Token token;
    token.kind = kind;
    token.text = std::move(text);
    Position(offset, &token.line, &token.column);
    tokens_.push_back(std::move(token));
    return tokens_.back();
  }

  // Lexes the tag starting at `start` ("{{", "{%" or "{#"); returns the offset after it.
  size_t LexTag(size_t start) {
    const char kind = src_[start + 1];
    size_t pos = start + 2;
    if (pos < src_.size() && (src_[pos] == '-' || src_[pos] == '+')) ++pos;
    if (kind == '#') {
      const size_t end = src_.find("#}", pos);
      if (end == std::string_view::npos) Fail(start, "unterminated comment: '{#' without '#}'");
      strip_leading_ = end > pos && src_[end - 1] == '-';
      trim_newline_ = options_.trim_blocks;
      return end + 2;
    }
    const bool is_expr = kind == '{';
    const size_t first_token = tokens_.size();
    Push(is_expr ? TokenKind::kExprOpen : TokenKind::kStmtOpen, is_expr ? "{{" : "{%", start);
    int brace_depth = 0;
    while (true) {
      while (pos < src_.size() && IsSpace(src_[pos])) ++pos;
      if (pos >= src_.size()) {
        Fail(start, is_expr ? "unterminated expression: '{{' without '}}'"
                            : "unterminated statement: '{%' without '%}'");
      }
      const std::string_view rest = src_.substr(pos);
      const std::string_view close = is_expr ? "}}" : "%}";
      if (brace_depth == 0 || !is_expr) {
        size_t close_len = 0;
        bool strip = false;
        if (rest.substr(0, 2) == close) {
          close_len = 2;
        } else if ((rest[0] == '-' || rest[0] == '+') && rest.substr(1, 2) == close) {
          close_len = 3;
          strip = rest[0] == '-';
        }
        if (close_len > 0) {
          Push(is_expr ? TokenKind::kExprClose : TokenKind::kStmtClose, std::string(close), pos);
          pos += close_len;
          strip_leading_ = strip;
          trim_newline_ = !is_expr && options_.trim_blocks;
          if (!is_expr) return MaybeRaw(first_token, pos);
          return pos;
        }
      }
      pos = LexToken(pos, brace_depth);
    }
  }

  // After "{% raw %}", everything up to "{% endraw %}" is text.
  size_t MaybeRaw(size_t first_token, size_t pos) {
    if (tokens_.size() != first_token + 3 || tokens_[first_token + 1].kind != TokenKind::kName ||
        tokens_[first_token + 1].text != "raw") {
      return pos;
    }
    tokens_.resize(first_token);
    size_t search = pos;
    while (true) {
      const size_t open = src_.find("{%", search);
      if (open == std::string_view::npos) Fail(pos, "'{% raw %}' without '{% endraw %}'");
      size_t p = open + 2;
      const bool strip_before = p < src_.size() && src_[p] == '-';
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
      while (p < src_.size() && IsSpace(src_[p])) ++p;
      if (src_.substr(p, 6) != "endraw") {
        search = open + 2;
        continue;
      }
      p += 6;
      while (p < src_.size() && IsSpace(src_[p])) ++p;
      bool strip_after = false;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) {
        strip_after = src_[p] == '-';
        ++p;
      }
      if (src_.substr(p, 2) != "%}") {
        search = open + 2;
        continue;
      }
      size_t text_begin = pos, text_end = open;
      if (strip_leading_) {
        text_begin = SkipUnicodeSpace(src_, text_begin, text_end);
      } else if (trim_newline_ && text_begin < text_end && src_[text_begin] == '\n') {
        ++text_begin;
      }
      if (strip_before) {
        text_end = TrimUnicodeSpaceBack(src_, text_begin, text_end);
      }
      if (text_end > text_begin) {
        Push(TokenKind::kText, std::string(src_.substr(text_begin, text_end - text_begin)),
             text_begin);
      }
      strip_leading_ = strip_after;
      trim_newline_ = options_.trim_blocks;
      return p + 2;
    }
  }

  size_t LexToken(size_t pos, int& brace_depth) {
    const char c = src_[pos];
    if (IsNameStart(c)) {
      size_t end = pos;
      while (end < src_.size() && IsNameChar(src_[end])) ++end;
      Push(TokenKind::kName, std::string(src_.substr(pos, end - pos)), pos);
      return end;
    }
    if (IsDigit(c)) return LexNumber(pos);
    if (c == '\'' || c == '"') return LexString(pos);
    static const char* const kOps[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/",
                                       "%",  "~",  "|",  ".",  ",",  ":",  "(", ")", "[", "]",
                                       "{",  "}",  "=",  "<",  ">"};
    for (const char* op : kOps) {
      const std::string_view op_view(op);
      if (src_.substr(pos, op_view.size()) == op_view) {
        if (op_view == "{") ++brace_depth;
        if (op_view == "}" && brace_depth > 0) --brace_depth;
        Push(TokenKind::kOp, std::string(op_view), pos);
        return pos + op_view.size();
      }
    }
    size_t len = 1;
    const uint32_t cp = DecodeUtf8(src_, pos, &len);
    std::string shown;
    AppendUtf8(cp, shown);
    Fail(pos, "unexpected character '" + shown + "' inside a tag");
  }

  size_t LexNumber(size_t pos) {
    size_t end = pos;
    while (end < src_.size() && (IsDigit(src_[end]) || src_[end] == '_')) ++end;
    bool is_float = false;
    if (end + 1 < src_.size() && src_[end] == '.' && IsDigit(src_[end + 1])) {
      is_float = true;
      ++end;
      while (end < src_.size() && (IsDigit(src_[end]) || src_[end] == '_')) ++end;
    }
    if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      size_t e = end + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      if (e < src_.size() && IsDigit(src_[e])) {
        is_float = true;
        end = e;
        while (end < src_.size() && IsDigit(src_[end])) ++end;
      }
    }
    std::string digits;
    for (size_t i = pos; i < end; ++i) {
      if (src_[i] != '_') digits.push_back(src_[i]);
    }
    Token& token = Push(is_float ? TokenKind::kFloat : TokenKind::kInt, digits, pos);
    if (is_float) {
      token.float_value = std::strtod(digits.c_str(), nullptr);
    } else {
      errno = 0;
      char* parse_end = nullptr;
      token.int_value = std::strtoll(digits.c_str(), &parse_end, 10);
      if (errno == ERANGE) Fail(pos, "integer literal " + digits + " is out of range");
    }
    return end;
  }

  size_t LexString(size_t pos) {
    const char quote = src_[pos];
    std::string value;
    size_t i = pos + 1;
    while (true) {
      if (i >= src_.size()) Fail(pos, "unterminated string literal");
      const char c = src_[i];
      if (c == quote) break;
      if (c != '\\') {
        value.push_back(c);
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) Fail(pos, "unterminated string literal");
      const char e = src_[i + 1];
      i += 2;
      switch (e) {
        case 'n': value.push_back('\n'); break;
        case 't': value.push_back('\t'); break;
        case 'r': value.push_back('\r'); break;
        case 'b': value.push_back('\b'); break;
        case 'f': value.push_back('\f'); break;
        case 'v': value.push_back('\v'); break;
        case '0': value.push_back('\0'); break;
        case '\\': value.push_back('\\'); break;
        case '\'': value.push_back('\''); break;
        case '"': value.push_back('"'); break;
        case '\n': break;  // backslash-newline continues the line, as in Python
        case 'x':
        case 'u':
        case 'U': {
          const size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (size_t k = 0; k < digits; ++k) {
            const int h = i + k < src_.size() ? HexValue(src_[i + k]) : -1;
            if (h < 0) Fail(i - 2, std::string("invalid \\") + e + " escape in string literal");
            cp = cp * 16 + static_cast<uint32_t>(h);
          }
          if (cp > 0x10FFFF) Fail(i - 2, "escape beyond U+10FFFF in string literal");
          i += digits;
          AppendUtf8(cp, value);
          break;
        }
        default:
          // Python keeps unknown escapes as written.
          value.push_back('\\');
          value.push_back(e);
      }
    }
    Push(TokenKind::kString, std::move(value), pos);
    return i + 1;
  }

  std::string_view src_;
  LexOptions options_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
  bool strip_leading_ = false;  // previous tag ended with '-'
  bool trim_newline_ = false;   // previous tag was a block or comment (trim_blocks)
};

}  // namespace

std::vector<Token> Lex(std::string_view source, const LexOptions& options) {
  return Lexer(source, options).Run();
}

}  // namespace sparkstack::jinja
