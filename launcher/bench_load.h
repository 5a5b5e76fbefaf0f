// The random load of `sparkstack bench`, shared by the offline mode (bench_command.cc) and the
// online one (--url, bench_serve.cc) so that both run exactly the same requests: prompts of
// uniformly random token ids, lengths uniform in [len x (1 - r), len x (1 + r)], all drawn from
// one mt19937_64 seeded with --seed. Also the percentile both report.
#ifndef SPARKSTACK_LAUNCHER_BENCH_LOAD_H_
#define SPARKSTACK_LAUNCHER_BENCH_LOAD_H_

#include <cstdint>
#include <vector>

namespace sparkstack::launcher {

struct BenchRequest {
  std::vector<int32_t> prompt_ids;
  int64_t max_tokens = 0;  // generated exactly (EOS ignored)
  uint64_t seed = 0;       // sampling seed: --seed + the request's index
};

std::vector<BenchRequest> MakeBenchRequests(int num_prompts, int64_t input_len, int64_t output_len,
                                            double range_ratio, uint64_t seed, int64_t vocab);

// The p-th percentile (0..100) by linear interpolation; 0 for no samples.
double Percentile(std::vector<double> values, double p);

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_BENCH_LOAD_H_
