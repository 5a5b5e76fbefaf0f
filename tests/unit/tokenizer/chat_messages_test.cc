// Chat message validation against OpenAI's schema (runtime/tokenizer/chat_messages.h). The
// accepted shapes are the examples of OpenAI's API reference and Hugging Face's chat-template
// documentation; each refused one must name the message index and field.
#include "runtime/tokenizer/chat_messages.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparkstack::tokenizer {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::ordered_json;

TEST(ChatMessagesTest, AcceptsTheDocumentedShapes) {
  for (const char* text : {
           R"([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}])",
           R"([{"role": "developer", "content": [{"type": "text", "text": "d"}]}])",
           R"([{"role": "user", "content": "u", "name": "alice"},
               {"role": "assistant", "content": "a", "refusal": null},
               {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}])",
           // OpenAI: null content, string arguments, id and type; a tool answer with its id.
           R"([{"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
                "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "42"}])",
           // Hugging Face: no content, object arguments, no ids; extra keys pass through.
           R"([{"role": "assistant", "tool_calls": [{"type": "function", "function":
                {"name": "f", "arguments": {"x": 1}}}], "reasoning_content": "hm"},
               {"role": "tool", "name": "f", "content": [{"type": "text", "text": "42"}]}])",
       }) {
    SCOPED_TRACE(text);
    EXPECT_TRUE(ValidateChatMessages(Json::parse(text)).ok())
        << ValidateChatMessages(Json::parse(text));
  }
}

TEST(ChatMessagesTest, EachViolationNamesIndexAndField) {
  struct Case {
    const char* messages;
    const char* expected;
  };
  for (const Case& c : {
           Case{R"({"role": "user"})", "messages: expected an array of messages, found object"},
           Case{"[]", "messages: expected at least one message"},
           Case{R"([1])", "messages[0]: expected a message object, found number 1"},
           Case{R"([{"role": "user", "content": "a"}, {"content": "b"}])",
                "messages[1].role: missing"},
           Case{R"([{"role": "ipython", "content": "a"}])",
                "messages[0].role: 'ipython' is not a chat role"},
           Case{R"([{"role": "user", "content": true}])",
                "messages[0].content: expected a string or an array of content parts, found "
                "boolean true"},
           Case{R"([{"role": "assistant", "content": null}])",
                "messages[0].content: null (only an assistant message with tool_calls"},
           Case{R"([{"role": "user", "content": [{"type": "refusal", "refusal": "x"}]}])",
                "messages[0].content[0].type: 'refusal' parts are not supported here"},
           Case{R"([{"role": "user", "content": [{"type": "video"}]}])",
                "messages[0].content[0].type: 'video' is not a content part type"},
           Case{R"([{"role": "user", "content": ["text"]}])",
                "messages[0].content[0]: expected a content part object, found string"},
           Case{R"([{"role": "user", "content": [{"text": "a"}]}])",
                "messages[0].content[0].type: missing"},
           Case{R"([{"role": "user", "content": [{"type": "text", "text": 1}]}])",
                "messages[0].content[0].text: expected a string, found number 1"},
           Case{R"([{"role": "assistant", "tool_calls": {}}])",
                "messages[0].tool_calls: expected a non-empty array of tool calls"},
           Case{R"([{"role": "assistant", "tool_calls": [{"type": "web",
                "function": {"name": "f", "arguments": "{}"}}]}])",
                "messages[0].tool_calls[0].type: expected \"function\""},
           Case{R"([{"role": "assistant", "tool_calls": [{"function": {"name": "",
                "arguments": "{}"}}]}])",
                "messages[0].tool_calls[0].function.name: expected a non-empty string"},
           Case{R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f",
                "arguments": [1]}}]}])",
                "messages[0].tool_calls[0].function.arguments: expected a JSON string or an "
                "object"},
           Case{R"([{"role": "assistant", "tool_calls": [{"id": 5, "function": {"name": "f",
                "arguments": "{}"}}]}])",
                "messages[0].tool_calls[0].id: expected a string"},
           Case{R"([{"role": "user", "content": "a", "tool_call_id": "x"}])",
                "messages[0].tool_call_id: only tool messages have a tool_call_id"},
           Case{R"([{"role": "tool", "content": "a", "tool_call_id": 3}])",
                "messages[0].tool_call_id: expected a string"},
       }) {
    SCOPED_TRACE(c.messages);
    const absl::Status status = ValidateChatMessages(Json::parse(c.messages));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr(c.expected));
  }
}

TEST(ChatMessagesTest, PrepareShapesMessagesForTemplates) {
  const Json prepared = *PrepareChatMessages(Json::parse(R"([
      {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
       "name": "n"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{\"z\": 1, \"a\": 2}"}},
        {"function": {"name": "g", "arguments": ""}},
        {"function": {"name": "h", "arguments": {"k": "v"}}}]}])"));
  EXPECT_EQ(prepared[0]["content"], "a\nb");
  EXPECT_EQ(prepared[0]["name"], "n");
  // Parsed in order: tojson in a template then writes the keys as the client sent them.
  EXPECT_EQ(prepared[1]["tool_calls"][0]["function"]["arguments"].dump(), R"({"z":1,"a":2})");
  EXPECT_EQ(prepared[1]["tool_calls"][1]["function"]["arguments"], Json::object());
  EXPECT_EQ(prepared[1]["tool_calls"][2]["function"]["arguments"], Json({{"k", "v"}}));
  EXPECT_TRUE(prepared[1]["content"].is_null());

  for (const char* arguments : {R"("[1, 2]")", R"("{oops")", R"("5")"}) {
    const std::string text = std::string(R"([{"role": "assistant", "tool_calls": [{"function":
        {"name": "f", "arguments": )") +
                             arguments + "}}]}]";
    auto status = PrepareChatMessages(Json::parse(text)).status();
    EXPECT_THAT(status.message(),
                HasSubstr("messages[0].tool_calls[0].function.arguments: expected a JSON object "
                          "encoded as a string"))
        << arguments;
  }
}

TEST(ChatMessagesTest, NestingIsCountedOutsideStringsOnly) {
  EXPECT_TRUE(CheckJsonNesting(R"([[{"a": [1]}]])", 4).ok());
  const absl::Status deep = CheckJsonNesting(R"([[{"a": [1]}]])", 3);
  EXPECT_EQ(deep.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(deep.message(), "JSON nested deeper than 3 levels (at byte 8)");
  // Brackets inside strings, also after an escaped quote or backslash, do not count.
  EXPECT_TRUE(CheckJsonNesting(R"(["[[[[", "\"[[[[", "\\", {"k[[[": "]"}])", 2).ok());
  const std::string many = std::string(200, '[') + std::string(200, ']');
  EXPECT_FALSE(CheckJsonNesting(many).ok());
  EXPECT_TRUE(CheckJsonNesting(many, 200).ok());
}

}  // namespace
}  // namespace sparkstack::tokenizer
