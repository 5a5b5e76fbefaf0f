#include "runtime/parallel/parallel_plan.h"

#include "absl/strings/str_cat.h"

namespace sparkstack {

absl::Status ParallelPlan::Validate() const {
  if (tp < 1)
    return absl::InvalidArgumentError(absl::StrCat("parallel plan: tp must be >= 1, got ", tp));
  if (pp < 1)
    return absl::InvalidArgumentError(absl::StrCat("parallel plan: pp must be >= 1, got ", pp));
  if (ep < 0 || (ep > 0 && tp % ep != 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("parallel plan: ep must divide tp = ", tp, " (or be 0 for tp), got ", ep));
  }
  if (static_cast<long long>(tp) * pp > kMaxWorldSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("parallel plan: tp * pp = ", static_cast<long long>(tp) * pp,
                     " exceeds the maximum world size ", kMaxWorldSize));
  }
  return absl::OkStatus();
}

absl::Status ParallelPlan::ValidateWorld(int world_size) const {
  if (absl::Status status = Validate(); !status.ok()) return status;
  if (world_size != tp * pp) {
    return absl::InvalidArgumentError(absl::StrCat("parallel plan ", ToString(), " needs ", tp * pp,
                                                   " ranks, but the world has ", world_size));
  }
  return absl::OkStatus();
}

std::vector<int> ParallelPlan::TpGroup(int rank) const {
  std::vector<int> group;
  group.reserve(tp);
  const int first = Stage(rank) * tp;
  for (int i = 0; i < tp; ++i) group.push_back(first + i);
  return group;
}

std::string ParallelPlan::ToString() const {
  return ep > 0 && ep != tp ? absl::StrCat("tp=", tp, " pp=", pp, " ep=", ep)
                            : absl::StrCat("tp=", tp, " pp=", pp);
}

absl::StatusOr<RankInfo> RankInfo::Create(const ParallelPlan& plan, int rank) {
  if (absl::Status status = plan.Validate(); !status.ok()) return status;
  if (rank < 0 || rank >= plan.world_size()) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", rank, " is outside [0, ",
                                                   plan.world_size(), ") for ", plan.ToString()));
  }
  RankInfo info;
  info.plan = plan;
  info.rank = rank;
  info.tp_rank = plan.TpRank(rank);
  info.stage = plan.Stage(rank);
  return info;
}

}  // namespace sparkstack
