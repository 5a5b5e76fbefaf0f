// Built-in filters (Jinja's list, with transformers' tojson).
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "runtime/tokenizer/jinja/builtins.h"
#include "runtime/tokenizer/jinja/builtins_util.h"
#include "runtime/tokenizer/jinja/unicode.h"

namespace sparkstack::jinja {
namespace {

const std::string& RequireString(const Value& v, const char* filter, std::string& storage) {
  if (v.is_string()) return v.str();
  if (v.is_undefined() || v.is_none() || v.is_number() || v.is_bool()) {
    storage = v.ToString();
    return storage;
  }
  ThrowError(std::string(filter) + ": expected a string, found a " + v.TypeName());
}

Value TitleFilter(const std::string& s) {
  // Jinja's title: a word starts after white space or one of -({[<.
  std::string out;
  bool word_start = true;
  size_t i = 0;
  while (i < s.size()) {
    size_t len = 1;
    const uint32_t cp = DecodeUtf8(s, i, &len);
    const bool separator = IsUnicodeSpace(cp) || cp == '-' || cp == '(' || cp == '{' ||
                           cp == '[' || cp == '<';
    if (separator) {
      out.append(s, i, len);
    } else {
      AppendUtf8(word_start ? ToUpperCodePoint(cp) : ToLowerCodePoint(cp), out);
    }
    word_start = separator;
    i += len;
  }
  return Value::String(std::move(out));
}

Value ToJsonFilter(const Value& operand, const CallArgs& args) {
  JsonOptions options;
  options.indent = static_cast<int>(IntArg(args, 0, "indent", -1, "tojson"));
  if (options.indent > 64) ThrowError("tojson: indent above 64");
  options.ensure_ascii = BoolArg(args, 99, "ensure_ascii", false, "tojson");
  options.sort_keys = BoolArg(args, 99, "sort_keys", false, "tojson");
  if (const Value* separators = OptionalArg(args, 99, "separators")) {
    if (!separators->is_array() || separators->array().size() != 2 ||
        !separators->array()[0].is_string() || !separators->array()[1].is_string()) {
      ThrowError("tojson: separators must be a pair of strings");
    }
    options.item_separator = separators->array()[0].str();
    options.key_separator = separators->array()[1].str();
  }
  return Value::String(ToJson(operand, options));
}

Value IndentFilter(const std::string& s, const CallArgs& args) {
  std::string indent = "    ";
  if (const Value* width = OptionalArg(args, 0, "width")) {
    if (width->is_string()) {
      indent = width->str();
    } else if (width->is_int()) {
      indent = std::string(static_cast<size_t>(std::clamp<int64_t>(width->int_value(), 0, 1024)),
                           ' ');
    } else {
      ThrowError("indent: width must be an integer or a string");
    }
  }
  const bool first = BoolArg(args, 1, "first", false, "indent");
  const bool blank = BoolArg(args, 2, "blank", false, "indent");
  std::string out;
  size_t start = 0;
  bool is_first = true;
  while (true) {
    const size_t nl = s.find('\n', start);
    const std::string line = s.substr(start, nl == std::string::npos ? std::string::npos
                                                                     : nl - start);
    if ((is_first ? first : true) && (blank || !line.empty())) out += indent;
    out += line;
    if (nl == std::string::npos) break;
    out.push_back('\n');
    start = nl + 1;
    is_first = false;
  }
  return Value::String(std::move(out));
}

Value RoundFilter(const Value& v, const CallArgs& args) {
  if (!v.is_number() && !v.is_bool()) ThrowError(std::string("round: expected a number, found a ") + v.TypeName());
  const int64_t precision = std::clamp<int64_t>(IntArg(args, 0, "precision", 0, "round"), -300, 300);
  const std::string method = StringArg(args, 1, "method", "common", "round");
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.AsDouble() * scale;
  double r = 0;
  if (method == "common") {
    r = std::nearbyint(x);  // round half to even, as Python's round()
  } else if (method == "ceil") {
    r = std::ceil(x);
  } else if (method == "floor") {
    r = std::floor(x);
  } else {
    ThrowError("round: method must be 'common', 'ceil' or 'floor'");
  }
  return Value::Float(r / scale);
}

Value IntFilter(const Value& v, const CallArgs& args) {
  const Value fallback = args.Get(0, "default") ? *args.Get(0, "default") : Value::Int(0);
  if (v.is_int()) return v;
  if (v.is_bool()) return Value::Int(v.bool_value() ? 1 : 0);
  if (v.is_float()) {
    if (!std::isfinite(v.float_value()) || std::fabs(v.float_value()) >= 9.2e18) return fallback;
    return Value::Int(static_cast<int64_t>(std::trunc(v.float_value())));
  }
  if (v.is_string()) {
    const std::string s = Strip(v.str(), nullptr, true, true);
    const int base = static_cast<int>(IntArg(args, 1, "base", 10, "int"));
    if (s.empty() || base < 2 || base > 36) return fallback;
    char* end = nullptr;
    errno = 0;
    const long long i = std::strtoll(s.c_str(), &end, base);
    if (end == s.c_str() + s.size() && errno == 0) return Value::Int(i);
    errno = 0;
    const double d = std::strtod(s.c_str(), &end);
    if (end == s.c_str() + s.size() && std::isfinite(d) && std::fabs(d) < 9.2e18) {
      return Value::Int(static_cast<int64_t>(std::trunc(d)));
    }
  }
  return fallback;
}

Value FloatFilter(const Value& v, const CallArgs& args) {
  const Value fallback = args.Get(0, "default") ? *args.Get(0, "default") : Value::Float(0);
  if (v.is_number() || v.is_bool()) return Value::Float(v.AsDouble());
  if (v.is_string()) {
    const std::string s = Strip(v.str(), nullptr, true, true);
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return Value::Float(d);
  }
  return fallback;
}

// Sort key for sort/unique/min/max: the attribute if given, lower-cased unless case-sensitive.
Value SortKey(Interpreter& interp, const Value& item, const Value* attribute, bool case_sensitive) {
  Value key = attribute != nullptr ? AttributePath(interp, item, *attribute) : item;
  if (!case_sensitive && key.is_string()) return Value::String(ToLowerUtf8(key.str()));
  return key;
}

Value SortFilter(Interpreter& interp, const Value& v, const CallArgs& args) {
  const bool reverse = BoolArg(args, 0, "reverse", false, "sort");
  const bool case_sensitive = BoolArg(args, 1, "case_sensitive", false, "sort");
  const Value* attribute = OptionalArg(args, 2, "attribute");
  std::vector<Value> items = Iterate(v, "sort");
  interp.CountWork(static_cast<int64_t>(items.size()));
  std::vector<std::pair<Value, Value>> keyed;
  for (Value& item : items) {
    keyed.emplace_back(SortKey(interp, item, attribute, case_sensitive), std::move(item));
  }
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    const int c = Compare(a.first, b.first);
    return reverse ? c > 0 : c < 0;
  });
  Array out;
  for (auto& [key, item] : keyed) out.push_back(std::move(item));
  return Value::MakeArray(std::move(out));
}

