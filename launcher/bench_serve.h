// `sparkstack bench --url URL`: the online counterpart of the offline `bench`, as `vllm bench
// serve` measures a server: the same random load (prompt token ids and output lengths drawn from
// the same seed, so that both modes run identical requests), sent as streaming
// /v1/completions requests at a Poisson request rate and/or with at most --concurrency in flight.
// Reports TTFT, inter-token and end-to-end latency percentiles and throughput, with the same
// JSON keys as the offline mode.
#ifndef SPARKSTACK_LAUNCHER_BENCH_SERVE_H_
#define SPARKSTACK_LAUNCHER_BENCH_SERVE_H_

#include <cstdint>
#include <limits>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace sparkstack::launcher {

// The load, shared with the offline bench (same names and meaning).
struct BenchLoad {
  int num_prompts = 64;
  int64_t input_len = 128;
  int64_t output_len = 128;
  double range_ratio = 0.0;
  int concurrency = 0;  // 0: no limit
  float temperature = 0.0f;
  uint64_t seed = 0;
  bool json = false;
};

struct ServeBenchFlags {
  std::string url;  // http://HOST:PORT of `sparkstack serve` (or any OpenAI-compatible server)
  double request_rate = std::numeric_limits<double>::infinity();  // requests/s, Poisson
  std::string api_key_file;
};

// Adds --url, --request-rate and --api-key-file to the bench command.
void AddServeBenchFlags(CLI::App& command, ServeBenchFlags& flags);

// Runs the load against flags.url and returns the report: the JSON object `bench --url --json`
// prints ("requests", "seconds", "prompt_tokens", "output_tokens", "*_tokens_per_s",
// "requests_per_s", {"ttft_ms", "itl_ms", "e2e_ms"}: {"p50", "p99"}). The model's name and
// vocabulary come from GET /v1/models. Unavailable when the server cannot be reached or a request
// fails (naming the first failure).
absl::StatusOr<nlohmann::json> MeasureServeBench(const BenchLoad& load,
                                                 const ServeBenchFlags& flags);

// MeasureServeBench, then prints the report to stdout (as JSON with load.json).
absl::Status RunServeBench(const BenchLoad& load, const ServeBenchFlags& flags);

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_BENCH_SERVE_H_
