// A stand-in EngineProvider for the API server tests: every request emits token ids prompt[0],
// prompt[0] + 1, ... one per step (a step every `step` of wall time) on its own "engine core"
// thread until max_tokens (FinishReason::kLength) or Abort (kAbort). No tokenizer: outputs carry
// ids and logprobs but no text. Health and the ids it was asked to abort are observable.
#ifndef SPARKSTACK_TESTS_UNIT_SERVING_FAKE_ENGINE_H_
#define SPARKSTACK_TESTS_UNIT_SERVING_FAKE_ENGINE_H_

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/serving/engine_provider.h"

namespace sparkstack::serving {

class FakeEngine final : public EngineProvider {
 public:
  explicit FakeEngine(std::chrono::milliseconds step = std::chrono::milliseconds(1)) : step_(step) {
    config_.vocab_size = 1000;
    options_.max_model_len = 256;
    options_.max_num_seqs = 8;
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeEngine() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    thread_.join();
  }

  absl::StatusOr<RequestId> AddRequest(Request request, Engine::OutputCallback on_output) override {
    for (int32_t id : request.prompt_ids) {
      if (id < 0 || id >= config_.vocab_size) {
        return absl::InvalidArgumentError(
            absl::StrCat("prompt id ", id, " outside the vocabulary"));
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    const RequestId id = ++next_id_;
    running_[id] = Running{std::move(request), std::move(on_output)};
    return id;
  }
  void Abort(RequestId id) override {
    std::lock_guard<std::mutex> lock(mu_);
    aborted_.push_back(id);
    auto it = running_.find(id);
    if (it != running_.end()) it->second.abort = true;
  }
  EngineStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    EngineStats stats;
    stats.running = static_cast<int64_t>(running_.size());
    return stats;
  }
  absl::Status health() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return health_;
  }
  const ModelConfig& model_config() const override { return config_; }
  const EngineOptions& options() const override { return options_; }
  const tokenizer::Tokenizer* tokenizer() const override { return nullptr; }

  void set_health(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    health_ = std::move(status);
  }
  std::vector<RequestId> aborted() const {
    std::lock_guard<std::mutex> lock(mu_);
    return aborted_;
  }
  size_t running() const {
    std::lock_guard<std::mutex> lock(mu_);
    return running_.size();
  }

 private:
  struct Running {
    Request request;
    Engine::OutputCallback callback;
    int64_t emitted = 0;
    bool abort = false;
  };

  void Loop() {
    for (;;) {
      std::this_thread::sleep_for(step_);
      std::vector<std::pair<Engine::OutputCallback, RequestOutput>> outputs;
      bool stopping = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        stopping = stop_;
        if (stopping) {
          for (auto& [id, r] : running_) {
            RequestOutput out;
            out.id = id;
            out.finish_reason = FinishReason::kAbort;
            outputs.emplace_back(std::move(r.callback), std::move(out));
          }
          running_.clear();
        }
        for (auto it = running_.begin(); it != running_.end();) {
          Running& r = it->second;
          RequestOutput out;
          out.id = it->first;
          out.prompt_tokens = static_cast<int64_t>(r.request.prompt_ids.size());
          if (r.abort) {
            out.finish_reason = FinishReason::kAbort;
          } else {
            const int32_t token = r.request.prompt_ids[0] + static_cast<int32_t>(r.emitted);
            out.token_ids.push_back(token);
            if (r.request.sampling.logprobs >= 0) {
              SampledToken sampled;
              sampled.token = token;
              sampled.logprob = -0.25f;
              out.logprobs.push_back(sampled);
            }
            ++r.emitted;
            if (r.emitted >= r.request.stopping.max_tokens)
              out.finish_reason = FinishReason::kLength;
          }
          out.output_tokens = r.emitted;
          const bool done = out.finished();
          outputs.emplace_back(done ? std::move(r.callback) : r.callback, std::move(out));
          it = done ? running_.erase(it) : std::next(it);
        }
      }
      for (auto& [callback, output] : outputs) callback(std::move(output));
      if (stopping) return;
    }
  }

  const std::chrono::milliseconds step_;
  ModelConfig config_;
  EngineOptions options_;
  mutable std::mutex mu_;
  bool stop_ = false;
  absl::Status health_;
  RequestId next_id_ = 0;
  std::map<RequestId, Running> running_;
  std::vector<RequestId> aborted_;
  std::thread thread_;
};

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_TESTS_UNIT_SERVING_FAKE_ENGINE_H_
