#include "runtime/engine/device_comms.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/backend/cuda/cuda_backend.h"
#include "runtime/core/status_macros.h"

// NCCL communicators are created from a Bootstrap (runtime/parallel/bootstrap.h); builds without
// NCCL, or from before that interface, cannot build them.
#if defined(SPARKSTACK_WITH_NCCL) && __has_include("runtime/parallel/bootstrap.h")
#define SPARKSTACK_DEVICE_COMMS 1
#include "runtime/parallel/bootstrap.h"
#include "runtime/parallel/nccl_communicator.h"
#endif

namespace sparkstack {

#if defined(SPARKSTACK_DEVICE_COMMS)
namespace {

// The Bootstrap operations over an established host communicator (its rank order).
class CommunicatorBootstrap final : public Bootstrap {
 public:
  explicit CommunicatorBootstrap(Communicator& comm) : comm_(comm) {}
  int rank() const override { return comm_.rank(); }
  int world_size() const override { return comm_.size(); }

  absl::StatusOr<std::vector<std::string>> AllGather(std::string_view blob) override {
    const int n = comm_.size();
    int64_t size = static_cast<int64_t>(blob.size());
    std::vector<int64_t> sizes(n);
    SPARKSTACK_RETURN_IF_ERROR(comm_.AllGather(&size, sizes.data(), 1, DType::kI64));
    int64_t widest = 1;
    for (int64_t s : sizes) {
      if (s < 0 || s > static_cast<int64_t>(kBootstrapMaxBlobBytes)) {
        return absl::DataLossError(absl::StrCat("bootstrap blob of ", s, " bytes"));
      }
      widest = std::max(widest, s);
    }
    std::vector<char> mine(widest, 0), all(widest * n);
    std::memcpy(mine.data(), blob.data(), blob.size());
    SPARKSTACK_RETURN_IF_ERROR(comm_.AllGather(mine.data(), all.data(), widest, DType::kU8));
    std::vector<std::string> out;
    for (int r = 0; r < n; ++r) out.emplace_back(all.data() + r * widest, sizes[r]);
    return out;
  }

  absl::StatusOr<std::string> Broadcast(std::string_view blob) override {
    int64_t size = static_cast<int64_t>(blob.size());
    SPARKSTACK_RETURN_IF_ERROR(comm_.Broadcast(&size, sizeof(size), 0));
    if (size < 0 || size > static_cast<int64_t>(kBootstrapMaxBlobBytes)) {
      return absl::DataLossError(absl::StrCat("bootstrap blob of ", size, " bytes"));
    }
    std::string out(static_cast<size_t>(size), '\0');
    if (comm_.rank() == 0) out.assign(blob.data(), blob.size());
    SPARKSTACK_RETURN_IF_ERROR(comm_.Broadcast(out.data(), out.size(), 0));
    return out;
  }

  absl::Status Barrier() override { return comm_.Barrier(); }

 private:
  Communicator& comm_;
};

class NcclDeviceComms final : public DeviceComms {
 public:
  Communicator* world() override { return world_.get(); }
  Communicator* tp_group() override { return tp_.get(); }
  absl::Status Wait() override {
    SPARKSTACK_RETURN_IF_ERROR(world_->Synchronize());
    return tp_->Synchronize();
  }
  std::unique_ptr<NcclCommunicator> world_;
  std::unique_ptr<NcclCommunicator> tp_;
};

}  // namespace
#endif

absl::StatusOr<std::unique_ptr<DeviceComms>> DeviceComms::Create(RankComms& host,
                                                                 Backend& backend) {
  CudaBackendControl* cuda = AsCudaBackend(backend);
  if (cuda == nullptr || host.world == nullptr || host.world->size() == 1) return nullptr;
#if defined(SPARKSTACK_DEVICE_COMMS)
  auto comms = std::make_unique<NcclDeviceComms>();
  // Every rank creates the world communicator, then its tensor-parallel group's, in this order.
  CommunicatorBootstrap world(*host.world);
  SPARKSTACK_ASSIGN_OR_RETURN(comms->world_, NcclCommunicator::Create(world, cuda->compute_stream()));
  CommunicatorBootstrap tp(*host.tp_group);
  SPARKSTACK_ASSIGN_OR_RETURN(comms->tp_, NcclCommunicator::Create(tp, cuda->compute_stream()));
  comms->world_->set_synchronous(false);
  comms->tp_->set_synchronous(false);
  comms->world_->set_timeout(host.world->timeout());
  comms->tp_->set_timeout(host.world->timeout());
  return std::unique_ptr<DeviceComms>(std::move(comms));
#else
  return absl::FailedPreconditionError(
      "cuda: a multi-rank world on the CUDA backend needs NCCL communicators, which this build "
      "cannot create (no NCCL, or no Bootstrap interface); use --backend cpu");
#endif
}

}  // namespace sparkstack
