// Tree-walking interpreter for parsed templates.
//
// Semantics follow Jinja as Hugging Face configures it for chat templates, with output formatting
// matched to @huggingface/jinja (the byte-for-byte reference of our conformance tests): `none` and
// undefined print nothing, booleans print true/false, lists and dicts print as JSON. Scoping: a for
// loop has its own scope (assignments inside do not leak out; use namespace()), if blocks do not;
// macros see the caller's variables plus their parameters, as @huggingface/jinja does.
//
// Errors are TemplateError exceptions inside this module only; ChatTemplate turns them into
// absl::Status. Every render is bounded: call depth, loop iterations and output size have limits,
// so a hostile template fails cleanly instead of hanging or exhausting the stack.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_JINJA_INTERPRETER_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_JINJA_INTERPRETER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "runtime/tokenizer/jinja/ast.h"
#include "runtime/tokenizer/jinja/value.h"

namespace sparkstack::jinja {

struct RenderLimits {
  int max_depth = 400;                        // nested evaluation frames (macro recursion included)
  int64_t max_iterations = 1'000'000;         // loop iterations + macro calls + built-up items
  size_t max_string_bytes = 64u << 20;        // any string, the output included
};

class Interpreter {
 public:
  explicit Interpreter(RenderLimits limits = {}) : limits_(limits) {}

  // Renders `body` with the top-level variables in `globals` (an object). Throws TemplateError.
  std::string Render(const Body& body, const Object& globals);

  // For built-ins.
  Value Call(const Value& callee, CallArgs& args, const char* what);
  // Counts `n` units of work against max_iterations; throws when exhausted.
  void CountWork(int64_t n);
  // Throws if a string of `bytes` would exceed max_string_bytes.
  void CheckStringSize(size_t bytes) const;
  Value GetAttr(const Value& object, const std::string& name);
  Value GetItem(const Value& object, const Value& key);

 private:
  struct Scope {
    absl::flat_hash_map<std::string, Value> vars;
    Scope* parent = nullptr;
  };
  enum class Flow { kNormal, kBreak, kContinue };

  class DepthGuard;

  Value Lookup(const Scope& scope, const std::string& name) const;
  Flow ExecBody(const Body& body, Scope& scope, std::string& out);
  Flow Exec(const Stmt& stmt, Scope& scope, std::string& out);
  Flow ExecFor(const Stmt& stmt, Scope& scope, std::string& out);
  void ExecSet(const Stmt& stmt, Scope& scope);
  void ExecCallBlock(const Stmt& stmt, Scope& scope, std::string& out);
  Value MakeMacro(const Stmt& stmt, std::string display_name, Scope* fixed_parent,
                  std::shared_ptr<bool> alive);
  void Assign(const Stmt& stmt, Scope& scope, const Value& value);

  Value Eval(const Expr& expr, Scope& scope);
  Value EvalBinary(const Expr& expr, Scope& scope);
  Value EvalCall(const Expr& expr, Scope& scope);
  Value EvalSlice(const Expr& expr, Scope& scope);
  CallArgs EvalArgs(const Expr& expr, Scope& scope);
  Value ApplyFilterChain(const Expr& filter, const Value* block_text, Scope& scope);

  void AppendOutput(std::string& out, const std::string& text) const;

  RenderLimits limits_;
  int depth_ = 0;
  int64_t work_ = 0;
  // Scope of the innermost call being evaluated; macros resolve free variables through it.
  Scope* call_scope_ = nullptr;
  // Position of the node being evaluated, for errors raised by built-ins.
  int line_ = 0;
  int column_ = 0;
};

}  // namespace sparkstack::jinja

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_JINJA_INTERPRETER_H_
