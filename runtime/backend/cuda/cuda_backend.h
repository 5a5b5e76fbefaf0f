// The CUDA backend: the Backend ops on one NVIDIA device, every op enqueued on one compute stream.
//
// Numerics (what a model sees):
//   activations   f32, as on the CPU backend; kernels that read bf16 (the NVFP4 GEMMs, the dense
//                 bf16 tensor-core GEMM, the prefill attention) round them to bf16 on the way in
//                 and accumulate in f32.
//   KV cache      f32 or bf16 pools (whatever the model allocates; the models allocate f32 today).
//   linear        dense bf16 / f16 / f32 weights (own kernels: a weight-streaming GEMV for
//                 decode-sized m, tensor cores for bf16 beyond it, a SIMT GEMM for f16 / f32) and
//                 NVFP4 weights (kernels/nvfp4 through their selector and self-check).
//   attention     decode: f32 on CUDA cores, split over long contexts; prefill: flash-style on
//                 mma.sync bf16. A sequence's result never depends on the rest of the batch, but
//                 linear layers pick their kernel by m, so a row batched and alone agree to f32
//                 summation order, not bit for bit.
//   sampling      on the device, the CPU sampler's rules and Philox uniforms
//                 (kernels/cuda/ops/sampling.h says what is bit-identical).
// Memory: every allocation comes from a DeviceArena, one reservation when the runner made a
// memory plan (CudaBackendOptions::arena_bytes). The backend's own scratch (bf16 activations,
// attention split partials, sampling buffers) is sized from the options at creation.
#ifndef SPARKSTACK_RUNTIME_BACKEND_CUDA_CUDA_BACKEND_H_
#define SPARKSTACK_RUNTIME_BACKEND_CUDA_CUDA_BACKEND_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/backend/cuda/kernel_config.h"
#include "runtime/backend/step_graphs.h"

namespace sparkstack {

struct CudaBackendOptions {
  int device = 0;
  // The memory plan's total: one device reservation every allocation is carved from. 0: each
  // allocation is its own cudaMalloc (tests, tools).
  int64_t arena_bytes = 0;

  // The largest step the backend serves; sizes its scratch. An op beyond them fails with
  // ResourceExhausted naming the limit.
  int64_t max_tokens = 512;         // tokens of a step (rows of a linear layer's input)
  int64_t max_decode_seqs = 64;     // decode sequences of a step
  int64_t max_logit_rows = 64;      // rows sampled in one Sample call
  int64_t max_linear_k = 4096;      // widest input of an NVFP4 linear layer
  int64_t max_heads = 64;           // query heads of an attention layer (this rank's)
  int64_t max_head_dim = 128;       // largest v_head_dim
  int64_t max_context = 4096;       // longest sequence (prompt + output)
  int64_t sampling_edits = 1 << 16;  // penalty / ban entries per Sample launch (>= the vocab)

  // Kernel choices; KernelConfigFor fills them per device (tuned or defaults).
  KernelConfig kernels;
};

// Bytes of device scratch a backend with `options` allocates at creation (for the memory plan;
// defined in memory_plan.cc).
int64_t CudaScratchBytes(const CudaBackendOptions& options);

// What the runner needs of a CUDA backend beyond the Backend ops: graphs (StepGraphs) and the
// compute stream for NCCL.
class CudaBackendControl : public StepGraphs {
 public:
  // The compute stream (a cudaStream_t): collectives enqueued on it are ordered with the ops.
  virtual void* compute_stream() const = 0;
  // Bytes of the device arena in use, and left when it is a reservation.
  virtual int64_t arena_used() const = 0;
  virtual int64_t arena_remaining() const = 0;
  // The kernel choices in force; the tuning sweep switches them between timed runs.
  virtual const KernelConfig& kernels() const = 0;
  virtual void set_kernels(const KernelConfig& config) = 0;
};

// The CudaBackendControl of `backend`, or nullptr when it is not a CUDA backend.
CudaBackendControl* AsCudaBackend(Backend& backend);

// A backend on options.device. FailedPrecondition (DeviceAvailable's message) when there is no
// device or the build has no CUDA; ResourceExhausted when the arena or the scratch do not fit.
absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(const CudaBackendOptions& options = {});

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_BACKEND_CUDA_CUDA_BACKEND_H_
