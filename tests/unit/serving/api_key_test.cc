#include "runtime/serving/api_key.h"

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"

namespace sparkstack::serving {
namespace {

TEST(ApiKeyTest, CheckAuthorization) {
  EXPECT_TRUE(CheckAuthorization("", "").ok());  // no key: open
  EXPECT_TRUE(CheckAuthorization("Bearer k3y", "k3y").ok());
  EXPECT_TRUE(CheckAuthorization("bearer  k3y ", "k3y").ok());
  EXPECT_TRUE(absl::IsUnauthenticated(CheckAuthorization("", "k3y")));
  EXPECT_TRUE(absl::IsUnauthenticated(CheckAuthorization("Bearer k3", "k3y")));
  EXPECT_TRUE(absl::IsUnauthenticated(CheckAuthorization("Bearer k3yy", "k3y")));
  EXPECT_TRUE(absl::IsUnauthenticated(CheckAuthorization("k3y", "k3y")));
  EXPECT_TRUE(absl::IsUnauthenticated(CheckAuthorization("Basic k3y", "k3y")));
}

TEST(ApiKeyTest, ReadApiKeyFile) {
  const std::string path = ::testing::TempDir() + "/api_key_test_key";
  auto write = [&](const std::string& text) { std::ofstream(path, std::ios::binary) << text; };
  write("  sk-abc\n");
  EXPECT_EQ(ReadApiKeyFile(path).value(), "sk-abc");
  write("\n\n");
  EXPECT_TRUE(absl::IsInvalidArgument(ReadApiKeyFile(path).status()));
  write("two words");
  EXPECT_TRUE(absl::IsInvalidArgument(ReadApiKeyFile(path).status()));
  std::remove(path.c_str());
  EXPECT_TRUE(absl::IsNotFound(ReadApiKeyFile(path).status()));
}

}  // namespace
}  // namespace sparkstack::serving
