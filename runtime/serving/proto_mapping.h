// sparkstack.v1.Inference messages <-> native structs, at the gRPC service's edge: nothing past
// this file sees a proto. Pure functions (the mapping tests/fuzz/serving fuzzes).
#ifndef SPARKSTACK_RUNTIME_SERVING_PROTO_MAPPING_H_
#define SPARKSTACK_RUNTIME_SERVING_PROTO_MAPPING_H_

#include "absl/status/statusor.h"
#include "runtime/serving/generate_spec.h"
#include "runtime/serving/inference_core.h"
#include "sparkstack/v1/inference.pb.h"

namespace sparkstack::serving {

inline constexpr size_t kMaxRequestIdBytes = 256;

// The GenerateSpec of a Generate call (its request_id is the service's business). Unset optional
// fields get the API's defaults: temperature, top_p and repetition_penalty 1, no logprobs,
// add_special_tokens and skip_special_tokens true. InvalidArgument names the field: no input,
// empty token ids or messages, negative ids, min_tokens or logprobs, a template_kwargs_json that
// is not a JSON object. Ranges the engine defines (temperature, top_p, ...) are checked later by
// InferenceCore::BuildRequest.
absl::StatusOr<GenerateSpec> GenerateSpecFromProto(const v1::GenerateRequest& request);

// The prompt of a chat input (Generate or Tokenize).
absl::StatusOr<PromptSpec> ChatPromptFromProto(const v1::ChatInput& chat);

// Adds `output`'s deltas (token ids, text, logprobs) to `response` and sets its running counts,
// so that several outputs can be merged into one message.
void AppendOutput(const RequestOutput& output, v1::GenerateResponse* response);
// Fills the last message's Finished from the request's last output.
void SetFinished(const RequestOutput& last, const RequestTimes& times, v1::Finished* finished);

v1::FinishReason FinishReasonToProto(FinishReason reason);

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_RUNTIME_SERVING_PROTO_MAPPING_H_
