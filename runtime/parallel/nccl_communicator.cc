#include "runtime/parallel/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"
#include "runtime/parallel/reduce.h"

namespace sparkstack {
namespace {

using Clock = std::chrono::steady_clock;

// Init across machines (bootstrap ring, transport setup) takes seconds; give it more than a call.
constexpr std::chrono::milliseconds kInitTimeout{60000};

absl::StatusOr<ncclDataType_t> ReduceType(DType dtype) {
  SPARKSTACK_RETURN_IF_ERROR(CheckReducibleDType(dtype));
  switch (dtype) {
    case DType::kF32:
      return ncclFloat32;
    case DType::kF16:
      return ncclFloat16;
    case DType::kBF16:
      return ncclBfloat16;
    case DType::kI32:
      return ncclInt32;
    case DType::kF8E4M3:
    case DType::kNvfp4:
    case DType::kI64:
    case DType::kU8:
      break;
  }
  return absl::InvalidArgumentError("unreachable dtype");
}

}  // namespace

struct NcclCommunicator::Impl {
  int rank = 0;
  int size = 1;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  bool own_stream = false;
  bool synchronous = true;
  int* barrier_buffer = nullptr;  // one device int for Barrier
  absl::Status broken;
  std::chrono::milliseconds timeout{10000};

  std::string Prefix(const char* op) const {
    return absl::StrCat("nccl ", op, " (rank ", rank, " of ", size, ")");
  }

  absl::Status Abort(absl::Status status) {
    broken = status;
    if (comm != nullptr) ncclCommAbort(comm);
    comm = nullptr;
    return status;
  }

  absl::Status Check(ncclResult_t result, const char* op) {
    if (result == ncclSuccess || result == ncclInProgress) return absl::OkStatus();
    return Abort(absl::UnavailableError(absl::StrCat(Prefix(op), ": ", ncclGetErrorString(result),
                                                     " (", ncclGetLastError(comm), ")")));
  }

  absl::Status Usable(const char* op) const {
    if (!broken.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          Prefix(op), ": communicator is unusable after an earlier error: ", broken.message()));
    }
    return absl::OkStatus();
  }

  // Waits until NCCL leaves ncclInProgress (non-blocking init / enqueue) and, when `stream_too`,
  // until the stream drains; aborts on error or timeout.
  absl::Status Wait(const char* op, bool stream_too) {
    const auto deadline = Clock::now() + timeout;
    unsigned spins = 0;
    while (true) {
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm, &async);
      if (async != ncclSuccess && async != ncclInProgress) {
        return Abort(absl::UnavailableError(absl::StrCat(
            Prefix(op), ": ", ncclGetErrorString(async), " (", ncclGetLastError(comm), ")")));
      }
      bool done = async == ncclSuccess;
      if (done && stream_too) {
        const cudaError_t query = cudaStreamQuery(stream);
        if (query != cudaSuccess && query != cudaErrorNotReady) {
          return Abort(absl::InternalError(
              absl::StrCat(Prefix(op), ": CUDA error ", cudaGetErrorString(query))));
        }
        done = query == cudaSuccess;
      }
      if (done) return absl::OkStatus();
      if (Clock::now() >= deadline) {
        return Abort(absl::DeadlineExceededError(
            absl::StrCat(Prefix(op), ": not finished after ", timeout.count(),
                         " ms; a peer is dead or stuck (communicator aborted)")));
      }
      if (++spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  absl::Status Finish(ncclResult_t result, const char* op, std::chrono::milliseconds t) {
    timeout = t;
    SPARKSTACK_RETURN_IF_ERROR(Check(result, op));
    if (!synchronous) return Wait(op, /*stream_too=*/false);
    return Wait(op, /*stream_too=*/true);
  }
};

absl::StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Create(Bootstrap& bootstrap,
                                                                           void* stream) {
  auto impl = std::make_unique<Impl>();
  impl->rank = bootstrap.rank();
  impl->size = bootstrap.world_size();
  const std::string where = impl->Prefix("init");
  int device = -1;
  if (cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": no usable CUDA device: ", cudaGetErrorString(e)));
  }
  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  if (impl->rank == 0) {
    if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) {
      return absl::UnavailableError(
          absl::StrCat(where, ": ncclGetUniqueId: ", ncclGetErrorString(r)));
    }
  }
  SPARKSTACK_ASSIGN_OR_RETURN(
      std::string blob,
      bootstrap.Broadcast(std::string_view(reinterpret_cast<const char*>(&id), sizeof(id))));
  if (blob.size() != sizeof(id)) {
    return absl::DataLossError(absl::StrCat(where, ": NCCL unique id from rank 0 has ", blob.size(),
                                            " bytes, expected ", sizeof(id),
                                            " (different NCCL versions?)"));
  }
  std::memcpy(&id, blob.data(), sizeof(id));

  if (stream != nullptr) {
    impl->stream = static_cast<cudaStream_t>(stream);
  } else {
    if (cudaError_t e = cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking);
        e != cudaSuccess) {
      return absl::InternalError(
          absl::StrCat(where, ": cudaStreamCreate: ", cudaGetErrorString(e)));
    }
    impl->own_stream = true;
  }
  if (cudaError_t e = cudaMalloc(&impl->barrier_buffer, sizeof(int)); e != cudaSuccess) {
    return absl::ResourceExhaustedError(
        absl::StrCat(where, ": cudaMalloc: ", cudaGetErrorString(e)));
  }
  // Non-blocking init so that a rank that never shows up turns into a timeout, not a hang.
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  const ncclResult_t r = ncclCommInitRankConfig(&impl->comm, impl->size, id, impl->rank, &config);
  std::unique_ptr<NcclCommunicator> comm(new NcclCommunicator(std::move(impl)));
  Impl& s = *comm->impl_;
  s.timeout = kInitTimeout;
  SPARKSTACK_RETURN_IF_ERROR(s.Check(r, "init"));
  SPARKSTACK_RETURN_IF_ERROR(s.Wait("init", /*stream_too=*/false));
  return comm;
}

