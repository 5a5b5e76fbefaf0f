// Engine: continuous batching over a paged KV cache, the same at every scale (DESIGN.md, "One
// step, end to end"). Rank 0 of a tp x pp world runs the engine core thread: it takes requests
// from any thread, schedules each step (Scheduler + BlockManager), sends the step's plan to every
// rank, runs its own shard, collects the sampled tokens, detokenizes, checks stops and streams
// outputs. Every other rank runs RunWorker. A single process is a world of one.
#ifndef SPARKSTACK_RUNTIME_ENGINE_ENGINE_H_
#define SPARKSTACK_RUNTIME_ENGINE_ENGINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"
#include "runtime/engine/request.h"
#include "runtime/model/model_config.h"
#include "runtime/parallel/communicator.h"
#include "runtime/parallel/parallel_plan.h"

namespace sparkstack {

namespace tokenizer {
class Tokenizer;
}

// Everything every rank must agree on. Rank 0 sends it to the others (EngineOptionsToJson).
struct EngineOptions {
  std::string model_dir;
  ParallelPlan plan;  // tp x pp; the world communicator must have plan.world_size() ranks
  int threads = 0;    // CPU backend worker threads per rank (0: the machine's cores / ranks here)
  // "cpu" or "cuda" (runtime/backend/backend_factory.h); "" resolves to "cuda" when this build
  // has CUDA and a device is visible, else "cpu". Every rank builds the same kind.
  std::string backend;

  int64_t max_num_seqs = 256;             // sequences in one step at most
  int64_t max_num_batched_tokens = 2048;  // tokens in one step at most (chunked prefill)
  int64_t max_model_len = 0;              // prompt + output at most; 0: max_position_embeddings
  // KV cache budget per rank: bytes, or (when 0) this fraction of the memory left after the
  // weights and the workspace. The pool never exceeds what max_num_seqs sequences of
  // max_model_len tokens can use.
  int64_t kv_cache_bytes = 0;
  double kv_cache_memory_fraction = 0.5;
  bool enable_prefix_caching = true;
  // Ids at or above this are never sampled. 0 (resolved by ResolveEngineOptions): the
  // tokenizer's vocabulary when it is smaller than the model's (checkpoints pad the embedding),
  // else the model's.
  int64_t sampling_vocab_limit = 0;
};

// One rank's data-plane communicators: the world (every rank) and its tensor-parallel group.
// Both null for a world of one.
struct RankComms {
  std::unique_ptr<Communicator> world;
  std::unique_ptr<Communicator> tp_group;
};

nlohmann::json EngineOptionsToJson(const EngineOptions& options);
absl::StatusOr<EngineOptions> EngineOptionsFromJson(const nlohmann::json& json);
// Fills the defaults that depend on the model and the machine (max_model_len, threads) and checks
// every field, naming it. Rank 0 resolves; the other ranks receive resolved options.
absl::StatusOr<EngineOptions> ResolveEngineOptions(EngineOptions options);

// Counters for /metrics and `bench`; a consistent snapshot taken between steps.
struct EngineStats {
  int64_t running = 0;
  int64_t waiting = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t prefix_cache_queries = 0;  // prompt tokens looked up in the prefix cache
  int64_t prefix_cache_hits = 0;     // of which found
  int64_t preemptions = 0;
  int64_t steps = 0;
  int64_t generated_tokens = 0;  // sampled tokens, total
  // Time on rank 0's engine core thread, totals over all steps: every step's wall time, and the
  // part of it spent in the model and the sampler. The rest is host overhead: scheduling, the
  // step plan, batch building, output processing, detokenizing. The same split in the thread's
  // CPU time, which other processes on a loaded machine do not inflate.
  int64_t step_wall_us = 0;
  int64_t compute_us = 0;
  int64_t step_cpu_us = 0;
  int64_t compute_cpu_us = 0;
};

class Engine {
 public:
  // Called on the engine core thread for every output chunk of a request; must not block (hand
  // the chunk to another thread or queue it). The last call has output.finished().
  using OutputCallback = std::function<void(RequestOutput output)>;

  // Loads rank 0's shard, agrees the KV cache size with the other ranks (comms empty: a world of
  // one), and starts the engine core thread. The other ranks must be in RunWorker.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineOptions& options,
                                                        RankComms comms = {});
  // Aborts every request, stops the workers, joins the engine core thread.
  ~Engine();

  // Thread-safe. Validates `request` (ids, lengths against max_model_len, sampling and stopping
  // parameters, detokenize without a tokenizer) and queues it: InvalidArgument naming the field,
  // or Unavailable when the engine has failed. `on_output` then receives its stream.
  absl::StatusOr<RequestId> AddRequest(Request request, OutputCallback on_output);
  // Thread-safe. Ends the request with FinishReason::kAbort; its KV blocks are freed before the
  // next step. Unknown or finished ids are ignored.
  void Abort(RequestId id);

  EngineStats stats() const;                      // thread-safe
  absl::Status health() const;                    // thread-safe: OK, or why the engine stopped
  const ModelConfig& model_config() const;        // immutable after Create
  const EngineOptions& options() const;           // with defaults resolved (max_model_len, ...)
  const tokenizer::Tokenizer* tokenizer() const;  // null when the model has no tokenizer.json

  struct Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What Engine::AddRequest checks, for clients that want to refuse a request before starting an
// engine: prompt ids against the vocabulary, lengths against options.max_model_len (resolved),
// sampling and stopping parameters, detokenizing without a tokenizer. InvalidArgument naming the
// field.
absl::Status ValidateRequest(const Request& request, const ModelConfig& config,
                             const EngineOptions& options, bool has_tokenizer);

// Ranks > 0: loads this rank's shard and executes rank 0's steps until rank 0 stops (OK) or
// fails, or a peer dies (its error). Waits for work without a time limit while the group is idle.
// `on_loaded`, when set, is called once the shard and the KV cache are in place.
absl::Status RunWorker(const EngineOptions& options, RankComms comms,
                       const std::function<void()>& on_loaded = nullptr);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_ENGINE_H_
