#include "runtime/control/blob_exchange.h"

#include "absl/strings/str_cat.h"
#include "runtime/parallel/bootstrap.h"

namespace sparkstack::control {

const char* BootstrapOpName(BootstrapOpKind kind) {
  switch (kind) {
    case BootstrapOpKind::kAllGather:
      return "AllGather";
    case BootstrapOpKind::kBroadcast:
      return "Broadcast";
    case BootstrapOpKind::kBarrier:
      return "Barrier";
  }
  return "unknown";
}

BlobExchange::BlobExchange(int world_size)
    : world_size_(world_size), blobs_(static_cast<size_t>(world_size)) {}

absl::Status BlobExchange::FailWith(absl::Status status) {
  failed_ = status;
  return status;
}

void BlobExchange::Fail(absl::Status status) {
  if (failed_.ok()) failed_ = std::move(status);
}

absl::StatusOr<std::optional<BlobExchange::Completed>> BlobExchange::Contribute(
    int rank, uint64_t seq, BootstrapOpKind kind, std::string blob) {
  if (!failed_.ok()) return failed_;
  if (rank < 0 || rank >= world_size_) {
    return FailWith(absl::InvalidArgumentError(
        absl::StrCat("bootstrap: rank ", rank, " is outside the group of ", world_size_)));
  }
  if (blob.size() > kBootstrapMaxBlobBytes) {
    return FailWith(absl::InvalidArgumentError(
        absl::StrCat("bootstrap: rank ", rank, "'s blob for operation ", seq, " has ", blob.size(),
                     " bytes, at most ", kBootstrapMaxBlobBytes)));
  }
  if (seq != seq_ || blobs_[rank].has_value()) {
    return FailWith(absl::FailedPreconditionError(absl::StrCat(
        "bootstrap: rank ", rank, " sent operation ", seq, " (", BootstrapOpName(kind),
        ") while operation ", seq_,
        blobs_[rank].has_value() ? " already had its part" : " is pending",
        " (the ranks do not run the same bootstrap sequence: different sparkstack versions?)")));
  }
  if (kind_.has_value() && *kind_ != kind) {
    return FailWith(absl::FailedPreconditionError(
        absl::StrCat("bootstrap operation ", seq, ": rank ", first_rank_, " called ",
                     BootstrapOpName(*kind_), " but rank ", rank, " called ", BootstrapOpName(kind),
                     " (different sparkstack versions or engine options?)")));
  }
  if (!kind_.has_value()) {
    kind_ = kind;
    first_rank_ = rank;
  }
  blobs_[rank] = std::move(blob);
  if (++received_ < world_size_) return std::optional<Completed>();

  Completed done;
  done.seq = seq_;
  done.kind = kind;
  switch (kind) {
    case BootstrapOpKind::kAllGather:
      for (auto& b : blobs_) done.blobs.push_back(std::move(*b));
      break;
    case BootstrapOpKind::kBroadcast:
      done.blobs.push_back(std::move(*blobs_[0]));
      break;
    case BootstrapOpKind::kBarrier:
      break;
  }
  ++seq_;
  kind_.reset();
  first_rank_ = -1;
  received_ = 0;
  for (auto& b : blobs_) b.reset();
  return std::optional<Completed>(std::move(done));
}

std::vector<int> BlobExchange::Missing() const {
  std::vector<int> missing;
  if (received_ == 0) return missing;
  for (int r = 0; r < world_size_; ++r) {
    if (!blobs_[r].has_value()) missing.push_back(r);
  }
  return missing;
}

}  // namespace sparkstack::control
