#include "runtime/tokenizer/jinja/parser.h"

#include <string>
#include <string_view>
#include <utility>

namespace sparkstack::jinja {
namespace {

std::string Describe(const Token& token) {
  switch (token.kind) {
    case TokenKind::kText:
      return "template text";
    case TokenKind::kExprOpen:
      return "'{{'";
    case TokenKind::kExprClose:
      return "'}}'";
    case TokenKind::kStmtOpen:
      return "'{%'";
    case TokenKind::kStmtClose:
      return "'%}'";
    case TokenKind::kName:
      return "'" + token.text + "'";
    case TokenKind::kString:
      return "string literal";
    case TokenKind::kInt:
    case TokenKind::kFloat:
      return "number " + token.text;
    case TokenKind::kOp:
      return "'" + token.text + "'";
    case TokenKind::kEof:
      return "end of template";
  }
  return "token";
}

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : tokens_(tokens) {}

  Body Run() {
    std::string ended_with;
    Body body = ParseBody({}, &ended_with);
    return body;
  }

 private:
  // ---- token helpers ----
  const Token& Peek(size_t ahead = 0) const {
    const size_t i = pos_ + ahead;
    return i < tokens_.size() ? tokens_[i] : tokens_.back();
  }
  const Token& Next() {
    const Token& t = Peek();
    if (pos_ < tokens_.size() - 1) ++pos_;
    return t;
  }
  bool IsOp(std::string_view op, size_t ahead = 0) const {
    return Peek(ahead).kind == TokenKind::kOp && Peek(ahead).text == op;
  }
  bool IsName(std::string_view name, size_t ahead = 0) const {
    return Peek(ahead).kind == TokenKind::kName && Peek(ahead).text == name;
  }
  bool SkipOp(std::string_view op) {
    if (!IsOp(op)) return false;
    Next();
    return true;
  }
  bool SkipName(std::string_view name) {
    if (!IsName(name)) return false;
    Next();
    return true;
  }
  [[noreturn]] void Fail(const Token& at, std::string message) const {
    throw TemplateError{std::move(message), at.line, at.column};
  }
  void ExpectOp(std::string_view op) {
    if (!SkipOp(op)) Fail(Peek(), "expected '" + std::string(op) + "', found " + Describe(Peek()));
  }
  std::string ExpectName(const char* what) {
    if (Peek().kind != TokenKind::kName) {
      Fail(Peek(), std::string("expected ") + what + ", found " + Describe(Peek()));
    }
    return Next().text;
  }
  void ExpectStmtClose(const char* statement) {
    if (Peek().kind != TokenKind::kStmtClose) {
      Fail(Peek(), std::string("expected '%}' to end '") + statement + "', found " +
                       Describe(Peek()));
    }
    Next();
  }

  struct DepthGuard {
    explicit DepthGuard(Parser* p) : parser(p) {
      if (++parser->depth_ > kMaxParseDepth) {
        parser->Fail(parser->Peek(), "template nested too deeply (limit " +
                                         std::to_string(kMaxParseDepth) + ")");
      }
    }
    ~DepthGuard() { --parser->depth_; }
    Parser* parser;
  };

  template <typename Node>
  static std::unique_ptr<Node> MakeAt(const Token& at) {
    auto node = std::make_unique<Node>();
    node->line = at.line;
    node->column = at.column;
    return node;
  }

  // ---- statements ----

  // Parses until a "{% <ender> ..." tag whose keyword is one of `enders`; consumes "{%" and the
  // keyword and stores it in *ended_with. With no enders, parses to the end of the template.
  Body ParseBody(std::initializer_list<std::string_view> enders, std::string* ended_with) {
    DepthGuard guard(this);
    Body body;
    while (true) {
      const Token& t = Peek();
      switch (t.kind) {
        case TokenKind::kText: {
          auto stmt = MakeAt<Stmt>(t);
          stmt->kind = StmtKind::kText;
          stmt->text = Next().text;
          body.push_back(std::move(stmt));
          break;
        }
        case TokenKind::kExprOpen: {
          auto stmt = MakeAt<Stmt>(t);
          stmt->kind = StmtKind::kOutput;
          Next();
          stmt->expr = ParseExpression();
          if (Peek().kind != TokenKind::kExprClose) {
            Fail(Peek(), "expected '}}', found " + Describe(Peek()));
          }
          Next();
          body.push_back(std::move(stmt));
          break;
        }
        case TokenKind::kStmtOpen: {
          const Token& keyword = Peek(1);
          if (keyword.kind == TokenKind::kName) {
            for (std::string_view ender : enders) {
              if (keyword.text == ender) {
                Next();
                *ended_with = Next().text;
                return body;
              }
            }
          }
          Next();
          if (StmtPtr stmt = ParseStatement()) body.push_back(std::move(stmt));
          break;
        }
        case TokenKind::kEof:
          if (enders.size() != 0) {
            std::string expected;
            for (std::string_view e : enders) {
              expected += expected.empty() ? "'" : " or '";
              expected += std::string(e) + "'";
            }
            Fail(t, "unexpected end of template: expected " + expected);
          }
          return body;
        default:
          Fail(t, "unexpected " + Describe(t));
      }
    }
  }

