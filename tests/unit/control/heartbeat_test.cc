// HeartbeatMonitor on a fake clock: pings every interval, expiry after exactly `timeout` of
// silence, any message resetting the silence.
#include "runtime/control/heartbeat.h"

#include "gtest/gtest.h"

namespace sparkstack::control {
namespace {

using std::chrono::milliseconds;
using Clock = HeartbeatMonitor::Clock;

TEST(HeartbeatMonitorTest, PingsEveryIntervalAndExpiresAfterTimeout) {
  const Clock::time_point t0{};  // a fake clock: only differences matter
  HeartbeatMonitor monitor(milliseconds(1000), milliseconds(3000), t0);
  EXPECT_TRUE(monitor.PingDue(t0));  // the first ping goes out at once
  EXPECT_FALSE(monitor.PingDue(t0 + milliseconds(999)));
  EXPECT_TRUE(monitor.PingDue(t0 + milliseconds(1000)));
  EXPECT_FALSE(monitor.PingDue(t0 + milliseconds(1500)));
  EXPECT_TRUE(monitor.PingDue(t0 + milliseconds(2000)));

  EXPECT_FALSE(monitor.Expired(t0 + milliseconds(2999)));
  EXPECT_TRUE(monitor.Expired(t0 + milliseconds(3000)));
  EXPECT_EQ(monitor.Silence(t0 + milliseconds(3000)), milliseconds(3000));
}

TEST(HeartbeatMonitorTest, AnyMessageResetsTheSilence) {
  const Clock::time_point t0{};
  HeartbeatMonitor monitor(milliseconds(1000), milliseconds(3000), t0);
  monitor.Heard(t0 + milliseconds(2500));
  EXPECT_FALSE(monitor.Expired(t0 + milliseconds(5499)));
  EXPECT_TRUE(monitor.Expired(t0 + milliseconds(5500)));
  // A late-delivered older message does not move the last sign of life backwards.
  monitor.Heard(t0 + milliseconds(100));
  EXPECT_TRUE(monitor.Expired(t0 + milliseconds(5500)));
  EXPECT_EQ(monitor.Silence(t0), milliseconds(0));  // never negative
}

TEST(HeartbeatMonitorTest, LateCallerSendsOnePingNotABurst) {
  const Clock::time_point t0{};
  HeartbeatMonitor monitor(milliseconds(100), milliseconds(300), t0);
  EXPECT_TRUE(monitor.PingDue(t0));
  // The caller was stalled for 10 intervals: one ping now, the next half an interval later at the
  // earliest.
  EXPECT_TRUE(monitor.PingDue(t0 + milliseconds(1000)));
  EXPECT_FALSE(monitor.PingDue(t0 + milliseconds(1000)));
  EXPECT_FALSE(monitor.PingDue(t0 + milliseconds(1049)));
  EXPECT_TRUE(monitor.PingDue(t0 + milliseconds(1100)));
}

TEST(HeartbeatMonitorTest, NextEventIsTheEarlierOfPingAndExpiry) {
  const Clock::time_point t0{};
  HeartbeatMonitor monitor(milliseconds(1000), milliseconds(3000), t0);
  EXPECT_EQ(monitor.NextEvent(), t0);
  monitor.PingDue(t0);
  EXPECT_EQ(monitor.NextEvent(), t0 + milliseconds(1000));
  HeartbeatMonitor tight(milliseconds(1000), milliseconds(1000), t0);
  tight.PingDue(t0);
  tight.PingDue(t0 + milliseconds(1000));
  EXPECT_EQ(tight.NextEvent(), t0 + milliseconds(1000));  // expiry comes first
}

}  // namespace
}  // namespace sparkstack::control
