// Syntax tree of a parsed template. One node struct per family (expressions, statements) with a
// kind tag keeps the parser and interpreter short; fields unused by a kind stay empty.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_JINJA_AST_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_JINJA_AST_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/tokenizer/jinja/value.h"

namespace sparkstack::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprKind {
  kLiteral,   // literal
  kName,      // name
  kList,      // items
  kTuple,     // items
  kDict,      // items: key0, value0, key1, value1, ...
  kGetAttr,   // a.name
  kGetItem,   // a[b]
  kSlice,     // a[b:c:d]; b, c, d may be null
  kCall,      // a(items..., kwargs...)
  kFilter,    // a | name(items..., kwargs...); a is null inside {% filter %} blocks
  kTest,      // a is [not] name(items...)
  kUnary,     // name in {"-", "+", "not"} applied to a
  kBinary,    // a name b; name is the operator ("+", "==", "in", "not in", "and", "or", ...)
  kCondExpr,  // a if b else c; c may be null (then undefined)
};

// kBinary operators, resolved once by the parser so evaluation does not compare strings.
enum class BinaryOp : uint8_t {
  kOther, kAnd, kOr, kEq, kNe, kIn, kNotIn, kLt, kLe, kGt, kGe, kConcat,
};

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  BinaryOp op = BinaryOp::kOther;
  int line = 0;
  int column = 0;
  Value literal;
  std::string name;
  bool negated = false;  // kTest: "is not"
  ExprPtr a, b, c, d;
  std::vector<ExprPtr> items;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

enum class StmtKind {
  kText,         // text
  kOutput,       // {{ expr }}
  kIf,           // branches: (condition, body)...; a final else has a null condition
  kFor,          // for targets in expr [if cond]: body [else else_body]
  kSet,          // set targets = expr; or set targets %}body{% endset (expr null)
  kMacro,        // macro name(params): body
  kCallBlock,    // call(params) expr: body
  kFilterBlock,  // filter expr(a null kFilter chain): body
  kBreak,
  kContinue,
};

struct Stmt {
  StmtKind kind = StmtKind::kText;
  int line = 0;
  int column = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr cond;
  // Assignment targets: one name, several names (tuple unpacking), or `name.attr` when
  // target_attr is non-empty (namespace attribute assignment).
  std::vector<std::string> targets;
  std::string target_attr;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::string name;                                    // macro name
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro / call-block parameters
};

}  // namespace sparkstack::jinja

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_JINJA_AST_H_
