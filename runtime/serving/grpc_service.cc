#include "runtime/serving/grpc_service.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"
#include "runtime/serving/api_key.h"
#include "runtime/serving/proto_mapping.h"
#include "runtime/serving/status_mapping.h"
#include "runtime/tokenizer/tokenizer.h"

#ifndef SPARKSTACK_VERSION
#define SPARKSTACK_VERSION "unknown"
#endif

namespace sparkstack::serving {
namespace {

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "gen-";
  for (int i = 0; i < 24; ++i) id += kHex[rng() & 15];
  return id;
}

// One Generate call. Its state is shared by gRPC's threads (writes done, cancel) and the engine
// core thread (outputs); `mu_` guards it. Writes and Finish are started outside the lock, and
// Finish only after the request's last output, so once OnDone deletes the reactor nothing refers
// to it.
class GenerateStream final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  GenerateStream(InferenceService& service, grpc::CallbackServerContext* context)
      : service_(service), context_(context) {}

  void Begin(const v1::GenerateRequest& request) {
    const Clock::time_point arrival = Clock::now();
    absl::Status status = Submit(request, arrival);
    if (!status.ok()) {
      service_.core().metrics().CountOutcome(RefusalOutcome(status.code()));
      if (reserved_) service_.ReleaseId(id_);
      Finish(ToGrpcStatus(status));
    }
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      if (!ok) write_failed_ = true;
    }
    if (!ok) AbortRequest();  // the client is gone; the abort's last output ends the call
    Pump();
  }

  void OnCancel() override { AbortRequest(); }

  void OnDone() override { delete this; }

 private:
  absl::Status Submit(const v1::GenerateRequest& request, Clock::time_point arrival) {
    InferenceCore& core = service_.core();
    SPARKSTACK_RETURN_IF_ERROR(service_.Authenticate(context_));
    SPARKSTACK_ASSIGN_OR_RETURN(GenerateSpec spec, GenerateSpecFromProto(request));
    if (request.request_id().size() > kMaxRequestIdBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("request_id: at most ", kMaxRequestIdBytes, " bytes"));
    }
    id_ = request.request_id().empty() ? NewRequestId() : request.request_id();
    SPARKSTACK_RETURN_IF_ERROR(service_.ReserveId(id_));
    reserved_ = true;
    SPARKSTACK_ASSIGN_OR_RETURN(std::vector<int32_t> ids, core.EncodePrompt(spec.prompt));
    const auto prompt_tokens = static_cast<int32_t>(ids.size());
    std::vector<int32_t> prompt_ids;
    if (request.return_prompt_ids()) prompt_ids = ids;
    SPARKSTACK_ASSIGN_OR_RETURN(Request engine_request, core.BuildRequest(spec, std::move(ids)));
    SPARKSTACK_ASSIGN_OR_RETURN(AdmissionTicket ticket, core.Admit(1));
    {
      // The first message: the request is admitted (its id, for Abort) and how long its prompt is.
      std::lock_guard<std::mutex> lock(mu_);
      pending_.set_request_id(id_);
      pending_.set_prompt_tokens(prompt_tokens);
      for (int32_t id : prompt_ids) pending_.add_prompt_ids(id);
      has_pending_ = true;
    }
    auto sink = [this](RequestOutput output, const RequestTimes& times) {
      OnOutput(std::move(output), times);
    };
    SPARKSTACK_ASSIGN_OR_RETURN(std::shared_ptr<ActiveRequest> active,
                                core.Submit(ticket, std::move(engine_request), arrival, sink));
    service_.AttachId(id_, active);
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_ = active;
    }
    if (context_->IsCancelled()) active->Abort();
    Pump();
    return absl::OkStatus();
  }

  // Engine core thread.
  void OnOutput(RequestOutput output, const RequestTimes& times) {
    const bool last = output.finished();
    if (last) service_.ReleaseId(id_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (output.finish_reason == FinishReason::kError) {
        final_status_ =
            output.error.ok() ? absl::InternalError("the engine failed the request") : output.error;
      } else {
        AppendOutput(output, &pending_);
        if (last) SetFinished(output, times, pending_.mutable_finished());
        has_pending_ = true;
      }
      if (last) final_ = true;
    }
    Pump();
  }

  void AbortRequest() {
    std::shared_ptr<ActiveRequest> active;
    {
      std::lock_guard<std::mutex> lock(mu_);
      active = active_;
    }
    if (active) active->Abort();
  }

  // Starts the next write, or Finish once the last output has been written.
  void Pump() {
    enum class Action { kNone, kWrite, kFinish } action = Action::kNone;
    grpc::Status status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (writing_ || finish_called_) return;
      if (has_pending_ && !write_failed_ && final_status_.ok()) {
        in_flight_ = std::move(pending_);
        pending_.Clear();
        pending_.set_request_id(id_);
        has_pending_ = false;
        writing_ = true;
        action = Action::kWrite;
      } else if (final_) {
        finish_called_ = true;
        action = Action::kFinish;
        if (!final_status_.ok()) {
          status = ToGrpcStatus(final_status_);
        } else if (context_->IsCancelled() || write_failed_) {
          status = grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled");
        }
      }
    }
    if (action == Action::kWrite) StartWrite(&in_flight_);
    if (action == Action::kFinish) Finish(status);
  }

  InferenceService& service_;
  grpc::CallbackServerContext* const context_;
  std::string id_;
  bool reserved_ = false;

  std::mutex mu_;
  std::shared_ptr<ActiveRequest> active_;
  v1::GenerateResponse pending_;    // outputs not yet written, merged
  v1::GenerateResponse in_flight_;  // the message being written
  bool has_pending_ = false;
  bool writing_ = false;
  bool write_failed_ = false;
  bool final_ = false;  // the last output has arrived
  bool finish_called_ = false;
  absl::Status final_status_;
};

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

