#include "runtime/parallel/peer_liveness.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

namespace sparkstack {
namespace {

TEST(PeerLivenessTest, SelfIsAliveAndRoundTrips) {
  const ProcessIdentity self = ProcessIdentity::Self();
  EXPECT_EQ(self.pid, ::getpid());
  EXPECT_TRUE(self.SameMachineAs(self));
  EXPECT_FALSE(ProcessGone(self));
  std::string blob;
  EncodeIdentity(self, blob);
  blob += "tail";
  std::string_view in = blob;
  auto decoded = DecodeIdentity(in);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->boot_id, self.boot_id);
  EXPECT_EQ(decoded->pid, self.pid);
  EXPECT_EQ(decoded->start_time, self.start_time);
  EXPECT_EQ(in, "tail");
}

TEST(PeerLivenessTest, TruncatedOrCorruptBlobsAreRejected) {
  std::string blob;
  EncodeIdentity(ProcessIdentity::Self(), blob);
  for (size_t cut = 0; cut < blob.size(); ++cut) {
    std::string_view in(blob.data(), cut);
    EXPECT_FALSE(DecodeIdentity(in).ok()) << "cut at " << cut;
  }
  std::string bad = blob;
  bad[0] = static_cast<char>(200);  // boot id longer than allowed
  std::string_view in = bad;
  EXPECT_FALSE(DecodeIdentity(in).ok());
}

TEST(PeerLivenessTest, ExitedZombieAndReusedPidsAreGone) {
  const pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  ProcessIdentity peer = ProcessIdentity::Self();
  peer.pid = child;
  // Read the child's real start time through a fresh identity of the same pid.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ProcessIdentity probe = peer;
  probe.start_time = 0;
  EXPECT_TRUE(ProcessGone(probe)) << "a different start time means a different process";
  ::kill(child, SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(ProcessGone(peer)) << "a zombie counts as gone";
  ::waitpid(child, nullptr, 0);
  EXPECT_TRUE(ProcessGone(peer));
}

}  // namespace
}  // namespace sparkstack