Value DictSortFilter(const Value& v, const CallArgs& args) {
  if (!v.is_mapping_like()) ThrowError(std::string("dictsort: expected a dict, found a ") + v.TypeName());
  const bool case_sensitive = BoolArg(args, 0, "case_sensitive", false, "dictsort");
  const std::string by = StringArg(args, 1, "by", "key", "dictsort");
  const bool reverse = BoolArg(args, 2, "reverse", false, "dictsort");
  if (by != "key" && by != "value") ThrowError("dictsort: 'by' must be 'key' or 'value'");
  std::vector<std::pair<std::string, Value>> items = v.object().items;
  std::stable_sort(items.begin(), items.end(), [&](const auto& a, const auto& b) {
    const int c = by == "key" ? Compare(Value::String(a.first), Value::String(b.first), case_sensitive)
                              : Compare(a.second, b.second, case_sensitive);
    return reverse ? c > 0 : c < 0;
  });
  Array out;
  for (auto& [key, value] : items) out.push_back(Value::MakeArray({Value::String(key), value}));
  return Value::MakeArray(std::move(out));
}

Value SelectFilter(Interpreter& interp, const std::string& name, const Value& v,
                   const CallArgs& args) {
  const bool by_attr = name == "selectattr" || name == "rejectattr";
  const bool keep_matches = name == "select" || name == "selectattr";
  size_t next = 0;
  Value attribute;
  if (by_attr) {
    if (args.positional.empty()) ThrowError(name + ": needs an attribute name");
    attribute = args.positional[next++];
  }
  std::string test;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string()) ThrowError(name + ": test name must be a string");
    test = args.positional[next++].str();
  }
  CallArgs test_args;
  test_args.positional.assign(args.positional.begin() + static_cast<ptrdiff_t>(next),
                              args.positional.end());
  Array out;
  for (const Value& item : Iterate(v, name.c_str())) {
    interp.CountWork(1);
    const Value subject = by_attr ? AttributePath(interp, item, attribute) : item;
    const bool matched =
        test.empty() ? subject.Truthy() : ApplyTest(interp, test, subject, test_args);
    if (matched == keep_matches) out.push_back(item);
  }
  return Value::MakeArray(std::move(out));
}

