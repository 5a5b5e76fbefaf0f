// Memory operations of the emulation: cp.async groups (PTX ISA 9.7.9.25.3: completion only at the
// covering wait_group, zero fill from src-size, alignment) and streaming global loads.
#include <cmath>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/cp_async.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/global_memory.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/shared_memory.h"
#include "tests/unit/kernels/emu/emu_test_util.h"

namespace sparkstack::emu {
namespace {

// Three groups of one 16-byte copy each; what the thread sees after each wait.
__global__ void CpAsyncGroups(const uint32_t* src, uint32_t* seen) {
  uint32_t* s = cuda::DynamicSharedMemory<uint32_t>();
  const int t = static_cast<int>(threadIdx.x);
  for (int g = 0; g < 3; ++g) {
    cuda::CpAsync<16>(s + (3 * t + g) * 4, src + g * 4, 16);
    cuda::CpAsyncCommitGroup();
  }
  seen[t * 4 + 0] = s[(3 * t + 0) * 4];  // no wait yet: poison
  cuda::CpAsyncWaitGroup<2>();           // group 0 complete, groups 1 and 2 may be pending
  seen[t * 4 + 1] = s[(3 * t + 0) * 4];
  seen[t * 4 + 2] = s[(3 * t + 1) * 4];
  cuda::CpAsyncWaitGroup<0>();
  seen[t * 4 + 3] = s[(3 * t + 1) * 4] + s[(3 * t + 2) * 4];
}

TEST_F(EmuTest, CpAsyncDataLandsAtTheCoveringWaitGroup) {
  const std::vector<uint32_t> src = {1, 0, 0, 0, 20, 0, 0, 0, 300, 0, 0, 0};
  std::vector<uint32_t> seen(2 * 4, 0);
  ASSERT_EQ(cuda::LaunchKernel(&CpAsyncGroups, 1, 2, 2 * 3 * 16, nullptr, src.data(), seen.data()),
            cudaSuccess);
  for (int t = 0; t < 2; ++t) {
    EXPECT_EQ(seen[t * 4 + 0], 0xffffffffu);
    EXPECT_EQ(seen[t * 4 + 1], 1u);
    EXPECT_EQ(seen[t * 4 + 2], 0xffffffffu);
    EXPECT_EQ(seen[t * 4 + 3], 320u);
  }
}

__global__ void CpAsyncZeroFill(const uint8_t* src, uint8_t* out) {
  uint8_t* s = cuda::DynamicSharedMemory<uint8_t>();
  cuda::CpAsync<16>(s, src, 5);
  cuda::CpAsync<8>(s + 16, src, 0);
  cuda::CpAsync<4>(s + 24, src + 4, 4);
  cuda::CpAsyncCommitGroup();
  cuda::CpAsyncWaitGroup<0>();
  for (int i = 0; i < 32; ++i) out[i] = s[i];
}

TEST_F(EmuTest, CpAsyncZeroFillsBeyondSrcSize) {
  alignas(16) const uint8_t src[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  std::vector<uint8_t> out(32, 0xaa);
  ASSERT_EQ(cuda::LaunchKernel(&CpAsyncZeroFill, 1, 1, 32, nullptr, src, out.data()), cudaSuccess);
  const std::vector<uint8_t> want = {1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0, 0,    0,    0,    0,
                                     0, 0, 0, 0, 0, 0, 0, 0, 5, 6, 7, 8, 0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(out, want);
}

__global__ void CpAsyncNeverWaited(const uint8_t* src) {
  cuda::CpAsync<16>(cuda::DynamicSharedMemory<uint8_t>(), src, 16);
  cuda::CpAsyncCommitGroup();
}

TEST_F(EmuTest, ExitingWithCpAsyncOutstandingFailsTheLaunch) {
  alignas(16) const uint8_t src[16] = {};
  ExpectFailure(cuda::LaunchKernel(&CpAsyncNeverWaited, 1, 32, 16, nullptr, src),
                cudaErrorLaunchFailure, "not waited for");
}

__global__ void CpAsyncMisaligned(const uint8_t* src) {
  cuda::CpAsync<16>(cuda::DynamicSharedMemory<uint8_t>() + 8, src, 16);
  cuda::CpAsyncWaitGroup<0>();
}

TEST_F(EmuTest, CpAsyncChecksAlignmentAndBounds) {
  alignas(16) const uint8_t src[16] = {};
  ExpectFailure(cuda::LaunchKernel(&CpAsyncMisaligned, 1, 1, 32, nullptr, src),
                cudaErrorMisalignedAddress, "aligned");
  ExpectFailure(cuda::LaunchKernel(&CpAsyncMisaligned, 1, 1, 16, nullptr, src),
                cudaErrorIllegalAddress, "shared memory");
}

__global__ void StreamingLoad(const uint8_t* p, uint32_t* out) {
  out[0] = cuda::LoadGlobalStreaming16(p).y;
  out[1] = cuda::LoadGlobalStreaming8(p + 8).x;
}

TEST_F(EmuTest, StreamingLoadsMustBeAligned) {
  alignas(16) const uint32_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  uint32_t out[2] = {0, 0};
  const auto* bytes = reinterpret_cast<const uint8_t*>(data);
  ASSERT_EQ(cuda::LaunchKernel(&StreamingLoad, 1, 1, 0, nullptr, bytes, out), cudaSuccess);
  EXPECT_EQ(out[0], 2u);
  EXPECT_EQ(out[1], 3u);
  ExpectFailure(cuda::LaunchKernel(&StreamingLoad, 1, 1, 0, nullptr, bytes + 8, out),
                cudaErrorMisalignedAddress, "misaligned");
}

}  // namespace
}  // namespace sparkstack::emu
