// Tests, methods of built-in types, global functions.
#include "runtime/tokenizer/jinja/builtins.h"

#include <cmath>
#include <ctime>

#include "runtime/tokenizer/jinja/builtins_util.h"
#include "runtime/tokenizer/jinja/unicode.h"

namespace sparkstack::jinja {
namespace {

const Value& TestOperand(const CallArgs& args, const std::string& test) {
  if (args.positional.empty()) ThrowError("test '" + test + "' needs an argument");
  return args.positional[0];
}

bool AllCased(const std::string& s, bool upper) {
  // Python str.isupper()/islower(): at least one cased character, none of the other case.
  bool any = false;
  size_t i = 0;
  while (i < s.size()) {
    size_t len = 1;
    const uint32_t cp = DecodeUtf8(s, i, &len);
    i += len;
    const bool is_lower = ToUpperCodePoint(cp) != cp;
    const bool is_upper = ToLowerCodePoint(cp) != cp;
    if (upper ? is_lower : is_upper) return false;
    any = any || is_lower || is_upper;
  }
  return any;
}

template <typename Pred>
bool AllCodePoints(const std::string& s, Pred pred) {
  if (s.empty()) return false;
  size_t i = 0;
  while (i < s.size()) {
    size_t len = 1;
    const uint32_t cp = DecodeUtf8(s, i, &len);
    if (!pred(cp)) return false;
    i += len;
  }
  return true;
}

bool MatchesAffix(const std::string& s, const Value& affix, bool prefix, const char* method) {
  auto one = [&](const Value& a) {
    if (!a.is_string()) ThrowError(std::string(method) + ": argument must be a string or a tuple of strings");
    const std::string& t = a.str();
    if (t.size() > s.size()) return false;
    return prefix ? s.compare(0, t.size(), t) == 0 : s.compare(s.size() - t.size(), t.size(), t) == 0;
  };
  if (affix.is_array()) {
    for (const Value& a : affix.array()) {
      if (one(a)) return true;
    }
    return false;
  }
  return one(affix);
}

Value StrFormat(const std::string& format, const CallArgs& args) {
  // str.format with {}, {0} and {name} fields (no format specs).
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (c == '}' && i + 1 < format.size() && format[i + 1] == '}') {
      out.push_back('}');
      ++i;
      continue;
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    const size_t close = format.find('}', i);
    if (close == std::string::npos) ThrowError("format: single '{' in format string");
    std::string field = format.substr(i + 1, close - i - 1);
    if (const size_t colon = field.find(':'); colon != std::string::npos) field.resize(colon);
    const Value* arg = nullptr;
    if (field.empty()) {
      arg = auto_index < args.positional.size() ? &args.positional[auto_index] : nullptr;
      ++auto_index;
    } else if (field.find_first_not_of("0123456789") == std::string::npos) {
      const size_t index = std::stoul(field.substr(0, 9));
      arg = index < args.positional.size() ? &args.positional[index] : nullptr;
    } else {
      arg = args.Keyword(field);
    }
    if (arg == nullptr) ThrowError("format: no argument for field '{" + field + "}'");
    out += arg->ToString();
    i = close;
  }
  return Value::String(std::move(out));
}

Value StringMethod(Interpreter& interp, const std::string& s, const std::string& name,
                   CallArgs& args) {
  if (name == "upper") return Value::String(ToUpperUtf8(s));
  if (name == "lower") return Value::String(ToLowerUtf8(s));
  if (name == "title") return Value::String(PythonTitle(s));
  if (name == "capitalize") return Value::String(Capitalize(s));
  if (name == "strip") return Value::String(Strip(s, OptionalArg(args, 0, "chars"), true, true));
  if (name == "lstrip") return Value::String(Strip(s, OptionalArg(args, 0, "chars"), true, false));
  if (name == "rstrip") return Value::String(Strip(s, OptionalArg(args, 0, "chars"), false, true));
  if (name == "startswith" || name == "endswith") {
    const Value* affix = args.Get(0, "prefix");
    if (affix == nullptr) ThrowError(name + "() needs an argument");
    return Value::Bool(MatchesAffix(s, *affix, name == "startswith", name.c_str()));
  }
  if (name == "split" || name == "rsplit") {
    const int64_t maxsplit = IntArg(args, 1, "maxsplit", -1, name.c_str());
    if (name == "rsplit" && maxsplit >= 0) ThrowError("rsplit() with maxsplit is not supported");
    Array out;
    for (std::string& part : Split(s, OptionalArg(args, 0, "sep"), maxsplit)) {
      out.push_back(Value::String(std::move(part)));
    }
    interp.CountWork(static_cast<int64_t>(out.size()));
    return Value::MakeArray(std::move(out));
  }
  if (name == "splitlines") {
    Array out;
    size_t start = 0;
    while (start < s.size()) {
      const size_t nl = s.find('\n', start);
      if (nl == std::string::npos) {
        out.push_back(Value::String(s.substr(start)));
        break;
      }
      size_t end = nl;
      if (end > start && s[end - 1] == '\r') --end;
      out.push_back(Value::String(s.substr(start, end - start)));
      start = nl + 1;
    }
    return Value::MakeArray(std::move(out));
  }
  if (name == "replace") {
    const Value* from = args.Get(0, "old");
    const Value* to = args.Get(1, "new");
    if (from == nullptr || to == nullptr || !from->is_string() || !to->is_string()) {
      ThrowError("replace() needs two string arguments");
    }
    std::string out = Replace(s, from->str(), to->str(), IntArg(args, 2, "count", -1, "replace"));
    interp.CheckStringSize(out.size());
    return Value::String(std::move(out));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "count") {
    const std::string sub = StringArg(args, 0, "sub", "", name.c_str());
    if (name == "count") {
      if (sub.empty()) return Value::Int(static_cast<int64_t>(CodePointCount(s)) + 1);
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value::Int(n);
    }
    const size_t p = name == "rfind" ? s.rfind(sub) : s.find(sub);
    if (p == std::string::npos) {
      if (name == "index") ThrowError("index(): substring not found");
      return Value::Int(-1);
    }
    return Value::Int(static_cast<int64_t>(CodePointCount(std::string_view(s).substr(0, p))));
  }
  if (name == "join") {
    const Value* items = args.Get(0, "iterable");
    if (items == nullptr) ThrowError("join() needs an iterable");
    std::string out;
    bool first = true;
    for (const Value& item : Iterate(*items, "join")) {
      if (!item.is_string()) ThrowError(std::string("join(): expected strings, found a ") + item.TypeName());
      if (!first) out += s;
      first = false;
      out += item.str();
      interp.CheckStringSize(out.size());
    }
    return Value::String(std::move(out));
  }
  if (name == "format") return StrFormat(s, args);
  if (name == "isdigit") {
    return Value::Bool(AllCodePoints(s, [](uint32_t c) { return c >= '0' && c <= '9'; }));
  }
  if (name == "isalpha") {
    return Value::Bool(AllCodePoints(s, [](uint32_t c) { return IsWordChar(c) && c != '_' && !(c >= '0' && c <= '9'); }));
  }
  if (name == "isalnum") {
    return Value::Bool(AllCodePoints(s, [](uint32_t c) { return IsWordChar(c) && c != '_'; }));
  }
  if (name == "isspace") return Value::Bool(AllCodePoints(s, IsUnicodeSpace));
  if (name == "isupper") return Value::Bool(AllCased(s, true));
  if (name == "islower") return Value::Bool(AllCased(s, false));
  ThrowError("string has no method '" + name + "'");
}

Value DictMethod(const Value& object, const std::string& name, CallArgs& args) {
  const Object& o = object.object();
  if (name == "get") {
    const Value* key = args.Get(0, "key");
    if (key == nullptr) ThrowError("get() needs a key");
    if (key->is_string()) {
      if (const Value* found = o.Find(key->str())) return *found;
    }
    const Value* fallback = args.Get(1, "default");
    return fallback != nullptr ? *fallback : Value::None();
  }
  Array out;
  for (const auto& [key, value] : o.items) {
    if (name == "items") {
      out.push_back(Value::MakeArray({Value::String(key), value}));
    } else if (name == "keys") {
      out.push_back(Value::String(key));
    } else {
      out.push_back(value);
    }
  }
  return Value::MakeArray(std::move(out));
}

Value ListMethod(Interpreter& interp, const Value& list, const std::string& name, CallArgs& args) {
  Array& items = list.array();
  // Appending mutates a shared list, so the depth recorded at construction cannot follow it;
  // refuse values that would nest past the limit and lists appended into themselves.
  auto check_item = [&](const Value& item) {
    if (item.depth() + 1 > kMaxValueDepth) ThrowError(name + "(): value nested too deeply");
    if (item.is_array() && &item.array() == &items) ThrowError(name + "(): cannot add a list to itself");
  };
  if (name == "append") {
    if (args.positional.size() != 1) ThrowError("append() takes exactly one argument");
    check_item(args.positional[0]);
    interp.CountWork(1);
    items.push_back(args.positional[0]);
    return Value::None();
  }
  if (name == "extend") {
    if (args.positional.size() != 1) ThrowError("extend() takes exactly one argument");
    std::vector<Value> more = Iterate(args.positional[0], "extend");
    for (const Value& item : more) check_item(item);
    interp.CountWork(static_cast<int64_t>(more.size()));
    items.insert(items.end(), more.begin(), more.end());
    return Value::None();
  }
  if (name == "pop") {
    if (items.empty()) ThrowError("pop from empty list");
    int64_t i = IntArg(args, 0, "index", -1, "pop");
    const int64_t n = static_cast<int64_t>(items.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) ThrowError("pop index out of range");
    Value v = items[static_cast<size_t>(i)];
    items.erase(items.begin() + i);
    return v;
  }
  if (name == "index" || name == "count") {
    if (args.positional.empty()) ThrowError(name + "() needs an argument");
    int64_t count = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      if (Equals(items[i], args.positional[0])) {
        if (name == "index") return Value::Int(static_cast<int64_t>(i));
        ++count;
      }
    }
    if (name == "index") ThrowError("index(): value is not in list");
    return Value::Int(count);
  }
  ThrowError("list has no method '" + name + "'");
}

}  // namespace