Value MapFilter(Interpreter& interp, const Value& v, CallArgs& args) {
  Array out;
  if (const Value* attribute = args.Keyword("attribute")) {
    const Value* fallback = args.Keyword("default");
    for (const Value& item : Iterate(v, "map")) {
      interp.CountWork(1);
      Value mapped = AttributePath(interp, item, *attribute);
      if (mapped.is_undefined() && fallback != nullptr) mapped = *fallback;
      out.push_back(std::move(mapped));
    }
    return Value::MakeArray(std::move(out));
  }
  if (args.positional.empty() || !args.positional[0].is_string()) {
    ThrowError("map: needs a filter name or attribute=");
  }
  const std::string filter = args.positional[0].str();
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const Value& item : Iterate(v, "map")) {
    interp.CountWork(1);
    CallArgs copy = rest;
    out.push_back(ApplyFilter(interp, filter, item, copy));
  }
  return Value::MakeArray(std::move(out));
}

Value MinMax(Interpreter& interp, const Value& v, const CallArgs& args, bool want_max) {
  const bool case_sensitive = BoolArg(args, 0, "case_sensitive", false, "min/max");
  const Value* attribute = OptionalArg(args, 1, "attribute");
  const std::vector<Value> items = Iterate(v, want_max ? "max" : "min");
  if (items.empty()) return Value();
  size_t best = 0;
  Value best_key = SortKey(interp, items[0], attribute, case_sensitive);
  for (size_t i = 1; i < items.size(); ++i) {
    Value key = SortKey(interp, items[i], attribute, case_sensitive);
    const int c = Compare(key, best_key);
    if (want_max ? c > 0 : c < 0) {
      best = i;
      best_key = std::move(key);
    }
  }
  return items[best];
}

Value FormatFilter(const std::string& format, const CallArgs& args) {
  // printf-style "%s" formatting, the part templates use.
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 >= format.size()) {
      out.push_back(format[i]);
      continue;
    }
    const char spec = format[++i];
    if (spec == '%') {
      out.push_back('%');
      continue;
    }
    if (next >= args.positional.size()) ThrowError("format: not enough arguments for format string");
    const Value& arg = args.positional[next++];
    if (spec == 's') {
      out += arg.ToString();
    } else if (spec == 'd' || spec == 'i') {
      if (!arg.is_number() && !arg.is_bool()) ThrowError("format: %d needs a number");
      out += std::to_string(arg.is_int() ? arg.int_value() : static_cast<int64_t>(arg.AsDouble()));
    } else {
      ThrowError(std::string("format: unsupported conversion %") + spec);
    }
  }
  return Value::String(std::move(out));
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

}  // namespace

