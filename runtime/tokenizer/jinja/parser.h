// Recursive-descent parser from lexer tokens to the syntax tree (ast.h), following Jinja's
// grammar and operator precedence: conditional expression < or < and < not < comparisons/in <
// + - < ~ < * / // % < ** < unary +/- < postfix (.attr, [index], [a:b:c], call) and filters/tests.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_JINJA_PARSER_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_JINJA_PARSER_H_

#include <vector>

#include "runtime/tokenizer/jinja/ast.h"
#include "runtime/tokenizer/jinja/lexer.h"

namespace sparkstack::jinja {

// Nesting limit for blocks and expressions: deeper templates are rejected, not overflowed.
inline constexpr int kMaxParseDepth = 200;

// Throws TemplateError with the line/column of the offending token.
Body ParseTemplate(const std::vector<Token>& tokens);

}  // namespace sparkstack::jinja

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_JINJA_PARSER_H_
