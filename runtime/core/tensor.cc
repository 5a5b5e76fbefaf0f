#include "runtime/core/tensor.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/core/memory_budget.h"

namespace sparkstack {

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(const Shape& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

std::shared_ptr<void> AllocateAligned(size_t bytes, size_t alignment) {
  // Large allocations are sized from model configs and requests: check them against the memory
  // budget first (an over-committed allocation can freeze a unified-memory machine). Failing the
  // check throws MemoryBudgetExceeded, a std::bad_alloc whose what() carries the numbers.
  if (bytes >= kCheckedAllocationBytes) {
    const absl::Status budget = CheckMemoryBudget(bytes, "allocating a host tensor");
    if (!budget.ok()) throw MemoryBudgetExceeded(std::string(budget.message()));
  }
  // Large buffers (KV pools, workspaces) come straight from the kernel: its pages are zero
  // already and only touched when used, so reserving a pool costs no time.
  constexpr size_t kMapThreshold = size_t{1} << 21;
  if (bytes >= kMapThreshold && alignment <= 4096) {
    void* data = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (data == MAP_FAILED) throw std::bad_alloc();
    return std::shared_ptr<void>(data, [bytes](void* p) { munmap(p, bytes); });
  }
  const size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  void* data = std::aligned_alloc(alignment, rounded == 0 ? alignment : rounded);
  if (data == nullptr) throw std::bad_alloc();
  std::memset(data, 0, rounded == 0 ? alignment : rounded);
  return std::shared_ptr<void>(data, [](void* p) { std::free(p); });
}

Tensor Tensor::Zeros(DType dtype, const Shape& shape) {
  Tensor t;
  auto storage = AllocateAligned(DTypeByteSize(dtype, NumElements(shape)));
  t.data_ = storage.get();
  t.owner_ = std::move(storage);
  t.dtype_ = dtype;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::Borrow(void* data, DType dtype, const Shape& shape,
                      std::shared_ptr<const void> owner, Device device) {
  Tensor t;
  t.data_ = data;
  t.owner_ = std::move(owner);
  t.dtype_ = dtype;
  t.shape_ = shape;
  t.device_ = device;
  return t;
}

absl::StatusOr<Tensor> Tensor::Reshape(const Shape& shape) const {
  if (NumElements(shape) != numel()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot reshape ", DebugString(), " to ",
                                                   ShapeToString(shape)));
  }
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

absl::StatusOr<Tensor> Tensor::SliceRows(int64_t begin, int64_t end) const {
  if (rank() == 0 || begin < 0 || end < begin || end > shape_[0]) {
    return absl::OutOfRangeError(absl::StrCat("row slice [", begin, ", ", end, ") of ",
                                              DebugString()));
  }
  const int64_t row_elements = shape_[0] == 0 ? 0 : numel() / shape_[0];
  if (dtype_ == DType::kNvfp4 && row_elements % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot slice rows of ", DebugString(), ": odd packed row length"));
  }
  Tensor t = *this;
  t.shape_[0] = end - begin;
  t.data_ = static_cast<char*>(data_) + DTypeByteSize(dtype_, begin * row_elements);
  return t;
}

Tensor Tensor::Clone() const {
  Tensor t = Zeros(dtype_, shape_);
  if (nbytes() > 0) std::memcpy(t.data_, data_, nbytes());
  return t;
}

std::string Tensor::DebugString() const {
  return absl::StrCat(std::string(DTypeName(dtype_)), ShapeToString(shape_));
}

}  // namespace sparkstack