Value ApplyFilter(Interpreter& interp, const std::string& name, const Value& v, CallArgs& args) {
  std::string storage;
  if (name == "safe") return v;
  if (name == "default" || name == "d") {
    const Value fallback = args.Get(0, "default_value") ? *args.Get(0, "default_value")
                                                        : Value::String("");
    const bool boolean = BoolArg(args, 1, "boolean", false, "default");
    if (v.is_undefined() || (boolean && !v.Truthy())) return fallback;
    return v;
  }
  if (name == "tojson") return ToJsonFilter(v, args);
  if (name == "string") return v.is_string() ? v : Value::String(v.ToString());
  if (name == "length" || name == "count") {
    switch (v.kind()) {
      case Value::Kind::kString:
        return Value::Int(static_cast<int64_t>(CodePointCount(v.str())));
      case Value::Kind::kArray:
        return Value::Int(static_cast<int64_t>(v.array().size()));
      case Value::Kind::kObject:
      case Value::Kind::kNamespace:
        return Value::Int(static_cast<int64_t>(v.object().items.size()));
      case Value::Kind::kUndefined:
        return Value::Int(0);
      default:
        ThrowError(std::string("length: a ") + v.TypeName() + " has no length");
    }
  }
  if (name == "trim") {
    return Value::String(Strip(RequireString(v, "trim", storage), OptionalArg(args, 0, "chars"),
                               true, true));
  }
  if (name == "upper") return Value::String(ToUpperUtf8(RequireString(v, "upper", storage)));
  if (name == "lower") return Value::String(ToLowerUtf8(RequireString(v, "lower", storage)));
  if (name == "capitalize") return Value::String(Capitalize(RequireString(v, "capitalize", storage)));
  if (name == "title") return TitleFilter(RequireString(v, "title", storage));
  if (name == "replace") {
    const std::string& s = RequireString(v, "replace", storage);
    return Value::String(Replace(s, StringArg(args, 0, "old", "", "replace"),
                                 StringArg(args, 1, "new", "", "replace"),
                                 IntArg(args, 2, "count", -1, "replace")));
  }
  if (name == "indent") return IndentFilter(RequireString(v, "indent", storage), args);
  if (name == "escape" || name == "e" || name == "forceescape") {
    return Value::String(HtmlEscape(RequireString(v, "escape", storage)));
  }
  if (name == "format") return FormatFilter(RequireString(v, "format", storage), args);
  if (name == "wordcount") {
    return Value::Int(static_cast<int64_t>(Split(RequireString(v, "wordcount", storage), nullptr, -1).size()));
  }
  if (name == "int") return IntFilter(v, args);
  if (name == "float") return FloatFilter(v, args);
  if (name == "abs") {
    if (v.is_int()) {
      if (v.int_value() == INT64_MIN) ThrowError("abs: integer overflow");
      return Value::Int(std::llabs(v.int_value()));
    }
    if (v.is_float()) return Value::Float(std::fabs(v.float_value()));
    if (v.is_bool()) return Value::Int(v.bool_value() ? 1 : 0);
    ThrowError(std::string("abs: expected a number, found a ") + v.TypeName());
  }
  if (name == "round") return RoundFilter(v, args);
  if (name == "first" || name == "last") {
    const std::vector<Value> items = Iterate(v, name.c_str());
    if (items.empty()) return Value();
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") return Value::MakeArray(Iterate(v, "list"));
  if (name == "reverse") {
    if (v.is_string()) {
      std::vector<std::string> chars = Characters(v.str());
      std::string out;
      for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += *it;
      return Value::String(std::move(out));
    }
    std::vector<Value> items = Iterate(v, "reverse");
    std::reverse(items.begin(), items.end());
    return Value::MakeArray(std::move(items));
  }
  if (name == "join") {
    const std::string sep = StringArg(args, 0, "d", "", "join");
    const Value* attribute = OptionalArg(args, 1, "attribute");
    std::string out;
    bool first = true;
    for (const Value& item : Iterate(v, "join")) {
      if (!first) out += sep;
      first = false;
      out += (attribute != nullptr ? AttributePath(interp, item, *attribute) : item).ToString();
      interp.CheckStringSize(out.size());
    }
    return Value::String(std::move(out));
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::MakeArray();
    if (!v.is_mapping_like()) ThrowError(std::string("items: expected a dict, found a ") + v.TypeName());
    Array out;
    for (const auto& [key, value] : v.object().items) {
      out.push_back(Value::MakeArray({Value::String(key), value}));
    }
    return Value::MakeArray(std::move(out));
  }
  if (name == "dictsort") return DictSortFilter(v, args);
  if (name == "sort") return SortFilter(interp, v, args);
  if (name == "unique") {
    const bool case_sensitive = BoolArg(args, 0, "case_sensitive", false, "unique");
    const Value* attribute = OptionalArg(args, 1, "attribute");
    Array out;
    std::vector<Value> seen;
    for (const Value& item : Iterate(v, "unique")) {
      interp.CountWork(static_cast<int64_t>(seen.size()) + 1);
      Value key = SortKey(interp, item, attribute, case_sensitive);
      bool duplicate = false;
      for (const Value& s : seen) duplicate = duplicate || Equals(s, key);
      if (!duplicate) {
        seen.push_back(std::move(key));
        out.push_back(item);
      }
    }
    return Value::MakeArray(std::move(out));
  }
  if (name == "min" || name == "max") return MinMax(interp, v, args, name == "max");
  if (name == "sum") {
    const Value* attribute = OptionalArg(args, 0, "attribute");
    Value total = args.Get(1, "start") ? *args.Get(1, "start") : Value::Int(0);
    for (const Value& item : Iterate(v, "sum")) {
      const Value x = attribute != nullptr ? AttributePath(interp, item, *attribute) : item;
      if (!(x.is_number() || x.is_bool()) || !(total.is_number() || total.is_bool())) {
        ThrowError(std::string("sum: cannot add a ") + x.TypeName());
      }
      int64_t r = 0;
      if (total.is_int() && x.is_int() && !__builtin_add_overflow(total.int_value(), x.int_value(), &r)) {
        total = Value::Int(r);
      } else {
        total = Value::Float(total.AsDouble() + x.AsDouble());
      }
    }
    return total;
  }
  if (name == "map") return MapFilter(interp, v, args);
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    return SelectFilter(interp, name, v, args);
  }
  if (name == "attr") return interp.GetAttr(v, StringArg(args, 0, "name", "", "attr"));
  if (name == "batch") {
    const int64_t size = IntArg(args, 0, "linecount", 0, "batch");
    if (size <= 0) ThrowError("batch: size must be positive");
    const Value* fill = args.Get(1, "fill_with");
    Array out, current;
    for (const Value& item : Iterate(v, "batch")) {
      current.push_back(item);
      if (static_cast<int64_t>(current.size()) == size) {
        out.push_back(Value::MakeArray(std::move(current)));
        current.clear();
      }
    }
    if (!current.empty()) {
      while (fill != nullptr && static_cast<int64_t>(current.size()) < size) current.push_back(*fill);
      out.push_back(Value::MakeArray(std::move(current)));
    }
    return Value::MakeArray(std::move(out));
  }
  ThrowError("unknown filter '" + name + "'");
}

}  // namespace sparkstack::jinja
