#include "kernels/cuda/ops/sampling.h"

#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops/sampling.cuh"

namespace sparkstack::kernels::cuda_ops {

int LaunchSampling(float* logits, int64_t rows, int64_t row_stride, int64_t vocab_limit,
                   const SamplingRowArgs* row_args, SamplingEdit* edits, SamplingResult* results,
                   void* stream) {
  if (rows < 0 || rows > 0x7fffffff || vocab_limit < 1 || vocab_limit > row_stride ||
      vocab_limit >= (int64_t{1} << 31)) {
    return kInvalidValue;
  }
  if (rows == 0) return 0;
  if (logits == nullptr || row_args == nullptr || results == nullptr) return kInvalidValue;
  return cuda::LaunchKernel(&detail::SamplingKernel, dim3(static_cast<unsigned>(rows)),
                            detail::kSamplingThreads, 0, static_cast<cudaStream_t>(stream), logits,
                            row_stride, vocab_limit, row_args, edits, results);
}

}  // namespace sparkstack::kernels::cuda_ops
