#include "runtime/model/tensor_parallel.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/parallel/communicator.h"

namespace sparkstack {

absl::Status TensorParallel::Validate() const {
  if (size < 1 || rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(absl::StrCat("tensor-parallel rank ", rank, " of ", size));
  }
  if (size > 1 && comm == nullptr) {
    return absl::InvalidArgumentError("tp > 1 needs a tensor-parallel communicator");
  }
  return absl::OkStatus();
}

absl::Status TensorParallel::AllReduce(Tensor& x) const {
  if (size == 1) return absl::OkStatus();
  return comm->AllReduceSum(x.data(), x.numel(), x.dtype());
}

absl::Status TensorParallel::AllGather(const Tensor& in, Tensor& out) const {
  if (out.numel() != in.numel() * size || out.dtype() != in.dtype()) {
    return absl::InvalidArgumentError(absl::StrCat("all-gather of ", in.DebugString(), " into ",
                                                   out.DebugString(), " over ", size, " ranks"));
  }
  if (size == 1) {
    if (in.nbytes() > 0) std::memcpy(out.data(), in.data(), in.nbytes());
    return absl::OkStatus();
  }
  return comm->AllGather(in.data(), out.data(), in.numel(), in.dtype());
}

absl::StatusOr<AttentionShard> ShardAttention(int64_t num_heads, int64_t num_kv_heads,
                                              const TensorParallel& tp) {
  if (auto status = tp.Validate(); !status.ok()) return status;
  const int64_t size = tp.size;
  const int64_t rank = tp.rank;
  if (num_heads % size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("num_attention_heads ", num_heads,
                                                   " is not divisible by tp ", size));
  }
  if (num_kv_heads >= size ? num_kv_heads % size != 0 : size % num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_key_value_heads ", num_kv_heads, " must divide or be a multiple of tp ", size));
  }
  AttentionShard s;
  s.heads = num_heads / size;
  s.q_heads = {rank * s.heads, (rank + 1) * s.heads};
  if (num_kv_heads >= size) {
    s.kv_heads = num_kv_heads / size;
    s.kv_head_rows = {rank * s.kv_heads, (rank + 1) * s.kv_heads};
  } else {
    s.kv_heads = 1;  // replicated: the kv head this rank's q heads all read
    const int64_t kv = s.q_heads.begin / (num_heads / num_kv_heads);
    s.kv_head_rows = {kv, kv + 1};
  }
  return s;
}

}  // namespace sparkstack
