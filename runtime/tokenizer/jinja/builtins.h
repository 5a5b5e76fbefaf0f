// Built-in filters, tests, methods of strings/lists/dicts, and global functions (range,
// namespace, raise_exception, strftime_now, dict). Each throws TemplateError on bad arguments.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_JINJA_BUILTINS_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_JINJA_BUILTINS_H_

#include <string>

#include "runtime/tokenizer/jinja/interpreter.h"
#include "runtime/tokenizer/jinja/value.h"

namespace sparkstack::jinja {

// `operand | name(args)`.
Value ApplyFilter(Interpreter& interp, const std::string& name, const Value& operand,
                  CallArgs& args);
// `operand is name(args)`.
bool ApplyTest(Interpreter& interp, const std::string& name, const Value& operand,
               const CallArgs& args);
// Whether `object.name` is a built-in method (str.startswith, dict.items, list.append, ...).
bool HasMethod(const Value& object, const std::string& name);
Value CallMethod(Interpreter& interp, const Value& object, const std::string& name,
                 CallArgs& args);
// `item in container` (substring, list member, dict key; nothing is in undefined).
bool Contains(const Value& container, const Value& item);
// Adds the global functions to `globals` (user variables added later override them).
void AddGlobalFunctions(Object& globals);

}  // namespace sparkstack::jinja

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_JINJA_BUILTINS_H_
