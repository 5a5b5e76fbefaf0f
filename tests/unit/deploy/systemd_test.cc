// The systemd side of deployment: what SystemdNotifier sends is read back from a NOTIFY_SOCKET we
// bind (as systemd does), and the unit files pass `systemd-analyze verify`.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/deploy/systemd_notify.h"
#include "tests/unit/model/test_util.h"

namespace sparkstack::deploy {
namespace {

using ::sparkstack::testing::ScratchDir;
using ::testing::HasSubstr;

// A datagram socket standing in for systemd's notification socket; sets NOTIFY_SOCKET (and
// optionally the watchdog variables) while it lives.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << path;
    timeval timeout{0, 200'000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setenv("NOTIFY_SOCKET", path.c_str(), 1);
  }
  ~NotifySocket() {
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    close(fd_);
    unlink(path_.c_str());
  }
  // The next datagram, or "" after 200 ms of silence.
  std::string Receive() {
    char buffer[4096];
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    return n > 0 ? std::string(buffer, n) : "";
  }

 private:
  std::string path_;
  int fd_ = -1;
};

TEST(SystemdNotifierTest, OutsideSystemdEverythingIsANoOp) {
  unsetenv("NOTIFY_SOCKET");
  SystemdNotifier notifier;
  EXPECT_FALSE(notifier.active());
  EXPECT_TRUE(notifier.Ready("up").ok());
  EXPECT_TRUE(notifier.Watchdog().ok());
  EXPECT_EQ(notifier.StartWatchdog([] { return true; }), nullptr);
}

TEST(SystemdNotifierTest, SendsReadyStatusStoppingAsSystemdReadsThem) {
  ScratchDir dir;
  NotifySocket socket(dir.File("notify"));
  SystemdNotifier notifier;
  ASSERT_TRUE(notifier.active());
  EXPECT_EQ(notifier.watchdog_interval().count(), 0);
  ASSERT_TRUE(notifier.Status("loading: 12 of 94 layers").ok());
  EXPECT_EQ(socket.Receive(), "STATUS=loading: 12 of 94 layers");
  ASSERT_TRUE(notifier.Ready("serving on :8000\nsecond line").ok());
  EXPECT_EQ(socket.Receive(), "READY=1\nSTATUS=serving on :8000 second line");
  ASSERT_TRUE(notifier.Reloading("reloading").ok());
  EXPECT_EQ(socket.Receive(), "RELOADING=1\nSTATUS=reloading");
  ASSERT_TRUE(notifier.Stopping("draining 3 requests").ok());
  EXPECT_EQ(socket.Receive(), "STOPPING=1\nSTATUS=draining 3 requests");
  ASSERT_TRUE(notifier.Watchdog().ok());
  EXPECT_EQ(socket.Receive(), "WATCHDOG=1");
}

TEST(SystemdNotifierTest, AbstractSocketsWork) {
  const std::string name = "@sparkstack-notify-test-" + std::to_string(getpid());
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data() + 1, name.size() - 1);
  ASSERT_EQ(
      bind(fd, reinterpret_cast<sockaddr*>(&addr), offsetof(sockaddr_un, sun_path) + name.size()),
      0);
  setenv("NOTIFY_SOCKET", name.c_str(), 1);
  SystemdNotifier notifier;
  ASSERT_TRUE(notifier.Ready("up").ok());
  char buffer[64];
  const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
  EXPECT_EQ(std::string(buffer, n > 0 ? n : 0), "READY=1\nSTATUS=up");
  unsetenv("NOTIFY_SOCKET");
  close(fd);
}

TEST(SystemdNotifierTest, UnreachableSocketIsAnError) {
  setenv("NOTIFY_SOCKET", "/nonexistent/dir/notify", 1);
  SystemdNotifier notifier;
  const absl::Status s = notifier.Ready("up");
  unsetenv("NOTIFY_SOCKET");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("sd_notify(\"READY=1\") failed"));
}

TEST(SystemdNotifierTest, WatchdogPingsWhileHealthyAndStopsWhenNot) {
  ScratchDir dir;
  NotifySocket socket(dir.File("notify"));
  setenv("WATCHDOG_USEC", "100000", 1);  // WatchdogSec=100ms: ping every 50 ms
  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  SystemdNotifier notifier;
  EXPECT_EQ(notifier.watchdog_interval(), std::chrono::microseconds(50000));
  std::atomic<bool> healthy{true};
  std::unique_ptr<WatchdogPinger> pinger = notifier.StartWatchdog([&] { return healthy.load(); });
  ASSERT_NE(pinger, nullptr);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(socket.Receive(), "WATCHDOG=1") << i;
  healthy = false;
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  while (!socket.Receive().empty()) {
  }                                 // drain pings sent before the switch
  EXPECT_EQ(socket.Receive(), "");  // a wedged service goes quiet, and systemd restarts it
  EXPECT_GE(pinger->pings(), 3);
  pinger.reset();  // joins promptly
  // Another process's watchdog (WATCHDOG_PID) is not ours.
  setenv("WATCHDOG_PID", "1", 1);
  EXPECT_EQ(SystemdNotifier().watchdog_interval().count(), 0);
}

std::string RunCapturingOutput(const std::string& command, int* status) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  char buffer[512];
  while (pipe != nullptr && fgets(buffer, sizeof(buffer), pipe) != nullptr) out += buffer;
  *status = pipe == nullptr ? -1 : pclose(pipe);
  return out;
}

