// The value type the chat-template interpreter computes with.
//
// Jinja distinguishes `undefined` (a missing variable or key) from `none` (an explicit null), and
// integers from floats, so nlohmann::json alone is not enough. Arrays, objects and namespaces are
// reference types shared between copies, as in Python (a namespace assigned to two names is one
// namespace). Strings are UTF-8.
//
// Internal to runtime/tokenizer/jinja; the public face is chat_template.h.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_JINJA_VALUE_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_JINJA_VALUE_H_

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "nlohmann/json.hpp"

namespace sparkstack::jinja {

class Value;
class Interpreter;

using Array = std::vector<Value>;

// Insertion-ordered string-keyed map (Python dicts and JS objects keep insertion order; tojson
// output depends on it). Chat-template objects are small, so a vector with linear lookup is fine.
struct Object {
  std::vector<std::pair<std::string, Value>> items;

  const Value* Find(std::string_view key) const;
  Value* Find(std::string_view key);
  void Set(std::string key, Value value);
};

// Positional and keyword arguments of a call, filter or test.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // The keyword argument `name`, or nullptr.
  const Value* Keyword(std::string_view name) const;
  // Positional argument `index`, else keyword `name`, else nullptr.
  const Value* Get(size_t index, std::string_view name) const;
};

// A callable: a built-in (range, namespace, raise_exception, a bound string method) or a macro.
struct Function {
  std::string name;
  std::function<Value(Interpreter&, CallArgs&)> call;
};

// Thrown inside the interpreter only; Parse/Render convert it to an absl::Status. line/column are
// 0 when the thrower does not know them (the interpreter fills in the current node's position).
struct TemplateError {
  std::string message;
  int line = 0;
  int column = 0;
  bool raised_by_template = false;  // raise_exception(): `message` is the template's own text
};

[[noreturn]] void ThrowError(std::string message);

// Lists and dicts nest at most this deep (input JSON and values the template builds), which bounds
// the recursion of comparison, JSON output and destruction.
inline constexpr int kMaxValueDepth = 256;

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kArray, kObject, kNamespace,
                    kFunction };

  Value() = default;  // undefined
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double f);
  static Value String(std::string s);
  static Value MakeArray(Array items = {});
  static Value MakeObject(Object object = {});
  static Value MakeNamespace(Object object = {});
  static Value MakeFunction(std::string name, std::function<Value(Interpreter&, CallArgs&)> fn);

  // Converts JSON input. Integral doubles become integers, as they do when @huggingface/jinja
  // receives a JavaScript number (a reference we must match byte for byte).
  // Throws TemplateError for input nested deeper than kMaxValueDepth.
  template <typename Json>
  static Value FromJson(const Json& json, int depth = 0);

  Kind kind() const { return kind_; }
  // 0 for scalars; 1 + the deepest element for lists, dicts and namespaces, as of construction.
  int depth() const { return depth_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_object() const { return kind_ == Kind::kObject; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_mapping_like() const { return kind_ == Kind::kObject || kind_ == Kind::kNamespace; }
  bool is_function() const { return kind_ == Kind::kFunction; }

  bool bool_value() const { return Get<bool>(false); }
  int64_t int_value() const { return Get<int64_t>(0); }
  double float_value() const { return Get<double>(0.0); }
  // Numeric value of an int, float or bool.
  double AsDouble() const;
  const std::string& str() const;
  // Callers check the kind first (is_array(), is_mapping_like(), is_function()).
  Array& array() const { return *std::get<std::shared_ptr<Array>>(data_); }
  Object& object() const { return *std::get<std::shared_ptr<Object>>(data_); }
  const Function& function() const { return *std::get<std::shared_ptr<const Function>>(data_); }

  // Python truthiness: empty strings, arrays and objects, 0, none and undefined are false.
  bool Truthy() const;
  // Text for `{{ }}` output and the `string` filter, as @huggingface/jinja writes it: undefined and
  // none print nothing, booleans "true"/"false", floats "1.0", arrays and objects as JSON.
  std::string ToString() const;
  // "string", "integer", ... for error messages.
  const char* TypeName() const;

 private:
  template <typename T>
  T Get(T fallback) const {
    const T* p = std::get_if<T>(&data_);
    return p != nullptr ? *p : fallback;
  }

  Kind kind_ = Kind::kUndefined;
  int depth_ = 0;
  // Only the active alternative is stored, which keeps copies cheap.
  std::variant<std::monostate, bool, int64_t, double, std::string, std::shared_ptr<Array>,
               std::shared_ptr<Object>, std::shared_ptr<const Function>>
      data_;
};

// Deep equality with Python semantics (1 == 1.0, true == 1, "1" != 1, undefined == undefined).
bool Equals(const Value& a, const Value& b);
// Ordering for <, sort, dictsort, min/max: numbers with numbers, strings with strings (code point
// order, optionally case-insensitive), arrays lexicographically. Throws TemplateError otherwise.
int Compare(const Value& a, const Value& b, bool case_sensitive = true);

struct JsonOptions {
  int indent = -1;  // < 0: single line
  bool ensure_ascii = false;
  bool sort_keys = false;
  std::string item_separator;  // empty: ", " (or "," when indenting)
  std::string key_separator;   // empty: ": "
};
// Python json.dumps / @huggingface/jinja tojson. `undefined_as_null`: tojson writes undefined as
// null; printing an array containing undefined writes "undefined" as the reference does.
std::string ToJson(const Value& value, const JsonOptions& options, bool undefined_as_null = true);

// Number formatting as JavaScript writes numbers (the reference is JavaScript): shortest digits
// that round-trip, exponent form outside [1e-7, 1e21).
std::string FormatNumberJs(double d);

template <typename Json>
Value Value::FromJson(const Json& json, int depth) {
  if (depth > kMaxValueDepth) {
    ThrowError("input JSON nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
  }
  switch (json.type()) {
    case Json::value_t::null:
      return None();
    case Json::value_t::boolean:
      return Bool(json.template get<bool>());
    case Json::value_t::number_integer:
      return Int(json.template get<int64_t>());
    case Json::value_t::number_unsigned: {
      const uint64_t u = json.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Float(static_cast<double>(u));
      return Int(static_cast<int64_t>(u));
    }
    case Json::value_t::number_float: {
      const double d = json.template get<double>();
      // 2^53: beyond it JavaScript integers lose precision anyway.
      if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9007199254740992.0) {
        return Int(static_cast<int64_t>(d));
      }
      return Float(d);
    }
    case Json::value_t::string:
      return String(json.template get<std::string>());
    case Json::value_t::array: {
      Array items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(FromJson(item, depth + 1));
      return MakeArray(std::move(items));
    }
    case Json::value_t::object: {
      Object object;
      object.items.reserve(json.size());
      for (auto it = json.begin(); it != json.end(); ++it) {
        object.items.emplace_back(it.key(), FromJson(it.value(), depth + 1));
      }
      return MakeObject(std::move(object));
    }
    case Json::value_t::binary:
    case Json::value_t::discarded:
      break;
  }
  return Value();
}

}  // namespace sparkstack::jinja

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_JINJA_VALUE_H_
