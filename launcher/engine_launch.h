// The engine flags `generate`, `bench` (and later `serve`) share, and starting the engine they
// describe: in this process (tp = pp = 1), on a local cluster of child processes
// (--local-ranks), or as rank 0 waiting at --rendezvous for `sparkstack worker` ranks.
#ifndef SPARKSTACK_LAUNCHER_ENGINE_LAUNCH_H_
#define SPARKSTACK_LAUNCHER_ENGINE_LAUNCH_H_

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "launcher/local_ranks.h"
#include "runtime/engine/engine.h"

namespace sparkstack::launcher {

struct EngineFlags {
  std::string backend;  // --backend cpu|cuda; "" picks cuda when a device is present
  int threads = 0;
  int tp = 1;
  int pp = 1;
  int ep = 0;  // expert-parallel groups per stage (0: tp)
  bool local_ranks = false;
  std::string rendezvous = "127.0.0.1:29500";
  int timeout_s = 60;
  int64_t max_num_seqs = 256;
  int64_t max_num_batched_tokens = 2048;
  int64_t max_model_len = 0;
  int64_t kv_cache_bytes = 0;
  double kv_cache_memory_fraction = 0.5;
  bool no_prefix_caching = false;
};

void AddEngineFlags(CLI::App& command, EngineFlags& flags);

// The engine's options as the flags give them (not yet resolved against the model).
EngineOptions EngineOptionsFromFlags(const std::string& model_dir, const EngineFlags& flags);

// A running engine and, for a local cluster, its worker processes.
class LaunchedEngine {
 public:
  // Resolves and checks the options first (model, plan, head counts), then forms the cluster.
  static absl::StatusOr<std::unique_ptr<LaunchedEngine>> Start(const std::string& model_dir,
                                                               const EngineFlags& flags);
  ~LaunchedEngine();

  Engine& engine() { return *engine_; }

  // Stops the engine and waits for the workers; the first error names the rank that failed.
  absl::Status Shutdown();
  // The engine's failure, replaced by a local worker's own report of it when there is one.
  absl::Status Explain(const absl::Status& failure) const;

 private:
  LaunchedEngine() = default;
  std::unique_ptr<Engine> engine_;
  std::vector<LocalWorker> workers_;
  int timeout_s_ = 60;
};

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_ENGINE_LAUNCH_H_
