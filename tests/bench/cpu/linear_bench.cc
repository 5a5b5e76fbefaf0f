// Dense f32 linear layers, sparkstack's packed GEMM against OpenBLAS's sgemm (Debian's
// libopenblas) in the same run, at decode (M = 1, 8, 32) and prefill (M = 512) sizes on
// model-shaped weights. Prints each side's GFLOP/s (median of the repetitions) and the ratio.
//
//   build/tests/bench/cpu/linear_bench [--threads=N] [--cold_mb=MB] [benchmark flags]
//
// --threads: both libraries' thread count (default: all cores); with 1 thread the figures use the
// calling thread's CPU time, which is robust on a busy machine. --cold_mb: at M <= 32 each
// iteration uses the next of enough weight copies to span this many MB per library (default 256),
// so decode reads weights from memory as a model does, not from cache.
#include <cblas.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/packed_dense.h"
#include "kernels/cpu/thread_pool.h"

extern "C" void openblas_set_num_threads(int num_threads);

namespace sparkstack::kernels {
namespace {

struct Shape {
  const char* name;
  int64_t n, k;
};

// The layers of llamacpp_bench.mjs's model (hidden 1024, 16 q / 4 kv heads of 64, MLP 2816), a
// 32000-entry lm_head (a real vocabulary's) and one Llama-8B-sized square projection.
constexpr Shape kShapes[] = {{"q_o_proj", 1024, 1024}, {"kv_proj", 256, 1024},
                             {"gate_up", 2816, 1024},  {"down", 1024, 2816},
                             {"lm_head", 32000, 1024}, {"proj_4096", 4096, 4096}};
constexpr int64_t kRows[] = {1, 8, 32, 512};

int g_threads = 0;
int64_t g_cold_mb = 256;

std::vector<float> RandomFloats(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(count);
  for (float& x : v) x = normal(rng);
  return v;
}

int Copies(const Shape& s, int64_t m) {
  if (m > 32) return 1;
  const int64_t bytes = s.n * s.k * 4;
  return static_cast<int>(std::clamp<int64_t>(g_cold_mb * (1 << 20) / bytes, 1, 256));
}

void SetFlops(benchmark::State& state, int64_t m, const Shape& s) {
  state.counters["FLOPS"] =
      benchmark::Counter(2.0 * m * s.n * s.k, benchmark::Counter::kIsIterationInvariantRate);
}

// Weight copies are made once per shape and side and kept across repetitions (and freed when the
// next shape starts, so only one shape's copies are alive per side).
template <typename Make>
const std::vector<std::unique_ptr<float[]>>& CachedCopies(const Shape& s, int copies,
                                                          const Make& make) {
  static std::string key;
  static std::vector<std::unique_ptr<float[]>> cached;
  const std::string wanted = std::string(s.name) + "/" + std::to_string(copies);
  if (key != wanted) {
    cached.clear();
    for (int c = 0; c < copies; ++c) cached.push_back(make());
    key = wanted;
  }
  return cached;
}

const std::vector<float>& Weights(const Shape& s) {
  static std::string key;
  static std::vector<float> w;
  if (key != s.name) {
    w = RandomFloats(s.n * s.k, 1);
    key = s.name;
  }
  return w;
}

void BenchSparkstack(benchmark::State& state, Shape s, int64_t m) {
  static ThreadPool pool(g_threads);
  const int copies = Copies(s, m);
  const auto& packed = CachedCopies(s, copies, [&] {
    std::unique_ptr<float[]> p(new float[PackedDenseElements(s.n, s.k)]);
    PackDense(Weights(s).data(), DType::kF32, s.n, s.k, p.get(), pool);
    return p;
  });
  const std::vector<float> x = RandomFloats(m * s.k, 2);
  std::vector<float> y(m * s.n);
  int next = 0;
  for (auto _ : state) {
    PackedDenseLinear(x.data(), m, s.k, packed[next].get(), DType::kF32, s.n, y.data(), pool,
                      BestCpuIsa());
    benchmark::DoNotOptimize(y.data());
    next = (next + 1) % copies;
  }
  SetFlops(state, m, s);
}

void BenchOpenBlas(benchmark::State& state, Shape s, int64_t m) {
  openblas_set_num_threads(g_threads);
  const int copies = Copies(s, m);
  const auto& weights = CachedCopies(s, copies, [&] {
    std::unique_ptr<float[]> w(new float[s.n * s.k]);
    std::copy(Weights(s).begin(), Weights(s).end(), w.get());
    return w;
  });
  const std::vector<float> x = RandomFloats(m * s.k, 2);
  std::vector<float> y(m * s.n);
  int next = 0;
  for (auto _ : state) {
    // y[m, n] = x[m, k] · W[n, k]^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(s.n),
                static_cast<int>(s.k), 1.0f, x.data(), static_cast<int>(s.k), weights[next].get(),
                static_cast<int>(s.k), 0.0f, y.data(), static_cast<int>(s.n));
    benchmark::DoNotOptimize(y.data());
    next = (next + 1) % copies;
  }
  SetFlops(state, m, s);
}

// Console output as usual, plus a table of GFLOP/s and ratios at the end.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      if (run.aggregate_name != "median" && run.aggregate_name != "best" &&
          !run.aggregate_name.empty()) {
        continue;
      }
      const std::string name = run.run_name.function_name;
      const size_t slash = name.find('/');
      const auto it = run.counters.find("FLOPS");
      if (slash == std::string::npos || it == run.counters.end()) continue;
      const std::string key =
          name.substr(slash + 1) + (run.aggregate_name == "best" ? " best" : "");
      gflops_[key][name.substr(0, slash)] = it->second.value / 1e9;
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf("\n%-26s %12s %12s %8s   (%d threads, sparkstack isa %s)\n", "shape N x K / M",
                "sparkstack", "openblas", "ratio", g_threads, CpuIsaName(BestCpuIsa()));
    for (const auto& [key, sides] : gflops_) {
      const auto ours = sides.find("sparkstack");
      const auto blas = sides.find("openblas");
      if (ours == sides.end() || blas == sides.end()) continue;
      std::printf("%-26s %9.1f GF %9.1f GF %7.2fx\n", key.c_str(), ours->second, blas->second,
                  ours->second / blas->second);
    }
  }

 private:
  std::map<std::string, std::map<std::string, double>> gflops_;
};

}  // namespace
}  // namespace sparkstack::kernels

