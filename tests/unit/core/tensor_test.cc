#include "runtime/core/tensor.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace sparkstack {
namespace {

TEST(TensorTest, ZerosIsAlignedAndZeroed) {
  Tensor t = Tensor::Zeros(DType::kBF16, {3, 5});
  EXPECT_EQ(t.numel(), 15);
  EXPECT_EQ(t.nbytes(), 30u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % kTensorAlignment, 0u);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(t.data_as<uint16_t>()[i], 0);
}

TEST(TensorTest, Nvfp4PacksTwoPerByte) {
  Tensor t = Tensor::Zeros(DType::kNvfp4, {4, 6});
  EXPECT_EQ(t.nbytes(), 12u);
  auto rows = t.SliceRows(1, 3);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(static_cast<char*>(rows->data()) - static_cast<char*>(t.data()), 3);
  EXPECT_EQ(rows->dim(0), 2);
}

TEST(TensorTest, SliceRowsSharesStorageAndChecksBounds) {
  Tensor t = Tensor::Zeros(DType::kF32, {4, 3});
  for (int i = 0; i < 12; ++i) t.data_as<float>()[i] = static_cast<float>(i);
  auto rows = t.SliceRows(2, 4);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->data_as<float>()[0], 6.0f);
  EXPECT_FALSE(t.SliceRows(3, 5).ok());
  EXPECT_FALSE(t.SliceRows(-1, 2).ok());
}

TEST(TensorTest, ReshapeKeepsElementCount) {
  Tensor t = Tensor::Zeros(DType::kF32, {4, 3});
  EXPECT_TRUE(t.Reshape({2, 6}).ok());
  auto bad = t.Reshape({5, 2});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("f32[4, 3]"), std::string_view::npos);
}

TEST(TensorTest, CloneIsDeep) {
  Tensor t = Tensor::Zeros(DType::kI32, {3});
  Tensor c = t.Clone();
  c.data_as<int32_t>()[0] = 7;
  EXPECT_EQ(t.data_as<int32_t>()[0], 0);
}

}  // namespace
}  // namespace sparkstack
