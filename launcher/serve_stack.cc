#include "launcher/serve_stack.h"

#include <iostream>
#include <utility>

#include "runtime/control/data_plane_probe.h"
#include "runtime/core/status_macros.h"

namespace sparkstack::launcher {
namespace {

// The API servers' view of the cluster's engine: the same head across re-formations, its health
// the cluster's.
class ClusterEngineProvider final : public serving::EngineProvider {
 public:
  explicit ClusterEngineProvider(control::EngineHeadRank& head) : head_(head) {}
  absl::StatusOr<RequestId> AddRequest(Request request, Engine::OutputCallback on_output) override {
    return head_.AddRequest(std::move(request), std::move(on_output));
  }
  void Abort(RequestId id) override { head_.Abort(id); }
  EngineStats stats() const override { return head_.stats(); }
  absl::Status health() const override { return head_.health(); }
  const ModelConfig& model_config() const override { return head_.model_config(); }
  const EngineOptions& options() const override { return head_.options(); }
  const tokenizer::Tokenizer* tokenizer() const override { return head_.tokenizer(); }

 private:
  control::EngineHeadRank& head_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ServeStack>> ServeStack::Start(ServeStackOptions options) {
  std::unique_ptr<ServeStack> stack(new ServeStack());
  const std::string prefix = options.log_prefix;
  if (options.cluster.kind == control::WorkerKind::kDataPlaneProbe) {
    stack->head_ = std::make_unique<control::DataPlaneProbeHead>();
  } else {
    SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<control::EngineHeadRank> engine,
                                control::EngineHeadRank::Create(std::move(options.engine)));
    stack->engine_head_ = engine.get();
    stack->head_ = std::move(engine);
  }
  control::EngineHeadRank* engine_head = stack->engine_head_;
  const auto prepare = [&](control::Coordinator& coordinator) {
    coordinator.AddObserver([prefix](const control::ClusterHealth& health) {
      std::cerr << prefix << ": cluster " << health.Summary() << std::endl;
    });
    if (engine_head == nullptr) return;
    // Rank 0 failing on its own fails the group; the API servers see the cluster's health.
    engine_head->SetFailureCallback(
        [&coordinator](const absl::Status& why) { coordinator.ReportHeadFailure(why); });
    engine_head->SetHealthSource([&coordinator]() -> absl::Status {
      if (coordinator.ready()) return absl::OkStatus();
      return absl::UnavailableError(coordinator.Health().Summary());
    });
  };
  SPARKSTACK_ASSIGN_OR_RETURN(
      stack->cluster_,
      control::ServeCluster::Start(std::move(options.cluster), stack->head_.get(), prepare));
  if (engine_head == nullptr) return stack;
  std::cerr << prefix << ": engine ready: max_model_len " << engine_head->options().max_model_len
            << ", " << engine_head->stats().kv_blocks_total << " KV blocks, max_num_seqs "
            << engine_head->options().max_num_seqs << std::endl;
  stack->provider_ = std::make_unique<ClusterEngineProvider>(*engine_head);
  const serving::ServingOptions& api = options.api;
  SPARKSTACK_ASSIGN_OR_RETURN(stack->api_, serving::StartApiServer(*stack->provider_, api));
  std::cerr << prefix << ": ready, model " << api.served_model_name << ", http " << api.host << ":"
            << stack->api_->http_port() << ", grpc " << api.host << ":" << stack->api_->grpc_port()
            << std::endl;
  return stack;
}

ServeStack::~ServeStack() { Shutdown(); }

int ServeStack::http_port() const { return api_ != nullptr ? api_->http_port() : -1; }

int ServeStack::grpc_port() const { return api_ != nullptr ? api_->grpc_port() : -1; }

void ServeStack::Shutdown() {
  if (api_ != nullptr) api_->Shutdown();  // before the engine goes away
  if (cluster_ != nullptr) cluster_->Shutdown();
}

}  // namespace sparkstack::launcher
