#include "kernels/emu/cp_async_queue.h"

#include <cstring>

namespace sparkstack::emu {

void CpAsyncQueue::Issue(void* dst, const void* src, int cp_bytes, int src_bytes) {
  Copy c;
  c.dst = static_cast<uint8_t*>(dst);
  c.bytes = cp_bytes;
  std::memset(c.data, 0, sizeof(c.data));
  if (src_bytes > 0) std::memcpy(c.data, src, static_cast<size_t>(src_bytes));
  open_.push_back(c);
}

void CpAsyncQueue::Commit() {
  committed_.push_back(std::move(open_));
  open_.clear();
}

void CpAsyncQueue::WaitGroup(int n) {
  while (static_cast<int>(committed_.size()) > n) {
    for (const Copy& c : committed_.front())
      std::memcpy(c.dst, c.data, static_cast<size_t>(c.bytes));
    committed_.pop_front();
  }
}

int CpAsyncQueue::outstanding() const {
  size_t count = open_.size();
  for (const auto& group : committed_) count += group.size();
  return static_cast<int>(count);
}

}  // namespace sparkstack::emu
