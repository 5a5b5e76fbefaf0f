// Helpers of the backend op tests: random tensors, element reads as double, comparison against a
// float64 reference printing the first mismatches, i32 index tensors.
#ifndef SPARKSTACK_TESTS_UNIT_BACKEND_BACKEND_TEST_UTIL_H_
#define SPARKSTACK_TESTS_UNIT_BACKEND_BACKEND_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/core/half.h"
#include "runtime/core/tensor.h"

namespace sparkstack::testing {

inline Tensor RandomTensor(std::mt19937& rng, const Shape& shape, DType dtype, float scale) {
  std::normal_distribution<float> dist(0.0f, scale);
  Tensor t = Tensor::Zeros(dtype, shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float v = dist(rng);
    switch (dtype) {
      case DType::kF32:
        t.data_as<float>()[i] = v;
        break;
      case DType::kBF16:
        t.data_as<uint16_t>()[i] = FloatToBf16(v);
        break;
      case DType::kF16:
        t.data_as<uint16_t>()[i] = FloatToF16(v);
        break;
      case DType::kI32:
        t.data_as<int32_t>()[i] = static_cast<int32_t>(v);
        break;
      default:
        break;
    }
  }
  return t;
}

inline double ValueAt(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kF32:
      return t.data_as<float>()[i];
    case DType::kBF16:
      return Bf16ToFloat(t.data_as<uint16_t>()[i]);
    case DType::kF16:
      return F16ToFloat(t.data_as<uint16_t>()[i]);
    default:
      return NAN;
  }
}

// |got - want| / max(1, max |want|) <= tolerance for every element; prints the first mismatches.
inline void ExpectClose(const Tensor& got, const std::vector<double>& want, double tolerance) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
  double max_abs = 1.0;
  for (double w : want) max_abs = std::max(max_abs, std::fabs(w));
  int reported = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double err = std::fabs(got.data_as<float>()[i] - want[i]) / max_abs;
    if (!(err <= tolerance) && reported++ < 5) {
      ADD_FAILURE() << "element " << i << ": got " << got.data_as<float>()[i] << ", want "
                    << want[i];
    }
  }
}

inline void Poison(Tensor& t) {
  for (int64_t i = 0; i < t.numel(); ++i) t.data_as<float>()[i] = NAN;
}

inline Tensor Indices(const std::vector<int32_t>& values) {
  Tensor t = Tensor::Zeros(DType::kI32, {static_cast<int64_t>(values.size())});
  std::copy(values.begin(), values.end(), t.data_as<int32_t>());
  return t;
}

}  // namespace sparkstack::testing

#endif  // SPARKSTACK_TESTS_UNIT_BACKEND_BACKEND_TEST_UTIL_H_
