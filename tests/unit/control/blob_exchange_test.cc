// The gRPC bootstrap's two halves without a network: BlobExchange (the coordinator's hub) and
// RelayedBootstrap (a rank's Bootstrap) — results in rank order, mismatches named, aborts
// unblocking waiting ranks — and a full group of ranks on threads relaying through one hub.
#include "runtime/control/blob_exchange.h"

#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/control/relayed_bootstrap.h"
#include "runtime/parallel/bootstrap.h"

namespace sparkstack::control {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(BlobExchangeTest, AllGatherInRankOrderWhateverTheArrivalOrder) {
  BlobExchange exchange(3);
  EXPECT_FALSE(exchange.Contribute(2, 0, BootstrapOpKind::kAllGather, "c")->has_value());
  EXPECT_FALSE(exchange.Contribute(0, 0, BootstrapOpKind::kAllGather, "a")->has_value());
  EXPECT_THAT(exchange.Missing(), ElementsAre(1));
  auto done = exchange.Contribute(1, 0, BootstrapOpKind::kAllGather, "b");
  ASSERT_TRUE(done.ok());
  ASSERT_TRUE(done->has_value());
  EXPECT_EQ((*done)->seq, 0u);
  EXPECT_THAT((*done)->blobs, ElementsAre("a", "b", "c"));
  EXPECT_TRUE(exchange.Missing().empty());
}

TEST(BlobExchangeTest, BroadcastGivesRankZerosBlobAndBarrierNone) {
  BlobExchange exchange(2);
  EXPECT_FALSE(exchange.Contribute(1, 0, BootstrapOpKind::kBroadcast, "ignored")->has_value());
  auto broadcast = exchange.Contribute(0, 0, BootstrapOpKind::kBroadcast, "nccl-id");
  ASSERT_TRUE(broadcast.ok() && broadcast->has_value());
  EXPECT_THAT((*broadcast)->blobs, ElementsAre("nccl-id"));
  EXPECT_FALSE(exchange.Contribute(0, 1, BootstrapOpKind::kBarrier, "")->has_value());
  auto barrier = exchange.Contribute(1, 1, BootstrapOpKind::kBarrier, "");
  ASSERT_TRUE(barrier.ok() && barrier->has_value());
  EXPECT_EQ((*barrier)->seq, 1u);
  EXPECT_TRUE((*barrier)->blobs.empty());
}

TEST(BlobExchangeTest, MismatchedOperationsFailNamingBothRanks) {
  BlobExchange exchange(3);
  ASSERT_TRUE(exchange.Contribute(0, 0, BootstrapOpKind::kAllGather, "a").ok());
  auto wrong = exchange.Contribute(2, 0, BootstrapOpKind::kBroadcast, "x");
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(wrong.status().message(),
              HasSubstr("rank 0 called AllGather but rank 2 called Broadcast"));
  // The exchange stays failed for everyone.
  EXPECT_EQ(exchange.Contribute(1, 0, BootstrapOpKind::kAllGather, "b").status(), wrong.status());
}

TEST(BlobExchangeTest, OutOfOrderDuplicateOversizedAndForeignRanksFail) {
  {
    BlobExchange exchange(2);
    EXPECT_THAT(exchange.Contribute(1, 1, BootstrapOpKind::kBarrier, "").status().message(),
                HasSubstr("rank 1 sent operation 1 (Barrier) while operation 0 is pending"));
  }
  {
    BlobExchange exchange(2);
    ASSERT_TRUE(exchange.Contribute(1, 0, BootstrapOpKind::kBarrier, "").ok());
    EXPECT_THAT(exchange.Contribute(1, 0, BootstrapOpKind::kBarrier, "").status().message(),
                HasSubstr("already had its part"));
  }
  {
    BlobExchange exchange(2);
    EXPECT_THAT(exchange.Contribute(2, 0, BootstrapOpKind::kBarrier, "").status().message(),
                HasSubstr("rank 2 is outside the group of 2"));
  }
  {
    BlobExchange exchange(2);
    EXPECT_THAT(exchange
                    .Contribute(0, 0, BootstrapOpKind::kAllGather,
                                std::string(kBootstrapMaxBlobBytes + 1, 'x'))
                    .status()
                    .message(),
                HasSubstr("262145 bytes, at most 262144"));
  }
  {
    BlobExchange exchange(2);
    exchange.Fail(absl::UnavailableError("node 2 lost"));
    EXPECT_EQ(exchange.Contribute(0, 0, BootstrapOpKind::kBarrier, "").status().message(),
              "node 2 lost");
  }
}

// A group of `world` ranks on threads, each a RelayedBootstrap whose sends go to one hub.
class Relay {
 public:
  explicit Relay(int world) : exchange_(world) {
    for (int r = 0; r < world; ++r) {
      ranks_.push_back(std::make_unique<RelayedBootstrap>(
          r, world,
          [this, r](uint64_t seq, BootstrapOpKind kind, std::string_view blob) {
            return Send(r, seq, kind, blob);
          },
          std::chrono::milliseconds(5000)));
    }
  }
  RelayedBootstrap& rank(int r) { return *ranks_[r]; }

