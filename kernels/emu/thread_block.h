// One thread block of an emulated kernel launch. Its threads run as fibers (fiber.h) on the
// launching OS thread, one at a time in thread order, each until it blocks; the only switch points
// are __syncthreads, warp-collective operations (shuffles, votes, ldmatrix, mma) and thread exit.
// Rules enforced, each violation failing the launch with a message naming block, thread and line:
//   * __syncthreads completes when every non-exited thread of the block has arrived, all at the
//   same
//     call site (PTX ISA 9.7.13.1: barriers wait for non-exited threads; a barrier in divergent
//     code is undefined, so different sites are reported as divergence).
//   * A warp-collective operation completes when the lanes it needs have arrived at the same
//     operation and call site with the same member mask: for .aligned operations (ldmatrix, mma)
//     every lane of the warp, none exited; for shuffles and votes the non-exited lanes of the mask
//     (PTX ISA 9.7.9.6, 9.7.13.9). Its combine step then sees every participating lane's operands.
//   * No runnable thread while some have not finished: deadlock (a barrier inside a warp-divergent
//     branch, a shuffle a lane never reaches, ...).
//   * A thread may not exit with cp.async copies outstanding (they would land after the block).
#ifndef SPARKSTACK_KERNELS_EMU_THREAD_BLOCK_H_
#define SPARKSTACK_KERNELS_EMU_THREAD_BLOCK_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <source_location>
#include <string>
#include <vector>

#include "kernels/emu/cp_async_queue.h"
#include "kernels/emu/error.h"
#include "kernels/emu/fiber.h"
#include "kernels/emu/guard.h"
#include "kernels/emu/shared_memory.h"
#include "kernels/emu/vector_types.h"

namespace sparkstack::emu {

inline constexpr int kWarpSize = 32;

// What threadIdx, blockIdx, blockDim and gridDim read.
struct ThreadContext {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
  int linear;  // x + blockDim.x * (y + blockDim.y * z): warps are consecutive linear ids
  int lane;    // linear % 32
  int warp;    // linear / 32
};

// The emulated thread running now. Aborts when called outside an emulated kernel.
const ThreadContext& CurrentThread();

// __syncthreads() of the current thread.
void SyncThreads(const std::source_location& where);
// Declares that no thread reads [p, p + bytes) of shared memory after the next barrier until it is
// written again: the emulation poisons the range when that barrier completes.
void ReleaseSharedAtNextBarrier(const void* p, size_t bytes, const std::source_location& where);

// One lane's part of a warp-collective operation. `in` and `out` point at the lane's operands and
// results (on its stack: they stay valid while it waits).
struct WarpCall {
  const char* what;  // "shfl.sync.bfly", "mma.m16n8k16", ...
  std::source_location where;
  uint32_t mask;  // member mask (all 32 lanes for .aligned operations)
  bool aligned;   // every lane of the warp must take part
  const void* in;
  void* out;
  // Run once, by the last lane to arrive: lanes[l] is lane l's call, or nullptr when lane l does
  // not take part (not in the mask, exited, or beyond the block).
  void (*combine)(WarpCall* const lanes[kWarpSize]);
};
// Blocks until the warp's lanes have arrived (see the rules above), then returns with the results
// in call.out.
void WarpRendezvous(WarpCall& call);

// The current block's shared memory and the current thread's cp.async queue.
SharedMemory& BlockSharedMemory();
CpAsyncQueue& ThreadCpAsyncQueue();

// "block (x,y,z) thread (x,y,z)" of the current thread, for messages.
std::string DescribeCurrentThread();
// "file.cc:123".
std::string DescribeSite(const std::source_location& where);

struct BlockResult {
  cudaError_t error = cudaSuccess;
  std::string message;
};

// Runs block `block_idx` of a launch of `body` (the kernel with its arguments bound) on a grid of
// `grid` blocks of `block` threads, with `dynamic_smem` bytes of dynamic shared memory and at most
// `smem_limit` bytes of shared memory in all. `stacks` is grown to one stack per thread and reused
// across blocks.
BlockResult RunBlock(dim3 grid, dim3 block, uint3 block_idx, size_t dynamic_smem, size_t smem_limit,
                     const std::function<void()>& body,
                     std::vector<std::unique_ptr<FiberStack>>& stacks);

}  // namespace sparkstack::emu

#endif  // SPARKSTACK_KERNELS_EMU_THREAD_BLOCK_H_
