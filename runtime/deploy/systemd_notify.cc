#include "runtime/deploy/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace sparkstack::deploy {
namespace {

// STATUS= is one line: newlines would start another assignment.
std::string OneLine(std::string_view text) {
  std::string line(text);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return line;
}

}  // namespace

WatchdogPinger::WatchdogPinger(std::chrono::microseconds interval, std::function<bool()> healthy)
    : interval_(interval), healthy_(std::move(healthy)), thread_([this] { Run(); }) {}

WatchdogPinger::~WatchdogPinger() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void WatchdogPinger::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (healthy_()) {
      // sd_notify only writes one datagram; it never blocks for long.
      if (sd_notify(0, "WATCHDOG=1") > 0) pings_.fetch_add(1);
    }
    cv_.wait_for(lock, interval_, [this] { return stop_; });
  }
}

SystemdNotifier::SystemdNotifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  active_ = socket != nullptr && socket[0] != '\0';
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0) watchdog_interval_ = std::chrono::microseconds(usec / 2);
}

absl::Status SystemdNotifier::Send(const std::string& message) {
  if (!active_) return absl::OkStatus();
  const int rc = sd_notify(0, message.c_str());
  if (rc < 0) {
    return absl::UnavailableError(absl::StrCat(
        "sd_notify(\"", message.substr(0, message.find('\n')), "\") failed: ", std::strerror(-rc)));
  }
  return absl::OkStatus();
}

absl::Status SystemdNotifier::Ready(std::string_view status) {
  return Send(absl::StrCat("READY=1\nSTATUS=", OneLine(status)));
}

absl::Status SystemdNotifier::Status(std::string_view status) {
  return Send(absl::StrCat("STATUS=", OneLine(status)));
}

absl::Status SystemdNotifier::Reloading(std::string_view status) {
  return Send(absl::StrCat("RELOADING=1\nSTATUS=", OneLine(status)));
}

absl::Status SystemdNotifier::Stopping(std::string_view status) {
  return Send(absl::StrCat("STOPPING=1\nSTATUS=", OneLine(status)));
}

absl::Status SystemdNotifier::Watchdog() { return Send("WATCHDOG=1"); }

std::unique_ptr<WatchdogPinger> SystemdNotifier::StartWatchdog(std::function<bool()> healthy) {
  if (!active_ || watchdog_interval_.count() == 0) return nullptr;
  return std::make_unique<WatchdogPinger>(watchdog_interval_, std::move(healthy));
}

}  // namespace sparkstack::deploy
