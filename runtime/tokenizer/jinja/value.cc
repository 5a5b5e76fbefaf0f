#include "runtime/tokenizer/jinja/value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "runtime/tokenizer/jinja/unicode.h"

namespace sparkstack::jinja {

void ThrowError(std::string message) { throw TemplateError{std::move(message), 0, 0}; }

const Value* Object::Find(std::string_view key) const {
  for (const auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

Value* Object::Find(std::string_view key) {
  for (auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Object::Set(std::string key, Value value) {
  if (Value* existing = Find(key)) {
    *existing = std::move(value);
    return;
  }
  items.emplace_back(std::move(key), std::move(value));
}

const Value* CallArgs::Keyword(std::string_view name) const {
  for (const auto& [k, v] : keyword) {
    if (k == name) return &v;
  }
  return nullptr;
}

const Value* CallArgs::Get(size_t index, std::string_view name) const {
  if (index < positional.size()) return &positional[index];
  return Keyword(name);
}

Value Value::None() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}

Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.data_ = b;
  return v;
}

Value Value::Int(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.data_ = i;
  return v;
}

Value Value::Float(double f) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.data_ = f;
  return v;
}

Value Value::String(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.data_ = std::move(s);
  return v;
}

namespace {
int ChildDepth(int deepest) {
  if (deepest + 1 > kMaxValueDepth) {
    ThrowError("list or dict nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
  }
  return deepest + 1;
}
}  // namespace

Value Value::MakeArray(Array items) {
  int deepest = 0;
  for (const Value& item : items) deepest = std::max(deepest, item.depth_);
  Value v;
  v.kind_ = Kind::kArray;
  v.depth_ = ChildDepth(deepest);
  v.data_ = std::make_shared<Array>(std::move(items));
  return v;
}

Value Value::MakeObject(Object object) {
  int deepest = 0;
  for (const auto& [key, item] : object.items) deepest = std::max(deepest, item.depth_);
  Value v;
  v.kind_ = Kind::kObject;
  v.depth_ = ChildDepth(deepest);
  v.data_ = std::make_shared<Object>(std::move(object));
  return v;
}

Value Value::MakeNamespace(Object object) {
  Value v = MakeObject(std::move(object));
  v.kind_ = Kind::kNamespace;
  return v;
}

Value Value::MakeFunction(std::string name, std::function<Value(Interpreter&, CallArgs&)> fn) {
  Value v;
  v.kind_ = Kind::kFunction;
  v.data_ = std::make_shared<const Function>(Function{std::move(name), std::move(fn)});
  return v;
}

const std::string& Value::str() const {
  static const std::string kEmpty;
  const std::string* s = std::get_if<std::string>(&data_);
  return s != nullptr ? *s : kEmpty;
}

double Value::AsDouble() const {
  switch (kind_) {
    case Kind::kInt:
      return static_cast<double>(int_value());
    case Kind::kFloat:
      return float_value();
    case Kind::kBool:
      return bool_value() ? 1 : 0;
    default:
      return 0;
  }
}

bool Value::Truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return bool_value();
    case Kind::kInt:
      return int_value() != 0;
    case Kind::kFloat:
      return float_value() != 0;
    case Kind::kString:
      return !str().empty();
    case Kind::kArray:
      return !array().empty();
    case Kind::kObject:
      return !object().items.empty();
    case Kind::kNamespace:
    case Kind::kFunction:
      return true;
  }
  return false;
}

const char* Value::TypeName() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "undefined";
    case Kind::kNone:
      return "none";
    case Kind::kBool:
      return "boolean";
    case Kind::kInt:
      return "integer";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "string";
    case Kind::kArray:
      return "list";
    case Kind::kObject:
      return "dict";
    case Kind::kNamespace:
      return "namespace";
    case Kind::kFunction:
      return "function";
  }
  return "?";
}

