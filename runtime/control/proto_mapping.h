// The gRPC edge of the control plane: control.proto messages <-> the plain structs of
// control_types.h, and absl::Status <-> grpc::Status. Every FromProto checks the bounds of
// control.proto before anything else reads the message, and names the offending field:
// "load plan: model_path is 5000 bytes, at most 4096". Internal to runtime/control.
#ifndef SPARKSTACK_RUNTIME_CONTROL_PROTO_MAPPING_H_
#define SPARKSTACK_RUNTIME_CONTROL_PROTO_MAPPING_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/support/status.h"
#include "runtime/control/blob_exchange.h"
#include "runtime/control/control_types.h"
#include "sparkstack/v1/control.pb.h"

namespace sparkstack::control {

namespace pb = ::sparkstack::v1;

void ToProto(const NodeCapabilities& in, pb::NodeCapabilities* out);
absl::StatusOr<NodeCapabilities> FromProto(const pb::NodeCapabilities& in);

pb::NodeState ToProto(NodeState in);
absl::StatusOr<NodeState> FromProto(pb::NodeState in);

// LoadPlan::head_host is not sent (the agent fills it in).
void ToProto(const LoadPlan& in, pb::LoadPlan* out);
// Also checks the plan itself: known kind, 1 <= rank < world_size <= kMaxWorldSize,
// tp * pp == world_size, a model path.
absl::StatusOr<LoadPlan> FromProto(const pb::LoadPlan& in);

void ToProto(const ModelFingerprint& in, pb::ModelReport* out);
// A report whose `error` is set becomes FailedPrecondition carrying that error.
absl::StatusOr<ModelFingerprint> FromProto(const pb::ModelReport& in);

void ToProto(const LoadProgress& in, pb::LoadProgress* out);
absl::StatusOr<LoadProgress> FromProto(const pb::LoadProgress& in);

// A worker rank's result. `stopped`: it ended because it was asked to (then even an error status
// counts as STOPPED, with its message kept).
pb::WorkerReport ToWorkerReport(int rank, const absl::Status& result, bool stopped);
// OK for STOPPED; the worker's error (its code and message) for FAILED.
absl::StatusOr<absl::Status> FromProto(const pb::WorkerReport& in);

// Checks a Claim: protocol version (the error names both), cluster id and name sizes, and
// 50 <= heartbeat_interval_ms <= heartbeat_timeout_ms <= 60000.
absl::Status ValidateClaim(const pb::Claim& claim);
pb::BootstrapOp ToProto(BootstrapOpKind kind);
// Unknown ops read as AllGather; ValidateContribution refuses them first.
BootstrapOpKind FromProto(pb::BootstrapOp op);

// Checks a contribution: known op, blob within kBootstrapMaxBlobBytes.
absl::Status ValidateContribution(const pb::BootstrapContribution& contribution);

// The error of a failed bootstrap result, or its blobs (each within kBootstrapMaxBlobBytes, at
// most kMaxWorldSize of them).
absl::StatusOr<std::vector<std::string>> ResultBlobs(const pb::BootstrapResult& result);

// Truncates `text` to at most `max_bytes` without splitting a UTF-8 sequence.
std::string Truncate(absl::string_view text, size_t max_bytes = kMaxMessageBytes);

// absl::Status <-> grpc::Status, code and message kept (the codes are the same numbers).
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_PROTO_MAPPING_H_
