// Pearson's chi-square goodness-of-fit statistic and an upper critical value, for the statistical
// tests of the random number generator and the samplers (fixed seeds, so each test is
// deterministic; the critical values only say how unlikely a failure of a correct sampler is).
#ifndef SPARKSTACK_TESTS_UNIT_CORE_CHI_SQUARE_H_
#define SPARKSTACK_TESTS_UNIT_CORE_CHI_SQUARE_H_

#include <cmath>
#include <cstdint>
#include <vector>

namespace sparkstack::testing {

// Sum over the cells of (observed - expected)^2 / expected, with expected = draws * p. Cells with
// p == 0 must have no observations (a draw there is an error, reported as infinity).
inline double ChiSquare(const std::vector<int64_t>& observed, const std::vector<double>& p,
                        int64_t draws) {
  double chi2 = 0.0;
  for (size_t i = 0; i < observed.size(); ++i) {
    const double expected = static_cast<double>(draws) * p[i];
    if (expected == 0.0) {
      if (observed[i] != 0) return INFINITY;
      continue;
    }
    const double d = static_cast<double>(observed[i]) - expected;
    chi2 += d * d / expected;
  }
  return chi2;
}

// Number of cells with p > 0, minus one: the degrees of freedom of ChiSquare.
inline int DegreesOfFreedom(const std::vector<double>& p) {
  int cells = 0;
  for (double v : p) cells += v > 0.0 ? 1 : 0;
  return cells - 1;
}

// Upper quantile of the chi-square distribution with `df` degrees of freedom at the standard
// normal quantile `z` (z = 4.26: a correct sampler fails with probability 1e-5), by the
// Wilson-Hilferty cube-root approximation (within a fraction of a percent for df >= 3).
inline double ChiSquareCritical(int df, double z = 4.26) {
  const double k = static_cast<double>(df);
  const double a = 2.0 / (9.0 * k);
  const double c = 1.0 - a + z * std::sqrt(a);
  return k * c * c * c;
}

}  // namespace sparkstack::testing

#endif  // SPARKSTACK_TESTS_UNIT_CORE_CHI_SQUARE_H_