bool HasMethod(const Value& object, const std::string& name) {
  static const char* const kString[] = {
      "upper", "lower", "title", "capitalize", "strip", "lstrip", "rstrip", "startswith",
      "endswith", "split", "rsplit", "splitlines", "replace", "find", "rfind", "index", "count",
      "join", "format", "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower"};
  static const char* const kDict[] = {"get", "items", "keys", "values"};
  static const char* const kList[] = {"append", "extend", "pop", "index", "count"};
  auto in = [&](const auto& names) {
    for (const char* n : names) {
      if (name == n) return true;
    }
    return false;
  };
  if (object.is_string()) return in(kString);
  if (object.is_object()) return in(kDict);
  if (object.is_array()) return in(kList);
  return false;
}

Value CallMethod(Interpreter& interp, const Value& object, const std::string& name,
                 CallArgs& args) {
  if (object.is_string()) return StringMethod(interp, object.str(), name, args);
  if (object.is_object()) return DictMethod(object, name, args);
  if (object.is_array()) return ListMethod(interp, object, name, args);
  ThrowError(std::string(object.TypeName()) + " has no method '" + name + "'");
}

bool Contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kString:
      if (!item.is_string()) {
        ThrowError(std::string("'in <string>' requires a string on the left, not a ") +
                   item.TypeName());
      }
      return container.str().find(item.str()) != std::string::npos;
    case Value::Kind::kArray:
      for (const Value& v : container.array()) {
        if (Equals(v, item)) return true;
      }
      return false;
    case Value::Kind::kObject:
    case Value::Kind::kNamespace:
      return item.is_string() && container.object().Find(item.str()) != nullptr;
    case Value::Kind::kUndefined:
      return false;
    default:
      ThrowError(std::string("'in' needs a string, list or dict on the right, not a ") +
                 container.TypeName());
  }
}

