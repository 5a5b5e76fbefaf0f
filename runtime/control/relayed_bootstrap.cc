#include "runtime/control/relayed_bootstrap.h"

#include "absl/strings/str_cat.h"

namespace sparkstack::control {

RelayedBootstrap::RelayedBootstrap(int rank, int world_size, SendFn send,
                                   std::chrono::milliseconds timeout)
    : rank_(rank), world_size_(world_size), send_(std::move(send)), timeout_(timeout) {}

absl::StatusOr<std::vector<std::string>> RelayedBootstrap::AllGather(std::string_view blob) {
  return Run(BootstrapOpKind::kAllGather, blob, static_cast<size_t>(world_size_));
}

absl::StatusOr<std::string> RelayedBootstrap::Broadcast(std::string_view blob) {
  absl::StatusOr<std::vector<std::string>> blobs =
      Run(BootstrapOpKind::kBroadcast, rank_ == 0 ? blob : std::string_view(), 1);
  if (!blobs.ok()) return blobs.status();
  return std::move((*blobs)[0]);
}

absl::Status RelayedBootstrap::Barrier() { return Run(BootstrapOpKind::kBarrier, {}, 0).status(); }

absl::StatusOr<std::vector<std::string>> RelayedBootstrap::Run(BootstrapOpKind kind,
                                                               std::string_view blob,
                                                               size_t expected_blobs) {
  const std::string where =
      absl::StrCat("bootstrap ", BootstrapOpName(kind), " (rank ", rank_, " of ", world_size_, ")");
  if (blob.size() > kBootstrapMaxBlobBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": blob of ", blob.size(), " bytes, at most ", kBootstrapMaxBlobBytes));
  }
  uint64_t seq = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!aborted_.ok()) return aborted_;
    seq = next_seq_++;
    waiting_ = true;
  }
  if (absl::Status sent = send_(seq, kind, blob); !sent.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    waiting_ = false;
    return sent;
  }
  std::unique_lock<std::mutex> lock(mu_);
  const bool done =
      cv_.wait_for(lock, timeout_, [&] { return !aborted_.ok() || results_.count(seq) > 0; });
  waiting_ = false;
  auto found = results_.find(seq);
  if (found == results_.end()) {
    if (!aborted_.ok()) return aborted_;
    (void)done;
    return absl::DeadlineExceededError(
        absl::StrCat(where, ": no result from the coordinator within ", timeout_.count(), " ms"));
  }
  absl::StatusOr<std::vector<std::string>> result = std::move(found->second);
  results_.erase(found);
  if (!result.ok()) return result.status();
  if (result->size() != expected_blobs) {
    return absl::DataLossError(absl::StrCat(where, ": the coordinator returned ", result->size(),
                                            " blobs, expected ", expected_blobs));
  }
  return result;
}

void RelayedBootstrap::Deliver(uint64_t seq, absl::StatusOr<std::vector<std::string>> result) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Only the operation in flight may get a result.
    if (!waiting_ || seq + 1 != next_seq_) return;
    results_.emplace(seq, std::move(result));
  }
  cv_.notify_all();
}

void RelayedBootstrap::Abort(absl::Status why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (aborted_.ok()) aborted_ = why.ok() ? absl::CancelledError("bootstrap aborted") : why;
  }
  cv_.notify_all();
}

}  // namespace sparkstack::control
