// Bounded file reading and the memory budget (runtime/core/read_file.h, memory_budget.h).
#include "runtime/core/read_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/core/memory_budget.h"
#include "runtime/core/tensor.h"

namespace sparkstack {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

class ReadFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("read_file_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  fs::path dir_;
};

TEST_F(ReadFileTest, ReadsRegularFilesUpToTheLimit) {
  const std::string path = Write("a.json", std::string(1000, 'x'));
  auto text = ReadRegularFile(path, 1000, "test file");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, std::string(1000, 'x'));
  auto too_big = ReadRegularFile(path, 999, "test file");
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      too_big.status().message(),
      HasSubstr("test file " + path + " is 1000 B, more than the 999 B such a file may be"));
  auto empty = ReadRegularFile(Write("empty", ""), 10, "test file");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

TEST_F(ReadFileTest, RefusesWhatIsNotARegularFileWithoutBlocking) {
  const std::string fifo = (dir_ / "fifo").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  auto from_fifo = ReadRegularFile(fifo, 100, "model config");  // would block forever if opened
  EXPECT_EQ(from_fifo.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(from_fifo.status().message(),
              HasSubstr("model config " + fifo + " is a FIFO (named pipe), not a regular file"));
  auto from_zero = ReadRegularFile("/dev/zero", 100, "model config");
  EXPECT_THAT(from_zero.status().message(), HasSubstr("is a character device"));
  auto from_dir = ReadRegularFile(dir_.string(), 100, "model config");
  EXPECT_THAT(from_dir.status().message(), HasSubstr("is a directory"));
  auto missing = ReadRegularFile((dir_ / "missing").string(), 100, "model config");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("model config "));
  EXPECT_THAT(missing.status().message(), HasSubstr("missing not found"));
}

TEST_F(ReadFileTest, SparseHugeFileIsRefusedBeforeReading) {
  const std::string path = Write("huge", "{");
  ASSERT_EQ(truncate(path.c_str(), off_t{1} << 40), 0);  // 1 TiB, no blocks
  auto text = ReadRegularFile(path, kMaxTokenizerFileBytes, "tokenizer file");
  EXPECT_THAT(text.status().message(), HasSubstr("is 1.0 TiB, more than the 512.0 MiB"));
}

TEST(HumanBytesTest, Units) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1024), "1.0 KiB");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(16ull << 20), "16.0 MiB");
  EXPECT_EQ(HumanBytes(40'000'000'000ull), "37.3 GiB");
  EXPECT_EQ(HumanBytes(UINT64_MAX), "16.0 EiB");
}

// Sets $SPARKSTACK_MEMORY_BUDGET for one test.
class ScopedBudget {
 public:
  explicit ScopedBudget(const char* value) { setenv(kMemoryBudgetEnv, value, 1); }
  ~ScopedBudget() { unsetenv(kMemoryBudgetEnv); }
};

TEST(MemoryBudgetTest, VariableCapsTheBudget) {
  ScopedBudget budget("8G");
  const MemoryHeadroom headroom = AvailableMemory();
  EXPECT_LE(headroom.bytes, 8ull << 30);
  EXPECT_TRUE(CheckMemoryBudget(1 << 20, "a small thing").ok());
  const absl::Status status = CheckMemoryBudget(40'000'000'000ull, "the embedding");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(), HasSubstr("the embedding needs 37.3 GiB, but only "));
}

TEST(MemoryBudgetTest, SuffixesAndBadValues) {
  {
    ScopedBudget budget("1536k");
    EXPECT_EQ(AvailableMemory().bytes, 1536u << 10);
    EXPECT_EQ(AvailableMemory().limited_by, kMemoryBudgetEnv);
  }
  for (const char* bad : {"lots", "-1", "", "12X", "99999999999999999999"}) {
    ScopedBudget budget(bad);
    const absl::Status status = CheckMemoryBudget(1, "x");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(status.message(), HasSubstr("is not a size")) << bad;
  }
}

TEST(MemoryBudgetTest, LargeTensorAllocationsAreChecked) {
  ScopedBudget budget("100M");
  try {
    AllocateAligned(size_t{1} << 30);
    FAIL() << "a 1 GiB allocation passed a 100 MiB budget";
  } catch (const MemoryBudgetExceeded& e) {
    EXPECT_THAT(e.what(), HasSubstr("allocating a host tensor needs 1.0 GiB, but only 100.0 MiB"));
  }
  EXPECT_NE(AllocateAligned(1 << 20), nullptr);  // small ones are not checked (and fit)
}

}  // namespace
}  // namespace sparkstack
