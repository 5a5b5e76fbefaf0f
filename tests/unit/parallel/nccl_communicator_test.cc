// NcclCommunicator with one rank on one GPU (multi-rank NCCL needs several GPUs; the shared
// logic — rendezvous, dtype checks, error paths — is exercised by the host tests).
#include "runtime/parallel/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <vector>

#include "runtime/core/half.h"

namespace sparkstack {
namespace {

class NcclCommunicatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      GTEST_SKIP() << "no CUDA device: the 1-rank NCCL test needs a GPU";
    }
    RendezvousOptions options;
    options.world_size = 1;
    auto rendezvous = Rendezvous::Join(options);
    ASSERT_TRUE(rendezvous.ok()) << rendezvous.status();
    auto comm = NcclCommunicator::Create(**rendezvous);
    ASSERT_TRUE(comm.ok()) << comm.status();
    comm_ = std::move(*comm);
  }

  template <typename T>
  T* Upload(const std::vector<T>& host) {
    void* device = nullptr;
    EXPECT_EQ(cudaMalloc(&device, host.size() * sizeof(T) + 1), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
              cudaSuccess);
    buffers_.push_back(device);
    return static_cast<T*>(device);
  }
  template <typename T>
  std::vector<T> Download(const T* device, size_t n) {
    std::vector<T> host(n);
    EXPECT_EQ(cudaMemcpy(host.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
  }
  void TearDown() override {
    comm_.reset();
    for (void* b : buffers_) cudaFree(b);
  }

  std::unique_ptr<NcclCommunicator> comm_;
  std::vector<void*> buffers_;
};

TEST_F(NcclCommunicatorTest, OneRankCollectivesAreIdentity) {
  EXPECT_EQ(comm_->size(), 1);
  std::vector<float> values(1000003);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 977) * 0.25f - 3.0f;
  float* d = Upload(values);
  ASSERT_TRUE(comm_->AllReduceSum(d, values.size(), DType::kF32).ok());
  EXPECT_EQ(Download(d, values.size()), values);

  std::vector<uint16_t> bf16 = {FloatToBf16(1.5f), FloatToBf16(-2.25f), FloatToBf16(1e-3f)};
  uint16_t* db = Upload(bf16);
  ASSERT_TRUE(comm_->AllReduceSum(db, bf16.size(), DType::kBF16).ok());
  EXPECT_EQ(Download(db, bf16.size()), bf16);

  std::vector<int32_t> ints = {1, -7, 1 << 30};
  int32_t* di = Upload(ints);
  int32_t* dout = Upload(std::vector<int32_t>(3, 0));
  ASSERT_TRUE(comm_->AllGather(di, dout, 3, DType::kI32).ok());
  EXPECT_EQ(Download(dout, 3), ints);
  ASSERT_TRUE(comm_->Broadcast(di, 12, 0).ok());
  EXPECT_EQ(Download(di, 3), ints);
  EXPECT_TRUE(comm_->Barrier().ok());
  EXPECT_FALSE(comm_->AllReduceSum(di, 3, DType::kU8).ok());
  EXPECT_FALSE(comm_->Send(di, 4, 0).ok());
  EXPECT_FALSE(comm_->Broadcast(di, 4, 1).ok());
}

}  // namespace
}  // namespace sparkstack
