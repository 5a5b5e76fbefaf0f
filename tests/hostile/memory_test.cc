// Sizes chosen to exhaust memory: every allocation sized from input is checked against the memory
// budget first, and std::bad_alloc never escapes a command.
#include <filesystem>
#include <string>

#include "nlohmann/json.hpp"
#include "tests/hostile/hostile_util.h"

namespace sparkstack::hostile {
namespace {

namespace fs = std::filesystem;

TEST(HostileMemory, MakeTinyModelAbsurdSizesAgainstTheBudget) {
  ScratchDir dir;
  // 2 x 100000 x 100000 bf16 embeddings alone are 37.3 GiB.
  const RunResult result = RunSparkstack({"make-tiny-model", "--out", dir.File("big"), "--seed",
                                          "1", "--hidden", "100000", "--vocab", "100000"},
                                         {.env = {{"SPARKSTACK_MEMORY_BUDGET", "8G"}}});
  ExpectFailure(result, 1, "needs 37.");
  EXPECT_THAT(result.err, ::testing::HasSubstr("only 8.0 GiB can be allocated (limited by "
                                               "SPARKSTACK_MEMORY_BUDGET)"));
  EXPECT_FALSE(fs::exists(dir.File("big/model.safetensors")));
}

TEST(HostileMemory, MakeTinyModelUnderUlimit) {
  if (kUnderAsan) GTEST_SKIP() << "AddressSanitizer needs more address space than ulimit -v allows";
  ScratchDir dir;
  const RunResult result = RunSparkstack({"make-tiny-model", "--out", dir.File("big"), "--seed",
                                          "1", "--hidden", "100000", "--vocab", "100000"},
                                         {.address_space_limit = 2ull << 30});
  ExpectFailure(result, 1, "(limited by ulimit -v)");
}

TEST(HostileMemory, MakeTinyModelSizesThatOverflow) {
  ScratchDir dir;
  ExpectFailure(RunSparkstack({"make-tiny-model", "--out", dir.File("m"), "--seed", "1", "--hidden",
                               "4000000000", "--vocab", "4000000000"}),
                1, "field 'hidden_size' is 4000000000, more than 2147483647");
  ExpectFailure(RunSparkstack({"make-tiny-model", "--out", dir.File("m"), "--seed", "1", "--hidden",
                               "2000000000", "--vocab", "2000000000"}),
                1, "is too large for a weight matrix");
  ExpectFailure(RunSparkstack({"make-tiny-model", "--out", dir.File("m"), "--seed", "1", "--hidden",
                               "99999999999999999999"}),
                105, "--hidden: '99999999999999999999' is out of range for a 64-bit integer");
}

// A context of two billion positions is a valid config; asking to fill it must end in a clean
// error, not SIGABRT from an uncaught std::bad_alloc.
TEST(HostileMemory, HugeContextWithLargeMaxTokens) {
  ScratchDir dir;
  const std::string model = dir.File("model");
  fs::create_directories(model);
  WriteTinyLlama(model);
  nlohmann::json config = nlohmann::json::parse(ReadFile(model + "/config.json"));
  config["max_position_embeddings"] = 2'000'000'000;
  WriteFile(model + "/config.json", config.dump());
  // The KV pool the engine plans for 1.9e9 positions is refused by the budget check in front of
  // every large host allocation (its size is the engine's plan: the budget and its source are
  // what this checks).
  const RunResult budget = RunSparkstack(
      {"generate", "--model", model, "--prompt-ids", "1,2", "--max-tokens", "1900000000"},
      {.env = {{"SPARKSTACK_MEMORY_BUDGET", "8G"}}});
  ExpectFailure(budget, 1, "sparkstack: error: out of memory: allocating a host tensor needs ");
  EXPECT_THAT(budget.err, ::testing::HasSubstr(
                              "GiB, but only 8.0 GiB can be allocated (limited by "
                              "SPARKSTACK_MEMORY_BUDGET)"));
  // The same under `ulimit -v` (the reproduction) instead of the variable.
  if (!kUnderAsan) {
    const RunResult result = RunSparkstack(
        {"generate", "--model", model, "--prompt-ids", "1,2", "--max-tokens", "1900000000"},
        {.address_space_limit = 4ull << 30});
    ExpectFailure(result, 1, "(limited by ulimit -v)");
  }
  // Past int32 positions the config itself is refused.
  config["max_position_embeddings"] = 1'000'000'000'000;
  WriteFile(model + "/config.json", config.dump());
  ExpectFailure(RunSparkstack({"generate", "--model", model, "--prompt-ids", "1"}), 1,
                "field 'max_position_embeddings' is 1000000000000, more than 2147483647");
}

TEST(HostileMemory, BadBudgetVariable) {
  ScratchDir dir;
  ExpectFailure(RunSparkstack({"make-tiny-model", "--out", dir.File("m"), "--seed", "1"},
                              {.env = {{"SPARKSTACK_MEMORY_BUDGET", "lots"}}}),
                1, "SPARKSTACK_MEMORY_BUDGET='lots' is not a size");
}

}  // namespace
}  // namespace sparkstack::hostile
