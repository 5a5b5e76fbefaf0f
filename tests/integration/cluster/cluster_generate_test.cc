// Tensor- and pipeline-parallel generation in real processes over loopback gives the same greedy
// tokens and (within float tolerance) the same logits as the single-process run.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/model/safetensors.h"
#include "runtime/model/tiny_model.h"

namespace sparkstack {
namespace {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string Binary() {
  const char* path = std::getenv("SPARKSTACK_BINARY");
  return path ? path : "sparkstack";
}

std::string WriteModel(Architecture arch, const std::string& name) {
  ModelConfig c = TinyModelConfig(arch);
  c.hidden_size = 48;
  c.intermediate_size = 90;  // uneven MLP split at tp = 4
  c.num_layers = 3;          // uneven pipeline split
  c.num_heads = 8;
  c.num_kv_heads = 2;  // kv_heads < tp at tp = 4
  c.head_dim = 12;
  c.vocab_size = 251;  // not divisible by 2 or 4
  c.torch_dtype = DType::kF32;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("sparkstack_cluster_" + std::to_string(getpid()) + "_" + name);
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(WriteTinyModel({.config = c, .seed = 17}, dir.string()).ok());
  return dir.string();
}

// Rewrites the model's checkpoint without `name`.
void RemoveTensor(const std::string& dir, const std::string& name) {
  auto file = SafetensorsFile::Open(dir + "/model.safetensors");
  ASSERT_TRUE(file.ok());
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& entry : (*file)->entries()) {
    if (entry.name != name) tensors.emplace_back(entry.name, (*file)->Get(entry.name)->Clone());
  }
  file->reset();
  ASSERT_TRUE(WriteSafetensors(dir + "/model.safetensors", tensors).ok());
}

nlohmann::json Generate(const std::string& model, const std::string& extra) {
  const CommandResult r = RunCommand(Binary() + " generate --model " + model +
                                     " --prompt-ids 1,2,3,4,200,17,5 --max-tokens 32 --ignore-eos"
                                     " --json --timeout 30 " + extra);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto json = nlohmann::json::parse(r.output, nullptr, false);
  EXPECT_TRUE(json.is_object()) << "not one JSON object: " << r.output;
  return json;
}

class ClusterGenerateTest : public ::testing::TestWithParam<Architecture> {};

TEST_P(ClusterGenerateTest, EveryLayoutMatchesTheSingleProcessRun) {
  const std::string model = WriteModel(GetParam(), std::string(ArchitectureName(GetParam())));
  const nlohmann::json single = Generate(model, "");
  ASSERT_EQ(single["output_ids"].size(), 32u);
  for (auto [tp, pp] : {std::pair{2, 1}, {4, 1}, {1, 2}, {2, 2}}) {
    SCOPED_TRACE("tp=" + std::to_string(tp) + " pp=" + std::to_string(pp));
    const nlohmann::json sharded = Generate(
        model, "--local-ranks --tp " + std::to_string(tp) + " --pp " + std::to_string(pp));
    EXPECT_EQ(sharded["prompt_ids"], single["prompt_ids"]);
    EXPECT_EQ(sharded["output_ids"], single["output_ids"]);
    const auto& want = single["last_logits"];
    const auto& got = sharded["last_logits"];
    ASSERT_EQ(got.size(), want.size());
    double scale = 0, worst = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      scale = std::max(scale, std::fabs(want[i].get<double>()));
      worst = std::max(worst, std::fabs(got[i].get<double>() - want[i].get<double>()));
    }
    EXPECT_LE(worst, 1e-5 * scale);
  }
}

// Three sequences in flight together (pipeline micro-batches), sampled with seeds: every
// sequence's tokens equal the single process's for the same prompt and seed.
TEST_P(ClusterGenerateTest, SeveralSequencesInFlightMatchTheSingleProcessRun) {
  const std::string model = WriteModel(GetParam(), "batch" + std::string(ArchitectureName(GetParam())));
  const std::string args = " generate --model " + model +
                           " --prompt-ids 1,2,3,4 --prompt-ids 250,7 --prompt-ids 9"
                           " --max-tokens 20 --ignore-eos --temperature 0.9 --top-k 50 --seed 11"
                           " --timeout 30";
  const CommandResult single = RunCommand(Binary() + args);
  ASSERT_EQ(single.exit_code, 0) << single.output;
  ASSERT_EQ(std::count(single.output.begin(), single.output.end(), '\n'), 3) << single.output;
  for (const char* layout : {" --local-ranks --pp 3", " --local-ranks --tp 2 --pp 2"}) {
    const CommandResult cluster = RunCommand(Binary() + args + layout);
    ASSERT_EQ(cluster.exit_code, 0) << cluster.output;
    EXPECT_EQ(cluster.output, single.output) << layout;
  }
}

INSTANTIATE_TEST_SUITE_P(Architectures, ClusterGenerateTest,
                         ::testing::Values(Architecture::kLlama, Architecture::kQwen3),
                         [](const auto& info) { return std::string(ArchitectureName(info.param)); });

