// HostCommunicator over real processes on loopback: every collective against a float64 (or exact
// integer) reference computed here, odd sizes, 2-4 ranks, both all-reduce algorithms, and the
// failure paths (timeouts, a peer killed mid-collective, mismatched sizes).
#include "runtime/parallel/host_communicator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/core/half.h"
#include "runtime/parallel/local_communicator.h"
#include "runtime/parallel/parallel_plan.h"
#include "tests/unit/parallel/collective_check.h"
#include "tests/unit/parallel/rank_processes.h"

namespace sparkstack {
namespace {

using ::sparkstack::testing::CheckAllReduce;
using ::sparkstack::testing::RankResult;
using ::sparkstack::testing::RunCommunicatorRanks;
using ::sparkstack::testing::SplitMix;
using ::testing::AnyOf;
using ::testing::HasSubstr;

constexpr auto kLimit = std::chrono::milliseconds(60000);

// Sanitizer builds run at -O0 with instrumented memory access: the largest sizes (and their
// float64 references) would take minutes there, so they shrink; the algorithms stay the same.
#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kLargeCount = 100003;
constexpr size_t kHugeBytes = 4 << 20;
#else
constexpr size_t kLargeCount = 1000003;
constexpr size_t kHugeBytes = 64 << 20;
#endif

void ExpectAllOk(const std::vector<RankResult>& results) {
  for (size_t r = 0; r < results.size(); ++r) {
    EXPECT_TRUE(results[r].ok) << "rank " << r << ": " << results[r].message;
  }
}

class AllReduceTest : public ::testing::TestWithParam<int> {};

TEST_P(AllReduceTest, AllDTypesOddSizesBothAlgorithms) {
  const int world = GetParam();
  auto results = RunCommunicatorRanks(world, kLimit, [](Communicator& comm) -> absl::Status {
    auto& host = static_cast<HostCommunicator&>(comm);
    uint64_t seed = 1;
    for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16, DType::kI32}) {
      for (size_t count : {size_t{1}, size_t{3}, size_t{1000}, kLargeCount}) {
        // Default algorithm choice (direct for small, ring for 1000003).
        if (absl::Status s = CheckAllReduce(comm, count, dtype, seed++); !s.ok()) return s;
      }
      // The ring at small and odd sizes, including fewer elements than ranks.
      host.set_direct_allreduce_max_bytes(0);
      for (size_t count : {size_t{1}, size_t{3}, size_t{1001}}) {
        if (absl::Status s = CheckAllReduce(comm, count, dtype, seed++); !s.ok()) return s;
      }
      host.set_direct_allreduce_max_bytes(128 << 10);
    }
    return comm.Barrier();
  });
  ExpectAllOk(results);
}

INSTANTIATE_TEST_SUITE_P(Ranks, AllReduceTest, ::testing::Values(2, 3, 4));

TEST(AllReduceLargeTest, SixtyFourMiB) {
  for (int world : {2, 4}) {
    auto results = RunCommunicatorRanks(world, kLimit, [](Communicator& comm) -> absl::Status {
      if (absl::Status s = CheckAllReduce(comm, kHugeBytes / 4, DType::kF32, 77); !s.ok()) return s;
      return comm.Barrier();
    });
    ExpectAllOk(results);
  }
}

TEST(CollectivesTest, AllGatherBroadcastSendRecv) {
  for (int world : {2, 3, 4}) {
    auto results = RunCommunicatorRanks(world, kLimit, [](Communicator& comm) -> absl::Status {
      const int n = comm.size(), me = comm.rank();
      for (size_t count : {size_t{1}, size_t{5}, size_t{100003}}) {
        std::vector<int32_t> mine(count), all(count * n);
        for (size_t i = 0; i < count; ++i) mine[i] = static_cast<int32_t>(SplitMix(me * 7919 + i));
        if (absl::Status s = comm.AllGather(mine.data(), all.data(), count, DType::kI32); !s.ok())
          return s;
        for (int r = 0; r < n; ++r) {
          for (size_t i = 0; i < count; ++i) {
            if (all[r * count + i] != static_cast<int32_t>(SplitMix(r * 7919 + i))) {
              return absl::InternalError(absl::StrCat("all-gather: rank ", me, " wrong element ", i,
                                                      " from rank ", r, " (count ", count, ")"));
            }
          }
        }
        for (int root = 0; root < n; ++root) {
          std::vector<uint8_t> data(count * 3, me == root ? 0 : 0xee);
          if (me == root) {
            for (size_t i = 0; i < data.size(); ++i)
              data[i] = static_cast<uint8_t>(SplitMix(root + i));
          }
          if (absl::Status s = comm.Broadcast(data.data(), data.size(), root); !s.ok()) return s;
          for (size_t i = 0; i < data.size(); ++i) {
            if (data[i] != static_cast<uint8_t>(SplitMix(root + i))) {
              return absl::InternalError(
                  absl::StrCat("broadcast from ", root, ": rank ", me, " wrong byte ", i));
            }
          }
        }
      }
      // Pipeline-style ring of point-to-point messages: send to next, receive from previous.
      std::vector<double> out(777, me + 0.5), in(777, -1);
      const int next = (me + 1) % n, prev = (me + n - 1) % n;
      if (me % 2 == 0) {
        if (absl::Status s = comm.Send(out.data(), out.size() * 8, next); !s.ok()) return s;
        if (absl::Status s = comm.Recv(in.data(), in.size() * 8, prev); !s.ok()) return s;
      } else {
        if (absl::Status s = comm.Recv(in.data(), in.size() * 8, prev); !s.ok()) return s;
        if (absl::Status s = comm.Send(out.data(), out.size() * 8, next); !s.ok()) return s;
      }
      for (double v : in) {
        if (v != prev + 0.5)
          return absl::InternalError(absl::StrCat("recv: rank ", me, " got ", v));
      }
      if (comm.Send(out.data(), 8, me).ok()) return absl::InternalError("send to self accepted");
      return comm.Barrier();
    });
    ExpectAllOk(results);
  }
}