 private:
  absl::Status Send(int rank, uint64_t seq, BootstrapOpKind kind, std::string_view blob) {
    std::optional<BlobExchange::Completed> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto result = exchange_.Contribute(rank, seq, kind, std::string(blob));
      if (!result.ok()) {
        for (auto& r : ranks_) r->Abort(result.status());
        return result.status();
      }
      done = *std::move(result);
    }
    if (done.has_value()) {
      for (auto& r : ranks_) r->Deliver(done->seq, done->blobs);
    }
    return absl::OkStatus();
  }

  std::mutex mu_;
  BlobExchange exchange_;
  std::vector<std::unique_ptr<RelayedBootstrap>> ranks_;
};

TEST(RelayedBootstrapTest, GroupOnThreadsRunsTheSameSequenceAsTheRendezvous) {
  constexpr int kWorld = 5;
  Relay relay(kWorld);
  std::vector<std::string> failures(kWorld);
  std::vector<std::thread> threads;
  for (int r = 0; r < kWorld; ++r) {
    threads.emplace_back([&, r] {
      Bootstrap& b = relay.rank(r);
      auto check = [&](bool ok, const std::string& what) {
        if (!ok && failures[r].empty()) failures[r] = what;
      };
      for (int round = 0; round < 20; ++round) {
        auto gathered = b.AllGather(absl::StrCat("rank", r, "-round", round));
        check(gathered.ok() && gathered->size() == kWorld, "allgather");
        for (int p = 0; gathered.ok() && p < kWorld; ++p) {
          check((*gathered)[p] == absl::StrCat("rank", p, "-round", round), "allgather order");
        }
        auto id = b.Broadcast(r == 0 ? absl::StrCat("id", round) : "not me");
        check(id.ok() && *id == absl::StrCat("id", round), "broadcast");
        check(b.Barrier().ok(), "barrier");
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < kWorld; ++r) EXPECT_EQ(failures[r], "") << "rank " << r;
}

TEST(RelayedBootstrapTest, AbortUnblocksAWaitingRankWithTheReason) {
  Relay relay(2);
  absl::Status seen;
  std::thread waiter([&] { seen = relay.rank(1).Barrier(); });  // rank 0 never comes
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  relay.rank(1).Abort(absl::UnavailableError("node 127.0.0.1:9 (rank 0) lost"));
  waiter.join();
  EXPECT_EQ(seen.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(seen.message(), HasSubstr("rank 0) lost"));
  // And every later call fails the same way at once.
  EXPECT_EQ(relay.rank(1).AllGather("x").status(), seen);
}

TEST(RelayedBootstrapTest, TimesOutAndIgnoresResultsForOtherOperations) {
  RelayedBootstrap lonely(
      1, 2, [](uint64_t, BootstrapOpKind, std::string_view) { return absl::OkStatus(); },
      std::chrono::milliseconds(100));
  lonely.Deliver(7, std::vector<std::string>{});  // nothing in flight: ignored
  absl::Status status = lonely.Barrier();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(status.message(), HasSubstr("bootstrap Barrier (rank 1 of 2)"));
}

TEST(RelayedBootstrapTest, WrongBlobCountFromTheCoordinatorIsDataLoss) {
  RelayedBootstrap* self = nullptr;
  RelayedBootstrap rank(
      0, 3,
      [&](uint64_t seq, BootstrapOpKind, std::string_view) {
        self->Deliver(seq, std::vector<std::string>{"only one"});
        return absl::OkStatus();
      },
      std::chrono::milliseconds(1000));
  self = &rank;
  absl::StatusOr<std::vector<std::string>> result = rank.AllGather("mine");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(result.status().message(), HasSubstr("returned 1 blobs, expected 3"));
}

}  // namespace
}  // namespace sparkstack::control
