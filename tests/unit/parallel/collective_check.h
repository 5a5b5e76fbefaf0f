// Shared by the collective tests, the namespace test and the benchmark: deterministic per-rank
// inputs that any rank can regenerate, and an all-reduce check against a float64 (exact for i32)
// reference plus a cross-rank bit-identity check.
#ifndef SPARKSTACK_TESTS_UNIT_PARALLEL_COLLECTIVE_CHECK_H_
#define SPARKSTACK_TESTS_UNIT_PARALLEL_COLLECTIVE_CHECK_H_

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/core/dtype.h"
#include "runtime/core/half.h"
#include "runtime/parallel/communicator.h"

namespace sparkstack::testing {

inline uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Rank r's input element i, as the double its stored dtype value represents.
inline double InputValue(uint64_t seed, int rank, size_t i, DType dtype) {
  const uint64_t bits = SplitMix(seed ^ (uint64_t(rank) << 40) ^ i);
  if (dtype == DType::kI32) {
    // Includes large magnitudes; the sum of <= 4 stays in range (wrap-around is not tested here).
    return static_cast<double>(static_cast<int32_t>(bits) / 4);
  }
  const float v = static_cast<float>((bits >> 11) * 0x1.0p-53 * 2.0 - 1.0);
  switch (dtype) {
    case DType::kBF16:
      return Bf16ToFloat(FloatToBf16(v));
    case DType::kF16:
      return F16ToFloat(FloatToF16(v));
    default:
      return v;
  }
}

inline void Store(void* base, size_t i, double v, DType dtype) {
  switch (dtype) {
    case DType::kF32:
      static_cast<float*>(base)[i] = static_cast<float>(v);
      break;
    case DType::kBF16:
      static_cast<uint16_t*>(base)[i] = FloatToBf16(static_cast<float>(v));
      break;
    case DType::kF16:
      static_cast<uint16_t*>(base)[i] = FloatToF16(static_cast<float>(v));
      break;
    case DType::kI32:
      static_cast<int32_t*>(base)[i] = static_cast<int32_t>(v);
      break;
    default:
      break;
  }
}

inline double Load(const void* base, size_t i, DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return static_cast<const float*>(base)[i];
    case DType::kBF16:
      return Bf16ToFloat(static_cast<const uint16_t*>(base)[i]);
    case DType::kF16:
      return F16ToFloat(static_cast<const uint16_t*>(base)[i]);
    case DType::kI32:
      return static_cast<const int32_t*>(base)[i];
    default:
      return 0;
  }
}

// Relative error bound per rank added, in units of sum |x|: the dtype's rounding (the ring rounds
// f16/bf16 once per step).
inline double Tolerance(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 0x1.0p-23;
    case DType::kBF16:
      return 0x1.0p-7;
    case DType::kF16:
      return 0x1.0p-10;
    default:
      return 0;
  }
}

inline uint64_t Fnv(const void* data, size_t bytes) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < bytes; ++i)
    h = (h ^ static_cast<const unsigned char*>(data)[i]) * 1099511628211ull;
  return h;
}

// One rank's all-reduce check: fill, reduce, compare with the float64 reference, and check that
// every rank holds bit-identical results.
inline absl::Status CheckAllReduce(Communicator& comm, size_t count, DType dtype, uint64_t seed) {
  const size_t elem = DTypeByteSize(dtype, 1);
  std::vector<char> buffer(count * elem);
  for (size_t i = 0; i < count; ++i)
    Store(buffer.data(), i, InputValue(seed, comm.rank(), i, dtype), dtype);
  if (absl::Status s = comm.AllReduceSum(buffer.data(), count, dtype); !s.ok()) return s;
  size_t mismatches = 0;
  std::string first;
  for (size_t i = 0; i < count; ++i) {
    double reference = 0, magnitude = 0;
    for (int r = 0; r < comm.size(); ++r) {
      const double v = InputValue(seed, r, i, dtype);
      reference += v;
      magnitude += std::fabs(v);
    }
    const double got = Load(buffer.data(), i, dtype);
    const double tol = Tolerance(dtype) * comm.size() * magnitude;
    if (std::fabs(got - reference) > tol) {
      if (mismatches++ < 3) {
        absl::StrAppend(&first, " [", i, "] got ", got, " want ", reference, " tol ", tol, ";");
      }
    }
  }
  if (mismatches > 0) {
    return absl::InternalError(absl::StrCat("rank ", comm.rank(), ": ", mismatches, " of ", count,
                                            " ", std::string(DTypeName(dtype)),
                                            " elements wrong:", first));
  }
  uint64_t hash = Fnv(buffer.data(), buffer.size());
  std::vector<uint64_t> hashes(comm.size());
  if (absl::Status s = comm.AllGather(&hash, hashes.data(), 2, DType::kI32); !s.ok()) return s;
  for (int r = 0; r < comm.size(); ++r) {
    if (hashes[r] != hash) {
      return absl::InternalError(absl::StrCat("rank ", comm.rank(), " and rank ", r,
                                              " hold different all-reduce results (", count, " ",
                                              std::string(DTypeName(dtype)), ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace sparkstack::testing

#endif  // SPARKSTACK_TESTS_UNIT_PARALLEL_COLLECTIVE_CHECK_H_
