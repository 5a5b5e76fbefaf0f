#include "runtime/tokenizer/chat_messages.h"

#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"

namespace sparkstack::tokenizer {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kRoles[] = {"system", "developer", "user", "assistant", "tool"};
constexpr char kRoleList[] = "system, developer, user, assistant, tool";

// A short rendering of a value for messages: its type and the start of its JSON.
// Arrays and objects are not dumped: dump() recurses, and input may nest deeply.
std::string Describe(const Json& value) {
  if (value.is_array()) return absl::StrCat("array of ", value.size(), " elements");
  if (value.is_object()) return absl::StrCat("object of ", value.size(), " keys");
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return absl::StrCat(value.type_name(), " ", text);
}

absl::Status FieldError(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

absl::Status Expected(const std::string& path, const std::string& expected, const Json& found) {
  return FieldError(path, absl::StrCat("expected ", expected, ", found ", Describe(found)));
}

// `key` of `object`, or nullptr when absent. A null value counts as present.
const Json* Find(const Json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

absl::Status CheckOptionalString(const Json& message, const char* key, const std::string& path) {
  const Json* value = Find(message, key);
  if (value == nullptr || value->is_null() || value->is_string()) return absl::OkStatus();
  return Expected(absl::StrCat(path, ".", key), "a string", *value);
}

absl::Status CheckContentPart(const Json& part, const std::string& path, bool assistant) {
  if (!part.is_object()) return Expected(path, "a content part object", part);
  const Json* type = Find(part, "type");
  if (type == nullptr) return FieldError(path + ".type", "missing");
  if (!type->is_string()) return Expected(path + ".type", "a string", *type);
  const std::string& name = type->get_ref<const std::string&>();
  // The field that holds the part's text is named after its type.
  if (name == "text" || (assistant && name == "refusal")) {
    const Json* text = Find(part, name.c_str());
    const std::string text_path = absl::StrCat(path, ".", name);
    if (text == nullptr) return FieldError(text_path, "missing");
    if (!text->is_string()) return Expected(text_path, "a string", *text);
    return absl::OkStatus();
  }
  if (name == "image_url" || name == "input_audio" || name == "file" || name == "refusal") {
    return FieldError(path + ".type",
                      absl::StrCat("'", name, "' parts are not supported here (expected 'text'",
                                   assistant ? " or 'refusal'" : "",
                                   "; the models served take "
                                   "text only)"));
  }
  return FieldError(path + ".type", absl::StrCat("'", name,
                                                 "' is not a content part type "
                                                 "(expected 'text')"));
}

absl::Status CheckToolCall(const Json& call, const std::string& path) {
  if (!call.is_object()) return Expected(path, "a tool call object", call);
  SPARKSTACK_RETURN_IF_ERROR(CheckOptionalString(call, "id", path));
  if (const Json* type = Find(call, "type"); type != nullptr && !type->is_null()) {
    if (!type->is_string() || *type != "function") {
      return Expected(path + ".type", "\"function\"", *type);
    }
  }
  const Json* function = Find(call, "function");
  if (function == nullptr) return FieldError(path + ".function", "missing");
  if (!function->is_object()) return Expected(path + ".function", "an object", *function);
  const Json* name = Find(*function, "name");
  if (name == nullptr) return FieldError(path + ".function.name", "missing");
  if (!name->is_string() || name->get_ref<const std::string&>().empty()) {
    return Expected(path + ".function.name", "a non-empty string", *name);
  }
  const Json* arguments = Find(*function, "arguments");
  if (arguments == nullptr) return FieldError(path + ".function.arguments", "missing");
  if (!arguments->is_string() && !arguments->is_object()) {
    return Expected(path + ".function.arguments", "a JSON string or an object", *arguments);
  }
  return absl::OkStatus();
}

absl::Status CheckMessage(const Json& message, size_t index) {
  const std::string path = absl::StrCat("messages[", index, "]");
  if (!message.is_object()) return Expected(path, "a message object", message);

  const Json* role_value = Find(message, "role");
  if (role_value == nullptr) return FieldError(path + ".role", "missing");
  if (!role_value->is_string()) return Expected(path + ".role", "a string", *role_value);
  const std::string& role = role_value->get_ref<const std::string&>();
  bool known = false;
  for (std::string_view r : kRoles) known = known || r == role;
  if (!known) {
    return FieldError(path + ".role",
                      absl::StrCat("'", role, "' is not a chat role (", kRoleList, ")"));
  }
  const bool assistant = role == "assistant";

  const Json* tool_calls = Find(message, "tool_calls");
  if (tool_calls != nullptr && !tool_calls->is_null()) {
    if (!assistant) {
      return FieldError(
          path + ".tool_calls",
          absl::StrCat("only assistant messages have tool_calls, this one is '", role, "'"));
    }
    if (!tool_calls->is_array() || tool_calls->empty()) {
      return Expected(path + ".tool_calls", "a non-empty array of tool calls", *tool_calls);
    }
    for (size_t i = 0; i < tool_calls->size(); ++i) {
      SPARKSTACK_RETURN_IF_ERROR(
          CheckToolCall((*tool_calls)[i], absl::StrCat(path, ".tool_calls[", i, "]")));
    }
  }
  const bool has_tool_calls = tool_calls != nullptr && !tool_calls->is_null();

  const Json* content = Find(message, "content");
  const std::string content_path = path + ".content";
  if (content == nullptr || content->is_null()) {
    if (!(assistant && has_tool_calls)) {
      return FieldError(content_path,
                        absl::StrCat(content == nullptr ? "missing" : "null",
                                     " (only an assistant message with tool_calls may omit "
                                     "content)"));
    }
  } else if (content->is_array()) {
    if (content->empty()) {
      return FieldError(content_path, "expected at least one content part, found []");
    }
    for (size_t i = 0; i < content->size(); ++i) {
      SPARKSTACK_RETURN_IF_ERROR(
          CheckContentPart((*content)[i], absl::StrCat(content_path, "[", i, "]"), assistant));
    }
  } else if (!content->is_string()) {
    return Expected(content_path, "a string or an array of content parts", *content);
  }

  SPARKSTACK_RETURN_IF_ERROR(CheckOptionalString(message, "name", path));
  if (const Json* id = Find(message, "tool_call_id"); id != nullptr && !id->is_null()) {
    if (role != "tool") {
      return FieldError(
          path + ".tool_call_id",
          absl::StrCat("only tool messages have a tool_call_id, this one is '", role, "'"));
    }
    SPARKSTACK_RETURN_IF_ERROR(CheckOptionalString(message, "tool_call_id", path));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckJsonNesting(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        return absl::InvalidArgumentError(absl::StrCat(
            "JSON nested deeper than ", max_depth, " levels (at byte ", i, ")"));
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateChatMessages(const Json& messages) {
  if (!messages.is_array()) return Expected("messages", "an array of messages", messages);
  if (messages.empty()) return FieldError("messages", "expected at least one message, found []");
  for (size_t i = 0; i < messages.size(); ++i) {
    SPARKSTACK_RETURN_IF_ERROR(CheckMessage(messages[i], i));
  }
  return absl::OkStatus();
}

absl::StatusOr<Json> PrepareChatMessages(const Json& messages) {
  SPARKSTACK_RETURN_IF_ERROR(ValidateChatMessages(messages));
  Json prepared = messages;
  for (size_t i = 0; i < prepared.size(); ++i) {
    Json& message = prepared[i];
    if (auto it = message.find("content"); it != message.end() && it->is_array()) {
      std::string text;
      for (size_t p = 0; p < it->size(); ++p) {
        const Json& part = (*it)[p];
        if (p > 0) text += '\n';
        text += part[part["type"].get_ref<const std::string&>()].get_ref<const std::string&>();
      }
      *it = std::move(text);
    }
    auto calls = message.find("tool_calls");
    if (calls == message.end() || !calls->is_array()) continue;
    for (size_t c = 0; c < calls->size(); ++c) {
      Json& arguments = (*calls)[c]["function"]["arguments"];
      if (!arguments.is_string()) continue;
      const std::string& text = arguments.get_ref<const std::string&>();
      if (text.empty()) {
        arguments = Json::object();
        continue;
      }
      Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded() || !parsed.is_object()) {
        return FieldError(absl::StrCat("messages[", i, "].tool_calls[", c, "].function.arguments"),
                          absl::StrCat("expected a JSON object encoded as a string, found ",
                                       Describe(arguments)));
      }
      arguments = std::move(parsed);
    }
  }
  return prepared;
}

}  // namespace sparkstack::tokenizer
