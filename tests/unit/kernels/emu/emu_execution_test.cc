// The emulation's execution model: thread and block indices, barriers (and barrier misuse),
// deadlocks, shared memory poisoning and release, launch checks, sticky errors.
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/shared_memory.h"
#include "tests/unit/kernels/emu/emu_test_util.h"

namespace sparkstack::emu {
namespace {

__global__ void WriteIndices(uint32_t* out) {
  const uint32_t block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const uint32_t thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const uint32_t threads = blockDim.x * blockDim.y * blockDim.z;
  out[block * threads + thread] = block * 1000 + thread;
}

TEST_F(EmuTest, EveryThreadOfEveryBlockRunsOnceWithItsIndices) {
  const dim3 grid(3, 2, 2), block(5, 3, 2);
  const int total = 3 * 2 * 2 * 5 * 3 * 2;
  std::vector<uint32_t> out(total, 0xffffffffu);
  ASSERT_EQ(cuda::LaunchKernel(&WriteIndices, grid, block, 0, nullptr, out.data()), cudaSuccess);
  for (int i = 0; i < total; ++i) EXPECT_EQ(out[i], (i / 30) * 1000 + i % 30) << i;
}

// Tree reduction in shared memory: each level needs the barrier before it.
__global__ void BlockSum(const float* in, float* out) {
  float* s = cuda::DynamicSharedMemory<float>();
  s[threadIdx.x] = in[blockIdx.x * blockDim.x + threadIdx.x];
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) s[threadIdx.x] += s[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = s[0];
}

TEST_F(EmuTest, BarriersOrderSharedMemoryAcrossThreads) {
  const int blocks = 3, threads = 128;
  std::vector<float> in(blocks * threads);
  std::iota(in.begin(), in.end(), 1.0f);
  std::vector<float> out(blocks, NAN);
  ASSERT_EQ(cuda::LaunchKernel(&BlockSum, blocks, threads, threads * sizeof(float), nullptr,
                               in.data(), out.data()),
            cudaSuccess);
  for (int b = 0; b < blocks; ++b) {
    const float first = 1.0f + b * threads, last = first + threads - 1;
    EXPECT_EQ(out[b], (first + last) * threads / 2) << b;
  }
}

// Each thread reads its right neighbour's slot without a barrier: on a GPU a race, here the
// neighbour (a later fiber) has not written yet and the slot still holds the poison.
__global__ void MissingBarrier(float* out) {
  float* s = cuda::DynamicSharedMemory<float>();
  s[threadIdx.x] = 1.0f;
  out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

TEST_F(EmuTest, AMissingBarrierReadsPoisonedSharedMemory) {
  std::vector<float> out(64, 0.0f);
  ASSERT_EQ(cuda::LaunchKernel(&MissingBarrier, 1, 64, 64 * sizeof(float), nullptr, out.data()),
            cudaSuccess);
  EXPECT_TRUE(std::isnan(out[0])) << "thread 0 read thread 1's slot before thread 1 wrote it";
}

// Releasing a range at a barrier poisons it for everyone after the barrier.
__global__ void ReadAfterRelease(float* out) {
  float* s = cuda::DynamicSharedMemory<float>();
  s[threadIdx.x] = 2.0f;
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x];  // fine: written in this stage
  cuda::ReleaseSharedAtNextBarrier(s, 32 * sizeof(float));
  __syncthreads();
  out[32 + threadIdx.x] = s[threadIdx.x];  // stale: released above
}

TEST_F(EmuTest, ReleasedSharedMemoryReadsAsPoison) {
  std::vector<float> out(64, 0.0f);
  ASSERT_EQ(cuda::LaunchKernel(&ReadAfterRelease, 1, 32, 32 * sizeof(float), nullptr, out.data()),
            cudaSuccess);
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(out[i], 2.0f);
    EXPECT_TRUE(std::isnan(out[32 + i]));
  }
}

__global__ void StaticSharedSum(int* out) {
  SPARKSTACK_SHARED_ARRAY(int, partial, 64);
  partial[threadIdx.x] = static_cast<int>(threadIdx.x);
  __syncthreads();
  if (threadIdx.x == 0) {
    int sum = 0;
    for (int i = 0; i < 64; ++i) sum += partial[i];
    out[blockIdx.x] = sum;
  }
}

TEST_F(EmuTest, StaticSharedArraysArePerBlock) {
  std::vector<int> out(2, -1);
  ASSERT_EQ(cuda::LaunchKernel(&StaticSharedSum, 2, 64, 0, nullptr, out.data()), cudaSuccess);
  EXPECT_EQ(out[0], 63 * 64 / 2);
  EXPECT_EQ(out[1], 63 * 64 / 2);
}

__global__ void DivergentBarrier(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

TEST_F(EmuTest, BarriersAtDifferentSitesFailTheLaunch) {
  std::vector<int> out(64, 0);
  ExpectFailure(cuda::LaunchKernel(&DivergentBarrier, 1, 64, 0, nullptr, out.data()),
                cudaErrorLaunchFailure, "divergent");
}

// Lanes 0-15 wait in a full-mask shuffle for lanes 16-31, which wait at the barrier for them.
__global__ void HalfWarpShuffle(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
  __syncthreads();
  out[threadIdx.x] = v;
}

// Lanes that exited do not hold a shuffle up (PTX 9.7.9.6: it waits for the non-exited lanes of
// the mask); reading from one of them is undefined and reads the poison.
__global__ void ShuffleAfterHalfExited(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x >= 16) return;
  v = __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
  out[16 + threadIdx.x] = __shfl_xor_sync(0xffffffffu, v, 16);
}

TEST_F(EmuTest, ShufflesWaitOnlyForLanesThatHaveNotExited) {
  std::vector<int> out(32, 0);
  ASSERT_EQ(cuda::LaunchKernel(&ShuffleAfterHalfExited, 1, 32, 0, nullptr, out.data()),
            cudaSuccess);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(out[i], i ^ 1);
    EXPECT_EQ(out[16 + i], -1) << "read from an exited lane: the 0xff poison";
  }
}

