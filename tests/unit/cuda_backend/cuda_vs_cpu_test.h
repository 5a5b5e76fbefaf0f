// The fixture of the CUDA op tests: one CUDA backend per suite (the CPU emulation of the GPU in
// `emulated` builds; the device in CUDA builds, skipping cleanly without one) and a CPU backend to
// compare it with, plus the host <-> device tensor helpers every such test needs.
#ifndef SPARKSTACK_TESTS_UNIT_CUDA_BACKEND_CUDA_VS_CPU_TEST_H_
#define SPARKSTACK_TESTS_UNIT_CUDA_BACKEND_CUDA_VS_CPU_TEST_H_

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/backend/cuda/cuda_backend.h"
#include "tests/unit/backend/backend_test_util.h"

#if defined(SPARKSTACK_CUDA_EMULATION)
#include "kernels/emu/runtime.h"
#endif

namespace sparkstack::testing {

// kOptions: the suite's CUDA backend limits. Each instantiation has its own backends.
template <CudaBackendOptions (*kOptions)()>
class CudaVsCpuTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
#if defined(SPARKSTACK_CUDA_EMULATION)
    emu::SetEmulatedDevice(emu::Gb10Device());
#endif
    auto backend = MakeCudaBackend(kOptions());
    if (backend.ok()) {
      cuda_ = backend->release();
    } else {
      why_ = std::string(backend.status().message());
    }
    cpu_ = MakeCpuBackend({.threads = 2}).release();
  }
  static void TearDownTestSuite() {
    delete cuda_;
    cuda_ = nullptr;
    delete cpu_;
    cpu_ = nullptr;
  }
  void SetUp() override {
#if defined(SPARKSTACK_CUDA_EMULATION)
    ASSERT_NE(cuda_, nullptr) << why_;
#else
    if (cuda_ == nullptr) GTEST_SKIP() << why_;
#endif
  }

  Backend& cuda() { return *cuda_; }
  Backend& cpu() { return *cpu_; }

  // Host tensor of normal values (rounded to dtype).
  Tensor Random(const Shape& shape, DType dtype = DType::kF32, float scale = 1.0f) {
    return RandomTensor(rng_, shape, dtype, scale);
  }
  Tensor OnDevice(const Tensor& host) {
    auto t = cuda().Upload(host);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : Tensor();
  }
  // A device tensor of NaN (f32) or 0xff bytes: an element a kernel fails to write shows.
  Tensor Poisoned(const Shape& shape, DType dtype = DType::kF32) {
    Tensor host = Tensor::Zeros(dtype, shape);
    if (dtype == DType::kF32) {
      std::fill_n(host.data_as<float>(), host.numel(), std::numeric_limits<float>::quiet_NaN());
    } else {
      std::fill_n(static_cast<uint8_t*>(host.data()), host.nbytes(), uint8_t{0xff});
    }
    return OnDevice(host);
  }
  Tensor Host(const Tensor& device) {
    Tensor t = Tensor::Zeros(device.dtype(), device.shape());
    EXPECT_TRUE(cuda().CopyToHost(device, t.data()).ok());
    return t;
  }
  static Tensor Indices(const std::vector<int32_t>& v) {
    Tensor t = Tensor::Zeros(DType::kI32, {static_cast<int64_t>(v.size())});
    std::copy(v.begin(), v.end(), t.data_as<int32_t>());
    return t;
  }

  std::mt19937 rng_{std::random_device{}()};

 private:
  static inline Backend* cuda_ = nullptr;
  static inline Backend* cpu_ = nullptr;
  static inline std::string why_;
};

}  // namespace sparkstack::testing

#endif  // SPARKSTACK_TESTS_UNIT_CUDA_BACKEND_CUDA_VS_CPU_TEST_H_