absl::Status InferenceService::Authenticate(grpc::CallbackServerContext* context) {
  const std::string& key = core_.options().api_key;
  if (key.empty()) return absl::OkStatus();
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  const absl::string_view value = it == metadata.end()
                                      ? absl::string_view()
                                      : absl::string_view(it->second.data(), it->second.size());
  return CheckAuthorization(value, key);
}

absl::Status InferenceService::ReserveId(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!ids_.emplace(id, std::weak_ptr<ActiveRequest>()).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("request_id \"", id, "\" belongs to a running request"));
  }
  return absl::OkStatus();
}

void InferenceService::AttachId(const std::string& id, std::weak_ptr<ActiveRequest> request) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ids_.find(id);
  if (it != ids_.end()) it->second = std::move(request);
}

void InferenceService::ReleaseId(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  ids_.erase(id);
}

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  auto* stream = new GenerateStream(*this, context);
  stream->Begin(*request);
  return stream;
}

grpc::ServerUnaryReactor* InferenceService::Abort(grpc::CallbackServerContext* context,
                                                  const v1::AbortRequest* request,
                                                  v1::AbortResponse* response) {
  if (absl::Status auth = Authenticate(context); !auth.ok()) return Done(context, auth);
  std::shared_ptr<ActiveRequest> active;
  bool found = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = ids_.find(request->request_id());
    if (it != ids_.end()) {
      found = true;
      active = it->second.lock();
    }
  }
  if (active) active->Abort();
  response->set_found(found);
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* context,
                                                     const v1::TokenizeRequest* request,
                                                     v1::TokenizeResponse* response) {
  auto run = [&]() -> absl::Status {
    SPARKSTACK_RETURN_IF_ERROR(Authenticate(context));
    PromptSpec prompt;
    switch (request->input_case()) {
      case v1::TokenizeRequest::kText:
        prompt.kind = PromptSpec::Kind::kText;
        prompt.text = request->text();
        prompt.add_special_tokens =
            request->has_add_special_tokens() ? request->add_special_tokens() : true;
        break;
      case v1::TokenizeRequest::kChat: {
        SPARKSTACK_ASSIGN_OR_RETURN(prompt, ChatPromptFromProto(request->chat()));
        break;
      }
      case v1::TokenizeRequest::INPUT_NOT_SET:
        return absl::InvalidArgumentError("input: give text or chat");
    }
    SPARKSTACK_ASSIGN_OR_RETURN(std::vector<int32_t> ids, core_.EncodePrompt(prompt));
    for (int32_t id : ids) response->add_token_ids(id);
    response->set_max_model_len(static_cast<int32_t>(core_.max_model_len()));
    return absl::OkStatus();
  };
  return Done(context, run());
}

