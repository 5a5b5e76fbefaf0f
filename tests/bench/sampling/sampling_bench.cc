// Single-thread throughput of the CPU sampling op (kernels/cpu/sampling.h) in rows per second at a
// Qwen-sized vocabulary, for the parameter sets clients use most, next to the plain float64
// reference (kernels/cpu/sampling_reference.h: full sorts, double exp), the way a naive sampler
// does it. Logits look like a model's: a Gaussian bulk and a few tokens far above it.
// Prints one JSON line per parameter set; times are the thread's CPU time (best of 5 batches).
// Usage: sampling_bench [ROWS (256)] [VOCAB (151936)]
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/sampling.h"
#include "kernels/cpu/sampling_reference.h"

namespace {

using sparkstack::SampledToken;
using sparkstack::SamplingParams;
using sparkstack::SamplingRow;

// CPU time of this thread: on a shared machine, wall time also counts the time other processes
// held the core.
double ThreadSeconds() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) {
  const int rows = argc > 1 ? std::atoi(argv[1]) : 256;
  const int64_t vocab = argc > 2 ? std::atoll(argv[2]) : 151936;
  std::mt19937 rng(1);
  std::vector<float> logits(rows * vocab);
  std::normal_distribution<float> bulk(0.0f, 2.5f), top(18.0f, 3.0f);
  for (float& v : logits) v = bulk(rng);
  for (int r = 0; r < rows; ++r) {
    for (int i = 0; i < 30; ++i) logits[r * vocab + rng() % vocab] = top(rng);
  }
  std::vector<int32_t> history(1000);
  for (int32_t& id : history) id = static_cast<int32_t>(rng() % vocab);

  struct Config {
    const char* name;
    SamplingParams params;
    bool penalties;
  };
  const std::vector<Config> configs = {
      {"greedy", {}, false},
      {"temperature 1", {.temperature = 1.0f}, false},
      {"T 0.7 top_p 0.95", {.temperature = 0.7f, .top_p = 0.95f}, false},
      {"T 0.7 top_p 0.95 logprobs 5", {.temperature = 0.7f, .top_p = 0.95f, .logprobs = 5}, false},
      {"T 0.8 top_k 40 top_p 0.9 min_p 0.05 rep 1.1 (1000+1000 history)",
       {.temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.9f,
        .min_p = 0.05f,
        .repetition_penalty = 1.1f,
        .presence_penalty = 0.2f,
        .frequency_penalty = 0.2f},
       true},
  };
  sparkstack::kernels::CpuSampler sampler;
  std::vector<SampledToken> out(rows);
  for (const Config& config : configs) {
    std::vector<SamplingRow> batch(rows);
    for (int r = 0; r < rows; ++r) {
      batch[r].params = config.params;
      batch[r].params.seed = static_cast<uint64_t>(r);
      if (config.penalties) batch[r].prompt_tokens = batch[r].output_tokens = history;
    }
    if (!sampler.Sample(logits.data(), vocab, vocab, vocab, batch, out).ok()) return 1;  // warm-up
    double best = 1e30;
    for (int it = 0; it < 5; ++it) {
      for (SamplingRow& row : batch) row.output_index = static_cast<uint64_t>(it + 1);
      const double start = ThreadSeconds();
      if (!sampler.Sample(logits.data(), vocab, vocab, vocab, batch, out).ok()) return 1;
      best = std::min(best, ThreadSeconds() - start);
    }
    // The reference on a few rows (it is slow).
    const int reference_rows = std::min(rows, 8);
    const double start = ThreadSeconds();
    for (int r = 0; r < reference_rows; ++r) {
      auto result = sparkstack::kernels::SampleReference(
          {&logits[r * vocab], static_cast<size_t>(vocab)}, vocab, batch[r], 0.5);
      if (!result.ok()) return 1;
    }
    const double reference_rows_per_s = reference_rows / (ThreadSeconds() - start);
    const double rows_per_s = rows / best;
    std::printf(
        "{\"params\": \"%s\", \"vocab\": %lld, \"rows\": %d, \"threads\": 1, \"rows_per_s\": %.0f, "
        "\"us_per_row\": %.1f, \"reference_rows_per_s\": %.1f, \"speedup_vs_reference\": %.1f}\n",
        config.name, static_cast<long long>(vocab), rows, rows_per_s, 1e6 / rows_per_s,
        reference_rows_per_s, rows_per_s / reference_rows_per_s);
  }
  return 0;
}
