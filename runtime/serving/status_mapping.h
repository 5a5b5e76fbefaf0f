// The one place where absl::Status becomes a protocol's error: a gRPC status at the gRPC service's
// edge, an HTTP status and OpenAI error type at the HTTP API's. Everything inside runtime/serving
// returns absl::Status with the canonical code that says what went wrong:
//   InvalidArgument, OutOfRange, FailedPrecondition -> 400 invalid_request_error
//   Unauthenticated -> 401, PermissionDenied -> 403, NotFound -> 404 (model_not_found)
//   AlreadyExists -> 409, ResourceExhausted -> 429, Unimplemented -> 501
//   Unavailable -> 503, DeadlineExceeded -> 504, anything else -> 500 server_error
#ifndef SPARKSTACK_RUNTIME_SERVING_STATUS_MAPPING_H_
#define SPARKSTACK_RUNTIME_SERVING_STATUS_MAPPING_H_

#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace sparkstack::serving {

grpc::Status ToGrpcStatus(const absl::Status& status);

int HttpStatusFor(absl::StatusCode code);
// OpenAI's error "type": invalid_request_error, authentication_error, permission_error,
// not_found_error, rate_limit_error, server_error, ...
absl::string_view OpenAiErrorType(absl::StatusCode code);

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_RUNTIME_SERVING_STATUS_MAPPING_H_
