// The command line as a new user (or a script with a bug) uses it: numbers out of range, negative
// seeds and timeouts, sloppy id lists, odd head dimensions, --version and --help.
#include <filesystem>
#include <regex>
#include <string>

#include "nlohmann/json.hpp"
#include "tests/hostile/hostile_util.h"

namespace sparkstack::hostile {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kCliValidationError = 105;  // CLI11's exit code for a value that fails a check

class HostileCli : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = dir_.File("model");
    fs::create_directories(model_);
    WriteTinyLlama(model_);
  }
  RunResult Generate(std::vector<std::string> extra) {
    std::vector<std::string> args = {"generate", "--model", model_};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunSparkstack(args);
  }
  ScratchDir dir_;
  std::string model_;
};

TEST_F(HostileCli, RangeErrorsAreShort) {
  const RunResult result = Generate({"--prompt-ids", "1", "--max-tokens", "-1"});
  ExpectFailure(result, kCliValidationError, "--max-tokens: must be >= 0, found -1");
  EXPECT_FALSE(std::regex_search(result.err, std::regex("[0-9]{25}"))) << Describe(result);
  ExpectFailure(Generate({"--prompt-ids", "1", "--tp", "0"}), kCliValidationError,
                "--tp: must be > 0, found 0");
  ExpectFailure(Generate({"--prompt-ids", "1", "--threads", "0x2"}), kCliValidationError,
                "expected an integer in decimal, found '0x2'");
}

TEST_F(HostileCli, SeedsAreUnsigned64Bit) {
  ExpectFailure(Generate({"--prompt-ids", "1", "--seed", "-1"}), kCliValidationError,
                "--seed: must not be negative");
  // The full unsigned range is accepted (and the same seed gives the same tokens).
  const RunResult a = Generate({"--prompt-ids", "1,2", "--max-tokens", "3", "--temperature", "1",
                                "--seed", "18446744073709551615"});
  const RunResult b = Generate({"--prompt-ids", "1,2", "--max-tokens", "3", "--temperature", "1",
                                "--seed", "18446744073709551615"});
  ASSERT_EQ(a.exit_code, 0) << Describe(a);
  EXPECT_EQ(a.out, b.out);
  ExpectFailure(Generate({"--prompt-ids", "1", "--seed", "18446744073709551616"}),
                kCliValidationError, "is out of range for a 64-bit integer");
}

TEST_F(HostileCli, TimeoutMustBePositive) {
  ExpectFailure(Generate({"--prompt-ids", "1", "--timeout", "-1"}), kCliValidationError,
                "--timeout: must be > 0, found -1");
  ExpectFailure(Generate({"--prompt-ids", "1", "--timeout", "0"}), kCliValidationError,
                "--timeout: must be > 0, found 0");
  // The same rule for a --timeout declared without a range check.
  ExpectFailure(RunSparkstack({"worker", "--timeout", "0"}), kCliValidationError,
                "--timeout: must be a positive number of seconds, found 0");
}

TEST_F(HostileCli, StrictIdLists) {
  ExpectFailure(Generate({"--prompt-ids", "1,,2"}), 1, "--prompt-ids '1,,2': item 2 is empty");
  ExpectFailure(Generate({"--prompt-ids", "1,2,"}), 1, "item 3 is empty");
  ExpectFailure(Generate({"--prompt-ids", ""}), 1, "item 1 is empty");
  ExpectFailure(Generate({"--prompt-ids", "1,99999999999"}), 1,
                "item 2 '99999999999' is out of range (token ids are 0 to 2147483647)");
  ExpectFailure(Generate({"--prompt-ids", "1,-3"}), 1, "'-3' is not a token id");
  ExpectFailure(Generate({"--prompt-ids", "1,abc"}), 1, "'abc' is not a token id");
  // Spaces around ids are fine.
  const RunResult ok = Generate({"--prompt-ids", "1, 2", "--max-tokens", "1"});
  EXPECT_EQ(ok.exit_code, 0) << Describe(ok);
}

TEST_F(HostileCli, OddHeadDimIsAConfigError) {
  ExpectFailure(RunSparkstack({"make-tiny-model", "--out", dir_.File("odd"), "--seed", "1",
                               "--head-dim", "7"}),
                1, "head_dim 7 is odd; rotary position embeddings rotate pairs");
  EXPECT_FALSE(fs::exists(dir_.File("odd/model.safetensors")));
  nlohmann::json config = nlohmann::json::parse(ReadFile(model_ + "/config.json"));
  config["head_dim"] = 7;
  WriteFile(model_ + "/config.json", config.dump());
  const RunResult result = Generate({"--prompt-ids", "1"});
  ExpectFailure(result, 1, "head_dim 7 is odd");
  EXPECT_THAT(result.err, Not(HasSubstr("rope:")));
}

TEST_F(HostileCli, VersionAndHelp) {
  const RunResult version = RunSparkstack({"--version"});
  ASSERT_EQ(version.exit_code, 0) << Describe(version);
  EXPECT_TRUE(std::regex_search(version.out, std::regex("^sparkstack [0-9]+\\.[0-9]+\\.[0-9]+\n")))
      << version.out;
  EXPECT_TRUE(std::regex_search(version.out, std::regex("git revision: ([0-9a-f]{12}|unknown)\n")))
      << version.out;
  EXPECT_THAT(version.out, HasSubstr("build type: "));
  EXPECT_THAT(version.out, HasSubstr("CUDA: "));
  const RunResult help = RunSparkstack({"generate", "--help"});
  ASSERT_EQ(help.exit_code, 0) << Describe(help);
  // CLI11 writes a default as "TYPE=VALUE".
  EXPECT_TRUE(std::regex_search(help.out, std::regex("--max-tokens INT[^ \n]*=16\\b"))) << help.out;
  EXPECT_TRUE(std::regex_search(help.out, std::regex("--timeout INT[^ \n]*=60\\b"))) << help.out;
  EXPECT_TRUE(std::regex_search(help.out, std::regex("--seed UINT[^ \n]*=0\\b"))) << help.out;
}

TEST_F(HostileCli, NoSubcommandOrUnknownOption) {
  ExpectFailure(RunSparkstack({}), 106, "A subcommand is required");
  ExpectFailure(RunSparkstack({"generate", "--model", model_, "--bogus"}), 109, "--bogus");
}

}  // namespace
}  // namespace sparkstack::hostile
