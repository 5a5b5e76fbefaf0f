// DeviceComms: the communicators the model path uses when the backend is CUDA and the world has
// more than one rank: NCCL on the backend's compute stream, for the tensor-parallel all-reduce
// (and all-gather) inside the model and the pipeline send/recv of hidden states, so collectives
// are ordered with the kernels (and captured into decode graphs) instead of synchronizing the
// host. They are built from the rank's host communicators, which carry the NCCL unique id (a
// Bootstrap over a Communicator); the host communicators keep carrying the step plans and
// results.
//
// Collectives are enqueued without waiting (NcclCommunicator::set_synchronous(false)); Wait
// bounds the wait for them with the communicator's timeout, so a dead peer becomes an error, not
// a hang.
#ifndef SPARKSTACK_RUNTIME_ENGINE_DEVICE_COMMS_H_
#define SPARKSTACK_RUNTIME_ENGINE_DEVICE_COMMS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/engine/engine.h"
#include "runtime/parallel/communicator.h"

namespace sparkstack {

class DeviceComms {
 public:
  // nullptr when the model path needs none (not a CUDA backend, or a world of one).
  // FailedPrecondition when it needs them and this build has no NCCL.
  static absl::StatusOr<std::unique_ptr<DeviceComms>> Create(RankComms& host, Backend& backend);
  virtual ~DeviceComms() = default;

  virtual Communicator* world() = 0;
  virtual Communicator* tp_group() = 0;
  // Waits for every collective enqueued so far (bounded by the timeout; errors name the peer).
  virtual absl::Status Wait() = 0;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_DEVICE_COMMS_H_
