// `quantize` streaming into shards: a tiny Qwen3-MoE checkpoint quantized with a small
// max_shard_bytes spans several files and an index, and holds exactly the tensors — bytes included
// — of the single-file output, which itself equals the in-memory reference (every tensor quantized
// with QuantizeNvfp4 and written at once by WriteSafetensors, the writer's former method); the
// sharded output loads and gives the single-file output's logits.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/model.h"
#include "runtime/model/safetensors.h"
#include "runtime/model/tiny_model.h"
#include "runtime/quant/nvfp4_checkpoint_writer.h"
#include "runtime/quant/nvfp4_quantizer.h"
#include "runtime/quant/safetensors_shards.h"
#include "tests/unit/quant/quant_test_util.h"

namespace sparkstack {
namespace {

namespace fs = std::filesystem;

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::set<std::string> Entries(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.insert(entry.path().filename());
  return names;
}

std::string Bytes(const Tensor& t) {
  return std::string(static_cast<const char*>(t.data()), t.nbytes());
}

using testing::QuantTempDir;
using testing::RunLogits;

TEST(AssignShardsTest, ClosesAShardBeforeTheLimitIsPassed) {
  EXPECT_EQ(AssignShards({}, 10), std::vector<int>{});
  EXPECT_EQ(AssignShards({3, 3, 3, 3}, 6), (std::vector<int>{0, 0, 1, 1}));
  EXPECT_EQ(AssignShards({3, 4, 3}, 6), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(AssignShards({3, 3, 4, 2}, 6), (std::vector<int>{0, 0, 1, 1}));
  // A unit larger than the limit gets a shard of its own.
  EXPECT_EQ(AssignShards({1, 10, 1, 1}, 4), (std::vector<int>{0, 1, 2, 2}));
  EXPECT_EQ(AssignShards({10, 10}, 4), (std::vector<int>{0, 1}));
  // Empty units never open a shard; everything fits under a huge limit.
  EXPECT_EQ(AssignShards({4, 0, 0, 1}, 4), (std::vector<int>{0, 0, 0, 1}));
  EXPECT_EQ(AssignShards({5, 7, 9}, ~uint64_t{0}), (std::vector<int>{0, 0, 0}));
}

TEST(AssignShardsTest, HuggingFaceFileNames) {
  EXPECT_EQ(ShardFileName(0, 3), "model-00001-of-00003.safetensors");
  EXPECT_EQ(ShardFileName(11, 12), "model-00012-of-00012.safetensors");
}

class ShardedQuantizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TinyModelOptions options;
    options.config = TinyModelConfig(Architecture::kQwen3Moe);
    options.config.torch_dtype = DType::kBF16;
    options.seed = 11;
    dense_ = tmp_.sub("dense");
    ASSERT_TRUE(WriteTinyModel(options, dense_).ok());
  }
  QuantTempDir tmp_{"sparkstack_sharded_quantize_"};
  std::string dense_;
};

TEST_F(ShardedQuantizeTest, ShardsHoldTheSingleFileTensorsAndLoadTheSame) {
  const std::string single = tmp_.sub("single"), sharded = tmp_.sub("sharded");
  auto one = QuantizeCheckpointToNvfp4(dense_, single, {});
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->shards, 1);
  EXPECT_EQ(Entries(single),
            (std::set<std::string>{"config.json", "hf_quant_config.json", "model.safetensors"}));

  // The single file equals the former in-memory writer's: every tensor in sorted order, linear
  // weights (experts included, not the router, embeddings, lm_head or norms) quantized.
  auto input = Checkpoint::Open(dense_);
  ASSERT_TRUE(input.ok());
  std::vector<std::pair<std::string, Tensor>> reference;
  uint64_t largest_quantized = 0;
  for (const std::string& name : input->TensorNames()) {
    auto t = input->Get(name);
    ASSERT_TRUE(t.ok());
    const bool linear =
        absl::StartsWith(name, "model.layers.") && absl::EndsWith(name, "_proj.weight");
    if (!linear) {
      reference.emplace_back(name, *t);
      continue;
    }
    auto q = QuantizeNvfp4(*t, name);
    ASSERT_TRUE(q.ok()) << q.status();
    const std::string module = name.substr(0, name.size() - 7);
    Tensor global = Tensor::Zeros(DType::kF32, {});
    global.data_as<float>()[0] = q->nvfp4().global_scale;
    reference.emplace_back(name, q->nvfp4().codes);
    reference.emplace_back(module + ".weight_scale", q->nvfp4().block_scales);
    reference.emplace_back(module + ".weight_scale_2", global);
    const uint64_t n = t->shape()[0], k = t->shape()[1];
    largest_quantized = std::max(largest_quantized, n * k / 2 + n * k / 16);
  }
  ASSERT_TRUE(
      WriteSafetensors(tmp_.sub("reference.safetensors"), reference, {{"format", "pt"}}).ok());
  EXPECT_EQ(ReadBytes(single + "/model.safetensors"), ReadBytes(tmp_.sub("reference.safetensors")));

