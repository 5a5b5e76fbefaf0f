#include "runtime/parallel/parallel_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sparkstack {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParallelPlanTest, RankLayoutIsStageMajor) {
  const ParallelPlan plan{.tp = 2, .pp = 2};
  ASSERT_TRUE(plan.ValidateWorld(4).ok());
  // rank = stage * tp + tp_rank, checked independently for every rank.
  for (int stage = 0; stage < 2; ++stage) {
    for (int tp_rank = 0; tp_rank < 2; ++tp_rank) {
      const int rank = stage * 2 + tp_rank;
      EXPECT_EQ(plan.Stage(rank), stage);
      EXPECT_EQ(plan.TpRank(rank), tp_rank);
      EXPECT_EQ(plan.RankOf(stage, tp_rank), rank);
    }
  }
  EXPECT_THAT(plan.TpGroup(3), ElementsAre(2, 3));
  EXPECT_THAT(plan.TpGroup(0), ElementsAre(0, 1));
  EXPECT_EQ(plan.NextStageRank(1), 3);
  EXPECT_EQ(plan.NextStageRank(3), -1);
  EXPECT_EQ(plan.PrevStageRank(2), 0);
  EXPECT_EQ(plan.PrevStageRank(0), -1);
  EXPECT_TRUE(plan.IsFirstStage(1));
  EXPECT_TRUE(plan.IsLastStage(2));
}

TEST(ParallelPlanTest, PipelineOnly) {
  const ParallelPlan plan{.tp = 1, .pp = 3};
  EXPECT_THAT(plan.TpGroup(1), ElementsAre(1));
  EXPECT_EQ(plan.NextStageRank(0), 1);
  EXPECT_EQ(plan.NextStageRank(1), 2);
  EXPECT_EQ(plan.PrevStageRank(2), 1);
}

TEST(ParallelPlanTest, ValidationNamesTheField) {
  EXPECT_THAT(ParallelPlan({.tp = 0, .pp = 1}).Validate().message(),
              HasSubstr("tp must be >= 1, got 0"));
  EXPECT_THAT(ParallelPlan({.tp = 2, .pp = -1}).Validate().message(),
              HasSubstr("pp must be >= 1, got -1"));
  EXPECT_THAT(ParallelPlan({.tp = 100000, .pp = 100000}).Validate().message(),
              HasSubstr("exceeds the maximum world size"));
  EXPECT_THAT(ParallelPlan({.tp = 2, .pp = 2}).ValidateWorld(3).message(),
              HasSubstr("tp=2 pp=2 needs 4 ranks, but the world has 3"));
}

TEST(ParallelPlanTest, ExpertParallelGroupsDivideTp) {
  EXPECT_EQ(ParallelPlan({.tp = 4, .pp = 1}).ExpertParallel(), 4);  // default: tp
  EXPECT_EQ(ParallelPlan({.tp = 4, .pp = 1, .ep = 2}).ExpertParallel(), 2);
  EXPECT_TRUE(ParallelPlan({.tp = 4, .pp = 2, .ep = 1}).Validate().ok());
  EXPECT_THAT(ParallelPlan({.tp = 4, .pp = 1, .ep = 3}).Validate().message(),
              HasSubstr("ep must divide tp = 4"));
  EXPECT_FALSE(ParallelPlan({.tp = 2, .pp = 1, .ep = -1}).Validate().ok());
  EXPECT_EQ(ParallelPlan({.tp = 4, .pp = 2, .ep = 2}).ToString(), "tp=4 pp=2 ep=2");
  EXPECT_EQ(ParallelPlan({.tp = 4, .pp = 2, .ep = 4}).world_size(), 8);  // ep adds no ranks
}

TEST(RankInfoTest, CreateChecksRange) {
  auto info = RankInfo::Create({.tp = 4, .pp = 1}, 3);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->tp_rank, 3);
  EXPECT_EQ(info->stage, 0);
  EXPECT_THAT(RankInfo::Create({.tp = 2, .pp = 1}, 2).status().message(),
              HasSubstr("rank 2 is outside [0, 2)"));
  EXPECT_FALSE(RankInfo::Create({.tp = 2, .pp = 1}, -1).ok());
}

}  // namespace
}  // namespace sparkstack