std::string FormatNumberJs(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  if (d == 0) return "0";
  std::string sign = d < 0 ? "-" : "";
  const double a = std::fabs(d);
  // Shortest significand that round-trips, as ECMAScript Number::toString requires.
  char buf[64];
  int precision = 0;
  for (; precision < 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*e", precision, a);
    if (std::strtod(buf, nullptr) == a) break;
  }
  std::snprintf(buf, sizeof(buf), "%.*e", precision, a);
  std::string text(buf);
  const size_t e_pos = text.find('e');
  std::string digits;
  for (size_t i = 0; i < e_pos; ++i) {
    if (text[i] != '.') digits.push_back(text[i]);
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int exponent = std::atoi(text.c_str() + e_pos + 1);
  const int k = static_cast<int>(digits.size());
  const int n = exponent + 1;  // value = 0.digits * 10^n
  std::string out;
  if (k <= n && n <= 21) {
    out = digits + std::string(n - k, '0');
  } else if (0 < n && n <= 21) {
    out = digits.substr(0, n) + "." + digits.substr(n);
  } else if (-6 < n && n <= 0) {
    out = "0." + std::string(-n, '0') + digits;
  } else {
    out = digits.substr(0, 1);
    if (k > 1) out += "." + digits.substr(1);
    out += (n - 1 >= 0) ? "e+" : "e-";
    out += std::to_string(std::abs(n - 1));
  }
  return sign + out;
}

namespace {

std::string FormatFloat(double d) {
  if (d == 0 && std::signbit(d)) return "-0.0";
  if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 1e21) {
    return FormatNumberJs(d) + ".0";
  }
  return FormatNumberJs(d);
}

void AppendJsonString(const std::string& s, bool ensure_ascii, std::string& out) {
  out.push_back('"');
  static const char kHex[] = "0123456789abcdef";
  auto append_u = [&](uint32_t unit) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out.push_back(kHex[(unit >> shift) & 0xF]);
  };
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20 || (ensure_ascii && c == 0x7F)) {
            append_u(c);
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    size_t len = 0;
    const uint32_t cp = DecodeUtf8(s, i, &len);
    if (!ensure_ascii) {
      out.append(s, i, len);
    } else if (cp >= 0x10000) {
      // JavaScript strings are UTF-16: astral characters escape as a surrogate pair.
      const uint32_t v = cp - 0x10000;
      append_u(0xD800 + (v >> 10));
      append_u(0xDC00 + (v & 0x3FF));
    } else {
      append_u(cp);
    }
    i += len;
  }
  out.push_back('"');
}

void AppendJson(const Value& value, const JsonOptions& options, bool undefined_as_null, int depth,
                std::string& out) {
  if (depth > 512) ThrowError("tojson: value nested too deeply");
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      out += undefined_as_null ? "null" : "undefined";
      return;
    case Value::Kind::kNone:
      out += "null";
      return;
    case Value::Kind::kBool:
      out += value.bool_value() ? "true" : "false";
      return;
    case Value::Kind::kInt:
      out += std::to_string(value.int_value());
      return;
    case Value::Kind::kFloat:
      out += std::isfinite(value.float_value()) ? FormatNumberJs(value.float_value()) : "null";
      return;
    case Value::Kind::kString:
      AppendJsonString(value.str(), options.ensure_ascii, out);
      return;
    case Value::Kind::kFunction:
      ThrowError("cannot convert a function to JSON");
    case Value::Kind::kArray:
    case Value::Kind::kObject:
    case Value::Kind::kNamespace:
      break;
  }
  const bool indenting = options.indent > 0;
  const std::string item_sep = !options.item_separator.empty() ? options.item_separator
                               : indenting                     ? ","
                                                               : ", ";
  const std::string key_sep = !options.key_separator.empty() ? options.key_separator : ": ";
  const std::string child_pad =
      indenting ? "\n" + std::string(static_cast<size_t>(options.indent) * (depth + 1), ' ') : "";
  const std::string base_pad =
      indenting ? "\n" + std::string(static_cast<size_t>(options.indent) * depth, ' ') : "";
  if (value.is_array()) {
    const Array& items = value.array();
    out.push_back('[');
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out += item_sep;
      out += child_pad;
      AppendJson(items[i], options, undefined_as_null, depth + 1, out);
    }
    if (!items.empty()) out += base_pad;
    out.push_back(']');
    return;
  }
  std::vector<const std::pair<std::string, Value>*> entries;
  for (const auto& entry : value.object().items) entries.push_back(&entry);
  if (options.sort_keys) {
    // Code point order, as Python's sort_keys (UTF-8 byte order is code point order).
    std::stable_sort(entries.begin(), entries.end(),
                     [](const auto* a, const auto* b) { return a->first < b->first; });
  }
  out.push_back('{');
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out += item_sep;
    out += child_pad;
    AppendJsonString(entries[i]->first, options.ensure_ascii, out);
    out += key_sep;
    AppendJson(entries[i]->second, options, undefined_as_null, depth + 1, out);
  }
  if (!entries.empty()) out += base_pad;
  out.push_back('}');
}

}  // namespace

