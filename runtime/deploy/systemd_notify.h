// Telling systemd how a service is doing (sd_notify(3) through libsystemd): `sparkstack node` and
// `sparkstack serve` run as Type=notify units (deploy/*.service), so systemd starts the next unit
// only once this one says READY=1, shows STATUS= in `systemctl status`, and restarts it when the
// WATCHDOG=1 pings stop (WatchdogSec=).
//
// Outside systemd (no NOTIFY_SOCKET) every call is a no-op that returns OK, so the same binary runs
// by hand, in tests and under systemd.
#ifndef SPARKSTACK_RUNTIME_DEPLOY_SYSTEMD_NOTIFY_H_
#define SPARKSTACK_RUNTIME_DEPLOY_SYSTEMD_NOTIFY_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"

namespace sparkstack::deploy {

// Pings WATCHDOG=1 from its own thread while a health callback says the service is healthy;
// stops (joins) when destroyed.
class WatchdogPinger {
 public:
  WatchdogPinger(std::chrono::microseconds interval, std::function<bool()> healthy);
  ~WatchdogPinger();
  WatchdogPinger(const WatchdogPinger&) = delete;
  WatchdogPinger& operator=(const WatchdogPinger&) = delete;

  int64_t pings() const { return pings_.load(); }

 private:
  void Run();

  std::chrono::microseconds interval_;
  std::function<bool()> healthy_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::atomic<int64_t> pings_{0};
  std::thread thread_;
};

// Thread-safe: every method may be called from any thread (each is one datagram).
class SystemdNotifier {
 public:
  // Under systemd when NOTIFY_SOCKET is set. The watchdog is enabled when WATCHDOG_USEC is set
  // (and WATCHDOG_PID, if set, is this process).
  SystemdNotifier();

  bool active() const { return active_; }

  // READY=1 with a status line: the service is up (systemd starts what waits on it).
  absl::Status Ready(std::string_view status);
  // STATUS=...: a one-line state shown by `systemctl status` ("loading: 43% of layers").
  absl::Status Status(std::string_view status);
  // RELOADING=1 / STOPPING=1 with a status line.
  absl::Status Reloading(std::string_view status);
  absl::Status Stopping(std::string_view status);
  // WATCHDOG=1: still alive.
  absl::Status Watchdog();

  // Half of WATCHDOG_USEC (systemd's advice), or zero when the watchdog is off.
  std::chrono::microseconds watchdog_interval() const { return watchdog_interval_; }

  // A pinger that sends WATCHDOG=1 every watchdog_interval() while `healthy` returns true (a
  // wedged engine stops the pings, and systemd restarts the unit); nullptr when the watchdog is
  // off.
  std::unique_ptr<WatchdogPinger> StartWatchdog(std::function<bool()> healthy);

 private:
  absl::Status Send(const std::string& message);

  bool active_ = false;
  std::chrono::microseconds watchdog_interval_{0};
};

}  // namespace sparkstack::deploy

#endif  // SPARKSTACK_RUNTIME_DEPLOY_SYSTEMD_NOTIFY_H_
