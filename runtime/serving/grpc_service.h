// The gRPC service sparkstack.v1.Inference (proto/sparkstack/v1/inference.proto) on gRPC's
// callback API: no thread per call. A thin edge — protos become GenerateSpec / native values
// (proto_mapping.h), the work is InferenceCore's, errors leave through ToGrpcStatus.
//
// Generate: the engine's outputs are merged while a write is in flight (a slow reader gets fewer,
// larger messages, never a blocked engine). A cancelled call (the client cancelled, its deadline
// passed, or it went away) aborts the request. With an API key, every method but Health needs
// `authorization: Bearer KEY` metadata (UNAUTHENTICATED otherwise).
#ifndef SPARKSTACK_RUNTIME_SERVING_GRPC_SERVICE_H_
#define SPARKSTACK_RUNTIME_SERVING_GRPC_SERVICE_H_

#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "runtime/serving/inference_core.h"
#include "sparkstack/v1/inference.grpc.pb.h"

namespace sparkstack::serving {

class InferenceService final : public v1::Inference::CallbackService {
 public:
  // `core` must outlive the service.
  explicit InferenceService(InferenceCore& core) : core_(core) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Abort(grpc::CallbackServerContext* context,
                                  const v1::AbortRequest* request,
                                  v1::AbortResponse* response) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context,
                                       const v1::DetokenizeRequest* request,
                                       v1::DetokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::GetModelInfoResponse* response) override;
  grpc::ServerUnaryReactor* GetServerInfo(grpc::CallbackServerContext* context,
                                          const v1::GetServerInfoRequest* request,
                                          v1::GetServerInfoResponse* response) override;
  grpc::ServerUnaryReactor* Health(grpc::CallbackServerContext* context,
                                   const v1::HealthRequest* request,
                                   v1::HealthResponse* response) override;

  // Generate's bookkeeping of client request ids, for Abort. Thread-safe. ReserveId refuses an
  // id that a running request has (AlreadyExists); AttachId names its request once submitted.
  absl::Status ReserveId(const std::string& id);
  void AttachId(const std::string& id, std::weak_ptr<ActiveRequest> request);
  void ReleaseId(const std::string& id);
  absl::Status Authenticate(grpc::CallbackServerContext* context);

  InferenceCore& core() { return core_; }

 private:
  InferenceCore& core_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, std::weak_ptr<ActiveRequest>> ids_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_RUNTIME_SERVING_GRPC_SERVICE_H_