grpc::ServerUnaryReactor* InferenceService::Detokenize(grpc::CallbackServerContext* context,
                                                       const v1::DetokenizeRequest* request,
                                                       v1::DetokenizeResponse* response) {
  auto run = [&]() -> absl::Status {
    SPARKSTACK_RETURN_IF_ERROR(Authenticate(context));
    const std::vector<int32_t> ids(request->token_ids().begin(), request->token_ids().end());
    const bool skip = request->has_skip_special_tokens() ? request->skip_special_tokens() : true;
    SPARKSTACK_ASSIGN_OR_RETURN(*response->mutable_text(), core_.Decode(ids, skip));
    return absl::OkStatus();
  };
  return Done(context, run());
}

grpc::ServerUnaryReactor* InferenceService::GetModelInfo(grpc::CallbackServerContext* context,
                                                         const v1::GetModelInfoRequest*,
                                                         v1::GetModelInfoResponse* response) {
  if (absl::Status auth = Authenticate(context); !auth.ok()) return Done(context, auth);
  const ModelConfig& config = core_.engine().model_config();
  const tokenizer::Tokenizer* tok = core_.engine().tokenizer();
  response->set_served_model_name(core_.options().served_model_name);
  response->set_architecture(std::string(ArchitectureName(config.architecture)));
  response->set_vocab_size(static_cast<int32_t>(config.vocab_size));
  response->set_tokenizer_vocab_size(tok != nullptr ? tok->vocab_size() : 0);
  response->set_max_model_len(static_cast<int32_t>(core_.max_model_len()));
  if (tok != nullptr) {
    for (int32_t id : tok->eos_ids()) response->add_eos_token_ids(id);
  } else {
    for (int64_t id : config.eos_token_ids) response->add_eos_token_ids(static_cast<int32_t>(id));
  }
  response->set_has_chat_template(tok != nullptr && !tok->chat_template().empty());
  response->set_num_layers(static_cast<int32_t>(config.num_layers));
  response->set_hidden_size(static_cast<int32_t>(config.hidden_size));
  response->set_num_attention_heads(static_cast<int32_t>(config.num_heads));
  response->set_num_kv_heads(static_cast<int32_t>(config.num_kv_heads));
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::GetServerInfo(grpc::CallbackServerContext* context,
                                                          const v1::GetServerInfoRequest*,
                                                          v1::GetServerInfoResponse* response) {
  if (absl::Status auth = Authenticate(context); !auth.ok()) return Done(context, auth);
  const EngineOptions& options = core_.engine().options();
  const EngineStats stats = core_.engine().stats();
  response->set_version(SPARKSTACK_VERSION);
  response->set_tensor_parallel(options.plan.tp);
  response->set_pipeline_parallel(options.plan.pp);
  response->set_uptime_seconds(core_.uptime_seconds());
  response->set_active_requests(static_cast<int32_t>(core_.active_requests()));
  response->set_running(static_cast<int32_t>(stats.running));
  response->set_waiting(static_cast<int32_t>(stats.waiting));
  response->set_kv_blocks_total(stats.kv_blocks_total);
  response->set_kv_blocks_used(stats.kv_blocks_used);
  response->set_max_num_seqs(static_cast<int32_t>(options.max_num_seqs));
  response->set_max_concurrent_requests(
      static_cast<int32_t>(core_.limits().max_concurrent_requests));
  response->set_max_tokens_limit(static_cast<int32_t>(core_.limits().max_tokens));
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::Health(grpc::CallbackServerContext* context,
                                                   const v1::HealthRequest*,
                                                   v1::HealthResponse* response) {
  absl::Status health = core_.Health();
  response->set_status(health.ok() ? v1::HealthResponse::SERVING : v1::HealthResponse::NOT_SERVING);
  response->set_message(std::string(health.message()));
  return Done(context, absl::OkStatus());
}

}  // namespace sparkstack::serving
