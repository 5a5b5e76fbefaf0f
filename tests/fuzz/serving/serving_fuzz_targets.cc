#include "tests/fuzz/serving/serving_fuzz_targets.h"

#include <cstdlib>

#include "absl/strings/string_view.h"
#include "runtime/serving/inference_core.h"
#include "runtime/serving/openai_request.h"
#include "runtime/serving/proto_mapping.h"

namespace sparkstack::serving {
namespace {

// A model of 1000 ids and 256 positions, without a tokenizer (text prompts are refused cleanly);
// nothing is ever submitted to it.
class StubEngine final : public EngineProvider {
 public:
  StubEngine() {
    config_.vocab_size = 1000;
    options_.max_model_len = 256;
  }
  absl::StatusOr<RequestId> AddRequest(Request, Engine::OutputCallback) override {
    return absl::UnimplementedError("stub");
  }
  void Abort(RequestId) override {}
  EngineStats stats() const override { return {}; }
  absl::Status health() const override { return absl::OkStatus(); }
  const ModelConfig& model_config() const override { return config_; }
  const EngineOptions& options() const override { return options_; }
  const tokenizer::Tokenizer* tokenizer() const override { return nullptr; }

 private:
  ModelConfig config_;
  EngineOptions options_;
};

InferenceCore& Core() {
  static StubEngine* engine = new StubEngine();
  static InferenceCore* core = [] {
    ServingOptions options;
    options.served_model_name = "fuzz";
    options.limits.max_tokens = 100;
    return new InferenceCore(*engine, options);
  }();
  return *core;
}

void Require(bool condition) {
  if (!condition) std::abort();
}

// What any request that passed both steps must look like.
void CheckBuilt(const GenerateSpec& spec) {
  InferenceCore& core = Core();
  auto ids = core.EncodePrompt(spec.prompt);
  if (!ids.ok()) return;
  const size_t prompt_tokens = ids->size();
  auto request = core.BuildRequest(spec, *std::move(ids));
  if (!request.ok()) return;
  Require(request->prompt_ids.size() == prompt_tokens && prompt_tokens > 0);
  Require(request->stopping.max_tokens >= 0 && request->stopping.max_tokens <= 100);
  Require(static_cast<int64_t>(prompt_tokens) + request->stopping.max_tokens <= 256);
  Require(ValidateSamplingParams(request->sampling).ok());
  Require(!request->detokenize);  // no tokenizer
}

}  // namespace

void FuzzOpenAiRequest(const uint8_t* data, size_t size) {
  const absl::string_view body(reinterpret_cast<const char*>(data), size);
  const ServingLimits& limits = Core().limits();
  for (OpenAiEndpoint endpoint : {OpenAiEndpoint::kCompletions, OpenAiEndpoint::kChatCompletions}) {
    auto parsed = ParseOpenAiRequest(endpoint, body, limits);
    if (!parsed.ok()) {
      Require(absl::IsInvalidArgument(parsed.status()));
      continue;
    }
    Require(!parsed->prompts.empty());
    Require(static_cast<int64_t>(parsed->prompts.size()) <= limits.max_prompts);
    Require(parsed->n >= 1 && parsed->n <= limits.max_n);
    Require(parsed->logprobs >= -1 && parsed->logprobs <= kMaxTopLogprobs);
    Require(parsed->include_usage ? parsed->stream : true);
    for (const PromptSpec& prompt : parsed->prompts) {
      GenerateSpec spec = parsed->params;
      spec.prompt = prompt;
      CheckBuilt(spec);
    }
  }
}

void FuzzProtoRequest(const uint8_t* data, size_t size) {
  v1::GenerateRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return;
  auto spec = GenerateSpecFromProto(request);
  if (!spec.ok()) {
    Require(absl::IsInvalidArgument(spec.status()));
    return;
  }
  CheckBuilt(*spec);
}

}  // namespace sparkstack::serving
