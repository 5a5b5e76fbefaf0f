#include "runtime/model/checkpoint.h"

#include <filesystem>
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/model/test_util.h"

namespace sparkstack {
namespace {

using ::sparkstack::testing::ScratchDir;
using ::sparkstack::testing::WriteBytes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Tensor Filled(DType dtype, const Shape& shape, uint8_t seed) {
  Tensor t = Tensor::Zeros(dtype, shape);
  for (size_t i = 0; i < t.nbytes(); ++i) t.data_as<uint8_t>()[i] = static_cast<uint8_t>(seed + i);
  return t;
}

std::string Bytes(const Tensor& t) {
  return std::string(static_cast<const char*>(t.data()), t.nbytes());
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

void WriteIndex(const std::string& path, const nlohmann::json& weight_map) {
  nlohmann::json index = {{"metadata", {{"total_size", 123}}}, {"weight_map", weight_map}};
  WriteBytes(path, index.dump(2));
}

// Two shards and an index, as transformers' save_pretrained writes them.
void WriteShardedModel(const ScratchDir& dir) {
  ASSERT_TRUE(WriteSafetensors(dir.File("model-00001-of-00002.safetensors"),
                               {{"embed.weight", Filled(DType::kBF16, {5, 3}, 1)},
                                {"layers.0.w", Filled(DType::kF32, {3}, 2)}})
                  .ok());
  ASSERT_TRUE(WriteSafetensors(dir.File("model-00002-of-00002.safetensors"),
                               {{"layers.1.w", Filled(DType::kF8E4M3, {2, 7}, 3)},
                                {"norm.weight", Filled(DType::kF16, {3}, 4)}})
                  .ok());
  WriteIndex(dir.File("model.safetensors.index.json"),
             {{"embed.weight", "model-00001-of-00002.safetensors"},
              {"layers.0.w", "model-00001-of-00002.safetensors"},
              {"layers.1.w", "model-00002-of-00002.safetensors"},
              {"norm.weight", "./model-00002-of-00002.safetensors"}});
}

TEST(CheckpointTest, SingleFile) {
  ScratchDir dir;
  ASSERT_TRUE(WriteSafetensors(dir.File("model.safetensors"),
                               {{"b", Filled(DType::kF32, {2}, 9)}, {"a", Filled(DType::kU8, {3}, 8)}})
                  .ok());
  auto ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->dir(), dir.path());
  EXPECT_THAT(ckpt->TensorNames(), ElementsAre("a", "b"));
  EXPECT_TRUE(ckpt->Contains("a"));
  EXPECT_FALSE(ckpt->Contains("c"));
  auto b = ckpt->Get("b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(Bytes(*b), Bytes(Filled(DType::kF32, {2}, 9)));
  EXPECT_EQ(ckpt->TotalTensorBytes(), 11u);

  auto missing = ckpt->Get("c");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(missing.status()), HasSubstr("'c'"));
  EXPECT_THAT(Message(missing.status()), HasSubstr(dir.path()));

  // Opening the file directly works too.
  auto direct = Checkpoint::Open(dir.File("model.safetensors"));
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_EQ(direct->dir(), dir.path());
}

TEST(CheckpointTest, OnlySafetensorsFileIsUsed) {
  ScratchDir dir;
  ASSERT_TRUE(WriteSafetensors(dir.File("weights.safetensors"), {{"x", Filled(DType::kI32, {1}, 0)}})
                  .ok());
  auto ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_TRUE(ckpt->Contains("x"));

  ASSERT_TRUE(WriteSafetensors(dir.File("other.safetensors"), {{"y", Filled(DType::kI32, {1}, 0)}})
                  .ok());
  auto two = Checkpoint::Open(dir.path());
  EXPECT_THAT(Message(two.status()), HasSubstr("no model.safetensors.index.json"));
}

TEST(CheckpointTest, EmptyOrMissingDirectory) {
  ScratchDir dir;
  auto empty = Checkpoint::Open(dir.path());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(empty.status()), HasSubstr("no weights in model directory"));
  auto missing = Checkpoint::Open(dir.File("absent"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(missing.status()), HasSubstr("does not exist"));
}

TEST(CheckpointTest, ShardedWithIndex) {
  ScratchDir dir;
  WriteShardedModel(dir);
  auto ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->files().size(), 2u);
  EXPECT_THAT(ckpt->TensorNames(),
              ElementsAre("embed.weight", "layers.0.w", "layers.1.w", "norm.weight"));
  const SafetensorsEntry* entry = ckpt->Find("layers.1.w");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->dtype, DType::kF8E4M3);
  EXPECT_EQ(entry->shape, (Shape{2, 7}));
  EXPECT_THAT(ckpt->FileOf("layers.1.w")->path(), HasSubstr("model-00002-of-00002"));
  auto t = ckpt->Get("norm.weight");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(Bytes(*t), Bytes(Filled(DType::kF16, {3}, 4)));

