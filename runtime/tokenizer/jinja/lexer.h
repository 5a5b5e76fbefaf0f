// Splits a template into text and tag tokens, applying whitespace control the way Hugging Face
// configures Jinja for chat templates (trim_blocks=True, lstrip_blocks=True, one trailing newline
// of the template dropped) plus the `-` / `+` modifiers on tags. {# comments #} vanish here and
// {% raw %}...{% endraw %} becomes plain text.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_JINJA_LEXER_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_JINJA_LEXER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sparkstack::jinja {

enum class TokenKind {
  kText,       // literal template text (already whitespace-controlled)
  kExprOpen,   // {{
  kExprClose,  // }}
  kStmtOpen,   // {%
  kStmtClose,  // %}
  kName,       // identifier or keyword
  kString,     // string literal, escapes resolved
  kInt,
  kFloat,
  kOp,         // operator or punctuation: + - * / // % ** ~ | . , : ( ) [ ] { } = == != < <= > >=
  kEof,
};

struct Token {
  TokenKind kind = TokenKind::kEof;
  std::string text;  // text, name, string value or operator
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;    // 1-based
  int column = 1;  // 1-based, in code points
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

// Throws TemplateError (value.h) with line/column on an unterminated tag, comment or string, or a
// character no token starts with.
std::vector<Token> Lex(std::string_view source, const LexOptions& options = {});

}  // namespace sparkstack::jinja

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_JINJA_LEXER_H_
