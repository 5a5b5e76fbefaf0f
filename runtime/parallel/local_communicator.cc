#include "runtime/parallel/local_communicator.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/parallel/reduce.h"

namespace sparkstack {

absl::Status LocalCommunicator::AllReduceSum(void* data, size_t count, DType dtype) {
  return CheckReducibleDType(dtype);
}

absl::Status LocalCommunicator::AllGather(const void* in, void* out, size_t count, DType dtype) {
  const size_t bytes = DTypeByteSize(dtype, static_cast<int64_t>(count));
  if (in != out && bytes > 0) std::memmove(out, in, bytes);
  return absl::OkStatus();
}

absl::Status LocalCommunicator::Broadcast(void* data, size_t bytes, int root) {
  if (root != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("broadcast: root ", root, " is not a rank of a group of 1"));
  }
  return absl::OkStatus();
}

absl::Status LocalCommunicator::Send(const void* data, size_t bytes, int peer) {
  return absl::InvalidArgumentError(
      absl::StrCat("send to rank ", peer, ": a local (size 1) communicator has no peers"));
}

absl::Status LocalCommunicator::Recv(void* data, size_t bytes, int peer) {
  return absl::InvalidArgumentError(
      absl::StrCat("recv from rank ", peer, ": a local (size 1) communicator has no peers"));
}

}  // namespace sparkstack
