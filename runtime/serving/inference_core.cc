#include "runtime/serving/inference_core.h"

#include <limits>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"
#include "runtime/tokenizer/tokenizer.h"

namespace sparkstack::serving {
namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

uint64_t RandomSeed() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

Outcome OutcomeOf(FinishReason reason) {
  switch (reason) {
    case FinishReason::kAbort:
      return Outcome::kAborted;
    case FinishReason::kError:
      return Outcome::kFailed;
    case FinishReason::kNone:
    case FinishReason::kLength:
    case FinishReason::kEos:
    case FinishReason::kStopToken:
    case FinishReason::kStopString:
      return Outcome::kFinished;
  }
  return Outcome::kFinished;
}

}  // namespace

// ----- ActiveRequest -----

void ActiveRequest::Abort() {
  abort_requested_.store(true);
  if (submitted_.load() && !finished()) core_->engine().Abort(id());
}

void ActiveRequest::OnOutput(RequestOutput output, const OutputSink& sink) {
  const Clock::time_point now = Clock::now();
  ServingMetrics& metrics = core_->metrics();
  const auto count = static_cast<int64_t>(output.token_ids.size());
  if (count > 0) {
    int64_t gaps = count;
    if (tokens_seen_ == 0) {
      first_token_ = now;
      metrics.ObserveTimeToFirstToken(Seconds(now - arrival_));
      --gaps;
    }
    // Tokens that arrive together (a coalesced chunk) share the time since the previous ones.
    const double gap = tokens_seen_ > 0 ? Seconds(now - last_token_) / count : 0.0;
    for (int64_t i = 0; i < gaps; ++i) metrics.ObserveInterTokenLatency(gap);
    last_token_ = now;
    tokens_seen_ += count;
  }
  RequestTimes times;
  if (output.finished()) {
    if (tokens_seen_ > 0) times.time_to_first_token = Seconds(first_token_ - arrival_);
    times.end_to_end = Seconds(now - arrival_);
    if (tokens_seen_ > 1) {
      times.mean_inter_token = Seconds(last_token_ - first_token_) / (tokens_seen_ - 1);
    }
    finished_.store(true, std::memory_order_release);
    core_->Finished(this, output, times);
  }
  sink(std::move(output), times);
}

// ----- AdmissionTicket -----

AdmissionTicket::AdmissionTicket(AdmissionTicket&& other) noexcept
    : active_(other.active_), slots_(other.slots_) {
  other.slots_ = 0;
}

AdmissionTicket::~AdmissionTicket() {
  if (slots_ > 0) active_->fetch_sub(slots_);
}

// ----- InferenceCore -----

InferenceCore::InferenceCore(EngineProvider& engine, ServingOptions options)
    : engine_(engine), options_(std::move(options)) {}

InferenceCore::~InferenceCore() {
  AbortAll();
  WaitForRequestsToEnd(std::chrono::seconds(10));
}

