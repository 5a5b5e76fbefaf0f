// Shared by the emulation tests: a fixture that gives every test a fresh emulated GB10, and device
// buffers that are plain host vectors (the emulated "device" memory is host memory).
#ifndef SPARKSTACK_TESTS_UNIT_KERNELS_EMU_EMU_TEST_UTIL_H_
#define SPARKSTACK_TESTS_UNIT_KERNELS_EMU_EMU_TEST_UTIL_H_

#include <string>

#include "gtest/gtest.h"
#include "kernels/cuda/runtime.h"

namespace sparkstack::emu {

class EmuTest : public ::testing::Test {
 protected:
  void SetUp() override { SetEmulatedDevice(Gb10Device()); }
  void TearDown() override { ResetEmulatedDevice(); }

  // Expects the last launch to have failed with `error` and a message containing `needle`.
  static void ExpectFailure(cudaError_t got, cudaError_t error, const std::string& needle) {
    EXPECT_EQ(got, error) << cudaGetErrorName(got);
    EXPECT_NE(LastKernelFailure().find(needle), std::string::npos) << LastKernelFailure();
    EXPECT_EQ(cudaDeviceSynchronize(), error) << "kernel errors are sticky";
    ResetEmulatedDevice();
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }
};

}  // namespace sparkstack::emu

#endif  // SPARKSTACK_TESTS_UNIT_KERNELS_EMU_EMU_TEST_UTIL_H_
