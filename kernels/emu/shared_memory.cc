#include "kernels/emu/shared_memory.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace sparkstack::emu {
namespace {

// Shared memory is at least this aligned on the device (the dynamic array is declared
// __align__(16); a generous 128 keeps host accesses to it aligned like device ones).
constexpr std::align_val_t kAlignment{128};

uint8_t ReadPoisonByte() {
  const char* env = std::getenv("SPARKSTACK_EMU_POISON");
  if (env == nullptr || *env == '\0') return 0xff;
  return static_cast<uint8_t>(std::strtoul(env, nullptr, 0));
}

}  // namespace

void SharedMemory::Deleter::operator()(uint8_t* p) const { operator delete[](p, kAlignment); }

SharedMemory::Buffer SharedMemory::Allocate(size_t bytes) {
  Buffer b(static_cast<uint8_t*>(operator new[](bytes, kAlignment)));
  Poison(b.get(), bytes);
  return b;
}

SharedMemory::SharedMemory(size_t dynamic_bytes, size_t limit)
    : dynamic_(Allocate(dynamic_bytes)),
      dynamic_bytes_(dynamic_bytes),
      static_limit_(limit > dynamic_bytes ? limit - dynamic_bytes : 0) {}

void* SharedMemory::StaticArray(const void* tag, size_t bytes) {
  for (const StaticEntry& e : statics_) {
    if (e.tag == tag) return e.data.get();
  }
  if (static_used_ + bytes > static_limit_) return nullptr;
  static_used_ += bytes;
  statics_.push_back({tag, Allocate(bytes), bytes});
  return statics_.back().data.get();
}

bool SharedMemory::Contains(const void* p, size_t bytes) const {
  const auto q = reinterpret_cast<uintptr_t>(p);
  const auto inside = [&](const uint8_t* base, size_t size) {
    const auto b = reinterpret_cast<uintptr_t>(base);
    return q >= b && bytes <= size && q - b <= size - bytes;
  };
  if (inside(dynamic_.get(), dynamic_bytes_)) return true;
  for (const StaticEntry& e : statics_) {
    if (inside(e.data.get(), e.bytes)) return true;
  }
  return false;
}

uint8_t SharedMemory::poison_byte() {
  static const uint8_t byte = ReadPoisonByte();
  return byte;
}

void SharedMemory::Poison(void* p, size_t bytes) { std::memset(p, poison_byte(), bytes); }

}  // namespace sparkstack::emu
