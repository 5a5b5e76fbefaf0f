// Argument and string helpers shared by the built-in filters, tests and methods.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_JINJA_BUILTINS_UTIL_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_JINJA_BUILTINS_UTIL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tokenizer/jinja/value.h"

namespace sparkstack::jinja {

// Typed argument access: positional `index`, else keyword `name`, else `fallback`. Throws a
// message naming `function` and the argument when the type is wrong.
std::string StringArg(const CallArgs& args, size_t index, const char* name,
                      const std::string& fallback, const char* function);
int64_t IntArg(const CallArgs& args, size_t index, const char* name, int64_t fallback,
               const char* function);
bool BoolArg(const CallArgs& args, size_t index, const char* name, bool fallback,
             const char* function);
// Null (or absent) means "not given".
const Value* OptionalArg(const CallArgs& args, size_t index, const char* name);

// Python str.strip/lstrip/rstrip: `chars` null strips Unicode white space.
std::string Strip(std::string_view s, const Value* chars, bool left, bool right);
// Python str.split(sep=None, maxsplit=-1).
std::vector<std::string> Split(const std::string& s, const Value* sep, int64_t maxsplit);
// Python str.replace(old, new, count=-1).
std::string Replace(const std::string& s, const std::string& from, const std::string& to,
                    int64_t count);
// Python str.title() / str.capitalize().
std::string PythonTitle(std::string_view s);
std::string Capitalize(std::string_view s);
// Splits into code points.
std::vector<std::string> Characters(const std::string& s);
// Items of a list, characters of a string, keys of a dict; empty for undefined. Throws otherwise.
std::vector<Value> Iterate(const Value& value, const char* function);
// Dotted attribute path ("a.b.0") lookup for sort/map/selectattr(attribute=...).
Value AttributePath(Interpreter& interp, const Value& item, const Value& path);

}  // namespace sparkstack::jinja

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_JINJA_BUILTINS_UTIL_H_