void InferenceCore::WaitForRequestsToEnd(std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (active_.load() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

double InferenceCore::uptime_seconds() const { return Seconds(Clock::now() - start_); }

absl::Status InferenceCore::Health() const {
  absl::Status status = engine_.health();
  if (status.ok()) return status;
  return absl::UnavailableError(status.message());
}

absl::StatusOr<std::vector<int32_t>> InferenceCore::EncodePrompt(const PromptSpec& prompt) const {
  if (prompt.kind == PromptSpec::Kind::kTokenIds) return prompt.token_ids;
  const tokenizer::Tokenizer* tok = engine_.tokenizer();
  if (tok == nullptr) {
    return absl::FailedPreconditionError(
        "the model has no tokenizer.json: send the prompt as token ids");
  }
  if (prompt.kind == PromptSpec::Kind::kText) {
    return tok->Encode(prompt.text, prompt.add_special_tokens);
  }
  if (tok->chat_template().empty()) {
    return absl::FailedPreconditionError(
        "the model's tokenizer_config.json has no chat_template: use completions");
  }
  const nlohmann::ordered_json extra = prompt.template_kwargs.is_object()
                                           ? prompt.template_kwargs
                                           : nlohmann::ordered_json::object();
  SPARKSTACK_ASSIGN_OR_RETURN(
      std::string rendered,
      tok->ApplyChatTemplate(prompt.messages, prompt.add_generation_prompt, extra));
  // The template wrote BOS and the turn markers itself, as transformers' apply_chat_template.
  return tok->Encode(rendered, /*add_special_tokens=*/false);
}

absl::StatusOr<std::string> InferenceCore::Decode(std::span<const int32_t> ids,
                                                  bool skip_special_tokens) const {
  const tokenizer::Tokenizer* tok = engine_.tokenizer();
  if (tok == nullptr) return absl::FailedPreconditionError("the model has no tokenizer.json");
  return tok->Decode(ids, skip_special_tokens);
}

std::string InferenceCore::TokenText(int32_t id) const {
  const tokenizer::Tokenizer* tok = engine_.tokenizer();
  if (tok == nullptr) return absl::StrCat("token_id:", id);
  const int32_t one[] = {id};
  auto text = tok->Decode(one, /*skip_special_tokens=*/false);
  return text.ok() ? *std::move(text) : absl::StrCat("token_id:", id);
}

absl::StatusOr<Request> InferenceCore::BuildRequest(const GenerateSpec& spec,
                                                    std::vector<int32_t> prompt_ids) const {
  const ServingLimits& limits = options_.limits;
  const auto prompt_tokens = static_cast<int64_t>(prompt_ids.size());
  const int64_t context = max_model_len();
  if (prompt_tokens == 0) return absl::InvalidArgumentError("the prompt has no tokens");
  if (prompt_tokens >= context) {
    return absl::InvalidArgumentError(absl::StrCat(
        "This model's maximum context length is ", context, " tokens, but the prompt has ",
        prompt_tokens, " tokens: no room is left for the completion. Shorten the prompt."));
  }
  const int64_t room = context - prompt_tokens;
  const int64_t limit =
      limits.max_tokens > 0 ? limits.max_tokens : std::numeric_limits<int64_t>::max();
  Request request;
  request.stopping = spec.stopping;
  if (spec.max_tokens.has_value()) {
    const int64_t asked = *spec.max_tokens;
    if (asked < 0) return absl::InvalidArgumentError("max_tokens must be >= 0");
    if (asked > limit) {
      return absl::InvalidArgumentError(absl::StrCat("max_tokens ", asked,
                                                     " exceeds this server's limit of ", limit,
                                                     " (--max-tokens-limit)"));
    }
    if (asked > room) {
      return absl::InvalidArgumentError(absl::StrCat(
          "This model's maximum context length is ", context, " tokens. However, you requested ",
          prompt_tokens + asked, " tokens (", prompt_tokens, " in the prompt, ", asked,
          " for the completion). Reduce the prompt or max_tokens."));
    }
    request.stopping.max_tokens = asked;
  } else {
    request.stopping.max_tokens = std::min(room, limit);
  }
  if (std::ssize(spec.stopping.stop_strings) > limits.max_stop_strings) {
    return absl::InvalidArgumentError(absl::StrCat("stop: ", spec.stopping.stop_strings.size(),
                                                   " stop strings, at most ",
                                                   limits.max_stop_strings));
  }
  for (const std::string& stop : spec.stopping.stop_strings) {
    if (stop.empty() || std::ssize(stop) > limits.max_stop_string_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("stop: each stop string must be 1 to ",
                                                     limits.max_stop_string_bytes, " bytes"));
    }
  }
  if (std::ssize(spec.stopping.stop_token_ids) > limits.max_stop_token_ids) {
    return absl::InvalidArgumentError(
        absl::StrCat("stop_token_ids: ", spec.stopping.stop_token_ids.size(), " ids, at most ",
                     limits.max_stop_token_ids));
  }
  request.prompt_ids = std::move(prompt_ids);
  request.sampling = spec.sampling;
  request.sampling.seed = spec.seed.has_value() ? *spec.seed : RandomSeed();
  SPARKSTACK_RETURN_IF_ERROR(ValidateSamplingParams(request.sampling));
  const bool has_tokenizer = engine_.tokenizer() != nullptr;
  request.detokenize = spec.detokenize.value_or(has_tokenizer);
  if (request.detokenize && !has_tokenizer) {
    return absl::FailedPreconditionError("the model has no tokenizer.json: cannot return text");
  }
  if (!request.detokenize && !request.stopping.stop_strings.empty()) {
    return absl::InvalidArgumentError("stop strings need detokenized output");
  }
  request.skip_special_tokens = spec.skip_special_tokens;
  return request;
}

absl::StatusOr<AdmissionTicket> InferenceCore::Admit(int64_t sequences) {
  SPARKSTACK_RETURN_IF_ERROR(Health());
  const int64_t limit = options_.limits.max_concurrent_requests;
  int64_t active = active_.load();
  do {
    if (active + sequences > limit) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "too many concurrent requests: ", active, " sequences are running and this request ",
          "needs ", sequences, "; the server's limit is ", limit,
          " (--max-concurrent-requests). Retry later."));
    }
  } while (!active_.compare_exchange_weak(active, active + sequences));
  return AdmissionTicket(&active_, sequences);
}

absl::StatusOr<std::shared_ptr<ActiveRequest>> InferenceCore::Submit(AdmissionTicket& ticket,
                                                                     Request request,
                                                                     Clock::time_point arrival,
                                                                     OutputSink sink) {
  if (ticket.slots_ <= 0) return absl::InternalError("Submit: the admission ticket is used up");
  const auto prompt_tokens = static_cast<int64_t>(request.prompt_ids.size());
  std::shared_ptr<ActiveRequest> active(new ActiveRequest(this, arrival, prompt_tokens));
  --ticket.slots_;  // the request owns this slot now; Finished() gives it back
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_[active.get()] = active;
  }
  auto added = engine_.AddRequest(std::move(request),
                                  [active, sink = std::move(sink)](RequestOutput output) {
                                    active->OnOutput(std::move(output), sink);
                                  });
  if (!added.ok()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_.erase(active.get());
    }
    active_.fetch_sub(1);
    return added.status();
  }
  active->id_.store(*added);
  active->submitted_.store(true);
  if (active->abort_requested_.load() && !active->finished()) engine_.Abort(*added);
  return active;
}

void InferenceCore::Finished(ActiveRequest* request, const RequestOutput& last,
                             const RequestTimes& times) {
  metrics_.CountOutcome(OutcomeOf(last.finish_reason));
  metrics_.AddTokens(last.prompt_tokens, last.output_tokens);
  metrics_.ObserveEndToEnd(times.end_to_end);
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(request);
  }
  active_.fetch_sub(1);
}

void InferenceCore::AbortAll() {
  std::vector<std::shared_ptr<ActiveRequest>> running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [ptr, weak] : live_) {
      if (auto strong = weak.lock()) running.push_back(std::move(strong));
    }
  }
  for (auto& request : running) request->Abort();
}

}  // namespace sparkstack::serving
