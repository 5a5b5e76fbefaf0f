#include "runtime/control/control_types.h"

namespace sparkstack::control {

const char* NodeStateName(NodeState state) {
  switch (state) {
    case NodeState::kIdle:
      return "idle";
    case NodeState::kClaimed:
      return "claimed";
    case NodeState::kLoading:
      return "loading";
    case NodeState::kReady:
      return "ready";
    case NodeState::kDraining:
      return "draining";
    case NodeState::kFailed:
      return "failed";
  }
  return "unknown";
}

const char* WorkerKindName(WorkerKind kind) {
  switch (kind) {
    case WorkerKind::kModel:
      return "model";
    case WorkerKind::kDataPlaneProbe:
      return "data-plane probe";
  }
  return "unknown";
}

const char* LoadPhaseName(LoadPhase phase) {
  switch (phase) {
    case LoadPhase::kAccepted:
      return "accepted";
    case LoadPhase::kLoading:
      return "loading";
    case LoadPhase::kConnecting:
      return "connecting";
    case LoadPhase::kReady:
      return "ready";
    case LoadPhase::kFailed:
      return "failed";
  }
  return "unknown";
}

}  // namespace sparkstack::control
