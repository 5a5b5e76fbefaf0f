// NcclCommunicator: Communicator for device (GPU) buffers on NCCL. Built only with CUDA
// (SPARKSTACK_WITH_NCCL is defined for users of sparkstack_parallel when it is); this header
// names no CUDA or NCCL type, so model code can include it in CPU-only translation units.
//
// Bootstrap (bootstrap.h: the TCP rendezvous or the control plane's gRPC bootstrap): rank 0
// creates the NCCL unique id and broadcasts it through the bootstrap, then every rank calls ncclCommInitRank (non-blocking, polled against
// timeout()) on the CUDA device that is current on the calling thread.
//
// Network selection is NCCL's own, from the environment, read at init:
//   NCCL_SOCKET_IFNAME  interface(s) for bootstrap and the socket transport (e.g. "enp1s0f0np0")
//   NCCL_IB_HCA         RDMA devices to use; on a DGX Spark list both halves of the ConnectX-7
//                       port (e.g. "mlx5_0,mlx5_1")
//   NCCL_DEBUG=INFO     shows which transport was chosen.
//
// Completion: each call enqueues on the communicator's stream, then (when synchronous(), the
// default) waits for the stream, polling cudaStreamQuery and ncclCommGetAsyncError until
// timeout(). A timeout or an asynchronous NCCL error aborts the communicator (ncclCommAbort) so
// no kernel keeps spinning on a dead peer, and returns DeadlineExceeded / Unavailable.
#ifndef SPARKSTACK_RUNTIME_PARALLEL_NCCL_COMMUNICATOR_H_
#define SPARKSTACK_RUNTIME_PARALLEL_NCCL_COMMUNICATOR_H_

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/parallel/bootstrap.h"
#include "runtime/parallel/communicator.h"
#include "runtime/parallel/rendezvous.h"

namespace sparkstack {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over every rank of `bootstrap`. `stream` is a cudaStream_t (as void*) the
  // collectives are enqueued on; nullptr creates a private non-blocking stream.
  static absl::StatusOr<std::unique_ptr<NcclCommunicator>> Create(Bootstrap& bootstrap,
                                                                  void* stream = nullptr);
  ~NcclCommunicator() override;

  int rank() const override;
  int size() const override;

  // Buffers are device pointers on this communicator's device.
  absl::Status AllReduceSum(void* data, size_t count, DType dtype) override;
  absl::Status AllGather(const void* in, void* out, size_t count, DType dtype) override;
  absl::Status Broadcast(void* data, size_t bytes, int root) override;
  absl::Status Send(const void* data, size_t bytes, int peer) override;
  absl::Status Recv(void* data, size_t bytes, int peer) override;
  absl::Status Barrier() override;

  // When false, calls only enqueue (stream-ordered, e.g. inside a CUDA graph capture) and the
  // caller waits with Synchronize(). Default true.
  void set_synchronous(bool synchronous);
  bool synchronous() const;
  // Waits for everything enqueued so far, with the timeout and abort handling described above.
  absl::Status Synchronize();

  struct Impl;

 private:
  explicit NcclCommunicator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_PARALLEL_NCCL_COMMUNICATOR_H_
