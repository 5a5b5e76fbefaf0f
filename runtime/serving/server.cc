#include "runtime/serving/server.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "runtime/serving/grpc_service.h"
#include "runtime/serving/http_server.h"
#include "runtime/serving/inference_core.h"
#include "runtime/serving/openai_routes.h"

namespace sparkstack::serving {
namespace {

class ApiServerImpl final : public ApiServer {
 public:
  ApiServerImpl(EngineProvider& engine, ServingOptions options)
      : core_(std::make_unique<InferenceCore>(engine, std::move(options))) {}
  ~ApiServerImpl() override { Shutdown(); }

  absl::Status Start() {
    const ServingOptions& options = core_->options();
    auto http = HttpServer::Start(options.host, options.http_port, options.http_threads,
                                  options.limits, MakeOpenAiHandler(*core_));
    if (!http.ok()) return http.status();
    http_ = *std::move(http);
    if (options.grpc_port < 0) return absl::OkStatus();
    service_ = std::make_unique<InferenceService>(*core_);
    grpc::ServerBuilder builder;
    const std::string address = absl::StrCat(options.host.find(':') != std::string::npos
                                                 ? absl::StrCat("[", options.host, "]")
                                                 : options.host,
                                             ":", options.grpc_port);
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &grpc_port_);
    builder.RegisterService(service_.get());
    builder.SetMaxReceiveMessageSize(static_cast<int>(options.limits.max_request_bytes));
    grpc_ = builder.BuildAndStart();
    if (grpc_ == nullptr || grpc_port_ <= 0) {
      return absl::UnavailableError(
          absl::StrCat("gRPC server: cannot listen on ", address, " (in use, or not an address)"));
    }
    return absl::OkStatus();
  }

  int http_port() const override { return http_ ? http_->port() : -1; }
  int grpc_port() const override { return grpc_ ? grpc_port_ : -1; }

  void Shutdown() override {
    if (shut_down_) return;
    shut_down_ = true;
    // No new requests; clients of open connections are told by their streams ending.
    if (http_) http_->CloseAll();
    core_->AbortAll();
    if (grpc_) grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    // The engine delivers the aborted requests' last outputs and the HTTP threads handle them;
    // only then may the core those handlers use go (a handler posted before Stop() still runs).
    core_->WaitForRequestsToEnd(std::chrono::seconds(10));
    if (http_) http_->Stop();
    core_.reset();
  }

 private:
  std::unique_ptr<InferenceCore> core_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<grpc::Server> grpc_;
  int grpc_port_ = -1;
  bool shut_down_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ApiServer>> StartApiServer(EngineProvider& engine,
                                                          ServingOptions options) {
  if (options.served_model_name.empty()) {
    return absl::InvalidArgumentError("served_model_name must be set (--served-model-name)");
  }
  auto server = std::make_unique<ApiServerImpl>(engine, std::move(options));
  if (absl::Status status = server->Start(); !status.ok()) return status;
  return server;
}

}  // namespace sparkstack::serving