  // After "{%": parses one statement through its closing tag. Returns null for tags that produce
  // no node (generation markers).
  StmtPtr ParseStatement() {
    const Token& keyword = Peek();
    if (keyword.kind != TokenKind::kName) {
      Fail(keyword, "expected a statement keyword after '{%', found " + Describe(keyword));
    }
    const std::string word = keyword.text;
    auto stmt = MakeAt<Stmt>(keyword);
    Next();
    if (word == "if") return ParseIf(std::move(stmt));
    if (word == "for") return ParseFor(std::move(stmt));
    if (word == "set") return ParseSet(std::move(stmt));
    if (word == "macro") return ParseMacro(std::move(stmt));
    if (word == "call") return ParseCallBlock(std::move(stmt));
    if (word == "filter") return ParseFilterBlock(std::move(stmt));
    if (word == "break" || word == "continue") {
      stmt->kind = word == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      ExpectStmtClose(word.c_str());
      return stmt;
    }
    if (word == "do") {
      // jinja2.ext.do: evaluate for side effects (list.append), output nothing.
      stmt->kind = StmtKind::kSet;
      stmt->expr = ParseExpression();
      ExpectStmtClose("do");
      return stmt;
    }
    if (word == "generation" || word == "endgeneration") {
      // transformers' assistant-mask markers render nothing.
      ExpectStmtClose(word.c_str());
      return nullptr;
    }
    Fail(keyword, "unknown statement '" + word + "'");
  }

  StmtPtr ParseIf(StmtPtr stmt) {
    stmt->kind = StmtKind::kIf;
    ExprPtr cond = ParseExpression();
    ExpectStmtClose("if");
    while (true) {
      std::string ended;
      Body body = ParseBody({"elif", "else", "endif"}, &ended);
      stmt->branches.emplace_back(std::move(cond), std::move(body));
      if (ended == "endif") {
        ExpectStmtClose("endif");
        return stmt;
      }
      if (ended == "else") {
        ExpectStmtClose("else");
        Body else_body = ParseBody({"endif"}, &ended);
        ExpectStmtClose("endif");
        stmt->branches.emplace_back(nullptr, std::move(else_body));
        return stmt;
      }
      cond = ParseExpression();
      ExpectStmtClose("elif");
    }
  }

  std::vector<std::string> ParseTargetNames() {
    std::vector<std::string> names;
    const bool paren = SkipOp("(");
    do {
      names.push_back(ExpectName("a variable name"));
    } while (SkipOp(","));
    if (paren) ExpectOp(")");
    return names;
  }

  StmtPtr ParseFor(StmtPtr stmt) {
    stmt->kind = StmtKind::kFor;
    stmt->targets = ParseTargetNames();
    if (!SkipName("in")) Fail(Peek(), "expected 'in' in for loop, found " + Describe(Peek()));
    stmt->expr = ParseExpression(/*allow_condition=*/false);
    if (SkipName("if")) stmt->cond = ParseExpression(/*allow_condition=*/false);
    if (IsName("recursive")) Fail(Peek(), "recursive for loops are not supported");
    ExpectStmtClose("for");
    std::string ended;
    stmt->body = ParseBody({"else", "endfor"}, &ended);
    if (ended == "else") {
      ExpectStmtClose("else");
      stmt->else_body = ParseBody({"endfor"}, &ended);
    }
    ExpectStmtClose("endfor");
    return stmt;
  }

