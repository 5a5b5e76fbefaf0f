#include "runtime/serving/engine_provider.h"

namespace sparkstack::serving {
namespace {

class SingleEngineProvider final : public EngineProvider {
 public:
  explicit SingleEngineProvider(Engine& engine) : engine_(engine) {}

  absl::StatusOr<RequestId> AddRequest(Request request, Engine::OutputCallback on_output) override {
    return engine_.AddRequest(std::move(request), std::move(on_output));
  }
  void Abort(RequestId id) override { engine_.Abort(id); }
  EngineStats stats() const override { return engine_.stats(); }
  absl::Status health() const override { return engine_.health(); }
  const ModelConfig& model_config() const override { return engine_.model_config(); }
  const EngineOptions& options() const override { return engine_.options(); }
  const tokenizer::Tokenizer* tokenizer() const override { return engine_.tokenizer(); }

 private:
  Engine& engine_;
};

}  // namespace

std::unique_ptr<EngineProvider> MakeEngineProvider(Engine& engine) {
  return std::make_unique<SingleEngineProvider>(engine);
}

}  // namespace sparkstack::serving
