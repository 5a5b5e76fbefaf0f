#include "kernels/emu/async_copy.h"

#include <cstdint>
#include <string>

#include "kernels/emu/thread_block.h"

namespace sparkstack::emu {

void CpAsync(void* dst, const void* src, int cp_bytes, int src_bytes,
             const std::source_location& where) {
  const std::string site = "cp.async at " + DescribeSite(where) + ": ";
  if (cp_bytes != 4 && cp_bytes != 8 && cp_bytes != 16) {
    FailKernel(cudaErrorLaunchFailure, site + "cp-size must be 4, 8 or 16");
  }
  if (src_bytes < 0 || src_bytes > cp_bytes) {
    FailKernel(cudaErrorLaunchFailure, site + "src-size " + std::to_string(src_bytes) +
                                           " outside [0, " + std::to_string(cp_bytes) + "]");
  }
  SharedMemory& smem = BlockSharedMemory();
  if (!smem.Contains(dst, static_cast<size_t>(cp_bytes))) {
    FailKernel(cudaErrorIllegalAddress,
               site + "destination is not inside the block's shared memory");
  }
  if (reinterpret_cast<uintptr_t>(dst) % cp_bytes != 0 ||
      reinterpret_cast<uintptr_t>(src) % cp_bytes != 0) {
    FailKernel(cudaErrorMisalignedAddress,
               site + "source and destination must be aligned to " + std::to_string(cp_bytes));
  }
  if (smem.Contains(src, 1)) FailKernel(cudaErrorIllegalAddress, site + "source is shared memory");
  SharedMemory::Poison(dst, static_cast<size_t>(cp_bytes));
  ThreadCpAsyncQueue().Issue(dst, src, cp_bytes, src_bytes);
}

void CpAsyncCommitGroup() { ThreadCpAsyncQueue().Commit(); }

void CpAsyncWaitGroup(int n) { ThreadCpAsyncQueue().WaitGroup(n); }

}  // namespace sparkstack::emu