  StmtPtr ParseSet(StmtPtr stmt) {
    stmt->kind = StmtKind::kSet;
    stmt->targets.push_back(ExpectName("a variable name after 'set'"));
    if (SkipOp(".")) {
      stmt->target_attr = ExpectName("an attribute name");
    } else {
      while (SkipOp(",")) stmt->targets.push_back(ExpectName("a variable name"));
    }
    if (SkipOp("=")) {
      const Token& at = Peek();
      stmt->expr = ParseExpression();
      if (IsOp(",")) {  // set a, b = 1, 2
        auto tuple = MakeAt<Expr>(at);
        tuple->kind = ExprKind::kTuple;
        tuple->items.push_back(std::move(stmt->expr));
        while (SkipOp(",")) tuple->items.push_back(ParseExpression());
        stmt->expr = std::move(tuple);
      }
      ExpectStmtClose("set");
      return stmt;
    }
    if (stmt->targets.size() != 1 || !stmt->target_attr.empty()) {
      Fail(Peek(), "block set ('{% set x %}...{% endset %}') takes a single variable name");
    }
    ExpectStmtClose("set");
    std::string ended;
    stmt->body = ParseBody({"endset"}, &ended);
    ExpectStmtClose("endset");
    return stmt;
  }

  void ParseParams(Stmt& stmt) {
    ExpectOp("(");
    while (!IsOp(")")) {
      std::string name = ExpectName("a parameter name");
      ExprPtr default_value;
      if (SkipOp("=")) default_value = ParseExpression();
      stmt.params.emplace_back(std::move(name), std::move(default_value));
      if (!SkipOp(",")) break;
    }
    ExpectOp(")");
  }

  StmtPtr ParseMacro(StmtPtr stmt) {
    stmt->kind = StmtKind::kMacro;
    stmt->name = ExpectName("a macro name");
    ParseParams(*stmt);
    ExpectStmtClose("macro");
    std::string ended;
    stmt->body = ParseBody({"endmacro"}, &ended);
    ExpectStmtClose("endmacro");
    return stmt;
  }

  StmtPtr ParseCallBlock(StmtPtr stmt) {
    stmt->kind = StmtKind::kCallBlock;
    if (IsOp("(")) ParseParams(*stmt);
    const Token& at = Peek();
    stmt->expr = ParseExpression();
    if (stmt->expr->kind != ExprKind::kCall) Fail(at, "'{% call %}' needs a macro call");
    ExpectStmtClose("call");
    std::string ended;
    stmt->body = ParseBody({"endcall"}, &ended);
    ExpectStmtClose("endcall");
    return stmt;
  }

  StmtPtr ParseFilterBlock(StmtPtr stmt) {
    stmt->kind = StmtKind::kFilterBlock;
    ExprPtr chain;  // null operand: the block's rendered text goes there
    do {
      chain = ParseFilter(std::move(chain));
    } while (SkipOp("|"));
    stmt->expr = std::move(chain);
    ExpectStmtClose("filter");
    std::string ended;
    stmt->body = ParseBody({"endfilter"}, &ended);
    ExpectStmtClose("endfilter");
    return stmt;
  }

  // ---- expressions ----

  ExprPtr ParseExpression(bool allow_condition = true) {
    DepthGuard guard(this);
    ExprPtr expr = ParseOr();
    if (!allow_condition) return expr;
    while (IsName("if")) {
      const Token& at = Next();
      auto cond = MakeAt<Expr>(at);
      cond->kind = ExprKind::kCondExpr;
      cond->a = std::move(expr);
      cond->b = ParseOr();
      if (SkipName("else")) cond->c = ParseExpression();
      expr = std::move(cond);
    }
    return expr;
  }

  ExprPtr MakeBinary(const Token& at, std::string op, ExprPtr left, ExprPtr right) {
    auto node = MakeAt<Expr>(at);
    node->kind = ExprKind::kBinary;
    static const std::pair<const char*, BinaryOp> kOps[] = {
        {"and", BinaryOp::kAnd}, {"or", BinaryOp::kOr},  {"==", BinaryOp::kEq},
        {"!=", BinaryOp::kNe},   {"in", BinaryOp::kIn},  {"not in", BinaryOp::kNotIn},
        {"<", BinaryOp::kLt},    {"<=", BinaryOp::kLe},  {">", BinaryOp::kGt},
        {">=", BinaryOp::kGe},   {"~", BinaryOp::kConcat}};
    for (const auto& [text, value] : kOps) {
      if (op == text) node->op = value;
    }
    node->name = std::move(op);
    node->a = std::move(left);
    node->b = std::move(right);
    return node;
  }

  ExprPtr ParseOr() {
    ExprPtr left = ParseAnd();
    while (IsName("or")) {
      const Token& at = Next();
      left = MakeBinary(at, "or", std::move(left), ParseAnd());
    }
    return left;
  }

  ExprPtr ParseAnd() {
    ExprPtr left = ParseNot();
    while (IsName("and")) {
      const Token& at = Next();
      left = MakeBinary(at, "and", std::move(left), ParseNot());
    }
    return left;
  }

