// ParseOpenAiRequest against hand-written OpenAI bodies: every accepted field lands in the right
// native field with OpenAI's defaults, and every refusal names its field.
#include "runtime/serving/openai_request.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparkstack::serving {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const ServingLimits kLimits;

absl::StatusOr<OpenAiRequest> Completions(absl::string_view body) {
  return ParseOpenAiRequest(OpenAiEndpoint::kCompletions, body, kLimits);
}
absl::StatusOr<OpenAiRequest> Chat(absl::string_view body) {
  return ParseOpenAiRequest(OpenAiEndpoint::kChatCompletions, body, kLimits);
}

TEST(OpenAiRequestTest, CompletionsFieldsAndDefaults) {
  auto r = Completions(R"({"model": "m", "prompt": "hi", "temperature": 0.5, "top_p": 0.9,
      "top_k": 7, "min_p": 0.1, "presence_penalty": -0.5, "frequency_penalty": 1.5,
      "repetition_penalty": 1.2, "seed": 42, "n": 3, "stop": ["a", "bc"], "logprobs": 4,
      "min_tokens": 2, "ignore_eos": true, "stop_token_ids": [5, 6],
      "include_stop_str_in_output": true, "skip_special_tokens": false, "max_tokens": 9,
      "stream": true, "stream_options": {"include_usage": true}, "user": "u"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model, "m");
  ASSERT_EQ(r->prompts.size(), 1u);
  EXPECT_EQ(r->prompts[0].kind, PromptSpec::Kind::kText);
  EXPECT_EQ(r->prompts[0].text, "hi");
  const SamplingParams& s = r->params.sampling;
  EXPECT_FLOAT_EQ(s.temperature, 0.5f);
  EXPECT_FLOAT_EQ(s.top_p, 0.9f);
  EXPECT_EQ(s.top_k, 7);
  EXPECT_FLOAT_EQ(s.min_p, 0.1f);
  EXPECT_FLOAT_EQ(s.presence_penalty, -0.5f);
  EXPECT_FLOAT_EQ(s.frequency_penalty, 1.5f);
  EXPECT_FLOAT_EQ(s.repetition_penalty, 1.2f);
  EXPECT_EQ(s.logprobs, 4);
  EXPECT_EQ(r->params.seed, 42u);
  EXPECT_EQ(r->n, 3);
  EXPECT_EQ(r->params.max_tokens, 9);
  EXPECT_THAT(r->params.stopping.stop_strings, ElementsAre("a", "bc"));
  EXPECT_THAT(r->params.stopping.stop_token_ids, ElementsAre(5, 6));
  EXPECT_EQ(r->params.stopping.min_tokens, 2);
  EXPECT_TRUE(r->params.stopping.ignore_eos);
  EXPECT_TRUE(r->params.stopping.include_stop_string);
  EXPECT_FALSE(r->params.skip_special_tokens);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);

  auto d = Completions(R"({"prompt": "hi", "temperature": null, "seed": null})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FLOAT_EQ(d->params.sampling.temperature, 1.0f);  // OpenAI's default
  EXPECT_EQ(d->params.max_tokens, 16);                    // OpenAI's completions default
  EXPECT_FALSE(d->params.seed.has_value());
  EXPECT_EQ(d->logprobs, -1);
  EXPECT_EQ(d->n, 1);
}

TEST(OpenAiRequestTest, PromptForms) {
  auto ids = Completions(R"({"prompt": [1, 2, 3]})");
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->prompts.size(), 1u);
  EXPECT_THAT(ids->prompts[0].token_ids, ElementsAre(1, 2, 3));
  auto texts = Completions(R"({"prompt": ["a", "b"]})");
  ASSERT_TRUE(texts.ok());
  EXPECT_EQ(texts->prompts.size(), 2u);
  auto lists = Completions(R"({"prompt": [[1], [2, 3]]})");
  ASSERT_TRUE(lists.ok());
  ASSERT_EQ(lists->prompts.size(), 2u);
  EXPECT_THAT(lists->prompts[1].token_ids, ElementsAre(2, 3));
  EXPECT_THAT(Completions(R"({"prompt": ["a", 1]})").status().message(), HasSubstr("prompt[1]"));
  EXPECT_THAT(Completions(R"({"prompt": [[1], []]})").status().message(), HasSubstr("prompt[1]"));
  EXPECT_THAT(Completions(R"({"prompt": []})").status().message(), HasSubstr("prompt"));
  EXPECT_THAT(Completions(R"({"prompt": [1, 2147483648]})").status().message(),
              HasSubstr("prompt[1]"));
}

