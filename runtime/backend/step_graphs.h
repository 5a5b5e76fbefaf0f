// StepGraphs: an optional capability of a backend whose device work can be recorded once and
// replayed (CUDA graphs). The runner captures a decode step per batch-size bucket and replays it
// for later steps of that bucket; the captured step must read everything that changes between
// steps from device buffers at fixed addresses (ids, positions, metadata), never from host values
// baked into the launches.
//
// Between BeginCapture and EndCapture the backend's ops are recorded, not run; host copies are
// refused (a replay would repeat them from the same host memory). One thread at a time.
#ifndef SPARKSTACK_RUNTIME_BACKEND_STEP_GRAPHS_H_
#define SPARKSTACK_RUNTIME_BACKEND_STEP_GRAPHS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"

namespace sparkstack {

class StepGraphs {
 public:
  virtual ~StepGraphs() = default;
  virtual absl::Status BeginCapture() = 0;
  // The graph recorded since BeginCapture; its id is valid as long as the backend.
  virtual absl::StatusOr<int> EndCapture() = 0;
  // Enqueues the recorded work again.
  virtual absl::Status Replay(int graph) = 0;
};

// The backend's graph capability, or nullptr when it has none (the CPU backend).
inline StepGraphs* GraphsOf(Backend& backend) { return dynamic_cast<StepGraphs*>(&backend); }

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_BACKEND_STEP_GRAPHS_H_