  ExprPtr ParseNot() {
    if (IsName("not")) {
      DepthGuard guard(this);
      const Token& at = Next();
      auto node = MakeAt<Expr>(at);
      node->kind = ExprKind::kUnary;
      node->name = "not";
      node->a = ParseNot();
      return node;
    }
    return ParseCompare();
  }

  ExprPtr ParseCompare() {
    ExprPtr left = ParseMath1();
    while (true) {
      const Token& at = Peek();
      std::string op;
      if (at.kind == TokenKind::kOp && (at.text == "==" || at.text == "!=" || at.text == "<" ||
                                         at.text == "<=" || at.text == ">" || at.text == ">=")) {
        op = at.text;
        Next();
      } else if (IsName("in")) {
        op = "in";
        Next();
      } else if (IsName("not") && IsName("in", 1)) {
        op = "not in";
        Next();
        Next();
      } else {
        return left;
      }
      left = MakeBinary(at, op, std::move(left), ParseMath1());
    }
  }

  template <typename Sub>
  ExprPtr ParseLeftAssoc(std::initializer_list<std::string_view> ops, Sub sub) {
    ExprPtr left = (this->*sub)();
    while (true) {
      const Token& at = Peek();
      bool matched = false;
      if (at.kind == TokenKind::kOp) {
        for (std::string_view op : ops) matched = matched || at.text == op;
      }
      if (!matched) return left;
      Next();
      left = MakeBinary(at, at.text, std::move(left), (this->*sub)());
    }
  }

  ExprPtr ParseMath1() { return ParseLeftAssoc({"+", "-"}, &Parser::ParseConcat); }
  ExprPtr ParseConcat() { return ParseLeftAssoc({"~"}, &Parser::ParseMath2); }
  ExprPtr ParseMath2() { return ParseLeftAssoc({"*", "/", "//", "%"}, &Parser::ParsePow); }
  ExprPtr ParsePow() { return ParseLeftAssoc({"**"}, &Parser::ParseUnaryFiltered); }
  ExprPtr ParseUnaryFiltered() { return ParseUnary(true); }

  ExprPtr ParseUnary(bool with_filter) {
    DepthGuard guard(this);
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      const Token& at = Next();
      node = MakeAt<Expr>(at);
      node->kind = ExprKind::kUnary;
      node->name = at.text;
      node->a = ParseUnary(false);
    } else {
      node = ParsePrimary();
    }
    node = ParsePostfix(std::move(node));
    if (with_filter) node = ParseFilterAndTests(std::move(node));
    return node;
  }

  ExprPtr ParsePrimary() {
    const Token& t = Peek();
    auto node = MakeAt<Expr>(t);
    switch (t.kind) {
      case TokenKind::kName: {
        Next();
        if (t.text == "true" || t.text == "True") {
          node->literal = Value::Bool(true);
        } else if (t.text == "false" || t.text == "False") {
          node->literal = Value::Bool(false);
        } else if (t.text == "none" || t.text == "None") {
          node->literal = Value::None();
        } else {
          node->kind = ExprKind::kName;
          node->name = t.text;
        }
        return node;
      }
      case TokenKind::kString: {
        std::string text = Next().text;
        while (Peek().kind == TokenKind::kString) text += Next().text;  // 'a' 'b' == 'ab'
        node->literal = Value::String(std::move(text));
        return node;
      }
      case TokenKind::kInt:
        node->literal = Value::Int(Next().int_value);
        return node;
      case TokenKind::kFloat:
        node->literal = Value::Float(Next().float_value);
        return node;
      case TokenKind::kOp:
        if (t.text == "(") {
          Next();
          node->kind = ExprKind::kTuple;
          if (SkipOp(")")) return node;
          ExprPtr first = ParseExpression();
          if (SkipOp(")")) return first;  // parenthesized expression
          node->items.push_back(std::move(first));
          while (SkipOp(",")) {
            if (IsOp(")")) break;
            node->items.push_back(ParseExpression());
          }
          ExpectOp(")");
          return node;
        }
        if (t.text == "[") {
          Next();
          node->kind = ExprKind::kList;
          while (!IsOp("]")) {
            node->items.push_back(ParseExpression());
            if (!SkipOp(",")) break;
          }
          ExpectOp("]");
          return node;
        }
        if (t.text == "{") {
          Next();
          node->kind = ExprKind::kDict;
          while (!IsOp("}")) {
            node->items.push_back(ParseExpression());
            ExpectOp(":");
            node->items.push_back(ParseExpression());
            if (!SkipOp(",")) break;
          }
          ExpectOp("}");
          return node;
        }
        break;
      default:
        break;
    }
    Fail(t, "unexpected " + Describe(t) + " in expression");
  }

