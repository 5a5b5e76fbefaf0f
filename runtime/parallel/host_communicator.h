// HostCommunicator: Communicator for host memory over UCX (ucp tag messages). Used by the CPU
// backend, tests, and small control payloads such as the StepPlan.
//
// Transport: whatever UCX selects from UCX_TLS (unset: shared memory between processes on one
// machine, TCP or RDMA verbs across machines). Tests that must cross a network interface set
// UCX_TLS=tcp. A peer that dies turns the pending operations that involve it into Unavailable
// errors naming its rank: peers on other machines through UCX's peer error handling; peers on
// this machine by watching their process (UCX 1.13 cannot handle peer failure on shared memory
// and would fall back to TCP; see peer_liveness.h; SPARKSTACK_UCX_PEER_FAILURE=1 restores UCX's
// handling everywhere). Anything else that stalls ends with DeadlineExceeded after timeout().
//
// Algorithms (all ranks get bitwise-identical results):
//   AllReduceSum  small messages (the latency path decode uses every layer): recursive doubling
//                 when the size is a power of two (log2 N rounds, one exchange each), otherwise a
//                 direct exchange (every rank sends its buffer to every other and sums all N in
//                 rank order: one round); large: ring reduce-scatter + all-gather in pipelined
//                 chunks. f16/bf16 are added in f32 and rounded once per step.
//   AllGather, Broadcast, Barrier: direct (every rank talks to every other; N is 2-4 here).
// Messages are tagged with the sender's rank and a per-pair sequence number, so a message can
// never be matched by the wrong operation; a length mismatch is an error naming both sizes.
#ifndef SPARKSTACK_RUNTIME_PARALLEL_HOST_COMMUNICATOR_H_
#define SPARKSTACK_RUNTIME_PARALLEL_HOST_COMMUNICATOR_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/parallel/bootstrap.h"
#include "runtime/parallel/communicator.h"
#include "runtime/parallel/rendezvous.h"

namespace sparkstack {

struct HostTransport;  // the UCX worker and endpoints, shared by a world and its groups

class HostCommunicator final : public Communicator {
 public:
  // Collective over every rank of `bootstrap` (a Rendezvous or the control plane's gRPC
  // bootstrap): creates a UCX worker, exchanges worker addresses through the bootstrap, connects
  // to every peer and checks the connections with a barrier. The bootstrap may be used again
  // afterwards (e.g. for the NCCL id).
  static absl::StatusOr<std::unique_ptr<HostCommunicator>> Create(Bootstrap& bootstrap);
  // Convenience: Rendezvous::Join(options) then Create.
  static absl::StatusOr<std::unique_ptr<HostCommunicator>> Create(const RendezvousOptions& options);

  // A communicator over a subset of this one's ranks (e.g. a tensor-parallel group: the plan's
  // TpGroup(rank)), like MPI_Comm_split: `world_ranks` are ranks of the world communicator (the
  // one Create returned) in the order that defines the new group's ranks, and must include this
  // process. Local, no communication; but every rank of the world must call Split the same number
  // of times in the same order (each with its own group), because the n-th Split on every rank
  // gets the same message channel. Groups share the UCX connections (the world communicator and
  // its groups may be destroyed in any order) and the error state: after a failure in any of
  // them, all refuse further calls. They also share one UCX worker: use the world and all its
  // groups from one thread at a time. Up to 255 splits per world.
  absl::StatusOr<std::unique_ptr<HostCommunicator>> Split(const std::vector<int>& world_ranks);

  // Destroying the world communicator (the one Create returned) is collective, like
  // MPI_Finalize: it waits up to 2 s for every rank to destroy theirs, so that no rank closes
  // its connections while a peer still expects messages from it.
  ~HostCommunicator() override;

  int rank() const override;
  int size() const override;

  absl::Status AllReduceSum(void* data, size_t count, DType dtype) override;
  absl::Status AllGather(const void* in, void* out, size_t count, DType dtype) override;
  absl::Status Broadcast(void* data, size_t bytes, int root) override;
  absl::Status Send(const void* data, size_t bytes, int peer) override;
  absl::Status Recv(void* data, size_t bytes, int peer) override;
  absl::Status Barrier() override;

  // All-reduce messages up to this many bytes use the latency algorithm (recursive doubling or
  // direct); larger ones the ring. Default: 256 KiB / (messages one rank sends: log2 N or
  // N - 1). Exposed for tests and the benchmark (to exercise both paths at any size).
  void set_direct_allreduce_max_bytes(size_t bytes);

  struct Impl;  // UCX state; public only so the .cc's helpers can name it.

 private:
  explicit HostCommunicator(std::unique_ptr<Impl> impl);
  static std::unique_ptr<HostCommunicator> Make(std::shared_ptr<HostTransport> transport,
                                                std::vector<int> members, int channel);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_PARALLEL_HOST_COMMUNICATOR_H_
