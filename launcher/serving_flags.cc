#include "launcher/serving_flags.h"

#include <filesystem>

#include "runtime/core/status_macros.h"
#include "runtime/serving/api_key.h"

namespace sparkstack::launcher {

void AddServingFlags(CLI::App& cmd, ServingFlags& f) {
  serving::ServingLimits& l = f.limits;
  cmd.add_option("--host", f.host, "address of the HTTP and gRPC API servers")
      ->capture_default_str();
  cmd.add_option("--port", f.port, "OpenAI-compatible HTTP port (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd.add_option("--grpc-port", f.grpc_port,
                 "gRPC sparkstack.v1.Inference port (0: any free port, -1: none)")
      ->check(CLI::Range(-1, 65535))
      ->capture_default_str();
  cmd.add_option("--served-model-name", f.served_model_name,
                 "model name in the APIs (default: the model directory's name)");
  cmd.add_option("--api-key-file", f.api_key_file,
                 "clients must send this file's key (Authorization: Bearer KEY)");
  cmd.add_option("--http-threads", f.http_threads, "I/O threads of the HTTP server")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd.add_option("--max-request-bytes", l.max_request_bytes,
                 "largest HTTP body / gRPC message accepted (413 / RESOURCE_EXHAUSTED)")
      ->check(CLI::Range(int64_t{1024}, int64_t{1} << 30))
      ->capture_default_str();
  cmd.add_option("--max-concurrent-requests", l.max_concurrent_requests,
                 "sequences admitted at once; more are refused with 429 / RESOURCE_EXHAUSTED")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_option("--max-tokens-limit", l.max_tokens,
                 "largest max_tokens a request may ask for (0: the model's context)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

absl::StatusOr<serving::ServingOptions> MakeServingOptions(const ServingFlags& f,
                                                           const std::string& model_dir) {
  serving::ServingOptions options;
  options.host = f.host;
  options.http_port = f.port;
  options.grpc_port = f.grpc_port;
  options.served_model_name = f.served_model_name;
  if (options.served_model_name.empty()) {
    std::filesystem::path path(model_dir);
    if (!path.has_filename()) path = path.parent_path();  // "models/llama/" -> "llama"
    options.served_model_name = path.filename().string();
  }
  if (!f.api_key_file.empty()) {
    SPARKSTACK_ASSIGN_OR_RETURN(options.api_key, serving::ReadApiKeyFile(f.api_key_file));
  }
  options.http_threads = f.http_threads;
  options.limits = f.limits;
  return options;
}

}  // namespace sparkstack::launcher
