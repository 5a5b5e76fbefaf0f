// Arena: the workspace of one forward step. One buffer is allocated at load, sized for the largest
// step the engine will schedule; every intermediate tensor of a step is carved from it with a bump
// pointer, and Reset() at the start of the next step makes the whole buffer free again. So a step
// allocates nothing after warm-up, on any device: the buffer may be device memory (the backend
// allocates it) and Take only does pointer arithmetic.
//
// Tensors returned by Take borrow the arena's storage: they are valid until the next Reset() and
// must not be kept across steps. Not thread-safe: one step runs on one thread at a time.
#ifndef SPARKSTACK_RUNTIME_CORE_ARENA_H_
#define SPARKSTACK_RUNTIME_CORE_ARENA_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "runtime/core/tensor.h"

namespace sparkstack {

class Arena {
 public:
  // Alignment of every tensor taken: enough for AVX-512 and for 128-byte GPU vector loads.
  static constexpr size_t kAlignment = 128;

  Arena() = default;
  // Carves tensors out of `buffer` (any dtype; its bytes and device are what matter).
  explicit Arena(Tensor buffer);

  // A tensor of `dtype` and `shape` on the buffer's device. Its contents are unspecified (not
  // zeroed). ResourceExhausted, naming the request and what is left, when the buffer is too small:
  // a sign that the step is larger than the one the arena was sized for.
  absl::StatusOr<Tensor> Take(DType dtype, const Shape& shape);

  // Frees every tensor taken so far (they must no longer be used).
  void Reset() { used_ = 0; }
  // Frees the tensors taken since used() returned `mark` (scratch of one block of a layer).
  void Rewind(size_t mark) { used_ = mark < used_ ? mark : used_; }

  size_t capacity() const { return capacity_; }
  size_t used() const { return used_; }
  // The most ever used between two resets: what a step really needed.
  size_t high_water() const { return high_water_; }

  // Bytes Take reserves for a tensor of `bytes` (rounded up to the alignment). For sizing.
  static size_t Reserved(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }
  // Bytes of buffer to allocate so that `workspace` bytes of tensors fit whatever the buffer's
  // alignment (the arena skips to an aligned start).
  static size_t BufferBytes(size_t workspace) { return workspace + kAlignment; }

 private:
  Tensor buffer_;
  size_t base_offset_ = 0;  // bytes skipped to align the first tensor
  size_t capacity_ = 0;
  size_t used_ = 0;
  size_t high_water_ = 0;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_CORE_ARENA_H_
