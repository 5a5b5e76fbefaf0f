// CPU mixture-of-experts decode benchmark (issue 11).
//
//   moe_bench [--threads T]
//     One MoE layer (hidden 2048, 64 experts of width 512, top 8, Qwen3-style softmax routing) on
//     the CPU backend's MoE ops (router linear, MoeRoute, MoeExperts) at 1, 8 and 32 decoding
//     sequences, bf16 and NVFP4 expert weights: time per step, distinct experts routed, the bytes
//     of those experts (and the router) / time, and that as a fraction of this machine's read
//     bandwidth measured in the same run (a threaded sum over a 256 MiB buffer).
//   moe_bench --model DIR [--threads T] [--tokens N] [--seqs B]
//     Whole-model decode on the CPU backend: B sequences of a 16-token prompt, then N decode steps;
//     prints one JSON line {"decode_tokens_per_s": ..., "step_ms": ...} (moe_vs_llamacpp.mjs
//     compares it with llama.cpp on the same model).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/core/half.h"
#include "runtime/model/model.h"
#include "runtime/quant/nvfp4_quantizer.h"
#include "tests/unit/model/paged_driver.h"

namespace sparkstack {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Read bandwidth: `threads` threads each summing their part of a buffer much larger than the
// caches, best of 5 passes.
double ReadBandwidth(int threads) {
  const size_t bytes = size_t{256} << 20;
  std::vector<uint64_t> buffer(bytes / 8);
  std::iota(buffer.begin(), buffer.end(), 1);
  double best = 0;
  std::vector<uint64_t> sums(threads);
  for (int pass = 0; pass < 5; ++pass) {
    const auto start = Clock::now();
    std::vector<std::thread> workers;
    const size_t chunk = buffer.size() / threads;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        const uint64_t* p = buffer.data() + t * chunk;
        for (size_t i = 0; i + 4 <= chunk; i += 4) {
          s0 += p[i];
          s1 += p[i + 1];
          s2 += p[i + 2];
          s3 += p[i + 3];
        }
        sums[t] = s0 + s1 + s2 + s3;
      });
    }
    for (auto& w : workers) w.join();
    best = std::max(best, static_cast<double>(bytes) / Seconds(start, Clock::now()));
  }
  if (std::accumulate(sums.begin(), sums.end(), uint64_t{0}) == 42) std::puts("");  // keep sums
  return best;
}

Weight RandomBf16(int64_t n, int64_t k, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> dist(-std::sqrt(3.0f / k), std::sqrt(3.0f / k));
  Tensor t = Tensor::Zeros(DType::kBF16, {n, k});
  for (int64_t i = 0; i < n * k; ++i) t.data_as<uint16_t>()[i] = FloatToBf16(dist(rng));
  return *Weight::Dense(t);
}

int64_t WeightBytes(const Weight& w) {
  if (w.format() == WeightFormat::kDense) return static_cast<int64_t>(w.dense().nbytes());
  return static_cast<int64_t>(w.nvfp4().codes.nbytes() + w.nvfp4().block_scales.nbytes());
}