bool ApplyTest(Interpreter& interp, const std::string& name, const Value& v,
               const CallArgs& args) {
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.bool_value();
  if (name == "false") return v.is_bool() && !v.bool_value();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_object();
  if (name == "iterable") return v.is_array() || v.is_string() || v.is_mapping_like();
  if (name == "sequence") return v.is_array() || v.is_string() || v.is_object();
  if (name == "callable") return v.is_function();
  if (name == "escaped") return false;
  if (name == "lower") return v.is_string() && AllCased(v.str(), false);
  if (name == "upper") return v.is_string() && AllCased(v.str(), true);
  if (name == "odd" || name == "even") {
    if (!v.is_int()) ThrowError("test '" + name + "' needs an integer, not a " + v.TypeName());
    const bool odd = v.int_value() % 2 != 0;
    return name == "odd" ? odd : !odd;
  }
  if (name == "divisibleby") {
    const Value& d = TestOperand(args, name);
    if (!v.is_int() || !d.is_int()) ThrowError("divisibleby needs integers");
    if (d.int_value() == 0) ThrowError("divisibleby 0");
    if (d.int_value() == -1) return true;
    return v.int_value() % d.int_value() == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return Equals(v, TestOperand(args, name));
  if (name == "ne" || name == "!=") return !Equals(v, TestOperand(args, name));
  if (name == "lt" || name == "lessthan" || name == "<") return Compare(v, TestOperand(args, name)) < 0;
  if (name == "le" || name == "<=") return Compare(v, TestOperand(args, name)) <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">") return Compare(v, TestOperand(args, name)) > 0;
  if (name == "ge" || name == ">=") return Compare(v, TestOperand(args, name)) >= 0;
  if (name == "in") return Contains(TestOperand(args, name), v);
  if (name == "sameas") {
    const Value& other = TestOperand(args, name);
    if (v.kind() != other.kind()) return false;
    if (v.is_array()) return &v.array() == &other.array();
    if (v.is_mapping_like()) return &v.object() == &other.object();
    return Equals(v, other);
  }
  (void)interp;
  ThrowError("unknown test '" + name + "'");
}

