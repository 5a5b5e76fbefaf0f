// `--backend cpu|cuda`: carried in EngineOptions (and its JSON, so every rank builds the same
// kind), defaulting to cuda only where a device is visible, and `--backend cuda` without a device
// failing at once, before any model is loaded, with a message that says why and what to use.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/backend/backend_factory.h"
#include "runtime/engine/engine.h"
#include "runtime/model/tiny_model.h"

namespace sparkstack {
namespace {

namespace fs = std::filesystem;

std::string TinyModel() {
  const fs::path dir =
      fs::temp_directory_path() / ("sparkstack_backend_flag_" + std::to_string(::getpid()));
  if (!fs::exists(dir / "config.json")) {
    EXPECT_TRUE(WriteTinyModel({.config = TinyModelConfig(Architecture::kLlama), .seed = 3},
                               dir.string())
                    .ok());
  }
  return dir.string();
}

TEST(BackendFlagTest, ResolvedOptionsNameABackendThatRunsHere) {
  EngineOptions options;
  options.model_dir = TinyModel();
  auto resolved = ResolveEngineOptions(options);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->backend, BackendKindName(DefaultBackendKind()));
  // The JSON every rank receives carries it.
  auto back = EngineOptionsFromJson(EngineOptionsToJson(*resolved));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->backend, resolved->backend);
  nlohmann::json without = EngineOptionsToJson(*resolved);
  without.erase("backend");
  EXPECT_NE(EngineOptionsFromJson(without).status().message().find("'backend'"),
            std::string::npos);

  options.backend = "tpu";
  EXPECT_EQ(ResolveEngineOptions(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.backend = "cpu";
  EXPECT_EQ(ResolveEngineOptions(options)->backend, "cpu");
}

TEST(BackendFlagTest, CudaWithoutADeviceFailsBeforeLoadingAnything) {
  if (BackendAvailable(BackendKind::kCuda).ok()) GTEST_SKIP() << "a CUDA device is visible";
  EngineOptions options;
  options.model_dir = TinyModel();
  options.backend = "cuda";
  auto resolved = ResolveEngineOptions(options);
  EXPECT_EQ(resolved.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(resolved.status().message().find("--backend cuda is not available here"),
            std::string::npos)
      << resolved.status();
  EXPECT_NE(resolved.status().message().find("use --backend cpu"), std::string::npos);

  // The command line says the same and exits non-zero at once.
  const char* binary = std::getenv("SPARKSTACK_BINARY");
  ASSERT_NE(binary, nullptr) << "SPARKSTACK_BINARY is set by the test registration";
  const std::string command = std::string(binary) + " generate --model " + options.model_dir +
                              " --backend cuda --prompt-ids 1,2,3 --max-tokens 2 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  std::array<char, 512> buffer;
  while (fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
  const int status = pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << output;
  EXPECT_NE(output.find("--backend cuda is not available here"), std::string::npos) << output;
}

}  // namespace
}  // namespace sparkstack