void LayerBench(int threads) {
  const int64_t hidden = 2048, experts = 64, width = 512, top_k = 8;
  const double bandwidth = ReadBandwidth(threads);
  std::printf("read bandwidth, %d threads: %.2f GB/s\n", threads, bandwidth / 1e9);
  std::mt19937_64 rng(1);
  auto backend = MakeCpuBackend({.threads = threads});
  const Weight router = RandomBf16(experts, hidden, rng);
  ExpertSet bf16{.first = 0, .hidden = hidden, .max_width = width};
  for (int64_t e = 0; e < experts; ++e) {
    bf16.experts.push_back({RandomBf16(width, hidden, rng), RandomBf16(width, hidden, rng),
                            RandomBf16(hidden, width, rng)});
  }
  ExpertSet nvfp4 = bf16;
  for (ExpertMlp& e : nvfp4.experts) {
    for (Weight* w : {&e.gate, &e.up, &e.down}) {
      Tensor f32 = Tensor::Zeros(DType::kF32, {w->rows(), w->cols()});
      for (int64_t i = 0; i < f32.numel(); ++i) {
        f32.data_as<float>()[i] = Bf16ToFloat(w->dense().data_as<uint16_t>()[i]);
      }
      *w = *QuantizeNvfp4(f32);
    }
  }
  const MoeRouting routing{.num_experts = experts, .top_k = top_k, .norm_topk_prob = true};
  std::printf("\nMoE layer decode: hidden %lld, %lld experts of width %lld, top %lld\n",
              static_cast<long long>(hidden), static_cast<long long>(experts),
              static_cast<long long>(width), static_cast<long long>(top_k));
  std::printf("%-6s %5s %8s %8s %10s %9s %s\n", "format", "seqs", "experts", "ms/step",
              "MB/step", "GB/s", "of bandwidth");
  for (const auto& [name, set] : {std::pair<const char*, const ExpertSet*>{"bf16", &bf16},
                                  {"nvfp4", &nvfp4}}) {
    for (int64_t seqs : {1, 8, 32}) {
      Tensor x = *backend->Allocate(DType::kF32, {seqs, hidden});
      std::normal_distribution<float> normal(0.0f, 1.0f);
      for (int64_t i = 0; i < x.numel(); ++i) x.data_as<float>()[i] = normal(rng);
      Tensor logits = *backend->Allocate(DType::kF32, {seqs, experts});
      Tensor ids = *backend->Allocate(DType::kI32, {seqs, top_k});
      Tensor weights = *backend->Allocate(DType::kF32, {seqs, top_k});
      Tensor out = *backend->Allocate(DType::kF32, {seqs, hidden});
      Tensor scratch = *backend->Allocate(
          DType::kU8, {backend->MoeExpertsWorkspaceBytes(seqs, top_k, *set)});
      auto step = [&] {
        (void)backend->Linear(x, router, logits);
        (void)backend->MoeRoute(logits, Tensor(), routing, ids, weights);
        (void)backend->MoeExperts(x, ids, weights, *set, scratch, out);
      };
      step();  // warm-up
      const int reps = seqs == 1 ? 40 : 15;
      const auto start = Clock::now();
      for (int r = 0; r < reps; ++r) step();
      const double per_step = Seconds(start, Clock::now()) / reps;
      std::set<int32_t> distinct(ids.data_as<int32_t>(), ids.data_as<int32_t>() + ids.numel());
      int64_t bytes = WeightBytes(router);
      for (int32_t e : distinct) {
        const ExpertMlp& m = set->experts[e];
        bytes += WeightBytes(m.gate) + WeightBytes(m.up) + WeightBytes(m.down);
      }
      const double rate = static_cast<double>(bytes) / per_step;
      std::printf("%-6s %5lld %8zu %8.3f %10.2f %9.2f %.0f%%\n", name,
                  static_cast<long long>(seqs), distinct.size(), per_step * 1e3, bytes / 1e6,
                  rate / 1e9, 100.0 * rate / bandwidth);
    }
  }
}

int ModelBench(const std::string& dir, int threads, int tokens, int seqs) {
  auto backend = MakeCpuBackend({.threads = threads});
  auto model = LoadModel(dir, *backend);
  if (!model.ok()) {
    std::fprintf(stderr, "moe_bench: %s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  testing::PagedDriver driver(**model, *backend, 16 * seqs * 8, 0);
  std::vector<std::pair<int, int64_t>> prefill, decode;
  for (int s = 0; s < seqs; ++s) {
    std::vector<int32_t> prompt;
    for (int i = 0; i < 16; ++i) prompt.push_back(5 + (s * 37 + i * 11) % 200);
    prefill.push_back({driver.Add(prompt), 16});
    decode.push_back({s, 1});
  }
  if (!driver.Step(prefill).ok()) return 1;
  double elapsed = 0;
  for (int t = 0; t < tokens + 1; ++t) {
    for (int s = 0; s < seqs; ++s) driver.Append(s, 7 + (t * 13 + s) % 200);
    const auto start = Clock::now();
    auto out = driver.Step(decode);
    if (!out.ok()) {
      std::fprintf(stderr, "moe_bench: %s\n", std::string(out.status().message()).c_str());
      return 1;
    }
    if (t > 0) elapsed += Seconds(start, Clock::now());  // step 0 warms up
  }
  std::printf("{\"decode_tokens_per_s\": %.3f, \"step_ms\": %.3f, \"seqs\": %d, \"threads\": %d}\n",
              tokens * seqs / elapsed, 1e3 * elapsed / tokens, seqs, threads);
  return 0;
}

}  // namespace
}  // namespace sparkstack

int main(int argc, char** argv) {
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int tokens = 32, seqs = 1;
  std::string model;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--threads") threads = std::atoi(argv[i + 1]);
    else if (flag == "--model") model = argv[i + 1];
    else if (flag == "--tokens") tokens = std::atoi(argv[i + 1]);
    else if (flag == "--seqs") seqs = std::atoi(argv[i + 1]);
  }
  if (!model.empty()) return sparkstack::ModelBench(model, threads, tokens, seqs);
  sparkstack::LayerBench(threads);
  return 0;
}
