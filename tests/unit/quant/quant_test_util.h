// Helpers shared by the quant tests that write checkpoints and run them: a scratch directory and
// the logits of a prompt through the normal loader on the CPU backend.
#ifndef SPARKSTACK_TESTS_UNIT_QUANT_QUANT_TEST_UTIL_H_
#define SPARKSTACK_TESTS_UNIT_QUANT_QUANT_TEST_UTIL_H_

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/model/model.h"
#include "tests/unit/model/paged_driver.h"

namespace sparkstack::testing {

// A fresh directory under the system temp directory, `prefix` + the pid, removed on destruction.
class QuantTempDir {
 public:
  explicit QuantTempDir(const std::string& prefix) {
    path_ = std::filesystem::temp_directory_path() / (prefix + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~QuantTempDir() { std::filesystem::remove_all(path_); }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Logits of every prompt position, one forward pass per token (decode path), of the model in
// `dir` loaded by LoadModel. Empty (with a test failure recorded) if loading or a step fails.
inline std::vector<float> RunLogits(const std::string& dir, const std::vector<int32_t>& prompt) {
  auto backend = MakeCpuBackend();
  auto model = LoadModel(dir, *backend);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return {};
  PagedDriver driver(**model, *backend, 8, /*shuffle_seed=*/0);
  const int s = driver.Add({prompt[0]});
  std::vector<float> all;
  for (size_t t = 0; t < prompt.size(); ++t) {
    if (t > 0) driver.Append(s, prompt[t]);
    auto logits = driver.Step({{s, 1}});
    EXPECT_TRUE(logits.ok()) << logits.status();
    if (!logits.ok()) return {};
    all.insert(all.end(), (*logits)[s].begin(), (*logits)[s].end());
  }
  return all;
}

}  // namespace sparkstack::testing

#endif  // SPARKSTACK_TESTS_UNIT_QUANT_QUANT_TEST_UTIL_H_