TEST(OpenAiRequestTest, ChatFieldsAndDefaults) {
  auto r = Chat(R"({"messages": [{"role": "system", "content": "s"},
      {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
      "max_completion_tokens": 5, "max_tokens": 9, "logprobs": true, "top_logprobs": 3,
      "chat_template_kwargs": {"enable_thinking": false}, "response_format": {"type": "text"},
      "tool_choice": "none", "tools": []})");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->prompts.size(), 1u);
  const PromptSpec& p = r->prompts[0];
  EXPECT_EQ(p.kind, PromptSpec::Kind::kChat);
  EXPECT_EQ(p.messages[1]["content"], "a\nb");  // text parts joined as vLLM does
  EXPECT_EQ(p.template_kwargs["enable_thinking"], false);
  EXPECT_TRUE(p.add_generation_prompt);
  EXPECT_EQ(r->params.max_tokens, 5);  // max_completion_tokens wins
  EXPECT_EQ(r->logprobs, 3);
  EXPECT_EQ(r->params.sampling.logprobs, 3);

  auto d = Chat(R"({"messages": [{"role": "user", "content": "x"}]})");
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->params.max_tokens.has_value());  // up to the context
  EXPECT_EQ(d->logprobs, -1);
  auto lp = Chat(R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true})");
  ASSERT_TRUE(lp.ok());
  EXPECT_EQ(lp->logprobs, 0);  // the chosen token's logprob only
}

TEST(OpenAiRequestTest, SeedsAndTopK) {
  EXPECT_EQ(Completions(R"({"prompt": "x", "seed": -1})")->params.seed, ~uint64_t{0});
  EXPECT_EQ(Completions(R"({"prompt": "x", "seed": 18446744073709551615})")->params.seed,
            ~uint64_t{0});
  EXPECT_EQ(Completions(R"({"prompt": "x", "seed": 3.0})")->params.seed, 3u);
  EXPECT_EQ(Completions(R"({"prompt": "x", "top_k": -1})")->params.sampling.top_k, 0);
  EXPECT_FALSE(Completions(R"({"prompt": "x", "seed": 1.5})").ok());
  EXPECT_FALSE(Completions(R"({"prompt": "x", "seed": 1e300})").ok());
}

TEST(OpenAiRequestTest, RefusalsNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"prompt": "x", "temperature": "hot"})", "temperature"},
      {R"({"prompt": "x", "temperature": -0.1})", "temperature"},
      {R"({"prompt": "x", "top_p": 0})", "top_p"},
      {R"({"prompt": "x", "top_p": 1.5})", "top_p"},
      {R"({"prompt": "x", "min_p": 2})", "min_p"},
      {R"({"prompt": "x", "presence_penalty": 3})", "presence_penalty"},
      {R"({"prompt": "x", "repetition_penalty": 0})", "repetition_penalty"},
      {R"({"prompt": "x", "max_tokens": 0})", "max_tokens"},
      {R"({"prompt": "x", "max_tokens": 1e30})", "max_tokens"},
      {R"({"prompt": "x", "max_tokens": "5"})", "max_tokens"},
      {R"({"prompt": "x", "n": 17})", "n"},
      {R"({"prompt": "x", "n": true})", "n"},
      {R"({"prompt": "x", "logprobs": 21})", "logprobs"},
      {R"({"prompt": "x", "stop": [1]})", "stop[0]"},
      {R"({"prompt": "x", "stop_token_ids": [-1]})", "stop_token_ids[0]"},
      {R"({"prompt": "x", "stream_options": {"include_usage": true}})", "stream_options"},
      {R"({"prompt": "x", "echo": true})", "echo"},
      {R"({"prompt": "x", "suffix": "s"})", "suffix"},
      {R"({"prompt": "x", "best_of": 2})", "best_of"},
      {R"({"prompt": "x", "logit_bias": {"1": 5}})", "logit_bias"},
      {R"({"prompt": "x", "model": 3})", "model"},
      {R"({"prompt": "x", "user": 3})", "user"},
      {R"({"temperature": 1})", "prompt"},
  };
  for (const auto& [body, field] : cases) {
    auto r = Completions(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << body;
    EXPECT_THAT(r.status().message(), HasSubstr(field)) << body;
  }
  const std::pair<const char*, const char*> chat_cases[] = {
      {R"({"messages": "hi"})", "messages"},
      {R"({"messages": []})", "messages"},
      {R"({"messages": [{"content": "x"}]})", "messages[0].role"},
      {R"({"messages": [{"role": "user"}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", "content[0]"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})", "top_logprobs"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{}]})", "tools"},
      {R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type":
          "json_object"}})",
       "response_format"},
      {R"({"messages": [{"role": "user", "content": "x"}], "chat_template_kwargs": 1})",
       "chat_template_kwargs"},
  };
  for (const auto& [body, field] : chat_cases) {
    auto r = Chat(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_THAT(r.status().message(), HasSubstr(field)) << body;
  }
}

TEST(OpenAiRequestTest, BodiesThatAreNotObjects) {
  for (const char* body : {"", "{", "[1]", "\"x\"", "null", "{\"prompt\": \"\xff\"}", "1e400"}) {
    auto r = Completions(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << body;
  }
}

TEST(OpenAiRequestTest, LimitsOnPromptsAndChoices) {
  ServingLimits limits;
  limits.max_prompts = 2;
  limits.max_n = 2;
  EXPECT_FALSE(
      ParseOpenAiRequest(OpenAiEndpoint::kCompletions, R"({"prompt": ["a", "b", "c"]})", limits)
          .ok());
  EXPECT_FALSE(
      ParseOpenAiRequest(OpenAiEndpoint::kCompletions, R"({"prompt": "a", "n": 3})", limits).ok());
  EXPECT_TRUE(
      ParseOpenAiRequest(OpenAiEndpoint::kCompletions, R"({"prompt": "a", "n": 2})", limits).ok());
}

}  // namespace
}  // namespace sparkstack::serving