int main(int argc, char** argv) {
  using namespace sparkstack::kernels;
  g_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      g_threads = std::max(1, std::atoi(argv[i] + 10));
    } else if (std::strncmp(argv[i], "--cold_mb=", 10) == 0) {
      g_cold_mb = std::max(1, std::atoi(argv[i] + 10));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  for (const Shape& s : kShapes) {
    for (int64_t m : kRows) {
      if (m == 512 && s.n >= 32000) continue;  // prefill computes logits of the last tokens only
      char key[96];
      std::snprintf(key, sizeof(key), "%s_%lldx%lld/M=%03lld", s.name, static_cast<long long>(s.n),
                    static_cast<long long>(s.k), static_cast<long long>(m));
      // One thread: the caller's CPU time, which time slices lost to other processes of a busy
      // machine do not inflate. Several threads: wall time (the workers' CPU time is not seen).
      for (auto* b : {benchmark::RegisterBenchmark((std::string("sparkstack/") + key).c_str(),
                                                   BenchSparkstack, s, m),
                      benchmark::RegisterBenchmark((std::string("openblas/") + key).c_str(),
                                                   BenchOpenBlas, s, m)}) {
        b->Unit(benchmark::kMicrosecond);
        // With repetitions: the median, and the best repetition (the least disturbed by others).
        b->ComputeStatistics("best", [](const std::vector<double>& v) {
          return *std::max_element(v.begin(), v.end());
        });
        if (g_threads > 1) b->UseRealTime();
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
