// libFuzzer target for chat templates: the bytes are a template's source, rendered (when it
// parses) for a fixed conversation with tools. Renders are bounded (work, depth, output), so any
// input must finish quickly with text or an error naming a line and column.
#include <cstddef>
#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"
#include "runtime/tokenizer/jinja/chat_template.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

const nlohmann::ordered_json& Messages() {
  static const auto* messages = new nlohmann::ordered_json(nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Weather in Paris? \u0085 "},
    {"role": "assistant", "content": null, "tool_calls": [{"type": "function", "function":
      {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
    {"role": "tool", "content": "{\"temperature\": 21}"},
    {"role": "assistant", "content": "21 degrees."},
    {"role": "user", "content": "Thanks"}
  ])"));
  return *messages;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed =
      sparkstack::ChatTemplate::Parse(std::string(reinterpret_cast<const char*>(data), size));
  if (!parsed.ok()) {
    sparkstack::fuzz::CheckError(parsed.status());
    return 0;
  }
  const nlohmann::ordered_json extra = {
      {"tools", nlohmann::ordered_json::array(
                    {{{"type", "function"}, {"function", {{"name", "get_weather"}}}}})},
      {"enable_thinking", false}};
  auto rendered = sparkstack::RenderChat(*parsed, Messages(), /*add_generation_prompt=*/true, "<s>",
                                         "</s>", extra);
  // A template may fail to render (raise_exception, type errors): then with a message.
  if (!rendered.ok() && rendered.status().message().empty()) {
    sparkstack::fuzz::Fail("render error with an empty message");
  }
  return 0;
}
