// libFuzzer target for chat messages as clients send them: the bytes are a JSON messages array.
// Accepted messages must come out of PrepareChatMessages in the shape templates rely on (every
// role known, content a string or null, tool call arguments objects), still valid, and render
// through a tool-calling template (Llama 3.1 style) without a type error inside the template.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "nlohmann/json.hpp"
#include "runtime/tokenizer/chat_messages.h"
#include "runtime/tokenizer/jinja/chat_template.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using Json = nlohmann::ordered_json;

const sparkstack::ChatTemplate& Template() {
  static const auto* t = new sparkstack::ChatTemplate(*sparkstack::ChatTemplate::Parse(R"(
{%- for message in messages -%}
<|{{ message['role'] }}|>
{%- if message.tool_calls is defined and message.tool_calls -%}
{%- for call in message.tool_calls -%}
{%- set f = call.function if call.function is defined else call -%}
{"name": "{{ f.name }}", "parameters": {{ f.arguments | tojson }}}
{%- for k, v in f.arguments | items %}{{ k }}={{ v | tojson }};{% endfor -%}
{%- endfor -%}
{%- else -%}
{{ message['content'] | trim }}{{ message['content'].startswith('x') }}
{%- endif -%}
{%- endfor -%})"));
  return *t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sparkstack::fuzz::Fail;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const Json messages = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (messages.is_discarded()) return 0;
  auto prepared = sparkstack::tokenizer::PrepareChatMessages(messages);
  if (!prepared.ok()) {
    sparkstack::fuzz::CheckError(prepared.status());
    if (!absl::StartsWith(prepared.status().message(), "messages")) {
      Fail("a message error that does not name the message and field");
    }
    return 0;
  }
  if (!sparkstack::tokenizer::ValidateChatMessages(*prepared).ok()) {
    Fail("PrepareChatMessages produced messages that do not validate");
  }
  for (const Json& message : *prepared) {
    const auto content = message.find("content");
    if (content != message.end() && !content->is_string() && !content->is_null()) {
      Fail("content is neither a string nor null after PrepareChatMessages");
    }
    const auto calls = message.find("tool_calls");
    if (calls == message.end() || calls->is_null()) continue;
    for (const Json& call : *calls) {
      if (!call["function"]["arguments"].is_object()) Fail("tool call arguments not an object");
    }
  }
  auto rendered = sparkstack::RenderChat(Template(), *prepared, true, "<s>", "</s>");
  if (!rendered.ok() && !absl::StrContains(rendered.status().message(), "did too much work") &&
      !absl::StrContains(rendered.status().message(), "output")) {
    std::fprintf(stderr, "%s\n", rendered.status().ToString().c_str());
    Fail("validated messages failed to render in a template that handles the schema");
  }
  return 0;
}