  // Peak memory: one quantized tensor's codes and scales, far below the checkpoint.
  EXPECT_EQ(one->peak_buffer_bytes, largest_quantized);
  EXPECT_LT(one->peak_buffer_bytes * 10, one->output_bytes);

  // A limit of about a sixth of the output gives several shards.
  QuantizeCheckpointOptions options;
  options.max_shard_bytes = one->output_bytes / 6;
  auto many = QuantizeCheckpointToNvfp4(dense_, sharded, options);
  ASSERT_TRUE(many.ok()) << many.status();
  ASSERT_GE(many->shards, 5);
  ASSERT_LT(many->shards, 10);  // the file names below are spelled with one digit
  EXPECT_EQ(many->output_bytes, one->output_bytes);
  EXPECT_EQ(many->quantized_layers, one->quantized_layers);
  EXPECT_EQ(many->kept_tensors, one->kept_tensors);
  std::set<std::string> expected_files = {"config.json", "hf_quant_config.json",
                                          "model.safetensors.index.json"};
  for (int i = 1; i <= many->shards; ++i) {
    expected_files.insert(absl::StrCat("model-0000", i, "-of-0000", many->shards, ".safetensors"));
  }
  EXPECT_EQ(Entries(sharded), expected_files);
  EXPECT_EQ(ReadBytes(single + "/config.json"), ReadBytes(sharded + "/config.json"));
  EXPECT_EQ(ReadBytes(single + "/hf_quant_config.json"),
            ReadBytes(sharded + "/hf_quant_config.json"));

  // (a) The index lists every tensor once, in the file that holds it; total_size is the sum.
  const nlohmann::json index =
      nlohmann::json::parse(ReadBytes(sharded + "/model.safetensors.index.json"));
  const auto weight_map = index.at("weight_map").get<std::map<std::string, std::string>>();
  auto reference_file = SafetensorsFile::Open(tmp_.sub("reference.safetensors"));
  ASSERT_TRUE(reference_file.ok());
  std::set<std::string> reference_names;
  for (const SafetensorsEntry& e : (*reference_file)->entries()) reference_names.insert(e.name);
  std::set<std::string> mapped_names;
  for (const auto& [name, file] : weight_map) mapped_names.insert(name);
  EXPECT_EQ(mapped_names, reference_names);
  uint64_t total = 0;
  std::set<std::string> seen;
  for (int i = 0; i < many->shards; ++i) {
    const std::string file = ShardFileName(i, many->shards);
    auto shard = SafetensorsFile::Open(sharded + "/" + file);
    ASSERT_TRUE(shard.ok()) << shard.status();
    EXPECT_EQ((*shard)->metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
    std::set<std::string> modules;
    for (const SafetensorsEntry& e : (*shard)->entries()) {
      EXPECT_TRUE(seen.insert(e.name).second) << e.name << " is in two shards";
      EXPECT_EQ(weight_map.count(e.name) ? weight_map.at(e.name) : "", file) << e.name;
      total += e.nbytes();
      modules.insert(e.name.substr(0, e.name.rfind('.')));
      // (b) Byte for byte the single-file output's tensor.
      const SafetensorsEntry* want = (*reference_file)->Find(e.name);
      ASSERT_NE(want, nullptr) << e.name;
      EXPECT_EQ(e.dtype, want->dtype) << e.name;
      EXPECT_EQ(e.shape, want->shape) << e.name;
      EXPECT_EQ(Bytes(*(*shard)->Get(e.name)), Bytes(*(*reference_file)->Get(e.name))) << e.name;
    }
    // Within the limit, unless the shard holds one tensor (with its scales) alone.
    EXPECT_TRUE((*shard)->data_size() <= options.max_shard_bytes || modules.size() == 1)
        << file << " holds " << (*shard)->data_size() << " bytes";
  }
  EXPECT_EQ(seen, reference_names);
  EXPECT_EQ(index.at("metadata").at("total_size").get<uint64_t>(), total);
  EXPECT_EQ(total, many->output_bytes);
  EXPECT_EQ(many->peak_buffer_bytes, largest_quantized);

  // (c) Loads through the normal loader (the index) and gives the same logits.
  const std::vector<int32_t> prompt = {1, 5, 17, 3, 42, 8, 8, 29};
  const std::vector<float> from_single = RunLogits(single, prompt);
  ASSERT_FALSE(from_single.empty());
  EXPECT_EQ(RunLogits(sharded, prompt), from_single);
}

// A dense input in several files is walked file by file; the output holds the same tensors as the
// single-file input's.
TEST_F(ShardedQuantizeTest, ShardedInputGivesTheSameTensors) {
  auto input = Checkpoint::Open(dense_);
  ASSERT_TRUE(input.ok());
  const std::string split = tmp_.sub("split");
  fs::create_directories(split);
  std::vector<std::pair<std::string, Tensor>> parts[2];
  nlohmann::json index = {{"metadata", {{"total_size", input->TotalTensorBytes()}}}};
  int i = 0;
  for (const std::string& name : input->TensorNames()) {
    parts[i % 2].emplace_back(name, *input->Get(name));
    index["weight_map"][name] = ShardFileName(i % 2, 2);
    ++i;
  }
  for (int s = 0; s < 2; ++s) {
    ASSERT_TRUE(WriteSafetensors(split + "/" + ShardFileName(s, 2), parts[s]).ok());
  }
  std::ofstream(split + "/model.safetensors.index.json") << index.dump(2);
  fs::copy_file(dense_ + "/config.json", split + "/config.json");

  const std::string from_one = tmp_.sub("from_one"), from_two = tmp_.sub("from_two");
  ASSERT_TRUE(QuantizeCheckpointToNvfp4(dense_, from_one, {}).ok());
  QuantizeCheckpointOptions options;
  options.max_shard_bytes = input->TotalTensorBytes() / 8;
  auto report = QuantizeCheckpointToNvfp4(split, from_two, options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GT(report->shards, 1);
  auto a = Checkpoint::Open(from_one), b = Checkpoint::Open(from_two);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->TensorNames(), b->TensorNames());
  for (const std::string& name : a->TensorNames()) {
    EXPECT_EQ(Bytes(*a->Get(name)), Bytes(*b->Get(name))) << name;
  }
}

TEST_F(ShardedQuantizeTest, BadInputsGiveClearErrors) {
  QuantizeCheckpointOptions options;
  options.max_shard_bytes = 0;
  auto zero = QuantizeCheckpointToNvfp4(dense_, tmp_.sub("zero"), options);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(zero.status().message(), "--max-shard-bytes must be positive"))
      << zero.status();
  EXPECT_FALSE(fs::exists(tmp_.sub("zero")));

