// ParallelPlan: how one model is split over ranks (tensor parallel x pipeline parallel) and where
// each rank sits in that grid. Pure arithmetic, no communication.
//
// Rank layout: rank = stage * tp + tp_rank. The ranks of one pipeline stage are contiguous, so a
// tensor-parallel group is [stage * tp, stage * tp + tp), and rank r's peer in the next stage is
// r + tp (same tp_rank).
#ifndef SPARKSTACK_RUNTIME_PARALLEL_PARALLEL_PLAN_H_
#define SPARKSTACK_RUNTIME_PARALLEL_PARALLEL_PLAN_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sparkstack {

struct ParallelPlan {
  int tp = 1;  // tensor-parallel degree (ranks per stage)
  int pp = 1;  // pipeline-parallel degree (stages)
  // Expert-parallel groups among each stage's tp ranks (mixture-of-experts layers; see
  // runtime/model/moe_block.h): each group holds whole experts. 0 means tp (every rank its own
  // experts); it must divide tp. No extra ranks: ep splits the experts, not the world.
  int ep = 0;

  // Largest world size accepted (tp * pp); far above 2-4 Sparks, it only rejects nonsense.
  static constexpr int kMaxWorldSize = 1024;

  // Checks tp >= 1, pp >= 1, tp * pp <= kMaxWorldSize and ep a divisor of tp (or 0).
  // InvalidArgument names the bad field.
  absl::Status Validate() const;
  // Validate() and also that `world_size` == tp * pp.
  absl::Status ValidateWorld(int world_size) const;

  int world_size() const { return tp * pp; }
  // The expert-parallel group count ep stands for (tp when 0).
  int ExpertParallel() const { return ep > 0 ? ep : tp; }

  // Position of `rank` in the grid. `rank` must be in [0, world_size()) (checked by RankInfo).
  int TpRank(int rank) const { return rank % tp; }
  int Stage(int rank) const { return rank / tp; }
  int RankOf(int stage, int tp_rank) const { return stage * tp + tp_rank; }

  bool IsFirstStage(int rank) const { return Stage(rank) == 0; }
  bool IsLastStage(int rank) const { return Stage(rank) == pp - 1; }
  // Same tp_rank in the next / previous stage; -1 at the last / first stage.
  int NextStageRank(int rank) const { return IsLastStage(rank) ? -1 : rank + tp; }
  int PrevStageRank(int rank) const { return IsFirstStage(rank) ? -1 : rank - tp; }

  // Ranks of `rank`'s tensor-parallel group, in tp_rank order.
  std::vector<int> TpGroup(int rank) const;

  // "tp=2 pp=2" for messages.
  std::string ToString() const;
};

// Everything one rank needs to know about its place, validated once.
struct RankInfo {
  ParallelPlan plan;
  int rank = 0;
  int tp_rank = 0;
  int stage = 0;

  // InvalidArgument when the plan is invalid or rank is outside [0, tp * pp).
  static absl::StatusOr<RankInfo> Create(const ParallelPlan& plan, int rank);
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_PARALLEL_PARALLEL_PLAN_H_
