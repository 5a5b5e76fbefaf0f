// EngineProvider: what the API servers need from the engine side, as an interface so that
// `sparkstack serve` can put whatever runs rank 0 behind it — a single-process Engine
// (MakeEngineProvider below), or the control plane's cluster whose engine is re-formed after a
// node's death while the API servers stay up. The API servers never see a proto or a cluster.
#ifndef SPARKSTACK_RUNTIME_SERVING_ENGINE_PROVIDER_H_
#define SPARKSTACK_RUNTIME_SERVING_ENGINE_PROVIDER_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/engine/engine.h"

namespace sparkstack::serving {

class EngineProvider {
 public:
  virtual ~EngineProvider() = default;

  // As Engine::AddRequest: thread-safe; `on_output` runs on the engine core thread, must not
  // block, and its last call has output.finished(). Unavailable (with the reason) when no engine
  // can take requests now; InvalidArgument naming the field for a bad request. When the engine
  // behind the provider fails or is replaced, every request it held ends (FinishReason::kError).
  virtual absl::StatusOr<RequestId> AddRequest(Request request,
                                               Engine::OutputCallback on_output) = 0;
  // Thread-safe; unknown or finished ids are ignored.
  virtual void Abort(RequestId id) = 0;
  // Thread-safe snapshots.
  virtual EngineStats stats() const = 0;
  // OK when requests can be served; otherwise why not (e.g. Unavailable "node 2 (10.0.0.2:7070)
  // lost"). /health and admission read it on every request: keep it cheap.
  virtual absl::Status health() const = 0;

  // Fixed for the provider's lifetime (the same model whatever engine is behind it).
  virtual const ModelConfig& model_config() const = 0;
  virtual const EngineOptions& options() const = 0;  // resolved (max_model_len, plan, ...)
  // Null when the model has no tokenizer.json; outlives the provider's users.
  virtual const tokenizer::Tokenizer* tokenizer() const = 0;
};

// A provider over one engine that outlives it.
std::unique_ptr<EngineProvider> MakeEngineProvider(Engine& engine);

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_RUNTIME_SERVING_ENGINE_PROVIDER_H_
