// HeartbeatMonitor: when to ping a peer and when its silence means it is gone. Pure arithmetic on
// time points the caller passes in, so tests drive it with a fake clock; the coordinator (one per
// node) and the agent (for its coordinator) feed it steady_clock::now().
//
// Any message from the peer counts as a sign of life, not only the answer to a ping. The peer is
// expired once it has been silent for `timeout`; a ping is due every `interval` (a timeout of
// about 3 intervals tolerates two lost or late answers).
#ifndef SPARKSTACK_RUNTIME_CONTROL_HEARTBEAT_H_
#define SPARKSTACK_RUNTIME_CONTROL_HEARTBEAT_H_

#include <algorithm>
#include <chrono>

namespace sparkstack::control {

class HeartbeatMonitor {
 public:
  using Clock = std::chrono::steady_clock;

  // `now`: when watching starts (counts as the last sign of life).
  HeartbeatMonitor(Clock::duration interval, Clock::duration timeout, Clock::time_point now)
      : interval_(interval), timeout_(timeout), last_heard_(now), next_ping_(now) {}

  // True when a ping should go out at `now`; then schedules the next one `interval` later.
  bool PingDue(Clock::time_point now) {
    if (now < next_ping_) return false;
    // Skip the pings missed while the caller was late rather than sending a burst.
    next_ping_ = std::max(next_ping_ + interval_, now + interval_ / 2);
    return true;
  }

  // The peer sent something at `now`.
  void Heard(Clock::time_point now) { last_heard_ = std::max(last_heard_, now); }

  // How long the peer has been silent at `now`.
  Clock::duration Silence(Clock::time_point now) const {
    return now > last_heard_ ? now - last_heard_ : Clock::duration::zero();
  }

  // True once the peer has been silent for `timeout` or longer.
  bool Expired(Clock::time_point now) const { return Silence(now) >= timeout_; }

  // The next moment something can change: a ping falls due or the peer expires.
  Clock::time_point NextEvent() const { return std::min(next_ping_, last_heard_ + timeout_); }

  Clock::duration interval() const { return interval_; }
  Clock::duration timeout() const { return timeout_; }

 private:
  Clock::duration interval_;
  Clock::duration timeout_;
  Clock::time_point last_heard_;
  Clock::time_point next_ping_;
};

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_HEARTBEAT_H_
