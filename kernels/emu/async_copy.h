// cp.async of the host emulation (PTX ISA 9.7.9.25.3): checks the operands (destination inside the
// block's shared memory and aligned to the copy size, source aligned and not shared, src-size at
// most cp-size), poisons the destination at issue and queues the copy in the issuing thread's
// CpAsyncQueue, which writes it at the wait_group that covers it.
#ifndef SPARKSTACK_KERNELS_EMU_ASYNC_COPY_H_
#define SPARKSTACK_KERNELS_EMU_ASYNC_COPY_H_

#include <source_location>

#include "kernels/emu/guard.h"

namespace sparkstack::emu {

// cp.async.{ca,cg}.shared.global [dst], [src], cp_bytes, src_bytes.
void CpAsync(void* dst, const void* src, int cp_bytes, int src_bytes,
             const std::source_location& where);
// cp.async.commit_group.
void CpAsyncCommitGroup();
// cp.async.wait_group n.
void CpAsyncWaitGroup(int n);

}  // namespace sparkstack::emu

#endif  // SPARKSTACK_KERNELS_EMU_ASYNC_COPY_H_
