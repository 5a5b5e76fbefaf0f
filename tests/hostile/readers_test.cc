// Hostile files where a model directory's files should be: FIFOs, devices, directories, huge or
// sparse files, headers built to be slow. Every reader refuses them quickly with a message that
// names the file and what is wrong with it.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "runtime/model/safetensors.h"
#include "tests/hostile/hostile_util.h"

namespace sparkstack::hostile {
namespace {

namespace fs = std::filesystem;

// Model directory with a valid tiny model and tokenizer whose `name` is then replaced by `kind`.
enum class Kind { kFifo, kDevZero, kDirectory, kHugeSparse };

void Replace(const std::string& path, Kind kind, uint64_t huge_size = 0) {
  fs::remove(path);
  switch (kind) {
    case Kind::kFifo:
      ASSERT_EQ(mkfifo(path.c_str(), 0644), 0);
      break;
    case Kind::kDevZero:
      fs::create_symlink("/dev/zero", path);
      break;
    case Kind::kDirectory:
      fs::create_directory(path);
      break;
    case Kind::kHugeSparse:
      WriteFile(path, "{");
      ASSERT_EQ(truncate(path.c_str(), static_cast<off_t>(huge_size)), 0);
      break;
  }
}

struct ReaderCase {
  const char* label;
  const char* file;  // in the model directory
  Kind kind;
  std::vector<std::string> args;  // after "--model DIR"
  std::string expected;
};

class HostileFiles : public ::testing::TestWithParam<ReaderCase> {};

TEST_P(HostileFiles, RefusedQuicklyWithTheFileNamed) {
  const ReaderCase& c = GetParam();
  ScratchDir dir;
  const std::string model = dir.File("model");
  fs::create_directories(model);
  WriteTinyLlama(model);
  WriteTokenizer(model, "{% for m in messages %}{{ m.content }}{% endfor %}");
  const uint64_t huge = std::string(c.file) == "tokenizer.json" ? (600ull << 20) : (100ull << 20);
  Replace(model + "/" + c.file, c.kind, huge);
  std::vector<std::string> args = {"generate", "--model", model};
  args.insert(args.end(), c.args.begin(), c.args.end());
  const RunResult result = RunSparkstack(args, {.timeout_s = 20});
  ExpectFailure(result, 1, c.expected);
  EXPECT_THAT(result.err, ::testing::HasSubstr(c.file)) << Describe(result);
}

const std::vector<std::string> kIds = {"--prompt-ids", "1,2", "--max-tokens", "1"};
const std::vector<std::string> kText = {"--prompt", "hello", "--max-tokens", "1"};

INSTANTIATE_TEST_SUITE_P(
    Readers, HostileFiles,
    ::testing::Values(
        ReaderCase{"config_fifo", "config.json", Kind::kFifo, kIds,
                   "is a FIFO (named pipe), not a regular file"},
        ReaderCase{"config_dev_zero", "config.json", Kind::kDevZero, kIds,
                   "is a character device, not a regular file"},
        ReaderCase{"config_directory", "config.json", Kind::kDirectory, kIds,
                   "is a directory, not a regular file"},
        ReaderCase{"config_huge", "config.json", Kind::kHugeSparse, kIds,
                   "is 100.0 MiB, more than the 16.0 MiB such a file may be"},
        ReaderCase{"weights_fifo", "model.safetensors", Kind::kFifo, kIds,
                   "is a FIFO (named pipe), not a regular file"},
        ReaderCase{"weights_dev_zero", "model.safetensors", Kind::kDevZero, kIds,
                   "is a character device, not a regular file"},
        ReaderCase{"tokenizer_fifo", "tokenizer.json", Kind::kFifo, kText, "tokenizer file"},
        ReaderCase{"tokenizer_huge", "tokenizer.json", Kind::kHugeSparse, kText,
                   "is 600.0 MiB, more than the 512.0 MiB such a file may be"},
        ReaderCase{"tokenizer_config_dev_zero", "tokenizer_config.json", Kind::kDevZero, kText,
                   "is a character device, not a regular file"}),
    [](const ::testing::TestParamInfo<ReaderCase>& info) { return info.param.label; });

TEST(HostileFiles, IndexFifoAndChatFileDevices) {
  ScratchDir dir;
  const std::string model = dir.File("model");
  fs::create_directories(model);
  WriteTinyLlama(model);
  WriteTokenizer(model, "{% for m in messages %}{{ m.content }}{% endfor %}");
  // A FIFO index in a directory with no model.safetensors.
  fs::remove(model + "/model.safetensors");
  ASSERT_EQ(mkfifo((model + "/model.safetensors.index.json").c_str(), 0644), 0);
  ExpectFailure(RunSparkstack({"generate", "--model", model, "--prompt-ids", "1"}), 1,
                "checkpoint index " + model + "/model.safetensors.index.json is a FIFO");
  // --chat naming a device, a directory, a FIFO.
  ExpectFailure(RunSparkstack({"generate", "--model", model, "--chat", "/dev/zero"}), 1,
                "--chat file /dev/zero is a character device, not a regular file");
  ExpectFailure(RunSparkstack({"generate", "--model", model, "--chat", dir.path()}), 1,
                "is a directory, not a regular file");
  ASSERT_EQ(mkfifo(dir.File("chat.fifo").c_str(), 0644), 0);
  ExpectFailure(RunSparkstack({"generate", "--model", model, "--chat", dir.File("chat.fifo")}), 1,
                "is a FIFO (named pipe), not a regular file");
}

// tokenize reads JSON lines from stdin: input without newlines must not grow without bound.
TEST(HostileFiles, TokenizeStdinWithoutNewlines) {
  ScratchDir dir;
  WriteTokenizer(dir.path(), "{{ messages[0].content }}");
  const RunResult result = RunSparkstack({"tokenize", "--model", dir.path()},
                                         {.timeout_s = 30, .stdin_path = "/dev/zero"});
  ExpectFailure(result, 1, "1 of 1 lines failed");
  EXPECT_THAT(result.out, ::testing::HasSubstr("line is longer than 64.0 MiB")) << Describe(result);
}

std::string SafetensorsWithEntries(int n) {
  std::string header = "{";
  for (int i = 0; i < n; ++i) {
    if (i > 0) header += ",";
    header += "\"t" + std::to_string(i) + "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[" +
              std::to_string(4 * i) + "," + std::to_string(4 * i + 4) + "]}";
  }
  header += "}";
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i)
    file[i] = static_cast<char>(static_cast<uint64_t>(header.size()) >> (8 * i));
  return file + header + std::string(4 * static_cast<size_t>(n), '\0');
}

// The header parser is linear: 200,000 entries (a 13 MB header) load in well under the limit.
// With the old quadratic parser this took over an hour (30,000 entries took 10 s).
TEST(HostileFiles, SafetensorsHeaderWithManyEntriesLoadsQuickly) {
  ScratchDir dir;
  const std::string path = dir.File("many.safetensors");
  WriteFile(path, SafetensorsWithEntries(200'000));
  const auto start = std::chrono::steady_clock::now();
  auto file = SafetensorsFile::Open(path);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->entries().size(), 200'000u);
  EXPECT_NE((*file)->Find("t199999"), nullptr);
  EXPECT_LT(seconds, 60) << "parsing 200,000 header entries must not be quadratic";
}

// Own cases: truncated files, headers that lie, shards that escape the directory, nesting.
TEST(HostileFiles, LyingCheckpoints) {
  ScratchDir dir;
  const std::string model = dir.File("model");
  fs::create_directories(model);
  WriteTinyLlama(model);
  const std::string weights = ReadFile(model + "/model.safetensors");
  // Truncated in the middle of the data section.
  WriteFile(model + "/model.safetensors", weights.substr(0, weights.size() / 2));
  ExpectFailure(RunSparkstack({"generate", "--model", model, "--prompt-ids", "1"}), 1,
                "run past the end of the data section");
  // A header length of 2^63.
  std::string lying = weights;
  lying[7] = '\x80';
  WriteFile(model + "/model.safetensors", lying);
  ExpectFailure(RunSparkstack({"generate", "--model", model, "--prompt-ids", "1"}), 1,
                "is absurdly large");
  // An index whose shard leaves the model directory.
  fs::remove(model + "/model.safetensors");
  WriteFile(model + "/model.safetensors.index.json",
            R"({"weight_map": {"model.embed_tokens.weight": "../../../etc/passwd"}})");
  ExpectFailure(RunSparkstack({"generate", "--model", model, "--prompt-ids", "1"}), 1,
                "which is not a file inside the model directory");
  // A config.json nested a million levels deep: no stack overflow, a clean error.
  WriteFile(model + "/config.json", std::string(1'000'000, '[') + std::string(1'000'000, ']'));
  ExpectFailure(RunSparkstack({"generate", "--model", model, "--prompt-ids", "1"}), 1,
                "config.json");
}

}  // namespace
}  // namespace sparkstack::hostile
