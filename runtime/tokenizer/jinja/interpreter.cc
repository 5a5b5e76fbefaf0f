#include "runtime/tokenizer/jinja/interpreter.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>

#include "runtime/tokenizer/jinja/builtins.h"
#include "runtime/tokenizer/jinja/unicode.h"

namespace sparkstack::jinja {

class Interpreter::DepthGuard {
 public:
  explicit DepthGuard(Interpreter* interp) : interp_(interp) {
    if (++interp_->depth_ > interp_->limits_.max_depth) {
      --interp_->depth_;
      ThrowError("recursion too deep (limit " + std::to_string(interp_->limits_.max_depth) +
                 " nested calls/expressions)");
    }
  }
  ~DepthGuard() { --interp_->depth_; }

 private:
  Interpreter* interp_;
};

std::string Interpreter::Render(const Body& body, const Object& globals) {
  Scope root;
  for (const auto& [name, value] : globals.items) root.vars[name] = value;
  std::string out;
  call_scope_ = &root;
  const Flow flow = ExecBody(body, root, out);
  if (flow != Flow::kNormal) ThrowError("'break' or 'continue' outside a for loop");
  return out;
}

void Interpreter::CountWork(int64_t n) {
  work_ += n;
  if (work_ > limits_.max_iterations) {
    ThrowError("template did too much work (over " + std::to_string(limits_.max_iterations) +
               " loop iterations/calls); is there an endless loop?");
  }
}

void Interpreter::CheckStringSize(size_t bytes) const {
  if (bytes > limits_.max_string_bytes) {
    ThrowError("string of " + std::to_string(bytes) + " bytes exceeds the limit of " +
               std::to_string(limits_.max_string_bytes));
  }
}

void Interpreter::AppendOutput(std::string& out, const std::string& text) const {
  CheckStringSize(out.size() + text.size());
  out += text;
}

Value Interpreter::Lookup(const Scope& scope, const std::string& name) const {
  for (const Scope* s = &scope; s != nullptr; s = s->parent) {
    const auto it = s->vars.find(name);
    if (it != s->vars.end()) return it->second;
  }
  return Value();
}

// ---------------------------------------------------------------- statements

Interpreter::Flow Interpreter::ExecBody(const Body& body, Scope& scope, std::string& out) {
  DepthGuard guard(this);
  for (const StmtPtr& stmt : body) {
    const Flow flow = Exec(*stmt, scope, out);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::Exec(const Stmt& stmt, Scope& scope, std::string& out) {
  try {
    switch (stmt.kind) {
      case StmtKind::kText:
        AppendOutput(out, stmt.text);
        return Flow::kNormal;
      case StmtKind::kOutput:
        AppendOutput(out, Eval(*stmt.expr, scope).ToString());
        return Flow::kNormal;
      case StmtKind::kIf:
        for (const auto& [cond, body] : stmt.branches) {
          if (cond == nullptr || Eval(*cond, scope).Truthy()) return ExecBody(body, scope, out);
        }
        return Flow::kNormal;
      case StmtKind::kFor:
        return ExecFor(stmt, scope, out);
      case StmtKind::kSet:
        ExecSet(stmt, scope);
        return Flow::kNormal;
      case StmtKind::kMacro:
        scope.vars[stmt.name] = MakeMacro(stmt, "'" + stmt.name + "'", nullptr, nullptr);
        return Flow::kNormal;
      case StmtKind::kCallBlock:
        ExecCallBlock(stmt, scope, out);
        return Flow::kNormal;
      case StmtKind::kFilterBlock: {
        std::string text;
        const Flow flow = ExecBody(stmt.body, scope, text);
        const Value block = Value::String(std::move(text));
        AppendOutput(out, ApplyFilterChain(*stmt.expr, &block, scope).ToString());
        return flow;
      }
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
    }
  } catch (TemplateError& e) {
    if (e.line == 0) {
      e.line = stmt.line;
      e.column = stmt.column;
    }
    throw;
  }
  return Flow::kNormal;
}

void Interpreter::Assign(const Stmt& stmt, Scope& scope, const Value& value) {
  if (!stmt.target_attr.empty()) {
    const Value target = Lookup(scope, stmt.targets[0]);
    if (!target.is_namespace()) {
      ThrowError("cannot set attribute '" + stmt.target_attr + "' on '" + stmt.targets[0] +
                 "' (a " + target.TypeName() + "); only namespace() objects take attributes");
    }
    target.object().Set(stmt.target_attr, value);
    return;
  }
  if (stmt.targets.size() == 1) {
    scope.vars[stmt.targets[0]] = value;
    return;
  }
  if (!value.is_array()) {
    ThrowError(std::string("cannot unpack a ") + value.TypeName() + " into " +
               std::to_string(stmt.targets.size()) + " variables");
  }
  if (value.array().size() != stmt.targets.size()) {
    ThrowError("cannot unpack " + std::to_string(value.array().size()) + " values into " +
               std::to_string(stmt.targets.size()) + " variables");
  }
  for (size_t i = 0; i < stmt.targets.size(); ++i) scope.vars[stmt.targets[i]] = value.array()[i];
}

void Interpreter::ExecSet(const Stmt& stmt, Scope& scope) {
  if (stmt.expr == nullptr) {  // block set
    std::string text;
    ExecBody(stmt.body, scope, text);
    Assign(stmt, scope, Value::String(std::move(text)));
    return;
  }
  const Value value = Eval(*stmt.expr, scope);
  if (stmt.targets.empty()) return;  // {% do expr %}
  Assign(stmt, scope, value);
}

Interpreter::Flow Interpreter::ExecFor(const Stmt& stmt, Scope& scope, std::string& out) {
  const Value iterable = Eval(*stmt.expr, scope);
  Array items;
  switch (iterable.kind()) {
    case Value::Kind::kArray:
      items = iterable.array();  // a snapshot: the body may append to the list
      break;
    case Value::Kind::kObject:
      for (const auto& [key, value] : iterable.object().items) items.push_back(Value::String(key));
      break;
    case Value::Kind::kString: {
      const std::vector<size_t> offsets = CodePointOffsets(iterable.str());
      for (size_t i = 0; i + 1 < offsets.size(); ++i) {
        items.push_back(
            Value::String(iterable.str().substr(offsets[i], offsets[i + 1] - offsets[i])));
      }
      break;
    }
    case Value::Kind::kUndefined:
      break;  // Jinja iterates an undefined value as empty
    default:
      ThrowError(std::string("cannot iterate over a ") + iterable.TypeName());
  }
  Scope loop_scope;
  loop_scope.parent = &scope;
  Stmt binder;  // reuses Assign's unpacking rules for the loop targets
  binder.targets = stmt.targets;
  if (stmt.cond != nullptr) {
    Array kept;
    for (const Value& item : items) {
      CountWork(1);
      Scope test_scope;
      test_scope.parent = &loop_scope;
      Assign(binder, test_scope, item);
      if (Eval(*stmt.cond, test_scope).Truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    ExecBody(stmt.else_body, loop_scope, out);
    return Flow::kNormal;
  }
  const int64_t n = static_cast<int64_t>(items.size());
  // One loop object per loop, updated in place each iteration (as Jinja's LoopContext is).
  auto position = std::make_shared<int64_t>(0);
  Object loop_object;
  for (const char* key : {"index", "index0", "revindex", "revindex0", "first", "last", "length",
                          "depth", "depth0", "previtem", "nextitem"}) {
    loop_object.items.emplace_back(key, Value());
  }
  loop_object.items.emplace_back(
      "cycle", Value::MakeFunction("loop.cycle", [position](Interpreter&, CallArgs& args) {
        if (args.positional.empty()) ThrowError("loop.cycle() needs at least one value");
        return args.positional[static_cast<size_t>(*position) % args.positional.size()];
      }));
  const Value loop = Value::MakeObject(std::move(loop_object));
  std::vector<std::pair<std::string, Value>>& fields = loop.object().items;
  fields[6].second = Value::Int(n);
  fields[7].second = Value::Int(1);
  fields[8].second = Value::Int(0);
  for (int64_t i = 0; i < n; ++i) {
    CountWork(1);
    *position = i;
    fields[0].second = Value::Int(i + 1);
    fields[1].second = Value::Int(i);
    fields[2].second = Value::Int(n - i);
    fields[3].second = Value::Int(n - i - 1);
    fields[4].second = Value::Bool(i == 0);
    fields[5].second = Value::Bool(i == n - 1);
    fields[9].second = i > 0 ? items[i - 1] : Value();
    fields[10].second = i + 1 < n ? items[i + 1] : Value();
    loop_scope.vars["loop"] = loop;
    Assign(binder, loop_scope, items[i]);
    const Flow flow = ExecBody(stmt.body, loop_scope, out);
    if (flow == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

Value Interpreter::MakeMacro(const Stmt& stmt, std::string display_name, Scope* fixed_parent,
                             std::shared_ptr<bool> alive) {
  const Stmt* def = &stmt;
  return Value::MakeFunction(
      display_name, [def, display_name, fixed_parent, alive](Interpreter& interp, CallArgs& args) {
        if (alive != nullptr && !*alive) {
          ThrowError("caller() used after its {% call %} block ended");
        }
        interp.CountWork(1);
        DepthGuard guard(&interp);
        Scope scope;
        // Free variables resolve in the caller's scope (or the call block's, for caller()).
        scope.parent = fixed_parent != nullptr ? fixed_parent : interp.call_scope_;
        std::vector<std::pair<std::string, Value>> keyword = args.keyword;
        std::vector<const std::pair<std::string, ExprPtr>*> pending_defaults;
        for (size_t i = 0; i < def->params.size(); ++i) {
          const auto& [name, default_expr] = def->params[i];
          Value value;
          bool bound = false;
          if (i < args.positional.size()) {
            value = args.positional[i];
            bound = true;
          } else {
            for (auto it = keyword.begin(); it != keyword.end(); ++it) {
              if (it->first == name) {
                value = it->second;
                keyword.erase(it);
                bound = true;
                break;
              }
            }
          }
          if (!bound && default_expr != nullptr) pending_defaults.push_back(&def->params[i]);
          scope.vars[name] = value;
        }
        if (args.positional.size() > def->params.size()) {
          Array varargs(args.positional.begin() + static_cast<ptrdiff_t>(def->params.size()),
                        args.positional.end());
          scope.vars["varargs"] = Value::MakeArray(std::move(varargs));
        } else {
          scope.vars["varargs"] = Value::MakeArray();
        }
        Object kwargs;
        for (auto& [k, v] : keyword) kwargs.Set(k, v);
        scope.vars["kwargs"] = Value::MakeObject(std::move(kwargs));
        for (const auto* param : pending_defaults) {
          scope.vars[param->first] = interp.Eval(*param->second, scope);
        }
        std::string out;
        Scope* saved = interp.call_scope_;
        interp.ExecBody(def->body, scope, out);
        interp.call_scope_ = saved;
        return Value::String(std::move(out));
      });
}

void Interpreter::ExecCallBlock(const Stmt& stmt, Scope& scope, std::string& out) {
  auto alive = std::make_shared<bool>(true);
  Scope call_scope;
  call_scope.parent = &scope;
  call_scope.vars["caller"] = MakeMacro(stmt, "caller", &scope, alive);
  Value result;
  try {
    result = EvalCall(*stmt.expr, call_scope);
  } catch (...) {
    *alive = false;
    throw;
  }
  *alive = false;
  AppendOutput(out, result.ToString());
}

// ---------------------------------------------------------------- expressions

CallArgs Interpreter::EvalArgs(const Expr& expr, Scope& scope) {
  CallArgs args;
  args.positional.reserve(expr.items.size());
  for (const ExprPtr& item : expr.items) args.positional.push_back(Eval(*item, scope));
  for (const auto& [key, value] : expr.kwargs) args.keyword.emplace_back(key, Eval(*value, scope));
  return args;
}

Value Interpreter::Call(const Value& callee, CallArgs& args, const char* what) {
  if (!callee.is_function()) {
    ThrowError(std::string(what) + " is not callable (it is " +
               (callee.is_undefined() ? std::string("undefined") : std::string("a ") +
                                                                       callee.TypeName()) +
               ")");
  }
  return callee.function().call(*this, args);
}

Value Interpreter::EvalCall(const Expr& expr, Scope& scope) {
  const Value callee = Eval(*expr.a, scope);
  CallArgs args = EvalArgs(expr, scope);
  std::string what = "value";
  if (expr.a->kind == ExprKind::kName) what = "'" + expr.a->name + "'";
  if (expr.a->kind == ExprKind::kGetAttr) what = "'" + expr.a->name + "'";
  Scope* saved = call_scope_;
  call_scope_ = &scope;
  Value result;
  try {
    result = Call(callee, args, what.c_str());
  } catch (...) {
    call_scope_ = saved;
    throw;
  }
  call_scope_ = saved;
  return result;
}

Value Interpreter::GetAttr(const Value& object, const std::string& name) {
  if (object.is_mapping_like()) {
    if (const Value* found = object.object().Find(name)) return *found;
  }
  if (HasMethod(object, name)) {
    const Value bound = object;
    return Value::MakeFunction(name, [bound, name](Interpreter& interp, CallArgs& args) {
      return CallMethod(interp, bound, name, args);
    });
  }
  return Value();
}

Value Interpreter::GetItem(const Value& object, const Value& key) {
  if (object.is_mapping_like()) {
    if (key.is_string()) {
      if (const Value* found = object.object().Find(key.str())) return *found;
    }
    return Value();
  }
  if ((object.is_array() || object.is_string()) && (key.is_int() || key.is_bool())) {
    const int64_t raw = key.is_int() ? key.int_value() : key.bool_value();
    if (object.is_array()) {
      const int64_t n = static_cast<int64_t>(object.array().size());
      const int64_t i = raw < 0 ? raw + n : raw;
      if (i < 0 || i >= n) return Value();
      return object.array()[static_cast<size_t>(i)];
    }
    const std::vector<size_t> offsets = CodePointOffsets(object.str());
    const int64_t n = static_cast<int64_t>(offsets.size()) - 1;
    const int64_t i = raw < 0 ? raw + n : raw;
    if (i < 0 || i >= n) return Value();
    return Value::String(object.str().substr(offsets[i], offsets[i + 1] - offsets[i]));
  }
  if (key.is_string()) return GetAttr(object, key.str());
  return Value();
}

Value Interpreter::EvalSlice(const Expr& expr, Scope& scope) {
  const Value object = Eval(*expr.a, scope);
  auto bound = [&](const ExprPtr& e, const char* what) -> std::optional<int64_t> {
    if (e == nullptr) return std::nullopt;
    const Value v = Eval(*e, scope);
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (!v.is_int()) ThrowError(std::string("slice ") + what + " must be an integer");
    return v.int_value();
  };
  const std::optional<int64_t> start = bound(expr.b, "start");
  const std::optional<int64_t> stop = bound(expr.c, "stop");
  const int64_t step = bound(expr.d, "step").value_or(1);
  if (step == 0) ThrowError("slice step cannot be zero");
  std::vector<size_t> offsets;
  int64_t n = 0;
  if (object.is_array()) {
    n = static_cast<int64_t>(object.array().size());
  } else if (object.is_string()) {
    offsets = CodePointOffsets(object.str());
    n = static_cast<int64_t>(offsets.size()) - 1;
  } else {
    ThrowError(std::string("cannot slice a ") + object.TypeName());
  }
  // Python's slice.indices().
  auto clamp = [&](std::optional<int64_t> v, int64_t dflt, int64_t lo, int64_t hi) {
    if (!v) return dflt;
    int64_t x = *v < 0 ? *v + n : *v;
    return x < lo ? lo : x > hi ? hi : x;
  };
  const int64_t begin = step > 0 ? clamp(start, 0, 0, n) : clamp(start, n - 1, -1, n - 1);
  const int64_t end = step > 0 ? clamp(stop, n, 0, n) : clamp(stop, -1, -1, n - 1);
  std::vector<int64_t> picked;
  for (int64_t i = begin; step > 0 ? i < end : i > end; i += step) picked.push_back(i);
  if (object.is_array()) {
    Array out;
    out.reserve(picked.size());
    for (int64_t i : picked) out.push_back(object.array()[static_cast<size_t>(i)]);
    return Value::MakeArray(std::move(out));
  }
  std::string out;
  for (int64_t i : picked) out.append(object.str(), offsets[i], offsets[i + 1] - offsets[i]);
  return Value::String(std::move(out));
}

Value Interpreter::ApplyFilterChain(const Expr& filter, const Value* block_text, Scope& scope) {
  // In a {% filter %} block the innermost operand is null and stands for the block's text.
  Value operand;
  if (filter.a == nullptr) {
    if (block_text == nullptr) ThrowError("filter without an operand");
    operand = *block_text;
  } else if (filter.a->kind == ExprKind::kFilter) {
    DepthGuard guard(this);
    operand = ApplyFilterChain(*filter.a, block_text, scope);
  } else {
    operand = Eval(*filter.a, scope);
  }
  CallArgs args = EvalArgs(filter, scope);
  return ApplyFilter(*this, filter.name, operand, args);
}

Value Interpreter::Eval(const Expr& expr, Scope& scope) {
  DepthGuard guard(this);
  try {
    switch (expr.kind) {
      case ExprKind::kLiteral:
        return expr.literal;
      case ExprKind::kName:
        return Lookup(scope, expr.name);
      case ExprKind::kList:
      case ExprKind::kTuple: {
        Array items;
        items.reserve(expr.items.size());
        for (const ExprPtr& item : expr.items) items.push_back(Eval(*item, scope));
        return Value::MakeArray(std::move(items));
      }
      case ExprKind::kDict: {
        Object object;
        for (size_t i = 0; i + 1 < expr.items.size(); i += 2) {
          const Value key = Eval(*expr.items[i], scope);
          if (!key.is_string()) {
            ThrowError(std::string("dict keys must be strings, found a ") + key.TypeName());
          }
          object.Set(key.str(), Eval(*expr.items[i + 1], scope));
        }
        return Value::MakeObject(std::move(object));
      }
      case ExprKind::kGetAttr:
        return GetAttr(Eval(*expr.a, scope), expr.name);
      case ExprKind::kGetItem: {
        const Value object = Eval(*expr.a, scope);
        return GetItem(object, Eval(*expr.b, scope));
      }
      case ExprKind::kSlice:
        return EvalSlice(expr, scope);
      case ExprKind::kCall:
        return EvalCall(expr, scope);
      case ExprKind::kFilter:
        return ApplyFilterChain(expr, nullptr, scope);
      case ExprKind::kTest: {
        const Value operand = Eval(*expr.a, scope);
        const CallArgs args = EvalArgs(expr, scope);
        const bool result = ApplyTest(*this, expr.name, operand, args);
        return Value::Bool(expr.negated ? !result : result);
      }
      case ExprKind::kUnary: {
        const Value v = Eval(*expr.a, scope);
        if (expr.name == "not") return Value::Bool(!v.Truthy());
        if (v.is_int() || v.is_bool()) {
          const int64_t i = v.is_int() ? v.int_value() : v.bool_value();
          if (expr.name == "-" && i == INT64_MIN) ThrowError("integer overflow in negation");
          return Value::Int(expr.name == "-" ? -i : i);
        }
        if (v.is_float()) return Value::Float(expr.name == "-" ? -v.float_value() : v.float_value());
        ThrowError("bad operand type for unary " + expr.name + ": " + v.TypeName());
      }
      case ExprKind::kBinary:
        return EvalBinary(expr, scope);
      case ExprKind::kCondExpr:
        if (Eval(*expr.b, scope).Truthy()) return Eval(*expr.a, scope);
        return expr.c != nullptr ? Eval(*expr.c, scope) : Value();
    }
  } catch (TemplateError& e) {
    if (e.line == 0) {
      e.line = expr.line;
      e.column = expr.column;
    }
    throw;
  }
  return Value();
}

namespace {

bool IsIntLike(const Value& v) { return v.is_int() || v.is_bool(); }
int64_t IntOf(const Value& v) { return v.is_int() ? v.int_value() : (v.bool_value() ? 1 : 0); }
bool IsNumeric(const Value& v) { return v.is_number() || v.is_bool(); }

[[noreturn]] void Unsupported(const std::string& op, const Value& a, const Value& b) {
  ThrowError("unsupported operand types for " + op + ": " + a.TypeName() + " and " +
             b.TypeName());
}

Value Arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (IsIntLike(a) && IsIntLike(b)) {
    const int64_t x = IntOf(a), y = IntOf(b);
    int64_t r = 0;
    if (op == "+") {
      if (!__builtin_add_overflow(x, y, &r)) return Value::Int(r);
    } else if (op == "-") {
      if (!__builtin_sub_overflow(x, y, &r)) return Value::Int(r);
    } else if (op == "*") {
      if (!__builtin_mul_overflow(x, y, &r)) return Value::Int(r);
    } else if (op == "//" || op == "%") {
      if (y == 0) ThrowError("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) ThrowError("integer overflow in division");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors
        q -= 1;
        m += y;
      }
      return Value::Int(op == "//" ? q : m);
    } else if (op == "**" && y >= 0) {
      if (x == 0 || x == 1) return Value::Int(y == 0 ? 1 : x);
      if (x == -1) return Value::Int(y % 2 == 0 ? 1 : -1);
      int64_t result = 1;
      bool overflow = y > 63;  // |x| >= 2
      for (int64_t i = 0; i < y && !overflow; ++i) overflow = __builtin_mul_overflow(result, x, &result);
      if (!overflow) return Value::Int(result);
    }
    if (op != "/" && op != "**") ThrowError("integer overflow in " + op);
  }
  const double x = a.AsDouble(), y = b.AsDouble();
  if (op == "+") return Value::Float(x + y);
  if (op == "-") return Value::Float(x - y);
  if (op == "*") return Value::Float(x * y);
  if (op == "/") {
    if (y == 0) ThrowError("division by zero");
    return Value::Float(x / y);
  }
  if (op == "//") {
    if (y == 0) ThrowError("float floor division by zero");
    return Value::Float(std::floor(x / y));
  }
  if (op == "%") {
    if (y == 0) ThrowError("float modulo by zero");
    double m = std::fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return Value::Float(m);
  }
  if (op == "**") {
    if (x == 0 && y < 0) ThrowError("0.0 cannot be raised to a negative power");
    const double r = std::pow(x, y);
    if (!std::isfinite(r)) ThrowError("exponentiation result is not a finite real number");
    return Value::Float(r);
  }
  Unsupported(op, a, b);
}

}  // namespace

Value Interpreter::EvalBinary(const Expr& expr, Scope& scope) {
  const std::string& op = expr.name;
  const Value a = Eval(*expr.a, scope);
  if (expr.op == BinaryOp::kAnd) return a.Truthy() ? Eval(*expr.b, scope) : a;
  if (expr.op == BinaryOp::kOr) return a.Truthy() ? a : Eval(*expr.b, scope);
  const Value b = Eval(*expr.b, scope);
  switch (expr.op) {
    case BinaryOp::kEq:
      return Value::Bool(Equals(a, b));
    case BinaryOp::kNe:
      return Value::Bool(!Equals(a, b));
    case BinaryOp::kIn:
      return Value::Bool(Contains(b, a));
    case BinaryOp::kNotIn:
      return Value::Bool(!Contains(b, a));
    case BinaryOp::kLt:
      return Value::Bool(Compare(a, b) < 0);
    case BinaryOp::kLe:
      return Value::Bool(Compare(a, b) <= 0);
    case BinaryOp::kGt:
      return Value::Bool(Compare(a, b) > 0);
    case BinaryOp::kGe:
      return Value::Bool(Compare(a, b) >= 0);
    case BinaryOp::kConcat: {
      std::string left = a.ToString();
      const std::string right = b.ToString();
      CheckStringSize(left.size() + right.size());
      return Value::String(left + right);
    }
    case BinaryOp::kAnd:
    case BinaryOp::kOr:
    case BinaryOp::kOther:
      break;
  }
  if (a.is_undefined() || b.is_undefined()) {
    ThrowError("cannot apply '" + op + "' to an undefined value (" + a.TypeName() + " " + op +
               " " + b.TypeName() + ")");
  }
  if (op == "+") {
    if (a.is_array() && b.is_array()) {
      CountWork(static_cast<int64_t>(a.array().size() + b.array().size()));
      Array joined = a.array();
      joined.insert(joined.end(), b.array().begin(), b.array().end());
      return Value::MakeArray(std::move(joined));
    }
    // Like @huggingface/jinja, a string plus a number or boolean concatenates.
    if ((a.is_string() && (b.is_string() || IsNumeric(b))) || (b.is_string() && IsNumeric(a))) {
      const std::string left = a.ToString(), right = b.ToString();
      CheckStringSize(left.size() + right.size());
      return Value::String(left + right);
    }
  }
  if (op == "*" && (a.is_string() || a.is_array() || b.is_string() || b.is_array())) {
    const Value& seq = (a.is_string() || a.is_array()) ? a : b;
    const Value& count = (a.is_string() || a.is_array()) ? b : a;
    if (!IsIntLike(count)) Unsupported(op, a, b);
    const int64_t times = std::max<int64_t>(0, IntOf(count));
    if (seq.is_string()) {
      CheckStringSize(seq.str().size() * static_cast<size_t>(std::min<int64_t>(times, 1 << 30)));
      std::string out;
      for (int64_t i = 0; i < times; ++i) out += seq.str();
      return Value::String(std::move(out));
    }
    CountWork(static_cast<int64_t>(seq.array().size()) * times);
    Array out;
    for (int64_t i = 0; i < times; ++i) out.insert(out.end(), seq.array().begin(), seq.array().end());
    return Value::MakeArray(std::move(out));
  }
  if (IsNumeric(a) && IsNumeric(b)) return Arithmetic(op, a, b);
  Unsupported(op, a, b);
}

}  // namespace sparkstack::jinja
