// One /v1/completions or /v1/chat/completions request, from a parsed OpenAiRequest to its
// response: encode every prompt, build one engine request per choice, admit them together, submit,
// and answer — one JSON body, or server-sent events (`data: {chunk}` per engine output, a usage
// chunk when stream_options.include_usage, then `data: [DONE]`). A client that disconnects aborts
// every choice. An engine error answers with its HTTP status, or mid-stream with an error event.
#ifndef SPARKSTACK_RUNTIME_SERVING_OPENAI_GENERATION_H_
#define SPARKSTACK_RUNTIME_SERVING_OPENAI_GENERATION_H_

#include <memory>

#include "runtime/serving/http_server.h"
#include "runtime/serving/inference_core.h"
#include "runtime/serving/openai_request.h"

namespace sparkstack::serving {

// Runs on the exchange's strand and returns at once; the response follows from engine outputs.
// Errors before anything was submitted are answered here (400 / 429 / 503 ...).
void StartOpenAiGeneration(InferenceCore& core, OpenAiRequest request,
                           std::shared_ptr<HttpExchange> exchange, Clock::time_point arrival);

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_RUNTIME_SERVING_OPENAI_GENERATION_H_
