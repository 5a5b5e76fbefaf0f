#include "runtime/serving/openai_generation.h"

#include <string>
#include <vector>

#include "runtime/core/status_macros.h"
#include "runtime/serving/openai_response.h"
#include "runtime/serving/status_mapping.h"

namespace sparkstack::serving {
namespace {

// Per-request state. Lives on the connection's strand: engine outputs are posted there, so no
// member needs a lock.
class GenerationJob : public std::enable_shared_from_this<GenerationJob> {
 public:
  GenerationJob(InferenceCore& core, OpenAiRequest request, std::shared_ptr<HttpExchange> exchange)
      : core_(core),
        request_(std::move(request)),
        exchange_(std::move(exchange)),
        chat_(request_.endpoint == OpenAiEndpoint::kChatCompletions),
        id_(NewResponseId(chat_ ? "chatcmpl-" : "cmpl-")),
        created_(UnixSeconds()),
        token_text_([&core = core_](int32_t id) { return core.TokenText(id); }) {}

  void Start(Clock::time_point arrival) {
    absl::Status status = Submit(arrival);
    if (!status.ok()) Fail(status);
  }

 private:
  struct Choice {
    std::shared_ptr<ActiveRequest> active;
    std::string text;
    Json logprobs;  // accumulated (non-streaming)
    int64_t text_offset = 0;
    FinishReason finish = FinishReason::kNone;
    int64_t prompt_tokens = 0;
    int64_t output_tokens = 0;
    int64_t cached_tokens = 0;
    int64_t prompt_index = 0;
  };

  absl::Status Submit(Clock::time_point arrival) {
    // Everything that can be refused is checked before anything is submitted.
    std::vector<Request> requests;
    for (size_t p = 0; p < request_.prompts.size(); ++p) {
      SPARKSTACK_ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                                  core_.EncodePrompt(request_.prompts[p]));
      for (int64_t i = 0; i < request_.n; ++i) {
        GenerateSpec spec = request_.params;
        if (spec.seed.has_value()) *spec.seed += static_cast<uint64_t>(i);
        SPARKSTACK_ASSIGN_OR_RETURN(Request r, core_.BuildRequest(spec, ids));
        requests.push_back(std::move(r));
        Choice choice;
        choice.prompt_index = static_cast<int64_t>(p);
        choices_.push_back(std::move(choice));
      }
    }
    SPARKSTACK_ASSIGN_OR_RETURN(AdmissionTicket ticket, core_.Admit(std::ssize(requests)));
    std::weak_ptr<GenerationJob> weak = weak_from_this();
    exchange_->OnClientGone([weak] {
      if (auto self = weak.lock()) self->AbortAll();
    });
    for (size_t i = 0; i < requests.size(); ++i) {
      auto sink = [self = shared_from_this(), i](RequestOutput output, const RequestTimes&) {
        // Engine core thread: hand the output to the connection's strand and return.
        self->exchange_->Post([self, i, output = std::move(output)]() mutable {
          self->OnOutput(i, std::move(output));
        });
      };
      auto active = core_.Submit(ticket, std::move(requests[i]), arrival, std::move(sink));
      if (!active.ok()) {
        // Choices already submitted are aborted; their last outputs end the response.
        AbortAll();
        if (i == 0) return active.status();
        error_ = active.status();
        finished_ += static_cast<int64_t>(requests.size() - i);
        break;
      }
      choices_[i].active = *std::move(active);
    }
    // Outputs are posted to this strand, so none is handled before the stream has started.
    if (request_.stream) {
      exchange_->StartStream(200, "text/event-stream; charset=utf-8");
      streaming_ = true;
      if (chat_) {
        for (size_t i = 0; i < choices_.size(); ++i) {
          Json delta = {{"role", "assistant"}, {"content", ""}};
          SendChunk(StreamChoice(i, std::move(delta), nullptr, nullptr));
        }
      }
    }
    return absl::OkStatus();
  }

  void AbortAll() {
    for (Choice& choice : choices_) {
      if (choice.active) choice.active->Abort();
    }
  }

  void Fail(const absl::Status& status) {
    core_.metrics().CountOutcome(RefusalOutcome(status.code()));
    if (streaming_) {
      SendChunk(ErrorJson(status));
      exchange_->Send(std::string(kSseDone));
      exchange_->End();
      return;
    }
    exchange_->Respond(HttpStatusFor(status.code()), "application/json",
                       DumpJson(ErrorJson(status)));
  }

  void OnOutput(size_t index, RequestOutput output) {
    Choice& choice = choices_[index];
    choice.prompt_tokens = output.prompt_tokens;
    choice.output_tokens = output.output_tokens;
    choice.cached_tokens = output.cached_prompt_tokens;
    if (output.finish_reason == FinishReason::kError) {
      if (error_.ok())
        error_ = output.error.ok() ? absl::InternalError("engine error") : output.error;
      // One failed choice fails the request: the others stop too.
      AbortAll();
    }
    if (streaming_) {
      StreamOutput(index, output);
    } else {
      choice.text += output.text;
      if (request_.logprobs >= 0 && !output.logprobs.empty()) {
        if (chat_) {
          AppendChatLogprobs(output.logprobs, token_text_, &choice.logprobs);
        } else {
          AppendCompletionLogprobs(output.logprobs, token_text_, &choice.text_offset,
                                   &choice.logprobs);
        }
      }
    }
    if (output.finished()) {
      choice.finish = output.finish_reason;
      ++finished_;
      MaybeComplete();
    }
  }

