// RelayedBootstrap: the Bootstrap (runtime/parallel/bootstrap.h) that the control plane hands to
// a rank. Each operation becomes a numbered contribution sent to the coordinator's BlobExchange
// (over the agent's gRPC session, or directly for rank 0 on the head); the caller blocks until
// the coordinator delivers the operation's result, the bootstrap is aborted (the group failed,
// the node was told to stop), or the timeout passes.
//
// Threads: the rank calls AllGather/Broadcast/Barrier from one thread; Deliver and Abort may be
// called from any thread (the transport's reader, the coordinator), also while a call waits.
#ifndef SPARKSTACK_RUNTIME_CONTROL_RELAYED_BOOTSTRAP_H_
#define SPARKSTACK_RUNTIME_CONTROL_RELAYED_BOOTSTRAP_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/control/blob_exchange.h"
#include "runtime/parallel/bootstrap.h"

namespace sparkstack::control {

class RelayedBootstrap final : public Bootstrap {
 public:
  // Sends this rank's contribution to operation `seq` towards the coordinator. Called without any
  // lock held; may call Deliver before it returns (rank 0 on the head completes operations in
  // place). A non-OK result fails the operation.
  using SendFn =
      std::function<absl::Status(uint64_t seq, BootstrapOpKind kind, std::string_view blob)>;

  // `timeout` bounds each operation (loading may run between two of them, so it is long; a dead
  // group is noticed by the coordinator, which aborts the bootstrap).
  RelayedBootstrap(int rank, int world_size, SendFn send, std::chrono::milliseconds timeout);

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  absl::StatusOr<std::vector<std::string>> AllGather(std::string_view blob) override;
  absl::StatusOr<std::string> Broadcast(std::string_view blob) override;
  absl::Status Barrier() override;

  // The result of operation `seq` (its blobs, or the error that failed it). Results for operations
  // this rank has not started, or already has, are ignored (a confused peer cannot wedge it).
  void Deliver(uint64_t seq, absl::StatusOr<std::vector<std::string>> result);
  // Fails the waiting call and every later one with `why`. The first abort's reason sticks.
  void Abort(absl::Status why);

 private:
  absl::StatusOr<std::vector<std::string>> Run(BootstrapOpKind kind, std::string_view blob,
                                               size_t expected_blobs);

  const int rank_;
  const int world_size_;
  const SendFn send_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  // The operation in flight (next_seq_ - 1) when waiting_.
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;
  std::map<uint64_t, absl::StatusOr<std::vector<std::string>>> results_ ABSL_GUARDED_BY(mu_);
  absl::Status aborted_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_RELAYED_BOOTSTRAP_H_
