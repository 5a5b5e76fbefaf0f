// The API servers of `sparkstack serve`: OpenAI-compatible HTTP (with /health, /metrics,
// /tokenize, /detokenize) and the gRPC service sparkstack.v1.Inference, both in front of one
// EngineProvider. This is the entry point the serve command calls once rank 0's engine is up:
//
//   auto provider = serving::MakeEngineProvider(engine);  // or the cluster's own provider
//   SPARKSTACK_ASSIGN_OR_RETURN(auto api, serving::StartApiServer(*provider, options));
//   ... wait for SIGTERM ...
//   api->Shutdown();  // before the engine goes away
#ifndef SPARKSTACK_RUNTIME_SERVING_SERVER_H_
#define SPARKSTACK_RUNTIME_SERVING_SERVER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/serving/engine_provider.h"
#include "runtime/serving/serving_options.h"

namespace sparkstack::serving {

class ApiServer {
 public:
  virtual ~ApiServer() = default;
  // The ports bound (useful with port 0); grpc_port() is -1 without a gRPC server.
  virtual int http_port() const = 0;
  virtual int grpc_port() const = 0;
  // Stops accepting, aborts the requests still running (their streams end), waits for their last
  // outputs and stops every server thread. Idempotent; the destructor calls it.
  virtual void Shutdown() = 0;
};

// Starts both servers on options.host. `engine` must outlive the ApiServer. Errors:
// InvalidArgument for bad options (no served_model_name, a host that is not an address),
// Unavailable naming the address when a port cannot be bound.
absl::StatusOr<std::unique_ptr<ApiServer>> StartApiServer(EngineProvider& engine,
                                                          ServingOptions options);

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_RUNTIME_SERVING_SERVER_H_
