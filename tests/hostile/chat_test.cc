// Chat messages that do not follow the OpenAI schema, through `tokenize` (JSON lines) and
// `generate --chat`: each is refused with the message index and field named, before any template
// sees it. Also: text parts, tool calls, and Python's white space in `trim`.
#include <filesystem>
#include <string>

#include "nlohmann/json.hpp"
#include "tests/hostile/hostile_util.h"

namespace sparkstack::hostile {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Llama-3.1-like: content trimmed, tool calls written with their arguments as JSON.
constexpr char kTemplate[] =
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>"
    "{% if m.content %}{{ m['content'] | trim }}{% endif %}"
    "{% if m.tool_calls %}{% for c in m.tool_calls %}{{ c.function.name }}"
    "{{ c.function.arguments | tojson }}{% endfor %}{% endif %}{% endfor %}";

class HostileChat : public ::testing::Test {
 protected:
  void SetUp() override { WriteTokenizer(dir_.path(), kTemplate); }

  // Runs one JSON line through `tokenize`; returns its output line.
  nlohmann::json Tokenize(const std::string& line, int expected_exit) {
    const RunResult result =
        RunSparkstack({"tokenize", "--model", dir_.path()}, {.stdin_text = line + "\n"});
    EXPECT_FALSE(result.timed_out) << Describe(result);
    EXPECT_EQ(result.exit_code, expected_exit) << Describe(result);
    const nlohmann::json out = nlohmann::json::parse(result.out, nullptr, false);
    EXPECT_FALSE(out.is_discarded()) << Describe(result);
    return out;
  }

  void ExpectRefused(const std::string& messages, const std::string& fragment) {
    SCOPED_TRACE(messages);
    const nlohmann::json out = Tokenize("{\"messages\": " + messages + "}", 1);
    ASSERT_TRUE(out.contains("error")) << out.dump();
    EXPECT_THAT(out["error"].get<std::string>(), HasSubstr(fragment));
  }

  ScratchDir dir_;
};

TEST_F(HostileChat, SchemaViolationsNameTheMessageAndField) {
  ExpectRefused(R"([{"role": "user", "content": "a"}, {"content": "b"}])",
                "messages[1].role: missing");
  ExpectRefused(R"([{"role": "robot", "content": "a"}])",
                "messages[0].role: 'robot' is not a chat role (system, developer, user, "
                "assistant, tool)");
  ExpectRefused(R"([{"role": 7, "content": "a"}])", "messages[0].role: expected a string");
  ExpectRefused(R"([{"role": "user", "content": 5}])",
                "messages[0].content: expected a string or an array of content parts, found "
                "number 5");
  ExpectRefused(R"([{"role": "user", "content": null}])",
                "messages[0].content: null (only an assistant message with tool_calls may omit "
                "content)");
  ExpectRefused(R"([{"role": "system"}])", "messages[0].content: missing");
  ExpectRefused(R"([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}])",
                "messages[0].content[0].type: 'image_url' parts are not supported here");
  ExpectRefused(R"([{"role": "user", "content": [{"type": "text"}]}])",
                "messages[0].content[0].text: missing");
  ExpectRefused(R"([{"role": "user", "content": []}])", "expected at least one content part");
  ExpectRefused(R"([{"role": "user", "content": "a", "tool_calls": []}])",
                "messages[0].tool_calls: only assistant messages have tool_calls");
  ExpectRefused(R"([{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}])",
                "messages[0].tool_calls[0].function.name: missing");
  ExpectRefused(R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f",)"
                R"( "arguments": "{not json"}}]}])",
                "messages[0].tool_calls[0].function.arguments: expected a JSON object encoded as "
                "a string");
  ExpectRefused(R"([{"role": "user", "content": "a", "name": 3}])",
                "messages[0].name: expected a string");
  ExpectRefused("[]", "messages: expected at least one message");
  ExpectRefused(R"({"role": "user"})", "messages: expected an array of messages");
  ExpectRefused(R"([[{"role": "user"}]])", "messages[0]: expected a message object, found array");
  // Deep nesting is refused before parsing (copying or printing it would recurse per level).
  ExpectRefused(std::string(100000, '[') + std::string(100000, ']'),
                "JSON nested deeper than 128 levels (at byte 140)");
  ExpectRefused(R"([{"role": "user", "content": "a", "extra": )" + std::string(1000, '[') +
                    std::string(1000, ']') + "}]",
                "JSON nested deeper than 128 levels");
}

TEST_F(HostileChat, TextPartsToolCallsAndPythonTrim) {
  const nlohmann::json parts =
      Tokenize(R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"},)"
               R"( {"type": "text", "text": "b"}]}]})",
               0);
  const nlohmann::json string =
      Tokenize(R"({"messages": [{"role": "user", "content": "a\nb"}]})", 0);
  EXPECT_EQ(parts["text"], string["text"]);
  EXPECT_EQ(parts["ids"], string["ids"]);
  // OpenAI's string arguments reach the template as the object they encode.
  const nlohmann::json tools =
      Tokenize(R"({"messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "c1",)"
               R"( "type": "function", "function": {"name": "get_weather",)"
               R"( "arguments": "{\"city\": \"Paris\"}"}}]}]})",
               0);
  EXPECT_EQ(tools["text"], "<|endoftext|><|assistant|>get_weather{\"city\": \"Paris\"}");
  // Python's str.strip() (what transformers' trim does) removes U+0085 and U+001F, keeps U+FEFF.
  const nlohmann::json trimmed =
      Tokenize(R"({"messages": [{"role": "user", "content": "\u001fhi\u0085"}, )"
               R"({"role": "user", "content": "\ufeffhi"}]})",
               0);
  EXPECT_EQ(trimmed["text"], "<|endoftext|><|user|>hi<|user|>\ufeffhi");
}

