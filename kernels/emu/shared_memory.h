// The shared memory of one emulated thread block. Every array is its own exact-size heap
// allocation (so AddressSanitizer catches an access past its end) and starts out poisoned with a
// byte pattern (0xff: NaN in f32, bf16 and f16, NaN in e4m3, -6 in e2m1), as does every range a
// kernel releases (ReleaseSharedAtNextBarrier): a kernel that reads shared memory it did not write
// in this stage computes garbage and fails its test. SPARKSTACK_EMU_POISON=0xNN picks another
// pattern.
#ifndef SPARKSTACK_KERNELS_EMU_SHARED_MEMORY_H_
#define SPARKSTACK_KERNELS_EMU_SHARED_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/emu/guard.h"

namespace sparkstack::emu {

class SharedMemory {
 public:
  // `dynamic_bytes` of dynamic shared memory; static arrays may add up to limit - dynamic_bytes.
  SharedMemory(size_t dynamic_bytes, size_t limit);
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;

  uint8_t* dynamic_base() const { return dynamic_.get(); }
  size_t dynamic_bytes() const { return dynamic_bytes_; }

  // The static __shared__ array of `bytes` declared at the site identified by `tag`, allocated and
  // poisoned on its first use in this block; nullptr when it would exceed the limit.
  void* StaticArray(const void* tag, size_t bytes);

  // Whether [p, p + bytes) lies inside one shared array of this block.
  bool Contains(const void* p, size_t bytes) const;

  // Fills [p, p + bytes) with the poison pattern.
  static void Poison(void* p, size_t bytes);
  static uint8_t poison_byte();

 private:
  struct Deleter {
    void operator()(uint8_t* p) const;
  };
  using Buffer = std::unique_ptr<uint8_t[], Deleter>;
  static Buffer Allocate(size_t bytes);

  struct StaticEntry {
    const void* tag;
    Buffer data;
    size_t bytes;
  };
  Buffer dynamic_;
  size_t dynamic_bytes_;
  size_t static_limit_;
  size_t static_used_ = 0;
  std::vector<StaticEntry> statics_;
};

}  // namespace sparkstack::emu

#endif  // SPARKSTACK_KERNELS_EMU_SHARED_MEMORY_H_