void AddGlobalFunctions(Object& globals) {
  globals.Set("range", Value::MakeFunction("range", [](Interpreter& interp, CallArgs& args) {
    if (args.positional.empty() || args.positional.size() > 3) {
      ThrowError("range() takes 1 to 3 integer arguments");
    }
    for (const Value& a : args.positional) {
      if (!a.is_int()) ThrowError(std::string("range() arguments must be integers, not ") + a.TypeName());
    }
    int64_t start = 0, stop = 0, step = 1;
    if (args.positional.size() == 1) {
      stop = args.positional[0].int_value();
    } else {
      start = args.positional[0].int_value();
      stop = args.positional[1].int_value();
      if (args.positional.size() == 3) step = args.positional[2].int_value();
    }
    if (step == 0) ThrowError("range() step must not be zero");
    // Charge the whole length up front so range(10**12) fails before allocating anything.
    const __int128 span = step > 0 ? static_cast<__int128>(stop) - start
                                   : static_cast<__int128>(start) - stop;
    const __int128 abs_step = step > 0 ? step : -static_cast<__int128>(step);
    const __int128 length = span <= 0 ? 0 : (span + abs_step - 1) / abs_step;
    interp.CountWork(length > (static_cast<__int128>(1) << 40) ? (int64_t{1} << 40)
                                                                : static_cast<int64_t>(length));
    Array out;
    out.reserve(static_cast<size_t>(length));
    for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
      out.push_back(Value::Int(i));
      if (__builtin_add_overflow(i, step, &i)) break;
    }
    return Value::MakeArray(std::move(out));
  }));
  globals.Set("namespace", Value::MakeFunction("namespace", [](Interpreter&, CallArgs& args) {
    Object object;
    if (args.positional.size() > 1) ThrowError("namespace() takes at most one positional argument");
    if (!args.positional.empty()) {
      const Value& init = args.positional[0];
      if (!init.is_mapping_like()) ThrowError("namespace() argument must be a dict");
      object = init.object();  // a copy: assignments must not change the caller's dict
    }
    for (const auto& [k, v] : args.keyword) object.Set(k, v);
    return Value::MakeNamespace(std::move(object));
  }));
  globals.Set("dict", Value::MakeFunction("dict", [](Interpreter&, CallArgs& args) {
    Object object;
    if (!args.positional.empty()) {
      if (!args.positional[0].is_mapping_like()) ThrowError("dict() argument must be a dict");
      object = args.positional[0].object();
    }
    for (const auto& [k, v] : args.keyword) object.Set(k, v);
    return Value::MakeObject(std::move(object));
  }));
  globals.Set("raise_exception", Value::MakeFunction("raise_exception", [](Interpreter&, CallArgs& args) -> Value {
    TemplateError error;
    error.message = args.positional.empty() ? "" : args.positional[0].ToString();
    error.raised_by_template = true;
    throw error;
  }));
  globals.Set("strftime_now", Value::MakeFunction("strftime_now", [](Interpreter&, CallArgs& args) {
    const std::string format = StringArg(args, 0, "format", "", "strftime_now");
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[512];
    const size_t n = format.size() < 200 ? std::strftime(buf, sizeof(buf), format.c_str(), &local) : 0;
    return Value::String(std::string(buf, n));
  }));
}

}  // namespace sparkstack::jinja