// With no tokens to generate, the cluster still prefills and reports the prompt's logits.
TEST(ClusterGenerateZeroTokensTest, ReportsTheSameLastLogits) {
  const std::string model = WriteModel(Architecture::kLlama, "zero");
  const CommandResult single = RunCommand(Binary() + " generate --model " + model +
                                          " --prompt-ids 4,5,6 --max-tokens 0 --json");
  const CommandResult cluster = RunCommand(Binary() + " generate --model " + model +
                                           " --prompt-ids 4,5,6 --max-tokens 0 --json"
                                           " --local-ranks --pp 2 --timeout 30");
  ASSERT_EQ(single.exit_code, 0) << single.output;
  ASSERT_EQ(cluster.exit_code, 0) << cluster.output;
  const auto want = nlohmann::json::parse(single.output);
  const auto got = nlohmann::json::parse(cluster.output);
  EXPECT_TRUE(got["output_ids"].empty());
  ASSERT_EQ(got["last_logits"].size(), 251u);
  EXPECT_EQ(got["last_logits"], want["last_logits"]);
}

// A prompts file with per-line sampling fields gives each line what the same flags give alone.
TEST(GeneratePromptsFileTest, EachLineEqualsItsFlagsAlone) {
  const std::string model = WriteModel(Architecture::kQwen3, "prompts_file");
  const std::string file = model + "/prompts.jsonl";
  {
    std::ofstream out(file);
    out << R"({"prompt_ids": [1, 2, 3], "max_tokens": 5})" << "\n\n"
        << R"({"prompt_ids": [9, 8], "temperature": 0.9, "top_k": 20, "seed": 77, "max_tokens": 7})"
        << "\n"
        << R"({"prompt_ids": [4], "min_p": 0.1, "temperature": 1.2, "seed": 5, "frequency_penalty": 0.5})"
        << "\n";
  }
  const CommandResult all = RunCommand(Binary() + " generate --model " + model +
                                       " --prompts-file " + file + " --ignore-eos --no-logits --json");
  ASSERT_EQ(all.exit_code, 0) << all.output;
  const std::vector<std::string> alone_flags = {
      " --prompt-ids 1,2,3 --max-tokens 5",
      " --prompt-ids 9,8 --temperature 0.9 --top-k 20 --seed 77 --max-tokens 7",
      " --prompt-ids 4 --min-p 0.1 --temperature 1.2 --seed 5 --frequency-penalty 0.5"};
  std::istringstream lines(all.output);
  for (const std::string& flags : alone_flags) {
    std::string line;
    ASSERT_TRUE(std::getline(lines, line)) << all.output;
    const CommandResult alone = RunCommand(Binary() + " generate --model " + model + flags +
                                           " --ignore-eos --no-logits --json");
    ASSERT_EQ(alone.exit_code, 0) << alone.output;
    EXPECT_EQ(nlohmann::json::parse(line), nlohmann::json::parse(alone.output)) << flags;
  }
}

TEST(GeneratePromptsFileTest, ABadLineIsNamed) {
  const std::string model = WriteModel(Architecture::kLlama, "prompts_bad");
  const std::string file = model + "/bad.jsonl";
  {
    std::ofstream out(file);
    out << R"({"prompt_ids": [1, 2]})" << "\n" << R"({"prompt_ids": [1], "top_k": "many"})" << "\n";
  }
  const CommandResult r =
      RunCommand(Binary() + " generate --model " + model + " --prompts-file " + file);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find(file + ":2: \"top_k\""), std::string::npos) << r.output;
}

TEST(ClusterErrorsTest, ImpossibleSplitFailsClearlyAndQuickly) {
  const std::string model = WriteModel(Architecture::kLlama, "split");
  const CommandResult r = RunCommand("timeout 60 " + Binary() + " generate --model " + model +
                                     " --prompt-ids 1,2 --max-tokens 2 --tp 3 --local-ranks"
                                     " --timeout 20");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 124) << "timed out instead of failing";
  EXPECT_NE(r.output.find("tp 3 does not divide the 8 attention heads"), std::string::npos)
      << r.output;
}

TEST(ClusterErrorsTest, BadTokenIsRejectedBeforeAnyRankStarts) {
  const std::string model = WriteModel(Architecture::kQwen3, "token");
  const CommandResult r = RunCommand("timeout 60 " + Binary() + " generate --model " + model +
                                     " --prompt-ids 1,999 --max-tokens 2 --tp 2 --local-ranks");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("id 999, outside the vocabulary [0, 251)"), std::string::npos)
      << r.output;
}

// A rank that fails on its own (here: rank 1 lacks a tensor of its stage) is reported once, by
// rank 0, with that rank's own message; the other ranks' reactions to it stay quiet.
TEST(ClusterErrorsTest, AWorkersFailureIsReportedOnceWithItsOwnMessage) {
  const std::string model = WriteModel(Architecture::kLlama, "worker_fails");
  RemoveTensor(model, "model.layers.2.mlp.up_proj.weight");
  const CommandResult r = RunCommand("timeout 60 " + Binary() + " generate --model " + model +
                                     " --prompt-ids 1,2 --max-tokens 2 --pp 2 --local-ranks");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("rank 1: no weight for layer model.layers.2.mlp.up_proj"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << "reported more than once:\n"
                                                                   << r.output;
}

TEST(ClusterErrorsTest, WorkerWithBadRendezvousAddressNamesIt) {
  const CommandResult r =
      RunCommand(Binary() + " worker --rank 1 --world 2 --rendezvous nonsense");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("'nonsense' is not HOST:PORT"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sparkstack
