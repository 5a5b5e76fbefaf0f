#include "kernels/cpu/nvfp4_self_check.h"

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/nvfp4_reference.h"
#include "spdlog/spdlog.h"

namespace sparkstack::kernels {

bool Nvfp4CpuPathAgreesWithReference(Nvfp4CpuPath path) {
  constexpr int64_t m = 3, n = 37, k = 272;
  std::mt19937 rng(0x5eed);
  std::normal_distribution<float> normal;
  std::vector<float> w(n * k), x(m * k);
  for (float& v : w) v = normal(rng);
  for (float& v : x) v = normal(rng);
  std::vector<uint8_t> codes(n * k / 2), scales(n * k / 16);
  float global_scale = 0;
  Nvfp4QuantizeWeightReference(w.data(), n, k, k, codes.data(), k / 2, scales.data(), k / 16,
                               &global_scale);
  std::vector<double> want(m * n);
  Nvfp4GemmReference(x.data(), m, k, k, codes.data(), k / 2, scales.data(), k / 16, global_scale,
                     n, want.data(), n);
  std::vector<float> got(m * n, NAN);
  if (!Nvfp4LinearF32WithPath(path, x.data(), m, k, codes.data(), scales.data(), global_scale, n,
                              got.data())) {
    return false;
  }
  double scale = 1e-30, worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::fabs(want[i]));
    const double err = std::fabs(got[i] - want[i]);
    worst = std::isnan(err) ? INFINITY : std::max(worst, err);
  }
  return worst <= 1e-4 * scale;
}

Nvfp4CpuPath SelectVerifiedNvfp4CpuPath() {
  const Nvfp4CpuPath best = BestNvfp4CpuPath();
  if (best == Nvfp4CpuPath::kScalar || Nvfp4CpuPathAgreesWithReference(best)) {
    if (best == Nvfp4CpuPath::kScalar && !Nvfp4CpuPathAgreesWithReference(best)) {
      spdlog::error("nvfp4 cpu: the scalar path disagrees with the float64 reference");
    }
    return best;
  }
  spdlog::warn("nvfp4 cpu: the {} path disagrees with the float64 reference; using scalar",
               Nvfp4CpuPathName(best));
  return Nvfp4CpuPath::kScalar;
}

}  // namespace sparkstack::kernels