std::string ToJson(const Value& value, const JsonOptions& options, bool undefined_as_null) {
  std::string out;
  AppendJson(value, options, undefined_as_null, 0, out);
  return out;
}

std::string Value::ToString() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return "";
    case Kind::kBool:
      return bool_value() ? "true" : "false";
    case Kind::kInt:
      return std::to_string(int_value());
    case Kind::kFloat:
      return FormatFloat(float_value());
    case Kind::kString:
      return str();
    case Kind::kFunction:
      return "<function " + function().name + ">";
    case Kind::kArray:
    case Kind::kObject:
    case Kind::kNamespace:
      return ToJson(*this, JsonOptions{}, /*undefined_as_null=*/false);
  }
  return "";
}

bool Equals(const Value& a, const Value& b) {
  const bool a_num = a.is_number() || a.is_bool();
  const bool b_num = b.is_number() || b.is_bool();
  if (a_num && b_num) {
    if (a.is_int() && b.is_int()) return a.int_value() == b.int_value();
    return a.AsDouble() == b.AsDouble();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.str() == b.str();
    case Value::Kind::kArray: {
      if (&a.array() == &b.array()) return true;
      if (a.array().size() != b.array().size()) return false;
      for (size_t i = 0; i < a.array().size(); ++i) {
        if (!Equals(a.array()[i], b.array()[i])) return false;
      }
      return true;
    }
    case Value::Kind::kObject: {
      if (&a.object() == &b.object()) return true;
      if (a.object().items.size() != b.object().items.size()) return false;
      for (const auto& [key, value] : a.object().items) {
        const Value* other = b.object().Find(key);
        if (other == nullptr || !Equals(value, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kNamespace:
      return &a.object() == &b.object();
    case Value::Kind::kFunction:
      return &a.function() == &b.function();
    default:
      return false;
  }
}

int Compare(const Value& a, const Value& b, bool case_sensitive) {
  const bool a_num = a.is_number() || a.is_bool();
  const bool b_num = b.is_number() || b.is_bool();
  if (a_num && b_num) {
    if (a.is_int() && b.is_int()) {
      return a.int_value() < b.int_value() ? -1 : a.int_value() > b.int_value() ? 1 : 0;
    }
    const double x = a.AsDouble(), y = b.AsDouble();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    if (case_sensitive) {
      const int c = a.str().compare(b.str());
      return c < 0 ? -1 : c > 0 ? 1 : 0;
    }
    const std::string x = ToLowerUtf8(a.str()), y = ToLowerUtf8(b.str());
    const int c = x.compare(y);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_array() && b.is_array()) {
    const Array& x = a.array();
    const Array& y = b.array();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      const int c = Compare(x[i], y[i], case_sensitive);
      if (c != 0) return c;
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  if (a.kind() == b.kind() && (a.is_none() || a.is_undefined())) return 0;
  ThrowError(std::string("cannot compare ") + a.TypeName() + " with " + b.TypeName());
}

}  // namespace sparkstack::jinja
