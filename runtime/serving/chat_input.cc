#include "runtime/serving/chat_input.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace sparkstack::serving {
namespace {

constexpr size_t kMaxMessages = 4096;
constexpr size_t kMaxRoleBytes = 64;

absl::Status Bad(size_t index, absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("messages[", index, "]", field, ": ", what));
}

absl::StatusOr<nlohmann::ordered_json> NormalizeContent(const nlohmann::ordered_json& content,
                                                        size_t index) {
  if (content.is_string() || content.is_null()) return content;
  if (!content.is_array()) {
    return Bad(index, ".content", "expected a string or an array of text parts");
  }
  std::string joined;
  for (size_t p = 0; p < content.size(); ++p) {
    const auto& part = content[p];
    const std::string where = absl::StrCat(".content[", p, "]");
    if (!part.is_object()) return Bad(index, where, "expected an object");
    auto type = part.find("type");
    if (type == part.end() || !type->is_string()) {
      return Bad(index, where, "needs a \"type\" string");
    }
    if (*type != "text") {
      return Bad(index, where,
                 absl::StrCat("content parts of type ", type->dump(),
                              " are not supported (this model takes text only)"));
    }
    auto text = part.find("text");
    if (text == part.end() || !text->is_string()) {
      return Bad(index, where, "a text part needs a \"text\" string");
    }
    if (p > 0) joined += '\n';
    joined += text->get_ref<const std::string&>();
  }
  return nlohmann::ordered_json(joined);
}

}  // namespace

absl::StatusOr<nlohmann::ordered_json> ValidateChatMessages(
    const nlohmann::ordered_json& messages) {
  if (!messages.is_array()) return absl::InvalidArgumentError("messages: expected an array");
  if (messages.empty()) return absl::InvalidArgumentError("messages: must not be empty");
  if (messages.size() > kMaxMessages) {
    return absl::InvalidArgumentError(
        absl::StrCat("messages: ", messages.size(), " messages, at most ", kMaxMessages));
  }
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& message = messages[i];
    if (!message.is_object()) return Bad(i, "", "expected an object");
    auto role = message.find("role");
    if (role == message.end() || !role->is_string()) {
      return Bad(i, ".role", "expected a string");
    }
    const std::string& role_text = role->get_ref<const std::string&>();
    if (role_text.empty() || role_text.size() > kMaxRoleBytes) {
      return Bad(i, ".role", absl::StrCat("must be 1 to ", kMaxRoleBytes, " bytes"));
    }
    nlohmann::ordered_json normalized = nlohmann::ordered_json::object();
    normalized["role"] = role_text;
    auto content = message.find("content");
    if (content == message.end()) {
      normalized["content"] = nullptr;
    } else {
      auto text = NormalizeContent(*content, i);
      if (!text.ok()) return text.status();
      normalized["content"] = *std::move(text);
    }
    if (normalized["content"].is_null() && role_text != "assistant") {
      return Bad(i, ".content", "required for this role");
    }
    for (auto it = message.begin(); it != message.end(); ++it) {
      if (it.key() == "role" || it.key() == "content") continue;
      if (it->is_null()) continue;
      if (!it->is_string() && !it->is_array() && !it->is_object()) {
        return Bad(i, absl::StrCat(".", it.key()), "expected a string, an array or an object");
      }
      normalized[it.key()] = *it;
    }
    out.push_back(std::move(normalized));
  }
  return out;
}

}  // namespace sparkstack::serving
