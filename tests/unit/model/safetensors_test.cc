#include "runtime/model/safetensors.h"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/model/test_util.h"

namespace sparkstack {
namespace {

using ::sparkstack::testing::RawSafetensors;
using ::sparkstack::testing::ReadBytes;
using ::sparkstack::testing::ScratchDir;
using ::sparkstack::testing::WriteBytes;
using ::testing::HasSubstr;

Tensor RandomTensor(DType dtype, const Shape& shape, std::mt19937& rng) {
  Tensor t = Tensor::Zeros(dtype, shape);
  auto* bytes = t.data_as<uint8_t>();
  for (size_t i = 0; i < t.nbytes(); ++i) bytes[i] = static_cast<uint8_t>(rng());
  return t;
}

std::string Bytes(const Tensor& t) {
  return std::string(static_cast<const char*>(t.data()), t.nbytes());
}

TEST(SafetensorsTest, RoundTripEveryDTypeAndOddShapes) {
  ScratchDir dir;
  std::mt19937 rng(1234);
  const std::vector<DType> dtypes = {DType::kF32, DType::kF16, DType::kBF16, DType::kF8E4M3,
                                     DType::kI32, DType::kI64, DType::kU8};
  const std::vector<Shape> shapes = {{}, {0}, {1}, {7}, {3, 5}, {3, 0, 5}, {2, 3, 5, 7}, {13, 1}};
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (DType dtype : dtypes) {
    for (size_t s = 0; s < shapes.size(); ++s) {
      // Names out of alphabetical order, so file order (as given) differs from header key order.
      tensors.emplace_back("t" + std::to_string(99 - s) + "." + std::string(DTypeName(dtype)),
                           RandomTensor(dtype, shapes[s], rng));
    }
  }
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "odd \"q\""}};
  const std::string path = dir.File("round_trip.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors, metadata).ok());

  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->path(), path);
  EXPECT_EQ((*file)->metadata(), metadata);
  ASSERT_EQ((*file)->entries().size(), tensors.size());
  // File order is the order given: the data is laid out back to back.
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, expected] = tensors[i];
    const SafetensorsEntry& entry = (*file)->entries()[i];
    EXPECT_EQ(entry.name, name);
    EXPECT_EQ(entry.begin, offset) << name;
    offset = entry.end;
    const SafetensorsEntry* found = (*file)->Find(name);
    ASSERT_NE(found, nullptr) << name;
    EXPECT_EQ(found->dtype, expected.dtype()) << name;
    EXPECT_EQ(found->shape, expected.shape()) << name;
    auto got = (*file)->Get(name);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->dtype(), expected.dtype());
    EXPECT_EQ(got->shape(), expected.shape());
    EXPECT_EQ(Bytes(*got), Bytes(expected)) << name;
  }
  EXPECT_EQ((*file)->data_size(), offset);
  EXPECT_EQ((*file)->Find("absent"), nullptr);
  auto missing = (*file)->Get("absent");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("absent"));
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(path));
}

// Checks the bytes on disk with an independent JSON parse: length prefix, sorted keys, space
// padding to an 8-byte data start, offsets.
TEST(SafetensorsTest, WrittenLayoutMatchesTheFormat) {
  ScratchDir dir;
  std::mt19937 rng(7);
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"zeta", RandomTensor(DType::kBF16, {3}, rng)},
      {"alpha", RandomTensor(DType::kF32, {1, 1}, rng)}};
  const std::string path = dir.File("layout.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors, {{"format", "pt"}}).ok());
  const std::string bytes = ReadBytes(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ((8 + n) % 8, 0u);
  ASSERT_EQ(bytes.size(), 8 + n + 6 + 4);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  const size_t last = header.find_last_not_of(' ');
  EXPECT_EQ(header[last], '}');
  // Keys in sorted order in the text.
  EXPECT_LT(header.find("\"__metadata__\""), header.find("\"alpha\""));
  EXPECT_LT(header.find("\"alpha\""), header.find("\"zeta\""));
  const auto json = nlohmann::json::parse(header);
  EXPECT_EQ(json["__metadata__"]["format"], "pt");
  EXPECT_EQ(json["zeta"]["dtype"], "BF16");
  EXPECT_EQ(json["zeta"]["shape"], nlohmann::json::array({3}));
  EXPECT_EQ(json["zeta"]["data_offsets"], nlohmann::json::array({0, 6}));
  EXPECT_EQ(json["alpha"]["dtype"], "F32");
  EXPECT_EQ(json["alpha"]["data_offsets"], nlohmann::json::array({6, 10}));
  EXPECT_EQ(bytes.substr(8 + n, 6), Bytes(tensors[0].second));
  EXPECT_EQ(bytes.substr(8 + n + 6, 4), Bytes(tensors[1].second));
}

TEST(SafetensorsTest, Nvfp4IsStoredAsPackedU8) {
  ScratchDir dir;
  std::mt19937 rng(3);
  Tensor codes = RandomTensor(DType::kNvfp4, {3, 10}, rng);
  const std::string path = dir.File("fp4.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"w", codes}}).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  auto got = (*file)->Get("w");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->dtype(), DType::kU8);
  EXPECT_EQ(got->shape(), (Shape{3, 5}));
  EXPECT_EQ(Bytes(*got), Bytes(codes));

  auto odd = WriteSafetensors(dir.File("odd.safetensors"),
                              {{"w", RandomTensor(DType::kNvfp4, {3, 5}, rng)}});
  EXPECT_EQ(odd.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(odd.message()), HasSubstr("even last dimension"));
}

TEST(SafetensorsTest, WriterRejectsDuplicateNames) {
  ScratchDir dir;
  auto status = WriteSafetensors(dir.File("dup.safetensors"),
                                 {{"a", Tensor::Zeros(DType::kF32, {1})},
                                  {"a", Tensor::Zeros(DType::kF32, {2})}});
  EXPECT_THAT(std::string(status.message()), HasSubstr("duplicate tensor name 'a'"));
}

TEST(SafetensorsTest, TensorKeepsMappingAliveAfterFileIsDropped) {
  ScratchDir dir;
  std::mt19937 rng(11);
  Tensor t = RandomTensor(DType::kF32, {4, 3}, rng);
  const std::string path = dir.File("alive.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"x", t}}).ok());
  Tensor borrowed;
  {
    auto file = SafetensorsFile::Open(path);
    ASSERT_TRUE(file.ok());
    borrowed = *(*file)->Get("x");
  }
  EXPECT_EQ(Bytes(borrowed), Bytes(t));  // ASan would flag a use after munmap
}

}  // namespace
}  // namespace sparkstack
