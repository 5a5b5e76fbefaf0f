#include "runtime/serving/proto_mapping.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"
#include "runtime/serving/chat_input.h"

namespace sparkstack::serving {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

}  // namespace

absl::StatusOr<PromptSpec> ChatPromptFromProto(const v1::ChatInput& chat) {
  PromptSpec prompt;
  prompt.kind = PromptSpec::Kind::kChat;
  if (chat.messages().empty()) return Invalid("chat.messages", "must not be empty");
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  for (const v1::ChatMessage& message : chat.messages()) {
    nlohmann::ordered_json m = {{"role", message.role()}, {"content", message.content()}};
    if (!message.name().empty()) m["name"] = message.name();
    messages.push_back(std::move(m));
  }
  auto validated = ValidateChatMessages(messages);
  if (!validated.ok()) return Invalid("chat", validated.status().message());
  prompt.messages = *std::move(validated);
  prompt.add_generation_prompt =
      chat.has_add_generation_prompt() ? chat.add_generation_prompt() : true;
  if (!chat.template_kwargs_json().empty()) {
    auto kwargs = nlohmann::ordered_json::parse(chat.template_kwargs_json(), nullptr,
                                                /*allow_exceptions=*/false);
    if (kwargs.is_discarded() || !kwargs.is_object()) {
      return Invalid("chat.template_kwargs_json", "expected a JSON object");
    }
    prompt.template_kwargs = std::move(kwargs);
  }
  return prompt;
}

absl::StatusOr<GenerateSpec> GenerateSpecFromProto(const v1::GenerateRequest& request) {
  GenerateSpec spec;
  PromptSpec& prompt = spec.prompt;
  switch (request.input_case()) {
    case v1::GenerateRequest::kText:
      prompt.kind = PromptSpec::Kind::kText;
      prompt.text = request.text();
      prompt.add_special_tokens =
          request.has_add_special_tokens() ? request.add_special_tokens() : true;
      break;
    case v1::GenerateRequest::kTokenIds: {
      prompt.kind = PromptSpec::Kind::kTokenIds;
      const auto& ids = request.token_ids().ids();
      if (ids.empty()) return Invalid("token_ids.ids", "must not be empty");
      for (int i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0) return Invalid(absl::StrCat("token_ids.ids[", i, "]"), "must be >= 0");
      }
      prompt.token_ids.assign(ids.begin(), ids.end());
      break;
    }
    case v1::GenerateRequest::kChat: {
      SPARKSTACK_ASSIGN_OR_RETURN(prompt, ChatPromptFromProto(request.chat()));
      break;
    }
    case v1::GenerateRequest::INPUT_NOT_SET:
      return Invalid("input", "give text, token_ids or chat");
  }

  const v1::SamplingParams& s = request.sampling();
  SamplingParams& sampling = spec.sampling;
  sampling.temperature = s.has_temperature() ? s.temperature() : 1.0f;
  sampling.top_k = s.top_k();
  sampling.top_p = s.has_top_p() ? s.top_p() : 1.0f;
  sampling.min_p = s.min_p();
  sampling.repetition_penalty = s.has_repetition_penalty() ? s.repetition_penalty() : 1.0f;
  sampling.presence_penalty = s.presence_penalty();
  sampling.frequency_penalty = s.frequency_penalty();
  if (s.has_seed()) spec.seed = s.seed();
  if (s.has_logprobs()) {
    if (s.logprobs() < 0 || s.logprobs() > kMaxTopLogprobs) {
      return Invalid("sampling.logprobs",
                     absl::StrCat("must be in [0, ", kMaxTopLogprobs, "], got ", s.logprobs()));
    }
    sampling.logprobs = s.logprobs();
  }

  const v1::StoppingParams& stop = request.stopping();
  if (stop.has_max_tokens()) spec.max_tokens = stop.max_tokens();
  if (stop.min_tokens() < 0) return Invalid("stopping.min_tokens", "must be >= 0");
  spec.stopping.min_tokens = stop.min_tokens();
  spec.stopping.stop_strings.assign(stop.stop().begin(), stop.stop().end());
  for (int i = 0; i < stop.stop_token_ids_size(); ++i) {
    if (stop.stop_token_ids(i) < 0) {
      return Invalid(absl::StrCat("stopping.stop_token_ids[", i, "]"), "must be >= 0");
    }
  }
  spec.stopping.stop_token_ids.assign(stop.stop_token_ids().begin(), stop.stop_token_ids().end());
  spec.stopping.ignore_eos = stop.ignore_eos();
  spec.stopping.include_stop_string = stop.include_stop_string();
  if (request.has_detokenize()) spec.detokenize = request.detokenize();
  spec.skip_special_tokens =
      request.has_skip_special_tokens() ? request.skip_special_tokens() : true;
  return spec;
}

v1::FinishReason FinishReasonToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case FinishReason::kEos:
      return v1::FINISH_REASON_EOS;
    case FinishReason::kStopToken:
      return v1::FINISH_REASON_STOP_TOKEN;
    case FinishReason::kStopString:
      return v1::FINISH_REASON_STOP_STRING;
    case FinishReason::kAbort:
      return v1::FINISH_REASON_ABORT;
    case FinishReason::kNone:
    case FinishReason::kError:
      return v1::FINISH_REASON_UNSPECIFIED;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

void AppendOutput(const RequestOutput& output, v1::GenerateResponse* response) {
  for (int32_t id : output.token_ids) response->add_token_ids(id);
  response->mutable_text()->append(output.text);
  for (const SampledToken& token : output.logprobs) {
    v1::TokenLogprob* lp = response->add_logprobs();
    lp->set_token_id(token.token);
    lp->set_logprob(token.logprob);
    for (int i = 0; i < token.num_top; ++i) {
      v1::TopLogprob* top = lp->add_top();
      top->set_token_id(token.top[i].token);
      top->set_logprob(token.top[i].logprob);
    }
  }
  response->set_prompt_tokens(static_cast<int32_t>(output.prompt_tokens));
  response->set_completion_tokens(static_cast<int32_t>(output.output_tokens));
  response->set_cached_prompt_tokens(static_cast<int32_t>(output.cached_prompt_tokens));
}

void SetFinished(const RequestOutput& last, const RequestTimes& times, v1::Finished* finished) {
  finished->set_reason(FinishReasonToProto(last.finish_reason));
  if (last.finish_reason == FinishReason::kStopString) {
    finished->set_stop_string(last.stop_reason);
  } else if (last.finish_reason == FinishReason::kStopToken) {
    int32_t id = 0;
    if (absl::SimpleAtoi(last.stop_reason, &id)) finished->set_stop_token_id(id);
  }
  v1::Usage* usage = finished->mutable_usage();
  usage->set_prompt_tokens(static_cast<int32_t>(last.prompt_tokens));
  usage->set_completion_tokens(static_cast<int32_t>(last.output_tokens));
  usage->set_cached_prompt_tokens(static_cast<int32_t>(last.cached_prompt_tokens));
  usage->set_total_tokens(static_cast<int32_t>(last.prompt_tokens + last.output_tokens));
  v1::Timings* timings = finished->mutable_timings();
  timings->set_time_to_first_token(times.time_to_first_token);
  timings->set_end_to_end(times.end_to_end);
  timings->set_mean_inter_token(times.mean_inter_token);
}

}  // namespace sparkstack::serving