// tp=2 x pp=2: tensor-parallel groups split from the world, all-reducing inside each group while
// the world carries stage-to-stage messages, as the model does.
TEST(SplitTest, TensorParallelGroupsInsidePipelineStages) {
  auto results = RunCommunicatorRanks(4, kLimit, [](Communicator& comm) -> absl::Status {
    auto& world = static_cast<HostCommunicator&>(comm);
    const ParallelPlan plan{.tp = 2, .pp = 2};
    const int me = world.rank();
    auto tp = world.Split(plan.TpGroup(me));
    if (!tp.ok()) return tp.status();
    HostCommunicator& group = **tp;
    if (group.size() != 2 || group.rank() != plan.TpRank(me)) {
      return absl::InternalError(absl::StrCat("group rank ", group.rank(), " size ", group.size()));
    }
    // A second split (a 1-rank group per process) exercises channel numbering and size 1.
    auto self = world.Split({me});
    if (!self.ok()) return self.status();
    for (int step = 0; step < 3; ++step) {
      // Equal sizes on purpose: a message matched by the wrong group would go unnoticed by the
      // length check and show up as a wrong sum.
      if (absl::Status s = CheckAllReduce(group, 1000, DType::kF32, 100 + step); !s.ok()) return s;
      std::vector<float> activation(1000, static_cast<float>(me * 10 + step)), got(1000);
      if (plan.NextStageRank(me) >= 0) {
        if (absl::Status s = world.Send(activation.data(), 4000, plan.NextStageRank(me)); !s.ok())
          return s;
      } else {
        if (absl::Status s = world.Recv(got.data(), 4000, plan.PrevStageRank(me)); !s.ok())
          return s;
        if (got[999] != static_cast<float>(plan.PrevStageRank(me) * 10 + step)) {
          return absl::InternalError(absl::StrCat("rank ", me, " got activation ", got[999]));
        }
      }
      if (absl::Status s = CheckAllReduce(**self, 7, DType::kBF16, 5); !s.ok()) return s;
      if (absl::Status s = CheckAllReduce(world, 1000, DType::kF32, 200 + step); !s.ok()) return s;
    }
    auto bad = world.Split({(me + 1) % 4});
    if (bad.ok() ||
        bad.status().message().find("does not contain this rank") == absl::string_view::npos) {
      return absl::InternalError(absl::StrCat("split without me: ", bad.status().ToString()));
    }
    if (world.Split({me, me}).ok()) return absl::InternalError("duplicate rank accepted");
    return group.Barrier();
  });
  ExpectAllOk(results);
}

TEST(FailureTest, RecvTimesOutNamingThePeer) {
  auto results = RunCommunicatorRanks(2, kLimit, [](Communicator& comm) -> absl::Status {
    comm.set_timeout(std::chrono::milliseconds(300));
    if (comm.rank() == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // never sends
      return absl::OkStatus();
    }
    char byte;
    absl::Status s = comm.Recv(&byte, 1, 1);
    if (s.code() != absl::StatusCode::kDeadlineExceeded ||
        s.message().find("waiting for rank 1") == absl::string_view::npos) {
      return absl::InternalError(absl::StrCat("unexpected: ", s.ToString()));
    }
    // The communicator refuses further use after an error.
    absl::Status again = comm.Barrier();
    if (again.code() != absl::StatusCode::kFailedPrecondition) {
      return absl::InternalError(absl::StrCat("second call: ", again.ToString()));
    }
    return absl::OkStatus();
  });
  ExpectAllOk(results);
}

TEST(FailureTest, MismatchedSizesAreAnError) {
  auto results = RunCommunicatorRanks(2, kLimit, [](Communicator& comm) -> absl::Status {
    comm.set_timeout(std::chrono::milliseconds(3000));
    std::vector<char> data(64);
    if (comm.rank() == 0) {
      (void)comm.Send(data.data(), 64, 1);
      return absl::OkStatus();
    }
    absl::Status s = comm.Recv(data.data(), 16, 0);
    if (s.ok() || s.message().find("rank 0 sent") == absl::string_view::npos) {
      return absl::InternalError(absl::StrCat("unexpected: ", s.ToString()));
    }
    return absl::OkStatus();
  });
  ExpectAllOk(results);
}