TEST_F(HostileChat, GenerateChatFileIsValidatedBeforeLoading) {
  const std::string model = dir_.File("model");
  fs::create_directories(model);
  WriteTinyLlama(model);
  WriteTokenizer(model, kTemplate);
  WriteFile(dir_.File("chat.json"),
            R"({"messages": [{"role": "user", "content": "a"}, {"content": "b"}]})");
  ExpectFailure(RunSparkstack({"generate", "--model", model, "--chat", dir_.File("chat.json")}), 1,
                "--chat file " + dir_.File("chat.json") + ": messages[1].role: missing");
  WriteFile(dir_.File("chat.json"), R"([{"role": "user", "content": {"text": "a"}}])");
  ExpectFailure(
      RunSparkstack({"generate", "--model", model, "--chat", dir_.File("chat.json")}), 1,
      "messages[0].content: expected a string or an array of content parts, found object");
}

TEST_F(HostileChat, RunawayTemplatesAreBounded) {
  // A template that recurses forever, and one that loops a billion times.
  for (const char* source : {"{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
                             "{% for i in range(1000000000) %}x{% endfor %}"}) {
    SCOPED_TRACE(source);
    WriteTokenizer(dir_.path(), source);
    const nlohmann::json out = Tokenize(R"({"messages": [{"role": "user", "content": "a"}]})", 1);
    ASSERT_TRUE(out.contains("error")) << out.dump();
    EXPECT_THAT(out["error"].get<std::string>(), HasSubstr("chat template render error"));
  }
}

TEST_F(HostileChat, DecodeIdsOutOfRange) {
  const RunResult result = RunSparkstack({"tokenize", "--model", dir_.path(), "--decode"},
                                         {.stdin_text = "{\"ids\": [3000000000]}\n"});
  EXPECT_EQ(result.exit_code, 1) << Describe(result);
  EXPECT_THAT(result.out, HasSubstr("3000000000 is out of range (token ids are 0 to 2147483647)"));
}

}  // namespace
}  // namespace sparkstack::hostile
