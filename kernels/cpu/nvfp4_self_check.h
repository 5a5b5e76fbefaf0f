// Start-up check of the CPU NVFP4 linear paths: the fastest path this CPU supports is run on a
// small random problem against the float64 reference; if it disagrees, the next path (finally
// the scalar one) is used instead, with a warning. Serving wrong numbers fast is never an option.
#ifndef SPARKSTACK_KERNELS_CPU_NVFP4_SELF_CHECK_H_
#define SPARKSTACK_KERNELS_CPU_NVFP4_SELF_CHECK_H_

#include "kernels/cpu/nvfp4_linear.h"

namespace sparkstack::kernels {

// True when `path` runs on this CPU and matches the reference (relative max error <= 1e-4) on a
// random problem with odd N, K a multiple of 16 but not of 64, and M = 3.
bool Nvfp4CpuPathAgreesWithReference(Nvfp4CpuPath path);

// The best path that passes the check (the scalar path is the last resort and is returned even if
// it fails, with an error logged). Logs a warning for every path it skips.
Nvfp4CpuPath SelectVerifiedNvfp4CpuPath();

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_NVFP4_SELF_CHECK_H_
