// The proto edge: GenerateRequest -> GenerateSpec with the documented defaults and refusals, and
// engine outputs -> GenerateResponse (merged deltas, the Finished message).
#include "runtime/serving/proto_mapping.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparkstack::serving {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ProtoMappingTest, DefaultsForUnsetOptionalFields) {
  v1::GenerateRequest request;
  request.set_text("hi");
  auto spec = GenerateSpecFromProto(request);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->prompt.kind, PromptSpec::Kind::kText);
  EXPECT_TRUE(spec->prompt.add_special_tokens);
  EXPECT_FLOAT_EQ(spec->sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(spec->sampling.top_p, 1.0f);
  EXPECT_FLOAT_EQ(spec->sampling.repetition_penalty, 1.0f);
  EXPECT_EQ(spec->sampling.logprobs, -1);
  EXPECT_FALSE(spec->seed.has_value());
  EXPECT_FALSE(spec->max_tokens.has_value());
  EXPECT_FALSE(spec->detokenize.has_value());
  EXPECT_TRUE(spec->skip_special_tokens);
}

TEST(ProtoMappingTest, EveryFieldMaps) {
  v1::GenerateRequest request;
  request.mutable_token_ids()->add_ids(3);
  request.mutable_token_ids()->add_ids(4);
  v1::SamplingParams* s = request.mutable_sampling();
  s->set_temperature(0.0f);  // present: greedy, not the default 1
  s->set_top_k(5);
  s->set_top_p(0.5f);
  s->set_min_p(0.2f);
  s->set_repetition_penalty(1.3f);
  s->set_presence_penalty(0.4f);
  s->set_frequency_penalty(-0.4f);
  s->set_seed(99);
  s->set_logprobs(0);
  v1::StoppingParams* stop = request.mutable_stopping();
  stop->set_max_tokens(0);
  stop->set_min_tokens(2);
  stop->add_stop("x");
  stop->add_stop_token_ids(7);
  stop->set_ignore_eos(true);
  stop->set_include_stop_string(true);
  request.set_detokenize(false);
  request.set_skip_special_tokens(false);
  auto spec = GenerateSpecFromProto(request);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(spec->prompt.token_ids, ElementsAre(3, 4));
  EXPECT_FLOAT_EQ(spec->sampling.temperature, 0.0f);
  EXPECT_EQ(spec->sampling.top_k, 5);
  EXPECT_FLOAT_EQ(spec->sampling.top_p, 0.5f);
  EXPECT_FLOAT_EQ(spec->sampling.min_p, 0.2f);
  EXPECT_FLOAT_EQ(spec->sampling.repetition_penalty, 1.3f);
  EXPECT_FLOAT_EQ(spec->sampling.presence_penalty, 0.4f);
  EXPECT_FLOAT_EQ(spec->sampling.frequency_penalty, -0.4f);
  EXPECT_EQ(spec->seed, 99u);
  EXPECT_EQ(spec->sampling.logprobs, 0);
  EXPECT_EQ(spec->max_tokens, 0);
  EXPECT_EQ(spec->stopping.min_tokens, 2);
  EXPECT_THAT(spec->stopping.stop_strings, ElementsAre("x"));
  EXPECT_THAT(spec->stopping.stop_token_ids, ElementsAre(7));
  EXPECT_TRUE(spec->stopping.ignore_eos);
  EXPECT_TRUE(spec->stopping.include_stop_string);
  EXPECT_EQ(spec->detokenize, false);
  EXPECT_FALSE(spec->skip_special_tokens);
}

TEST(ProtoMappingTest, ChatInput) {
  v1::GenerateRequest request;
  v1::ChatInput* chat = request.mutable_chat();
  v1::ChatMessage* m = chat->add_messages();
  m->set_role("user");
  m->set_content("hello");
  m->set_name("ann");
  chat->set_add_generation_prompt(false);
  chat->set_template_kwargs_json(R"({"enable_thinking": true})");
  auto spec = GenerateSpecFromProto(request);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->prompt.kind, PromptSpec::Kind::kChat);
  EXPECT_EQ(spec->prompt.messages[0]["content"], "hello");
  EXPECT_EQ(spec->prompt.messages[0]["name"], "ann");
  EXPECT_FALSE(spec->prompt.add_generation_prompt);
  EXPECT_EQ(spec->prompt.template_kwargs["enable_thinking"], true);
}

