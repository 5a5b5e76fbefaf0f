// `sparkstack bench`: an offline load on the engine, as `vllm bench throughput` / `bench serve`
// measure it: random prompts of a length distribution, a fixed number of output tokens each
// (EOS ignored), at most --concurrency requests in flight. Prints prompt and generation
// throughput, TTFT / inter-token / end-to-end percentiles, and the engine's host overhead per
// step.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "launcher/bench_load.h"
#include "launcher/bench_serve.h"
#include "launcher/command_registry.h"
#include "launcher/engine_launch.h"
#include "launcher/output_collector.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status_macros.h"

namespace sparkstack::launcher {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchFlags {
  std::string model;
  EngineFlags engine;
  int num_prompts = 64;
  int64_t input_len = 128;
  int64_t output_len = 128;
  double range_ratio = 0.0;  // lengths uniform in [len * (1 - r), len * (1 + r)]
  int concurrency = 0;       // 0: every prompt at once
  float temperature = 0.0f;
  uint64_t seed = 0;
  bool json = false;
  ServeBenchFlags serve;  // --url: the same load against a server (bench_serve.cc)
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

absl::Status Run(const BenchFlags& f) {
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<LaunchedEngine> launched,
                              LaunchedEngine::Start(f.model, f.engine));
  Engine& engine = launched->engine();
  const int64_t vocab = engine.model_config().vocab_size;
  std::vector<BenchRequest> load =
      MakeBenchRequests(f.num_prompts, f.input_len, f.output_len, f.range_ratio, f.seed, vocab);
  std::vector<Request> requests(f.num_prompts);
  int64_t prompt_tokens = 0;
  for (int i = 0; i < f.num_prompts; ++i) {
    Request& r = requests[i];
    r.prompt_ids = std::move(load[i].prompt_ids);
    r.stopping.max_tokens = load[i].max_tokens;
    r.stopping.ignore_eos = true;
    r.sampling.temperature = f.temperature;
    r.sampling.seed = load[i].seed;
    r.detokenize = engine.tokenizer() != nullptr;
    prompt_tokens += std::ssize(r.prompt_ids);
  }
  const EngineStats before = engine.stats();
  OutputCollector collector(requests.size());
  const size_t window = f.concurrency > 0 ? f.concurrency : requests.size();
  const Clock::time_point start = Clock::now();
  for (size_t i = 0; i < requests.size(); ++i) {
    if (i >= window) collector.WaitFinished(i + 1 - window);
    SPARKSTACK_RETURN_IF_ERROR(engine.AddRequest(requests[i], collector.CallbackFor(i)).status());
  }
  collector.WaitAll();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const EngineStats after = engine.stats();

  std::vector<double> ttft, itl, e2e;
  int64_t output_tokens = 0;
  for (const CollectedOutput& out : collector.outputs()) {
    if (out.finish_reason == FinishReason::kError) return launched->Explain(out.error);
    output_tokens += std::ssize(out.token_ids);
    if (out.token_times.empty()) continue;
    ttft.push_back(Ms(out.token_times.front() - out.submitted));
    e2e.push_back(Ms(out.token_times.back() - out.submitted));
    for (size_t t = 1; t < out.token_times.size(); ++t) {
      itl.push_back(Ms(out.token_times[t] - out.token_times[t - 1]));
    }
  }
  SPARKSTACK_RETURN_IF_ERROR(launched->Shutdown());
  // Host overhead in the engine thread's CPU time (a loaded machine does not inflate it), as a
  // share of the steps' wall time.
  const int64_t steps = after.steps - before.steps;
  const double wall_us = static_cast<double>(after.step_wall_us - before.step_wall_us);
  const double host_us = static_cast<double>((after.step_cpu_us - before.step_cpu_us) -
                                             (after.compute_cpu_us - before.compute_cpu_us));
  const double host_per_step = steps > 0 ? host_us / steps : 0.0;
  const double host_share = wall_us > 0 ? host_us / wall_us : 0.0;
  nlohmann::json report = {
      {"requests", f.num_prompts},
      {"seconds", seconds},
      {"prompt_tokens", prompt_tokens},
      {"output_tokens", output_tokens},
      {"prompt_tokens_per_s", prompt_tokens / seconds},
      {"output_tokens_per_s", output_tokens / seconds},
      {"requests_per_s", f.num_prompts / seconds},
      {"ttft_ms", {{"p50", Percentile(ttft, 50)}, {"p99", Percentile(ttft, 99)}}},
      {"itl_ms", {{"p50", Percentile(itl, 50)}, {"p99", Percentile(itl, 99)}}},
      {"e2e_ms", {{"p50", Percentile(e2e, 50)}, {"p99", Percentile(e2e, 99)}}},
      {"steps", steps},
      {"host_overhead_us_per_step", host_per_step},
      {"host_overhead_share", host_share}};
  if (f.json) {
    std::cout << report.dump() << std::endl;
    return absl::OkStatus();
  }
  std::cout << absl::StrFormat(
      "requests %d in %.2f s (%.2f req/s)\n"
      "prompt tokens %d (%.1f tok/s), output tokens %d (%.1f tok/s)\n"
      "TTFT ms p50 %.1f p99 %.1f | ITL ms p50 %.2f p99 %.2f | E2E ms p50 %.1f p99 %.1f\n"
      "steps %d, host overhead %.1f us/step (%.2f%% of step time)\n",
      f.num_prompts, seconds, f.num_prompts / seconds, prompt_tokens, prompt_tokens / seconds,
      output_tokens, output_tokens / seconds, Percentile(ttft, 50), Percentile(ttft, 99),
      Percentile(itl, 50), Percentile(itl, 99), Percentile(e2e, 50), Percentile(e2e, 99), steps,
      host_per_step, 100.0 * host_share);
  return absl::OkStatus();
}

void SetupBenchCommand(CLI::App& root) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* cmd = root.add_subcommand("bench", "Offline throughput and latency benchmark");
  cmd->add_option("--model", flags->model, "model directory (Hugging Face layout; not with --url)");
  cmd->add_option("--num-prompts", flags->num_prompts, "requests to run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--input-len", flags->input_len, "prompt tokens per request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--output-len", flags->output_len, "output tokens per request (EOS ignored)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--range-ratio", flags->range_ratio,
                  "lengths uniform in [len x (1 - r), len x (1 + r)]")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--concurrency", flags->concurrency, "requests in flight at most (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--temperature", flags->temperature, "0 = greedy")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--seed", flags->seed, "seed of the prompts and the sampling")
      ->capture_default_str();
  cmd->add_flag("--json", flags->json, "print one JSON object");
  AddEngineFlags(*cmd, flags->engine);
  AddServeBenchFlags(*cmd, flags->serve);
  cmd->callback([flags] {
    const BenchFlags& f = *flags;
    if (f.serve.url.empty()) {
      FinishCommand(f.model.empty() ? absl::InvalidArgumentError("give --model DIR or --url URL")
                                    : Run(f));
      return;
    }
    FinishCommand(RunServeBench({.num_prompts = f.num_prompts,
                                 .input_len = f.input_len,
                                 .output_len = f.output_len,
                                 .range_ratio = f.range_ratio,
                                 .concurrency = f.concurrency,
                                 .temperature = f.temperature,
                                 .seed = f.seed,
                                 .json = f.json},
                                f.serve));
  });
}

}  // namespace

SPARKSTACK_REGISTER_COMMAND(SetupBenchCommand);

}  // namespace sparkstack::launcher