// A rank SIGKILLed while the others are inside all-reduces: the survivors must return an error
// (not hang) well within 10 s of the kill.
TEST(FailureTest, KilledRankFailsTheOthersQuickly) {
  for (int world : {2, 3}) {
    std::chrono::steady_clock::time_point killed_at;
    auto results = RunCommunicatorRanks(
        world, kLimit,
        [](Communicator& comm) -> absl::Status {
          std::vector<float> data(1 << 20, 1.0f);  // 4 MiB: the ring, many chunks in flight
          while (true) {
            absl::Status s = comm.AllReduceSum(data.data(), data.size(), DType::kF32);
            if (!s.ok()) return s;
            std::fill(data.begin(), data.end(), 1.0f);
          }
        },
        [&](const std::vector<pid_t>& pids) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1500));
          killed_at = std::chrono::steady_clock::now();
          ::kill(pids.back(), SIGKILL);
        });
    const double kill_seconds = std::chrono::duration<double>(killed_at.time_since_epoch()).count();
    (void)kill_seconds;
    for (int r = 0; r + 1 < world; ++r) {
      EXPECT_FALSE(results[r].ok);
      EXPECT_THAT(results[r].message,
                  AnyOf(HasSubstr("UNAVAILABLE"), HasSubstr("DEADLINE_EXCEEDED")))
          << results[r].message;
      EXPECT_THAT(results[r].message, HasSubstr("rank ")) << results[r].message;
      if (world == 2) EXPECT_THAT(results[r].message, HasSubstr("rank 1")) << results[r].message;
      // Results record the time from fork; the kill came 1.5 s after fork plus start-up.
      EXPECT_LT(results[r].seconds, 1.5 + 10.0) << "rank " << r << " took too long";
      std::printf("world %d rank %d failed after %.2f s (kill at ~1.5 s): %s\n", world, r,
                  results[r].seconds, results[r].message.c_str());
    }
    EXPECT_THAT(results.back().message, HasSubstr("signal 9"));
  }
}

// The same with UCX's own peer-failure handling (what peers on other machines use).
TEST(FailureTest, KilledRankDetectedByUcxPeerFailureMode) {
  ::setenv("SPARKSTACK_UCX_PEER_FAILURE", "1", 1);
  auto results = RunCommunicatorRanks(
      2, kLimit,
      [](Communicator& comm) -> absl::Status {
        std::vector<float> data(4096, 1.0f);
        while (true) {
          absl::Status s = comm.AllReduceSum(data.data(), data.size(), DType::kF32);
          if (!s.ok()) return s;
        }
      },
      [](const std::vector<pid_t>& pids) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1000));
        ::kill(pids[1], SIGKILL);
      });
  ::unsetenv("SPARKSTACK_UCX_PEER_FAILURE");
  EXPECT_THAT(results[0].message, HasSubstr("rank 1")) << results[0].message;
  EXPECT_THAT(results[0].message, HasSubstr("UNAVAILABLE")) << results[0].message;
  EXPECT_LT(results[0].seconds, 1.0 + 10.0);
}

TEST(CollectivesTest, WorldOfOneRank) {
  auto results = RunCommunicatorRanks(1, kLimit, [](Communicator& comm) -> absl::Status {
    if (comm.size() != 1 || comm.rank() != 0) return absl::InternalError("wrong rank/size");
    if (absl::Status s = CheckAllReduce(comm, 1001, DType::kBF16, 3); !s.ok()) return s;
    auto group = static_cast<HostCommunicator&>(comm).Split({0});
    if (!group.ok()) return group.status();
    return (*group)->Barrier();
  });
  ExpectAllOk(results);
}

TEST(LocalCommunicatorTest, SizeOneIsANoOp) {
  LocalCommunicator comm;
  std::vector<float> data = {1.5f, -2.0f};
  ASSERT_TRUE(comm.AllReduceSum(data.data(), data.size(), DType::kF32).ok());
  EXPECT_EQ(data[0], 1.5f);
  std::vector<float> out(2);
  ASSERT_TRUE(comm.AllGather(data.data(), out.data(), 2, DType::kF32).ok());
  EXPECT_EQ(out, data);
  EXPECT_TRUE(comm.Broadcast(data.data(), 8, 0).ok());
  EXPECT_FALSE(comm.Broadcast(data.data(), 8, 1).ok());
  EXPECT_FALSE(comm.Send(data.data(), 8, 0).ok());
  EXPECT_FALSE(comm.AllReduceSum(data.data(), 2, DType::kU8).ok());
  EXPECT_TRUE(comm.Barrier().ok());
}

}  // namespace
}  // namespace sparkstack