  void ParseCallArgs(Expr& call) {
    ExpectOp("(");
    while (!IsOp(")")) {
      if (Peek().kind == TokenKind::kName && IsOp("=", 1)) {
        std::string key = Next().text;
        Next();
        call.kwargs.emplace_back(std::move(key), ParseExpression());
      } else {
        if (!call.kwargs.empty()) Fail(Peek(), "positional argument after keyword argument");
        call.items.push_back(ParseExpression());
      }
      if (!SkipOp(",")) break;
    }
    ExpectOp(")");
  }

  ExprPtr ParsePostfix(ExprPtr node) {
    while (true) {
      const Token& at = Peek();
      if (IsOp(".")) {
        Next();
        const Token& attr = Peek();
        auto get = MakeAt<Expr>(at);
        get->a = std::move(node);
        if (attr.kind == TokenKind::kName) {
          get->kind = ExprKind::kGetAttr;
          get->name = Next().text;
        } else if (attr.kind == TokenKind::kInt) {  // foo.0 == foo[0]
          get->kind = ExprKind::kGetItem;
          get->b = MakeAt<Expr>(attr);
          get->b->literal = Value::Int(Next().int_value);
        } else {
          Fail(attr, "expected an attribute name after '.', found " + Describe(attr));
        }
        node = std::move(get);
      } else if (IsOp("[")) {
        Next();
        node = ParseSubscript(at, std::move(node));
      } else if (IsOp("(")) {
        auto call = MakeAt<Expr>(at);
        call->line = node->line;  // errors point at the callee, not at '('
        call->column = node->column;
        call->kind = ExprKind::kCall;
        call->a = std::move(node);
        ParseCallArgs(*call);
        node = std::move(call);
      } else {
        return node;
      }
    }
  }

  ExprPtr ParseSubscript(const Token& at, ExprPtr object) {
    auto node = MakeAt<Expr>(at);
    node->a = std::move(object);
    ExprPtr start;
    if (!IsOp(":")) start = ParseExpression();
    if (!SkipOp(":")) {
      ExpectOp("]");
      node->kind = ExprKind::kGetItem;
      node->b = std::move(start);
      return node;
    }
    node->kind = ExprKind::kSlice;
    node->b = std::move(start);
    if (!IsOp(":") && !IsOp("]")) node->c = ParseExpression();
    if (SkipOp(":") && !IsOp("]")) node->d = ParseExpression();
    ExpectOp("]");
    return node;
  }

  ExprPtr ParseFilter(ExprPtr operand) {
    const Token& at = Peek();
    auto filter = MakeAt<Expr>(at);
    filter->kind = ExprKind::kFilter;
    filter->name = ExpectName("a filter name");
    while (SkipOp(".")) filter->name += "." + ExpectName("a filter name");
    filter->a = std::move(operand);
    if (IsOp("(")) ParseCallArgs(*filter);
    return filter;
  }

  ExprPtr ParseFilterAndTests(ExprPtr node) {
    while (true) {
      if (SkipOp("|")) {
        node = ParseFilter(std::move(node));
      } else if (IsName("is")) {
        const Token& at = Next();
        auto test = MakeAt<Expr>(at);
        test->kind = ExprKind::kTest;
        test->negated = SkipName("not");
        test->name = ExpectName("a test name after 'is'");
        test->a = std::move(node);
        const Token& next = Peek();
        if (IsOp("(")) {
          ParseCallArgs(*test);
        } else if ((next.kind == TokenKind::kName || next.kind == TokenKind::kString ||
                    next.kind == TokenKind::kInt || next.kind == TokenKind::kFloat || IsOp("[") ||
                    IsOp("{")) &&
                   !(next.kind == TokenKind::kName &&
                     (next.text == "else" || next.text == "or" || next.text == "and" ||
                      next.text == "if" || next.text == "in" || next.text == "is" ||
                      next.text == "not"))) {
          // `x is divisibleby 3`, `x is sameas none`: one argument without parentheses.
          test->items.push_back(ParsePostfix(ParsePrimary()));
        }
        node = std::move(test);
      } else if (IsOp("(")) {
        node = ParsePostfix(std::move(node));
      } else {
        return node;
      }
    }
  }

  const std::vector<Token>& tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

Body ParseTemplate(const std::vector<Token>& tokens) { return Parser(tokens).Run(); }

}  // namespace sparkstack::jinja