NcclCommunicator::NcclCommunicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NcclCommunicator::~NcclCommunicator() {
  Impl& s = *impl_;
  if (s.comm != nullptr) {
    // Finalize flushes outstanding work, bounded like any call; Wait aborts the communicator
    // (and clears s.comm) when that fails, otherwise it is destroyed normally.
    s.timeout = std::chrono::milliseconds(5000);
    if (s.Check(ncclCommFinalize(s.comm), "finalize").ok() &&
        s.Wait("finalize", /*stream_too=*/false).ok()) {
      ncclCommDestroy(s.comm);
    }
    s.comm = nullptr;
  }
  if (s.barrier_buffer != nullptr) cudaFree(s.barrier_buffer);
  if (s.own_stream && s.stream != nullptr) cudaStreamDestroy(s.stream);
}

int NcclCommunicator::rank() const { return impl_->rank; }
int NcclCommunicator::size() const { return impl_->size; }
void NcclCommunicator::set_synchronous(bool synchronous) { impl_->synchronous = synchronous; }
bool NcclCommunicator::synchronous() const { return impl_->synchronous; }

absl::Status NcclCommunicator::Synchronize() {
  SPARKSTACK_RETURN_IF_ERROR(impl_->Usable("synchronize"));
  impl_->timeout = timeout();
  return impl_->Wait("synchronize", /*stream_too=*/true);
}

absl::Status NcclCommunicator::AllReduceSum(void* data, size_t count, DType dtype) {
  Impl& s = *impl_;
  SPARKSTACK_RETURN_IF_ERROR(s.Usable("all-reduce"));
  SPARKSTACK_ASSIGN_OR_RETURN(ncclDataType_t type, ReduceType(dtype));
  if (count == 0) return absl::OkStatus();
  return s.Finish(ncclAllReduce(data, data, count, type, ncclSum, s.comm, s.stream), "all-reduce",
                  timeout());
}

absl::Status NcclCommunicator::AllGather(const void* in, void* out, size_t count, DType dtype) {
  Impl& s = *impl_;
  SPARKSTACK_RETURN_IF_ERROR(s.Usable("all-gather"));
  // Moved as bytes: any dtype (nvfp4 included) gathers the same way.
  const size_t bytes = DTypeByteSize(dtype, static_cast<int64_t>(count));
  if (bytes == 0) return absl::OkStatus();
  return s.Finish(ncclAllGather(in, out, bytes, ncclUint8, s.comm, s.stream), "all-gather",
                  timeout());
}

absl::Status NcclCommunicator::Broadcast(void* data, size_t bytes, int root) {
  Impl& s = *impl_;
  SPARKSTACK_RETURN_IF_ERROR(s.Usable("broadcast"));
  if (root < 0 || root >= s.size) {
    return absl::InvalidArgumentError(absl::StrCat(s.Prefix("broadcast"), ": root ", root,
                                                   " is not a rank of [0, ", s.size, ")"));
  }
  if (bytes == 0) return absl::OkStatus();
  return s.Finish(ncclBroadcast(data, data, bytes, ncclUint8, root, s.comm, s.stream), "broadcast",
                  timeout());
}

absl::Status NcclCommunicator::Send(const void* data, size_t bytes, int peer) {
  Impl& s = *impl_;
  SPARKSTACK_RETURN_IF_ERROR(s.Usable("send"));
  if (peer < 0 || peer >= s.size || peer == s.rank) {
    return absl::InvalidArgumentError(absl::StrCat(s.Prefix("send"), ": peer rank ", peer,
                                                   " is not another rank of [0, ", s.size, ")"));
  }
  return s.Finish(ncclSend(data, bytes, ncclUint8, peer, s.comm, s.stream), "send", timeout());
}

absl::Status NcclCommunicator::Recv(void* data, size_t bytes, int peer) {
  Impl& s = *impl_;
  SPARKSTACK_RETURN_IF_ERROR(s.Usable("recv"));
  if (peer < 0 || peer >= s.size || peer == s.rank) {
    return absl::InvalidArgumentError(absl::StrCat(s.Prefix("recv"), ": peer rank ", peer,
                                                   " is not another rank of [0, ", s.size, ")"));
  }
  return s.Finish(ncclRecv(data, bytes, ncclUint8, peer, s.comm, s.stream), "recv", timeout());
}

absl::Status NcclCommunicator::Barrier() {
  Impl& s = *impl_;
  SPARKSTACK_RETURN_IF_ERROR(s.Usable("barrier"));
  // An all-reduce of one int is NCCL's barrier; it always waits, whatever synchronous() says.
  const bool was = s.synchronous;
  s.synchronous = true;
  absl::Status status = s.Finish(
      ncclAllReduce(s.barrier_buffer, s.barrier_buffer, 1, ncclInt32, ncclSum, s.comm, s.stream),
      "barrier", timeout());
  s.synchronous = was;
  return status;
}

}  // namespace sparkstack
