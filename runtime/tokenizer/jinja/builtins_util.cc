#include "runtime/tokenizer/jinja/builtins_util.h"

#include "runtime/tokenizer/jinja/interpreter.h"
#include "runtime/tokenizer/jinja/unicode.h"

namespace sparkstack::jinja {

const Value* OptionalArg(const CallArgs& args, size_t index, const char* name) {
  const Value* v = args.Get(index, name);
  if (v == nullptr || v->is_none() || v->is_undefined()) return nullptr;
  return v;
}

std::string StringArg(const CallArgs& args, size_t index, const char* name,
                      const std::string& fallback, const char* function) {
  const Value* v = OptionalArg(args, index, name);
  if (v == nullptr) return fallback;
  if (!v->is_string()) {
    ThrowError(std::string(function) + ": argument '" + name + "' must be a string, not a " +
               v->TypeName());
  }
  return v->str();
}

int64_t IntArg(const CallArgs& args, size_t index, const char* name, int64_t fallback,
               const char* function) {
  const Value* v = OptionalArg(args, index, name);
  if (v == nullptr) return fallback;
  if (v->is_int()) return v->int_value();
  if (v->is_bool()) return v->bool_value() ? 1 : 0;
  ThrowError(std::string(function) + ": argument '" + name + "' must be an integer, not a " +
             v->TypeName());
}

bool BoolArg(const CallArgs& args, size_t index, const char* name, bool fallback,
             const char* function) {
  const Value* v = OptionalArg(args, index, name);
  if (v == nullptr) return fallback;
  return v->Truthy();
}

std::vector<std::string> Characters(const std::string& s) {
  std::vector<std::string> out;
  const std::vector<size_t> offsets = CodePointOffsets(s);
  for (size_t i = 0; i + 1 < offsets.size(); ++i) {
    out.push_back(s.substr(offsets[i], offsets[i + 1] - offsets[i]));
  }
  return out;
}

std::string Strip(std::string_view s, const Value* chars, bool left, bool right) {
  std::vector<uint32_t> set;
  if (chars != nullptr) {
    if (!chars->is_string()) ThrowError("strip: argument must be a string or none");
    size_t i = 0;
    while (i < chars->str().size()) {
      size_t len = 1;
      set.push_back(DecodeUtf8(chars->str(), i, &len));
      i += len;
    }
  }
  auto strippable = [&](uint32_t cp) {
    if (chars == nullptr) return IsUnicodeSpace(cp);
    for (uint32_t c : set) {
      if (c == cp) return true;
    }
    return false;
  };
  const std::vector<size_t> offsets = CodePointOffsets(s);
  size_t first = 0, last = offsets.size() - 1;  // code point indices [first, last)
  size_t len = 0;
  if (left) {
    while (first < last && strippable(DecodeUtf8(s, offsets[first], &len))) ++first;
  }
  if (right) {
    while (last > first && strippable(DecodeUtf8(s, offsets[last - 1], &len))) --last;
  }
  return std::string(s.substr(offsets[first], offsets[last] - offsets[first]));
}

std::vector<std::string> Split(const std::string& s, const Value* sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (sep == nullptr) {
    // Runs of white space separate; no empty strings at the ends.
    const std::vector<size_t> offsets = CodePointOffsets(s);
    const size_t n = offsets.size() - 1;
    size_t i = 0, len = 0;
    auto space_at = [&](size_t k) { return IsUnicodeSpace(DecodeUtf8(s, offsets[k], &len)); };
    while (true) {
      while (i < n && space_at(i)) ++i;
      if (i >= n) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {
        size_t end = n;
        while (end > i && space_at(end - 1)) --end;
        out.push_back(s.substr(offsets[i], offsets[end] - offsets[i]));
        break;
      }
      size_t j = i;
      while (j < n && !space_at(j)) ++j;
      out.push_back(s.substr(offsets[i], offsets[j] - offsets[i]));
      i = j;
    }
    return out;
  }
  if (!sep->is_string()) ThrowError("split: separator must be a string or none");
  const std::string& delim = sep->str();
  if (delim.empty()) ThrowError("split: empty separator");
  size_t start = 0;
  while (true) {
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) break;
    const size_t found = s.find(delim, start);
    if (found == std::string::npos) break;
    out.push_back(s.substr(start, found - start));
    start = found + delim.size();
  }
  out.push_back(s.substr(start));
  return out;
}

std::string Replace(const std::string& s, const std::string& from, const std::string& to,
                    int64_t count) {
  std::string out;
  int64_t done = 0;
  if (from.empty()) {
    // Python inserts `to` before every character and at the end.
    const std::vector<std::string> chars = Characters(s);
    for (const std::string& c : chars) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      out += c;
    }
    if (count < 0 || done < count) out += to;
    return out;
  }
  size_t start = 0;
  while (count < 0 || done < count) {
    const size_t found = s.find(from, start);
    if (found == std::string::npos) break;
    out.append(s, start, found - start);
    out += to;
    start = found + from.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  return out;
}

std::string PythonTitle(std::string_view s) {
  std::string out;
  bool previous_cased = false;
  size_t i = 0;
  while (i < s.size()) {
    size_t len = 1;
    const uint32_t cp = DecodeUtf8(s, i, &len);
    const bool cased = ToLowerCodePoint(cp) != cp || ToUpperCodePoint(cp) != cp;
    if (cased) {
      AppendUtf8(previous_cased ? ToLowerCodePoint(cp) : ToUpperCodePoint(cp), out);
    } else {
      out.append(s.substr(i, len));
    }
    previous_cased = cased;
    i += len;
  }
  return out;
}

std::string Capitalize(std::string_view s) {
  if (s.empty()) return "";
  size_t len = 1;
  const uint32_t first = DecodeUtf8(s, 0, &len);
  std::string out;
  AppendUtf8(ToUpperCodePoint(first), out);
  out += ToLowerUtf8(s.substr(len));
  return out;
}

std::vector<Value> Iterate(const Value& value, const char* function) {
  switch (value.kind()) {
    case Value::Kind::kArray:
      return value.array();
    case Value::Kind::kString: {
      std::vector<Value> out;
      for (std::string& c : Characters(value.str())) out.push_back(Value::String(std::move(c)));
      return out;
    }
    case Value::Kind::kObject: {
      std::vector<Value> out;
      for (const auto& [key, v] : value.object().items) out.push_back(Value::String(key));
      return out;
    }
    case Value::Kind::kUndefined:
      return {};
    default:
      ThrowError(std::string(function) + ": cannot iterate over a " + value.TypeName());
  }
}

Value AttributePath(Interpreter& interp, const Value& item, const Value& path) {
  if (path.is_int()) return interp.GetItem(item, path);
  if (!path.is_string()) ThrowError("attribute must be a string or an integer");
  Value current = item;
  size_t start = 0;
  const std::string& p = path.str();
  while (true) {
    const size_t dot = p.find('.', start);
    const std::string part = p.substr(start, dot == std::string::npos ? std::string::npos
                                                                       : dot - start);
    bool numeric = !part.empty();
    for (char c : part) numeric = numeric && c >= '0' && c <= '9';
    if (numeric && current.is_array()) {
      current = interp.GetItem(current, Value::Int(std::stoll(part.substr(0, 18))));
    } else {
      current = interp.GetItem(current, Value::String(part));
    }
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

}  // namespace sparkstack::jinja
