#include "runtime/tokenizer/jinja/chat_template.h"

#include <exception>
#include <new>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/tokenizer/jinja/ast.h"
#include "runtime/tokenizer/jinja/builtins.h"
#include "runtime/tokenizer/jinja/interpreter.h"
#include "runtime/tokenizer/jinja/lexer.h"
#include "runtime/tokenizer/jinja/parser.h"

namespace sparkstack {

struct ChatTemplate::Parsed {
  jinja::Body body;
};

namespace {

absl::Status ToStatus(const jinja::TemplateError& error, const char* what) {
  return absl::InvalidArgumentError(absl::StrCat(
      error.raised_by_template ? "chat template raised an exception" : what, " at line ",
      error.line, ", column ", error.column, ": ", error.message));
}

// Renders with the variables `add_variables(globals)` sets (after the global functions, so user
// variables may shadow them).
template <typename AddVariables>
absl::StatusOr<std::string> RenderWith(const jinja::Body& body, AddVariables add_variables) {
  try {
    jinja::Object globals;
    jinja::AddGlobalFunctions(globals);
    add_variables(globals);
    jinja::Interpreter interpreter;
    return interpreter.Render(body, globals);
  } catch (const jinja::TemplateError& error) {
    return ToStatus(error, "chat template render error");
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("chat template render ran out of memory");
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("chat template render failed: ", e.what()));
  }
}

template <typename Json>
absl::StatusOr<std::string> RenderImpl(const jinja::Body& body, const Json& context) {
  if (!context.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chat template context must be a JSON object of variables, found ", context.type_name()));
  }
  return RenderWith(body, [&](jinja::Object& globals) {
    for (auto it = context.begin(); it != context.end(); ++it) {
      globals.Set(it.key(), jinja::Value::FromJson(it.value()));
    }
  });
}

template <typename Json>
absl::StatusOr<std::string> RenderChatImpl(const jinja::Body& body, const Json& messages,
                                           bool add_generation_prompt,
                                           const std::string& bos_token,
                                           const std::string& eos_token, const Json& extra) {
  if (!messages.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("chat messages must be a JSON array, found ", messages.type_name()));
  }
  if (!extra.is_null() && !extra.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "extra chat template variables must be a JSON object, found ", extra.type_name()));
  }
  return RenderWith(body, [&](jinja::Object& globals) {
    globals.Set("messages", jinja::Value::FromJson(messages));
    globals.Set("add_generation_prompt", jinja::Value::Bool(add_generation_prompt));
    globals.Set("bos_token", jinja::Value::String(bos_token));
    globals.Set("eos_token", jinja::Value::String(eos_token));
    if (extra.is_object()) {
      for (auto it = extra.begin(); it != extra.end(); ++it) {
        globals.Set(it.key(), jinja::Value::FromJson(it.value()));
      }
    }
  });
}

}  // namespace

absl::StatusOr<ChatTemplate> ChatTemplate::Parse(std::string source) {
  ChatTemplate result;
  try {
    auto parsed = std::make_shared<Parsed>();
    parsed->body = jinja::ParseTemplate(jinja::Lex(source));
    result.parsed_ = std::move(parsed);
  } catch (const jinja::TemplateError& error) {
    return ToStatus(error, "chat template syntax error");
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("chat template parse ran out of memory");
  }
  result.source_ = std::make_shared<const std::string>(std::move(source));
  return result;
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::json& context) const {
  return RenderImpl(parsed_->body, context);
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::ordered_json& context) const {
  return RenderImpl(parsed_->body, context);
}

absl::StatusOr<std::string> RenderChat(const ChatTemplate& chat_template,
                                       const nlohmann::json& messages, bool add_generation_prompt,
                                       const std::string& bos_token, const std::string& eos_token,
                                       const nlohmann::json& extra) {
  return RenderChatImpl(chat_template.parsed_->body, messages, add_generation_prompt, bos_token,
                        eos_token, extra);
}

absl::StatusOr<std::string> RenderChat(const ChatTemplate& chat_template,
                                       const nlohmann::ordered_json& messages,
                                       bool add_generation_prompt, const std::string& bos_token,
                                       const std::string& eos_token,
                                       const nlohmann::ordered_json& extra) {
  return RenderChatImpl(chat_template.parsed_->body, messages, add_generation_prompt, bos_token,
                        eos_token, extra);
}

}  // namespace sparkstack