TEST(ProtoMappingTest, RefusalsNameTheField) {
  auto error = [](const v1::GenerateRequest& r) {
    auto spec = GenerateSpecFromProto(r);
    EXPECT_FALSE(spec.ok());
    return std::string(spec.status().message());
  };
  v1::GenerateRequest none;
  EXPECT_THAT(error(none), HasSubstr("input"));
  v1::GenerateRequest empty_ids;
  empty_ids.mutable_token_ids();
  EXPECT_THAT(error(empty_ids), HasSubstr("token_ids.ids"));
  v1::GenerateRequest negative;
  negative.mutable_token_ids()->add_ids(-5);
  EXPECT_THAT(error(negative), HasSubstr("token_ids.ids[0]"));
  v1::GenerateRequest no_messages;
  no_messages.mutable_chat();
  EXPECT_THAT(error(no_messages), HasSubstr("chat.messages"));
  v1::GenerateRequest bad_kwargs;
  v1::ChatMessage* m = bad_kwargs.mutable_chat()->add_messages();
  m->set_role("user");
  bad_kwargs.mutable_chat()->set_template_kwargs_json("[1]");
  EXPECT_THAT(error(bad_kwargs), HasSubstr("template_kwargs_json"));
  v1::GenerateRequest logprobs;
  logprobs.set_text("x");
  logprobs.mutable_sampling()->set_logprobs(21);
  EXPECT_THAT(error(logprobs), HasSubstr("sampling.logprobs"));
  v1::GenerateRequest min_tokens;
  min_tokens.set_text("x");
  min_tokens.mutable_stopping()->set_min_tokens(-1);
  EXPECT_THAT(error(min_tokens), HasSubstr("stopping.min_tokens"));
}

TEST(ProtoMappingTest, OutputsMergeAndFinish) {
  RequestOutput a;
  a.token_ids = {1, 2};
  a.text = "ab";
  SampledToken t;
  t.token = 1;
  t.logprob = -0.5f;
  t.num_top = 1;
  t.top[0] = {.token = 1, .logprob = -0.5f};
  a.logprobs = {t, t};
  a.prompt_tokens = 4;
  a.output_tokens = 2;
  RequestOutput b;
  b.token_ids = {3};
  b.text = "c";
  b.prompt_tokens = 4;
  b.output_tokens = 3;
  b.cached_prompt_tokens = 2;
  b.finish_reason = FinishReason::kStopToken;
  b.stop_reason = "3";
  v1::GenerateResponse response;
  AppendOutput(a, &response);
  AppendOutput(b, &response);
  SetFinished(b, {.time_to_first_token = 0.1, .end_to_end = 0.3, .mean_inter_token = 0.1},
              response.mutable_finished());
  EXPECT_THAT(response.token_ids(), ElementsAre(1, 2, 3));
  EXPECT_EQ(response.text(), "abc");
  EXPECT_EQ(response.logprobs_size(), 2);
  EXPECT_EQ(response.logprobs(0).top(0).token_id(), 1);
  EXPECT_EQ(response.completion_tokens(), 3);
  EXPECT_EQ(response.cached_prompt_tokens(), 2);
  const v1::Finished& f = response.finished();
  EXPECT_EQ(f.reason(), v1::FINISH_REASON_STOP_TOKEN);
  EXPECT_EQ(f.stop_token_id(), 3);
  EXPECT_EQ(f.usage().total_tokens(), 7);
  EXPECT_DOUBLE_EQ(f.timings().end_to_end(), 0.3);

  RequestOutput s;
  s.finish_reason = FinishReason::kStopString;
  s.stop_reason = "END";
  v1::Finished fs;
  SetFinished(s, {}, &fs);
  EXPECT_EQ(fs.reason(), v1::FINISH_REASON_STOP_STRING);
  EXPECT_EQ(fs.stop_string(), "END");
}

}  // namespace
}  // namespace sparkstack::serving