  Json StreamChoice(size_t index, Json delta_or_text, Json logprobs, Json finish_reason) {
    Json choice = {{"index", index}};
    if (chat_) {
      choice["delta"] = std::move(delta_or_text);
    } else {
      choice["text"] = std::move(delta_or_text);
    }
    choice["logprobs"] = std::move(logprobs);
    choice["finish_reason"] = std::move(finish_reason);
    Json chunk = {{"id", id_},
                  {"object", chat_ ? "chat.completion.chunk" : "text_completion"},
                  {"created", created_},
                  {"model", core_.options().served_model_name},
                  {"choices", Json::array({std::move(choice)})}};
    if (request_.include_usage) chunk["usage"] = nullptr;
    return chunk;
  }

  void SendChunk(const Json& chunk) { exchange_->Send(SseData(chunk)); }

  void StreamOutput(size_t index, const RequestOutput& output) {
    if (output.finish_reason == FinishReason::kError) return;  // reported once, at the end
    const bool last = output.finished();
    if (output.text.empty() && output.logprobs.empty() && !last) return;
    Json logprobs = nullptr;
    if (request_.logprobs >= 0 && !output.logprobs.empty()) {
      if (chat_) {
        AppendChatLogprobs(output.logprobs, token_text_, &logprobs);
      } else {
        AppendCompletionLogprobs(output.logprobs, token_text_, &choices_[index].text_offset,
                                 &logprobs);
      }
    }
    Json body;
    if (chat_) {
      body = output.text.empty() ? Json::object() : Json{{"content", output.text}};
    } else {
      body = output.text;
    }
    Json finish = last ? Json(std::string(OpenAiFinishReason(output.finish_reason))) : Json();
    SendChunk(StreamChoice(index, std::move(body), std::move(logprobs), std::move(finish)));
  }

  Json Usage() const {
    int64_t prompt = 0, completion = 0, cached = 0;
    int64_t last_prompt = -1;
    for (const Choice& choice : choices_) {
      // The prompt counts once however many choices it has, as OpenAI counts it.
      if (choice.prompt_index != last_prompt) {
        prompt += choice.prompt_tokens;
        cached += choice.cached_tokens;
        last_prompt = choice.prompt_index;
      }
      completion += choice.output_tokens;
    }
    return UsageJson(prompt, completion, cached);
  }

  void MaybeComplete() {
    if (finished_ < std::ssize(choices_) || completed_) return;
    completed_ = true;
    if (streaming_) {
      if (!error_.ok()) {
        SendChunk(ErrorJson(error_));
      } else if (request_.include_usage) {
        Json chunk = {{"id", id_},
                      {"object", chat_ ? "chat.completion.chunk" : "text_completion"},
                      {"created", created_},
                      {"model", core_.options().served_model_name},
                      {"choices", Json::array()},
                      {"usage", Usage()}};
        SendChunk(chunk);
      }
      exchange_->Send(std::string(kSseDone));
      exchange_->End();
      return;
    }
    if (!error_.ok()) {
      exchange_->Respond(HttpStatusFor(error_.code()), "application/json",
                         DumpJson(ErrorJson(error_)));
      return;
    }
    Json choices = Json::array();
    for (size_t i = 0; i < choices_.size(); ++i) {
      Choice& c = choices_[i];
      Json choice = {{"index", i}};
      if (chat_) {
        choice["message"] = {{"role", "assistant"}, {"content", std::move(c.text)}};
      } else {
        choice["text"] = std::move(c.text);
      }
      choice["logprobs"] = std::move(c.logprobs);
      choice["finish_reason"] = std::string(OpenAiFinishReason(c.finish));
      choices.push_back(std::move(choice));
    }
    Json body = {{"id", id_},
                 {"object", chat_ ? "chat.completion" : "text_completion"},
                 {"created", created_},
                 {"model", core_.options().served_model_name},
                 {"choices", std::move(choices)},
                 {"usage", Usage()}};
    exchange_->Respond(200, "application/json", DumpJson(body));
  }

  InferenceCore& core_;
  const OpenAiRequest request_;
  const std::shared_ptr<HttpExchange> exchange_;
  const bool chat_;
  const std::string id_;
  const int64_t created_;
  const TokenTextFn token_text_;
  std::vector<Choice> choices_;
  int64_t finished_ = 0;
  bool streaming_ = false;
  bool completed_ = false;
  absl::Status error_;
};

}  // namespace

void StartOpenAiGeneration(InferenceCore& core, OpenAiRequest request,
                           std::shared_ptr<HttpExchange> exchange, Clock::time_point arrival) {
  auto job = std::make_shared<GenerationJob>(core, std::move(request), std::move(exchange));
  job->Start(arrival);
}

}  // namespace sparkstack::serving
