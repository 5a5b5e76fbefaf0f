// Rendezvous happy path and error cases. Ranks are threads here (the rendezvous is plain TCP, one
// object per rank); the communicator tests use real processes.
#include "runtime/parallel/rendezvous.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"

namespace sparkstack {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Joined {
  absl::Status status;
  std::vector<std::string> gathered;
  std::string broadcast;
};

// Runs one thread per entry of `ranks` (rank numbers, which may be wrong on purpose).
std::vector<Joined> JoinAll(RendezvousListener& listener, const std::vector<int>& ranks, int world,
                            std::chrono::milliseconds timeout,
                            const std::vector<uint16_t>& versions = {},
                            const std::vector<int>& worlds = {}) {
  std::vector<Joined> out(ranks.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ranks.size(); ++i) {
    threads.emplace_back([&, i] {
      RendezvousOptions options;
      options.host = "127.0.0.1";
      options.port = listener.port();
      options.rank = ranks[i];
      options.world_size = worlds.empty() ? world : worlds[i];
      options.timeout = timeout;
      if (!versions.empty()) options.protocol_version = versions[i];
      auto group = Rendezvous::Join(options, ranks[i] == 0 ? &listener : nullptr);
      if (!group.ok()) {
        out[i].status = group.status();
        return;
      }
      auto gathered = (*group)->AllGather(absl::StrCat("blob-of-rank-", ranks[i]));
      if (!gathered.ok()) {
        out[i].status = gathered.status();
        return;
      }
      out[i].gathered = *gathered;
      auto id = (*group)->Broadcast(ranks[i] == 0 ? "the-nccl-id" : "ignored");
      out[i].status = id.ok() ? (*group)->Barrier() : id.status();
      if (id.ok()) out[i].broadcast = *id;
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

TEST(RendezvousTest, FourRanksGatherAndBroadcast) {
  auto listener = RendezvousListener::Bind("127.0.0.1", 0);
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto joined = JoinAll(*listener, {2, 0, 3, 1}, 4, std::chrono::milliseconds(10000));
  for (const Joined& j : joined) {
    ASSERT_TRUE(j.status.ok()) << j.status;
    EXPECT_THAT(j.gathered, ElementsAre("blob-of-rank-0", "blob-of-rank-1", "blob-of-rank-2",
                                        "blob-of-rank-3"));
    EXPECT_EQ(j.broadcast, "the-nccl-id");
  }
}

TEST(RendezvousTest, SingleRankNeedsNoNetwork) {
  RendezvousOptions options;
  options.port = 1;  // never bound
  auto group = Rendezvous::Join(options);
  ASSERT_TRUE(group.ok()) << group.status();
  auto gathered = (*group)->AllGather("x");
  ASSERT_TRUE(gathered.ok());
  EXPECT_THAT(*gathered, ElementsAre("x"));
}

TEST(RendezvousTest, TimeoutNamesMissingRanks) {
  auto listener = RendezvousListener::Bind("127.0.0.1", 0);
  ASSERT_TRUE(listener.ok());
  auto joined = JoinAll(*listener, {0, 2}, 4, std::chrono::milliseconds(500));
  EXPECT_EQ(joined[0].status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(joined[0].status.message(), HasSubstr("ranks 1, 3 never arrived"));
  // Rank 0 tells the ranks that did arrive why it gave up.
  EXPECT_THAT(joined[1].status.message(), HasSubstr("never arrived"));
}

TEST(RendezvousTest, ConnectTimeoutWhenNoRankZero) {
  auto listener = RendezvousListener::Bind("127.0.0.1", 0);
  ASSERT_TRUE(listener.ok());
  const int port = listener->port();
  listener->Close();
  RendezvousOptions options;
  options.port = port;
  options.rank = 1;
  options.world_size = 2;
  options.timeout = std::chrono::milliseconds(300);
  auto group = Rendezvous::Join(options);
  EXPECT_EQ(group.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(group.status().message(), HasSubstr("could not reach rank 0"));
}

TEST(RendezvousTest, WorldSizeMismatch) {
  auto listener = RendezvousListener::Bind("127.0.0.1", 0);
  ASSERT_TRUE(listener.ok());
  auto joined = JoinAll(*listener, {0, 1}, 2, std::chrono::milliseconds(5000), {}, {2, 3});
  EXPECT_THAT(
      joined[0].status.message(),
      HasSubstr("world size mismatch: rank 1 was started with world size 3, rank 0 with 2"));
  EXPECT_THAT(joined[1].status.message(),
              AllOf(HasSubstr("refused"), HasSubstr("world size mismatch")));
}

TEST(RendezvousTest, DuplicateRank) {
  auto listener = RendezvousListener::Bind("127.0.0.1", 0);
  ASSERT_TRUE(listener.ok());
  auto joined = JoinAll(*listener, {0, 1, 1}, 3, std::chrono::milliseconds(5000));
  EXPECT_THAT(joined[0].status.message(), HasSubstr("duplicate rank: rank 1 joined twice"));
  EXPECT_FALSE(joined[1].status.ok());
  EXPECT_FALSE(joined[2].status.ok());
}

TEST(RendezvousTest, VersionMismatch) {
  auto listener = RendezvousListener::Bind("127.0.0.1", 0);
  ASSERT_TRUE(listener.ok());
  auto joined = JoinAll(*listener, {0, 1}, 2, std::chrono::milliseconds(5000),
                        {kRendezvousVersion, static_cast<uint16_t>(kRendezvousVersion + 1)});
  EXPECT_THAT(joined[0].status.message(),
              HasSubstr(absl::StrCat("protocol version mismatch: rank 1 speaks version ",
                                     kRendezvousVersion + 1)));
  EXPECT_THAT(joined[1].status.message(), HasSubstr("protocol version mismatch"));
}

TEST(RendezvousTest, ForeignConnectionIsIgnored) {
  auto listener = RendezvousListener::Bind("127.0.0.1", 0);
  ASSERT_TRUE(listener.ok());
  // A stranger connects first and sends garbage; the group must still form.
  std::thread stranger([port = listener->port()] {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      const char garbage[16] = "GET / HTTP/1.1";
      (void)!::write(fd, garbage, sizeof(garbage));
    }
    ::close(fd);
  });
  stranger.join();
  auto joined = JoinAll(*listener, {0, 1}, 2, std::chrono::milliseconds(5000));
  for (const Joined& j : joined) EXPECT_TRUE(j.status.ok()) << j.status;
}

// A peer that passes the hello and then sends an oversized frame length: rank 0 must refuse it
// before allocating, with an error naming the limit.
TEST(RendezvousTest, OversizedFrameIsRejected) {
  auto listener = RendezvousListener::Bind("127.0.0.1", 0);
  ASSERT_TRUE(listener.ok());
  absl::Status rank0_status;
  std::thread rank0([&] {
    RendezvousOptions options;
    options.port = listener->port();
    options.world_size = 2;
    options.timeout = std::chrono::milliseconds(5000);
    auto group = Rendezvous::Join(options, &*listener);
    if (!group.ok()) {
      rank0_status = group.status();
      return;
    }
    rank0_status = (*group)->AllGather("x").status();
  });
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(listener->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // No ASSERTs until rank0 is joined: leaving with a joinable thread would abort the binary.
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  // Hello: magic, version, reserved, world 2, rank 1 (little-endian).
  const unsigned char hello[16] = {0x53, 0x53, 0x52, 0x56, kRendezvousVersion, 0, 0, 0, 2, 0, 0, 0,
                                   1,    0,    0,    0};
  EXPECT_EQ(::write(fd, hello, sizeof(hello)), 16);
  unsigned char welcome[8];
  // Frame length 4 + code 0, possibly in two segments.
  EXPECT_EQ(::recv(fd, welcome, sizeof(welcome), MSG_WAITALL), 8);
  const unsigned char huge[4] = {0xff, 0xff, 0xff, 0x7f};
  EXPECT_EQ(::write(fd, huge, sizeof(huge)), 4);
  rank0.join();
  ::close(fd);
  EXPECT_EQ(rank0_status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(rank0_status.message(), HasSubstr("exceeds the limit"));
}

TEST(RendezvousTest, RejectsBadArguments) {
  RendezvousOptions options;
  options.rank = 3;
  options.world_size = 2;
  EXPECT_THAT(Rendezvous::Join(options).status().message(), HasSubstr("rank 3 is outside [0, 2)"));
  options.world_size = 0;
  EXPECT_FALSE(Rendezvous::Join(options).ok());
  EXPECT_FALSE(RendezvousListener::Bind("127.0.0.1", 70000).ok());
}

}  // namespace
}  // namespace sparkstack
