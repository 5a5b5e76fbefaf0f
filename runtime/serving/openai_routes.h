// The HTTP API's routes: OpenAI-compatible /v1/models, /v1/completions, /v1/chat/completions;
// vLLM-style /tokenize and /detokenize; /health (200 when ready, 503 with the reason) and
// /metrics (Prometheus text). With an API key every route but /health and /metrics needs
// `Authorization: Bearer KEY` (401 otherwise). Errors use OpenAI's JSON shape
// ({"error": {"message", "type", "param", "code"}}) with the status of status_mapping.h.
#ifndef SPARKSTACK_RUNTIME_SERVING_OPENAI_ROUTES_H_
#define SPARKSTACK_RUNTIME_SERVING_OPENAI_ROUTES_H_

#include "runtime/serving/http_server.h"
#include "runtime/serving/inference_core.h"

namespace sparkstack::serving {

// The handler for HttpServer; `core` must outlive the server.
HttpHandler MakeOpenAiHandler(InferenceCore& core);

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_RUNTIME_SERVING_OPENAI_ROUTES_H_
