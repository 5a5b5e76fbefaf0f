// Small helpers that read tokenizer.json / tokenizer_config.json fields and turn every mistake
// into an InvalidArgument that names the file, the field path and what was expected.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_JSON_UTIL_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_JSON_UTIL_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace sparkstack::tokenizer {

using Json = nlohmann::json;

// `where` is a path such as "tokenizer.json: pre_tokenizer.pretokenizers[1]".
inline std::string FieldPath(std::string_view where, std::string_view key) {
  return absl::StrCat(std::string(where), ".", std::string(key));
}

inline absl::Status FieldError(std::string_view path, std::string_view expected,
                               const Json* found) {
  return absl::InvalidArgumentError(absl::StrCat(
      std::string(path), ": expected ", std::string(expected), ", found ",
      found == nullptr ? std::string("nothing (field missing)")
                       : std::string(found->type_name()) + " " + found->dump().substr(0, 80)));
}

// Required field of any type.
inline absl::StatusOr<const Json*> RequiredField(const Json& obj, std::string_view where,
                                                 std::string_view key) {
  if (!obj.is_object()) return FieldError(where, "an object", &obj);
  auto it = obj.find(std::string(key));
  if (it == obj.end()) return FieldError(FieldPath(where, key), "a value", nullptr);
  return &*it;
}

inline absl::StatusOr<std::string> RequiredString(const Json& obj, std::string_view where,
                                                  std::string_view key) {
  auto field = RequiredField(obj, where, key);
  if (!field.ok()) return field.status();
  if (!(*field)->is_string()) return FieldError(FieldPath(where, key), "a string", *field);
  return (*field)->get<std::string>();
}

// Optional string: missing or null gives `fallback`.
inline absl::StatusOr<std::string> OptionalString(const Json& obj, std::string_view where,
                                                  std::string_view key, std::string fallback) {
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_string()) return FieldError(FieldPath(where, key), "a string", &*it);
  return it->get<std::string>();
}

inline absl::StatusOr<bool> OptionalBool(const Json& obj, std::string_view where,
                                         std::string_view key, bool fallback) {
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return FieldError(FieldPath(where, key), "true or false", &*it);
  return it->get<bool>();
}

inline absl::StatusOr<int64_t> OptionalInt(const Json& obj, std::string_view where,
                                           std::string_view key, int64_t fallback) {
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) return FieldError(FieldPath(where, key), "an integer", &*it);
  return it->get<int64_t>();
}

// The "type" tag of a component object.
inline absl::StatusOr<std::string> ComponentType(const Json& obj, std::string_view where) {
  if (!obj.is_object()) return FieldError(where, "an object with a \"type\"", &obj);
  return RequiredString(obj, where, "type");
}

}  // namespace sparkstack::tokenizer

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_JSON_UTIL_H_
