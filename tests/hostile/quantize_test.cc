// `quantize` and its output directory: a non-empty directory is never silently overwritten, and
// with --overwrite it is replaced as a whole, atomically, leaving no stale shards behind.
#include <filesystem>
#include <set>
#include <string>

#include "tests/hostile/hostile_util.h"

namespace sparkstack::hostile {
namespace {

namespace fs = std::filesystem;

std::set<std::string> Entries(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.insert(entry.path().filename());
  return names;
}

class HostileQuantize : public ::testing::Test {
 protected:
  void SetUp() override {
    in_ = dir_.File("in");
    out_ = dir_.File("out");
    fs::create_directories(in_);
    WriteTinyLlama(in_);
  }
  ScratchDir dir_;
  std::string in_, out_;
};

TEST_F(HostileQuantize, NonEmptyOutputNeedsOverwrite) {
  fs::create_directories(out_);
  WriteFile(out_ + "/stale.txt", "from an earlier run");
  ExpectFailure(RunSparkstack({"quantize", in_, out_}), 1,
                "the output directory " + out_ +
                    " is not empty (1 entry: stale.txt); pass --overwrite to replace it");
  EXPECT_EQ(Entries(out_), std::set<std::string>{"stale.txt"});
  EXPECT_EQ(Entries(dir_.path()), (std::set<std::string>{"in", "out"}));
}

TEST_F(HostileQuantize, OverwriteReplacesEverythingAtomically) {
  fs::create_directories(out_);
  WriteFile(out_ + "/stale.txt", "old");
  WriteFile(out_ + "/model-00002-of-00002.safetensors", "old shard");
  const RunResult result = RunSparkstack({"quantize", in_, out_, "--overwrite"});
  ASSERT_EQ(result.exit_code, 0) << Describe(result);
  EXPECT_EQ(Entries(out_),
            (std::set<std::string>{"config.json", "hf_quant_config.json", "model.safetensors"}));
  // No temporary or previous directory left beside it.
  EXPECT_EQ(Entries(dir_.path()), (std::set<std::string>{"in", "out"}));
  // The result loads.
  const RunResult run = RunSparkstack({"generate", "--model", out_, "--prompt-ids", "1,2"});
  EXPECT_EQ(run.exit_code, 0) << Describe(run);
}

TEST_F(HostileQuantize, EmptyOrAbsentOutputIsFine) {
  fs::create_directories(out_);
  const RunResult result = RunSparkstack({"quantize", in_, out_});
  ASSERT_EQ(result.exit_code, 0) << Describe(result);
  EXPECT_TRUE(fs::exists(out_ + "/model.safetensors"));
  const RunResult nested = RunSparkstack({"quantize", in_, dir_.File("a/b/c/")});
  ASSERT_EQ(nested.exit_code, 0) << Describe(nested);
  EXPECT_TRUE(fs::exists(dir_.File("a/b/c/model.safetensors")));
  EXPECT_EQ(Entries(dir_.File("a/b")), std::set<std::string>{"c"});
}

TEST_F(HostileQuantize, NeverDestroysTheInput) {
  // Input inside the directory that --overwrite would replace.
  ExpectFailure(RunSparkstack({"quantize", in_, dir_.path(), "--overwrite"}), 1,
                "--overwrite would delete the input");
  EXPECT_TRUE(fs::exists(in_ + "/model.safetensors"));
  ExpectFailure(RunSparkstack({"quantize", in_, in_, "--overwrite"}), 1, "is the input directory");
  EXPECT_TRUE(fs::exists(in_ + "/model.safetensors"));
  WriteFile(dir_.File("file"), "x");
  ExpectFailure(RunSparkstack({"quantize", in_, dir_.File("file")}), 1,
                "exists and is not a directory");
}

}  // namespace
}  // namespace sparkstack::hostile
