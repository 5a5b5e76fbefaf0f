// Shared pieces of the control-plane tests: in-process node agents hosting a fake worker rank that
// exercises the relayed bootstrap, and the matching fake rank 0.
#ifndef SPARKSTACK_TESTS_UNIT_CONTROL_CONTROL_TEST_UTIL_H_
#define SPARKSTACK_TESTS_UNIT_CONTROL_CONTROL_TEST_UTIL_H_

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/control/head_rank.h"
#include "runtime/control/node_agent.h"
#include "runtime/control/worker_rank.h"

namespace sparkstack::control::testing {

// Blob every rank contributes to the first AllGather, and what rank 0 broadcasts.
inline std::string RankBlob(int rank) { return absl::StrCat("blob of rank ", rank); }
inline constexpr char kHeadBroadcast[] = "the head's broadcast";

// Runs the bootstrap sequence every rank runs here (AllGather, Broadcast, Barrier) and checks
// what came back; "" when right, else what was wrong.
inline std::string ExerciseBootstrap(Bootstrap& bootstrap, std::vector<std::string>* gathered) {
  absl::StatusOr<std::vector<std::string>> all = bootstrap.AllGather(RankBlob(bootstrap.rank()));
  if (!all.ok()) return std::string(all.status().message());
  for (int r = 0; r < bootstrap.world_size(); ++r) {
    if ((*all)[r] != RankBlob(r)) return absl::StrCat("allgather slot ", r, " is ", (*all)[r]);
  }
  if (gathered != nullptr) *gathered = *all;
  absl::StatusOr<std::string> id =
      bootstrap.Broadcast(bootstrap.rank() == 0 ? kHeadBroadcast : "not rank 0");
  if (!id.ok()) return std::string(id.status().message());
  if (*id != kHeadBroadcast) return absl::StrCat("broadcast gave ", *id);
  if (absl::Status s = bootstrap.Barrier(); !s.ok()) return std::string(s.message());
  return "";
}

// A fake worker rank: runs the bootstrap sequence, reports ready, waits to be stopped. When
// `fail_rank` equals its rank it fails `fail_after` after becoming ready (once).
struct FakeWorkers {
  std::atomic<int> fail_rank{-1};
  std::atomic<int> started{0};
  std::atomic<int> stopped{0};

  WorkerRankFn Fn() {
    return [this](const LoadPlan& plan, Bootstrap& bootstrap, WorkerContext& context) {
      ++started;
      context.Report({.phase = LoadPhase::kConnecting, .message = "exchanging blobs"});
      const std::string wrong = ExerciseBootstrap(bootstrap, nullptr);
      if (!wrong.empty()) return absl::InternalError(absl::StrCat("fake worker: ", wrong));
      context.Report(
          {.phase = LoadPhase::kReady, .message = absl::StrCat("fake rank ", plan.rank, " ready")});
      int target = plan.rank;
      if (fail_rank.compare_exchange_strong(target, -1)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        return absl::InternalError(absl::StrCat("injected failure on rank ", plan.rank));
      }
      WaitForStop(context);
      ++stopped;
      return absl::OkStatus();
    };
  }
};

// The fake rank 0 matching FakeWorkers.
class FakeHead final : public HeadRank {
 public:
  absl::Status Start(const LoadPlan& plan, Bootstrap& bootstrap,
                     const std::atomic<bool>& cancel) override {
    std::vector<std::string> gathered;
    const std::string wrong = ExerciseBootstrap(bootstrap, &gathered);
    std::lock_guard<std::mutex> lock(mu_);
    ++starts_;
    if (!wrong.empty()) return absl::InternalError(absl::StrCat("fake head: ", wrong));
    gathered_ = gathered;
    ++formed_;
    return absl::OkStatus();
  }
  void Stop(const absl::Status& why) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++stops_;
    last_stop_ = std::string(why.message());
  }
  int formed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return formed_;
  }
  int starts() const {
    std::lock_guard<std::mutex> lock(mu_);
    return starts_;
  }
  int stops() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stops_;
  }
  std::vector<std::string> gathered() const {
    std::lock_guard<std::mutex> lock(mu_);
    return gathered_;
  }

 private:
  mutable std::mutex mu_;
  int formed_ = 0, starts_ = 0, stops_ = 0;
  std::vector<std::string> gathered_;
  std::string last_stop_;
};

inline AuthOptions TokenAuth(const std::string& token_file) {
  AuthOptions auth;
  auth.token_file = token_file;
  return auth;
}

inline AuthOptions InsecureAuth() {
  AuthOptions auth;
  auth.insecure = true;
  return auth;
}

// A token file in a private temporary directory.
class TokenFile {
 public:
  explicit TokenFile(const std::string& token = "0123456789abcdef0123456789abcdef") {
    char dir[] = "/tmp/control_token_XXXXXX";
    dir_ = mkdtemp(dir);
    path_ = dir_ + "/token";
    std::ofstream(path_) << token << "\n";
    chmod(path_.c_str(), 0600);
  }
  ~TokenFile() { std::filesystem::remove_all(dir_); }
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
};

// In-process agents on loopback hosting `worker`.
inline std::vector<std::unique_ptr<NodeAgent>> StartAgents(int count, const AuthOptions& auth,
                                                           WorkerRankFn worker) {
  std::vector<std::unique_ptr<NodeAgent>> agents;
  for (int i = 0; i < count; ++i) {
    NodeAgentOptions options;
    options.listen = "127.0.0.1:0";
    options.auth = auth;
    options.worker = worker;
    options.worker_stop_timeout = std::chrono::seconds(5);
    options.exit_on_stuck_worker = false;
    absl::StatusOr<std::unique_ptr<NodeAgent>> agent = NodeAgent::Start(options);
    if (!agent.ok()) std::abort();
    agents.push_back(*std::move(agent));
  }
  return agents;
}

inline std::vector<std::string> Addresses(const std::vector<std::unique_ptr<NodeAgent>>& agents) {
  std::vector<std::string> addresses;
  for (const auto& agent : agents) addresses.push_back(absl::StrCat("127.0.0.1:", agent->port()));
  return addresses;
}

}  // namespace sparkstack::control::testing

#endif  // SPARKSTACK_TESTS_UNIT_CONTROL_CONTROL_TEST_UTIL_H_
