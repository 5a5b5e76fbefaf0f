// What the API servers (runtime/serving/server.h) listen on and the limits they enforce. Plain
// values: `sparkstack serve` fills them from its flags (launcher/serving_flags.h).
#ifndef SPARKSTACK_RUNTIME_SERVING_SERVING_OPTIONS_H_
#define SPARKSTACK_RUNTIME_SERVING_SERVING_OPTIONS_H_

#include <cstdint>
#include <string>

namespace sparkstack::serving {

// Each limit refuses a request with a clear 4xx (HTTP) or status (gRPC) naming the limit.
struct ServingLimits {
  int64_t max_request_bytes = 2 << 20;    // HTTP body (413) and gRPC message size
  int64_t max_concurrent_requests = 512;  // sequences admitted and not finished (429)
  int64_t max_tokens = 0;         // max_tokens per request at most (400); 0: the model's context
  int64_t max_n = 16;             // OpenAI `n` (choices per prompt) at most
  int64_t max_prompts = 64;       // prompts in one /v1/completions request
  int64_t max_stop_strings = 16;  // stop strings per request (OpenAI allows 4)
  int64_t max_stop_string_bytes = 256;
  int64_t max_stop_token_ids = 256;
  int64_t max_header_bytes = 16 << 10;  // HTTP request line + headers (431)
  int64_t header_timeout_ms = 30000;    // a request's head and body must arrive within this
  int64_t idle_timeout_ms = 120000;     // a keep-alive connection with no request is closed
};

struct ServingOptions {
  std::string host = "127.0.0.1";
  int http_port = 8000;           // 0: any free port (ApiServer::http_port() tells which)
  int grpc_port = 50051;          // 0: any free port; -1: no gRPC server
  std::string served_model_name;  // the `model` clients name; required
  std::string api_key;   // empty: no authentication; else clients must send "Bearer <api_key>"
  int http_threads = 2;  // I/O threads of the HTTP server (connections never cost a thread)
  ServingLimits limits;
};

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_RUNTIME_SERVING_SERVING_OPTIONS_H_
