#include "launcher/bench_load.h"

#include <algorithm>
#include <random>

namespace sparkstack::launcher {
namespace {

int64_t Jitter(std::mt19937_64& rng, int64_t length, double ratio) {
  const auto lo = static_cast<int64_t>(length * (1.0 - ratio));
  const auto hi = static_cast<int64_t>(length * (1.0 + ratio));
  return std::max<int64_t>(1, lo + static_cast<int64_t>(rng() % (hi - lo + 1)));
}

}  // namespace

std::vector<BenchRequest> MakeBenchRequests(int num_prompts, int64_t input_len, int64_t output_len,
                                            double range_ratio, uint64_t seed, int64_t vocab) {
  std::mt19937_64 rng(seed);
  std::vector<BenchRequest> requests(num_prompts);
  for (int i = 0; i < num_prompts; ++i) {
    BenchRequest& r = requests[i];
    r.prompt_ids.resize(Jitter(rng, input_len, range_ratio));
    for (int32_t& id : r.prompt_ids) id = static_cast<int32_t>(rng() % vocab);
    r.max_tokens = Jitter(rng, output_len, range_ratio);
    r.seed = seed + i;
  }
  return requests;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const double rank = p / 100.0 * (values.size() - 1);
  const size_t lo = static_cast<size_t>(rank);
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (rank - lo);
}

}  // namespace sparkstack::launcher