  // Copies share the files and outlive the original.
  Tensor kept;
  {
    Checkpoint copy = *ckpt;
    ckpt = Checkpoint();
    kept = *copy.Get("embed.weight");
  }
  EXPECT_EQ(Bytes(kept), Bytes(Filled(DType::kBF16, {5, 3}, 1)));
}

TEST(CheckpointTest, IndexMissingShard) {
  ScratchDir dir;
  WriteShardedModel(dir);
  std::filesystem::remove(dir.File("model-00002-of-00002.safetensors"));
  auto ckpt = Checkpoint::Open(dir.path());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(ckpt.status()), HasSubstr("names shard model-00002-of-00002.safetensors"));
  EXPECT_THAT(Message(ckpt.status()), HasSubstr("does not exist"));
}

TEST(CheckpointTest, IndexTensorNotInItsShard) {
  ScratchDir dir;
  WriteShardedModel(dir);
  WriteIndex(dir.File("model.safetensors.index.json"),
             {{"embed.weight", "model-00001-of-00002.safetensors"},
              {"layers.1.w", "model-00001-of-00002.safetensors"},  // really in shard 2
              {"norm.weight", "model-00002-of-00002.safetensors"}});
  auto ckpt = Checkpoint::Open(dir.path());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(ckpt.status()), HasSubstr("maps tensor 'layers.1.w'"));
  EXPECT_THAT(Message(ckpt.status()), HasSubstr("does not contain it (it is in"));

  WriteIndex(dir.File("model.safetensors.index.json"),
             {{"ghost", "model-00001-of-00002.safetensors"},
              {"norm.weight", "model-00002-of-00002.safetensors"}});
  auto ghost = Checkpoint::Open(dir.path());
  EXPECT_THAT(Message(ghost.status()), HasSubstr("maps tensor 'ghost'"));
}

TEST(CheckpointTest, TensorInTwoShards) {
  ScratchDir dir;
  ASSERT_TRUE(WriteSafetensors(dir.File("s1.safetensors"), {{"w", Filled(DType::kU8, {1}, 0)}}).ok());
  ASSERT_TRUE(WriteSafetensors(dir.File("s2.safetensors"),
                               {{"w", Filled(DType::kU8, {1}, 0)}, {"v", Filled(DType::kU8, {1}, 0)}})
                  .ok());
  WriteIndex(dir.File("model.safetensors.index.json"),
             {{"w", "s1.safetensors"}, {"v", "s2.safetensors"}});
  auto ckpt = Checkpoint::Open(dir.path());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(ckpt.status()), HasSubstr("tensor 'w' is in two shards"));
}

TEST(CheckpointTest, MalformedIndex) {
  ScratchDir dir;
  const std::string index = dir.File("model.safetensors.index.json");
  struct Case {
    std::string text;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {"{\"weight_map\": ", "not valid JSON"},
           {"[]", "must be a JSON object"},
           {"{\"metadata\": {}}", "missing 'weight_map'"},
           {"{\"weight_map\": []}", "'weight_map' must be an object"},
           {"{\"weight_map\": {\"w\": 3}}", "must be a file name string"},
           {"{\"weight_map\": {}}", "'weight_map' is empty"},
           {"{\"weight_map\": {\"w\": \"../x.safetensors\"}}", "not a file inside"},
           {"{\"weight_map\": {\"w\": \"/etc/passwd\"}}", "not a file inside"},
       }) {
    SCOPED_TRACE(c.text);
    WriteBytes(index, c.text);
    auto ckpt = Checkpoint::Open(dir.path());
    ASSERT_FALSE(ckpt.ok());
    EXPECT_THAT(Message(ckpt.status()), HasSubstr(c.expected));
    EXPECT_THAT(Message(ckpt.status()), HasSubstr(index));
  }
}

TEST(CheckpointTest, BadShardNamesTheShardFile) {
  ScratchDir dir;
  WriteBytes(dir.File("s1.safetensors"), "garbage!");
  WriteIndex(dir.File("model.safetensors.index.json"), {{"w", "s1.safetensors"}});
  auto ckpt = Checkpoint::Open(dir.path());
  ASSERT_FALSE(ckpt.ok());
  EXPECT_THAT(Message(ckpt.status()), HasSubstr(dir.File("s1.safetensors")));
}

}  // namespace
}  // namespace sparkstack
