// In-process communicator for tests: N threads act as N ranks and exchange buffers through shared
// memory. Lets model-sharding tests run without processes or a network (the real multi-process
// path is tested in tests/integration).
#ifndef SPARKSTACK_TESTS_UNIT_ENGINE_THREAD_COMMUNICATOR_H_
#define SPARKSTACK_TESTS_UNIT_ENGINE_THREAD_COMMUNICATOR_H_

#include <barrier>
#include <cstring>
#include <memory>
#include <vector>

#include "runtime/parallel/communicator.h"

namespace sparkstack::testing {

class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), barrier_(size), slots_(size) {}
  int size() const { return size_; }

 private:
  friend class ThreadCommunicator;
  int size_;
  std::barrier<> barrier_;
  std::vector<const void*> slots_;
};

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<ThreadGroup> group, int rank)
      : group_(std::move(group)), rank_(rank) {}

  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }

  absl::Status AllReduceSum(void* data, size_t count, DType dtype) override {
    if (dtype != DType::kF32) return absl::UnimplementedError("test communicator: f32 only");
    std::vector<float> mine(static_cast<float*>(data), static_cast<float*>(data) + count);
    Publish(mine.data());
    auto* out = static_cast<float*>(data);
    for (size_t i = 0; i < count; ++i) {
      float sum = 0;  // rank order, so every rank gets bit-identical sums
      for (int r = 0; r < size(); ++r) sum += static_cast<const float*>(group_->slots_[r])[i];
      out[i] = sum;
    }
    group_->barrier_.arrive_and_wait();
    return absl::OkStatus();
  }

  absl::Status AllGather(const void* in, void* out, size_t count, DType dtype) override {
    const size_t bytes = DTypeByteSize(dtype, count);
    Publish(in);
    for (int r = 0; r < size(); ++r) {
      std::memcpy(static_cast<char*>(out) + r * bytes, group_->slots_[r], bytes);
    }
    group_->barrier_.arrive_and_wait();
    return absl::OkStatus();
  }

  absl::Status Broadcast(void* data, size_t bytes, int root) override {
    Publish(data);
    if (rank_ != root) std::memcpy(data, group_->slots_[root], bytes);
    group_->barrier_.arrive_and_wait();
    return absl::OkStatus();
  }

  absl::Status Send(const void*, size_t, int) override {
    return absl::UnimplementedError("test communicator: no point-to-point");
  }
  absl::Status Recv(void*, size_t, int) override {
    return absl::UnimplementedError("test communicator: no point-to-point");
  }
  absl::Status Barrier() override {
    group_->barrier_.arrive_and_wait();
    return absl::OkStatus();
  }

 private:
  // Every rank posts its buffer, then waits until all have.
  void Publish(const void* buffer) {
    group_->slots_[rank_] = buffer;
    group_->barrier_.arrive_and_wait();
  }

  std::shared_ptr<ThreadGroup> group_;
  int rank_;
};

}  // namespace sparkstack::testing

#endif  // SPARKSTACK_TESTS_UNIT_ENGINE_THREAD_COMMUNICATOR_H_