  // A non-empty output directory is refused without --overwrite; with it, a sharded result
  // replaces it whole, and a later single-file result leaves no stale shard or index behind.
  const std::string out = tmp_.sub("out");
  fs::create_directories(out);
  std::ofstream(out + "/stale.txt") << "old";
  options.max_shard_bytes = 4096;
  auto refused = QuantizeCheckpointToNvfp4(dense_, out, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "stale.txt")) << refused.status();
  options.overwrite = true;
  auto sharded = QuantizeCheckpointToNvfp4(dense_, out, options);
  ASSERT_TRUE(sharded.ok()) << sharded.status();
  EXPECT_GT(sharded->shards, 1);
  EXPECT_FALSE(fs::exists(out + "/stale.txt"));
  options.max_shard_bytes = kDefaultMaxShardBytes;
  ASSERT_TRUE(QuantizeCheckpointToNvfp4(dense_, out, options).ok());
  EXPECT_EQ(Entries(out),
            (std::set<std::string>{"config.json", "hf_quant_config.json", "model.safetensors"}));

  // A tensor whose name the quantized output also produces is refused by name.
  const std::string clash = tmp_.sub("clash");
  fs::create_directories(clash);
  auto input = Checkpoint::Open(dense_);
  ASSERT_TRUE(input.ok());
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& name : input->TensorNames())
    tensors.emplace_back(name, *input->Get(name));
  tensors.emplace_back("model.layers.0.self_attn.q_proj.weight_scale",
                       Tensor::Zeros(DType::kF32, {2}));
  ASSERT_TRUE(WriteSafetensors(clash + "/model.safetensors", tensors).ok());
  fs::copy_file(dense_ + "/config.json", clash + "/config.json");
  auto clashed = QuantizeCheckpointToNvfp4(clash, tmp_.sub("clash_out"), {});
  ASSERT_FALSE(clashed.ok());
  EXPECT_EQ(clashed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      absl::StrContains(clashed.status().message(),
                        "two tensors called 'model.layers.0.self_attn.q_proj.weight_scale'"))
      << clashed.status();
}

}  // namespace
}  // namespace sparkstack