TEST_F(EmuTest, AShuffleSomeLanesNeverReachIsADeadlock) {
  std::vector<int> out(32, 0);
  ExpectFailure(cuda::LaunchKernel(&HalfWarpShuffle, 1, 32, 0, nullptr, out.data()),
                cudaErrorLaunchFailure, "deadlock");
}

__global__ void EarlyExitThenBarrier(int* out) {
  if (threadIdx.x >= 40) return;  // exited threads do not hold a barrier up (PTX 9.7.13.1)
  __syncthreads();
  out[threadIdx.x] = 7;
}

TEST_F(EmuTest, ExitedThreadsDoNotBlockBarriers) {
  std::vector<int> out(64, 0);
  ASSERT_EQ(cuda::LaunchKernel(&EarlyExitThenBarrier, 1, 64, 0, nullptr, out.data()), cudaSuccess);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(out[i], i < 40 ? 7 : 0) << i;
}

__global__ void Trap() { __trap(); }

TEST_F(EmuTest, TrapFailsTheLaunchAndTheErrorIsSticky) {
  ExpectFailure(cuda::LaunchKernel(&Trap, 2, 32, 0, nullptr), cudaErrorLaunchFailure, "__trap");
}

__global__ void TouchDynamicShared(int* out) { out[0] = cuda::DynamicSharedMemory<int>()[0]; }

TEST_F(EmuTest, DynamicSharedMemoryAbove48KiBNeedsTheAttribute) {
  int out = 0;
  EXPECT_EQ(cuda::LaunchKernel(&TouchDynamicShared, 1, 32, 60000, nullptr, &out),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "configuration errors are not sticky";
  ASSERT_EQ(
      cudaFuncSetAttribute(&TouchDynamicShared, cudaFuncAttributeMaxDynamicSharedMemorySize, 60000),
      cudaSuccess);
  EXPECT_EQ(cuda::LaunchKernel(&TouchDynamicShared, 1, 32, 60000, nullptr, &out), cudaSuccess);
  // GB10 allows 101,376 bytes per block and not one more.
  EXPECT_EQ(cudaFuncSetAttribute(&TouchDynamicShared, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 101377),
            cudaErrorInvalidValue);
  cudaGetLastError();
  SetEmulatedDevice(H100Device());
  EXPECT_EQ(cudaFuncSetAttribute(&TouchDynamicShared, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 200000),
            cudaSuccess);
}

TEST_F(EmuTest, LaunchConfigurationLimits) {
  int out = 0;
  EXPECT_EQ(cuda::LaunchKernel(&TouchDynamicShared, 1, 1025, 0, nullptr, &out),
            cudaErrorInvalidConfiguration);
  EXPECT_EQ(cuda::LaunchKernel(&TouchDynamicShared, dim3(1, 65536), 32, 0, nullptr, &out),
            cudaErrorInvalidConfiguration);
  EXPECT_EQ(cuda::LaunchKernel(&TouchDynamicShared, 0, 32, 0, nullptr, &out),
            cudaErrorInvalidConfiguration);
  cudaGetLastError();
}

TEST_F(EmuTest, DeviceAttributesFollowTheEmulatedDevice) {
  int v = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&v, cudaDevAttrComputeCapabilityMajor, 0), cudaSuccess);
  EXPECT_EQ(v, 12);
  ASSERT_EQ(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0), cudaSuccess);
  EXPECT_EQ(v, 101376);
  SetEmulatedDevice(H100Device());
  ASSERT_EQ(cudaDeviceGetAttribute(&v, cudaDevAttrComputeCapabilityMajor, 0), cudaSuccess);
  EXPECT_EQ(v, 9);
  EXPECT_EQ(cudaDeviceGetAttribute(&v, cudaDevAttrComputeCapabilityMajor, 1),
            cudaErrorInvalidDevice);
  cudaGetLastError();
}

}  // namespace
}  // namespace sparkstack::emu