// The units as installed, with ExecStart pointing at the binary under test (verify checks that it
// exists and is executable).
std::string UnitCopy(const ScratchDir& dir, const std::string& unit, const std::string& binary) {
  const char* source = std::getenv("SPARKSTACK_SOURCE_DIR");
  std::ifstream in(std::string(source) + "/deploy/" + unit);
  std::stringstream text;
  text << in.rdbuf();
  const std::string replaced =
      std::regex_replace(text.str(), std::regex("/usr/local/bin/sparkstack"), binary);
  const std::string path = dir.File(unit);
  std::ofstream(path) << replaced;
  return path;
}

TEST(SystemdUnitsTest, PassSystemdAnalyzeVerify) {
  int status = 0;
  RunCapturingOutput("systemd-analyze --version", &status);
  if (status != 0) GTEST_SKIP() << "systemd-analyze is not installed";
  const char* binary = std::getenv("SPARKSTACK_BINARY");
  if (binary == nullptr || !std::filesystem::exists(binary)) GTEST_SKIP() << "no sparkstack binary";
  ASSERT_NE(std::getenv("SPARKSTACK_SOURCE_DIR"), nullptr);
  ScratchDir dir;
  for (const char* unit : {"sparkstack-node.service", "sparkstack-serve.service"}) {
    const std::string path = UnitCopy(dir, unit, binary);
    const std::string out = RunCapturingOutput("systemd-analyze verify --man=no " + path, &status);
    EXPECT_EQ(status, 0) << unit << ":\n" << out;
    EXPECT_EQ(out, "") << unit;  // not even a warning
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    for (const char* line :
         {"Type=notify", "Restart=on-failure", "User=sparkstack", "LimitMEMLOCK=infinity",
          "EnvironmentFile=/etc/sparkstack/env", "WatchdogSec="}) {
      EXPECT_THAT(text.str(), HasSubstr(line)) << unit;
    }
  }
  // verify does catch a broken unit (so the empty output above means something).
  std::ofstream(dir.File("broken.service"))
      << "[Service]\nType=notifyy\nExecStart=" << binary << " node\n";
  const std::string out =
      RunCapturingOutput("systemd-analyze verify --man=no " + dir.File("broken.service"), &status);
  EXPECT_THAT(out, HasSubstr("notifyy"));
}

TEST(InstallScriptTest, StagesTheBinaryUnitsAndConfiguration) {
  const char* binary = std::getenv("SPARKSTACK_BINARY");
  const char* source = std::getenv("SPARKSTACK_SOURCE_DIR");
  if (binary == nullptr || !std::filesystem::exists(binary)) GTEST_SKIP() << "no sparkstack binary";
  ASSERT_NE(source, nullptr);
  ScratchDir dir;
  const std::string stage = dir.File("root");
  int status = 0;
  const std::string command = std::string("bash ") + source + "/deploy/install.sh --binary " +
                              binary + " --destdir " + stage;
  const std::string out = RunCapturingOutput(command, &status);
  ASSERT_EQ(status, 0) << out;
  namespace fs = std::filesystem;
  auto mode = [&](const std::string& path) {
    return fs::status(stage + path).permissions() & fs::perms::all;
  };
  EXPECT_EQ(mode("/usr/local/bin/sparkstack"), fs::perms(0755));
  EXPECT_TRUE(fs::exists(stage + "/etc/systemd/system/sparkstack-node.service"));
  EXPECT_TRUE(fs::exists(stage + "/etc/systemd/system/sparkstack-serve.service"));
  EXPECT_TRUE(fs::exists(stage + "/usr/share/doc/sparkstack/deploy.md"));
  EXPECT_EQ(mode("/etc/sparkstack/token"), fs::perms(0600));
  EXPECT_EQ(mode("/etc/sparkstack/api-keys"), fs::perms(0600));
  std::ifstream token(stage + "/etc/sparkstack/token");
  std::string secret;
  token >> secret;
  EXPECT_EQ(secret.size(), 64u);  // 32 random bytes in hex
  std::ifstream env(stage + "/etc/sparkstack/env");
  std::stringstream text;
  text << env.rdbuf();
  EXPECT_THAT(text.str(), HasSubstr("NCCL_IB_HCA="));
  // Installing again keeps the secrets and the edited env.
  std::ofstream(stage + "/etc/sparkstack/env", std::ios::app) << "NCCL_DEBUG=INFO\n";
  ASSERT_EQ(RunCapturingOutput(command, &status), RunCapturingOutput(command, &status));
  std::ifstream again(stage + "/etc/sparkstack/token");
  std::string secret_again;
  again >> secret_again;
  EXPECT_EQ(secret_again, secret);
  std::ifstream env_again(stage + "/etc/sparkstack/env");
  std::stringstream text_again;
  text_again << env_again.rdbuf();
  EXPECT_THAT(text_again.str(), HasSubstr("NCCL_DEBUG=INFO"));
  // A missing binary is refused with the reason.
  EXPECT_THAT(RunCapturingOutput(std::string("bash ") + source +
                                     "/deploy/install.sh --binary /nonexistent --destdir " + stage,
                                 &status),
              HasSubstr("/nonexistent is not an executable"));
  EXPECT_NE(status, 0);
}

}  // namespace
}  // namespace sparkstack::deploy
