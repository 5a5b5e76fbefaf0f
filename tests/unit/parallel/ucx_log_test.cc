// UCX's log lines never reach stdout (where `generate --json` prints results).
#include "runtime/parallel/ucx_log.h"

#include <ucs/config/global_opts.h>
#include <ucs/debug/log_def.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace sparkstack {
namespace {

// Runs `emit` with stdout redirected to a pipe; returns what was written to it.
template <typename Emit>
std::string CaptureStdout(const Emit& emit) {
  fflush(stdout);
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const int saved = dup(STDOUT_FILENO);
  dup2(fds[1], STDOUT_FILENO);
  emit();
  fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  close(fds[1]);
  std::string out;
  char buffer[512];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof(buffer))) > 0) out.append(buffer, n);
  close(fds[0]);
  return out;
}

void EmitUcxError() {
  ucs_log_dispatch(__FILE__, __LINE__, __func__, UCS_LOG_LEVEL_ERROR,
                   &ucs_global_opts.log_component, "connect(%s) failed", "192.0.2.2");
}

TEST(UcxLogTest, ErrorsGoToOurLoggerNotStdout) {
  // Without the handler UCX prints this very line on stdout: the test can see a leak.
  ASSERT_NE(CaptureStdout(EmitUcxError).find("connect(192.0.2.2) failed"), std::string::npos);
  RouteUcxLogging();
  RouteUcxLogging();  // idempotent
  EXPECT_EQ(CaptureStdout(EmitUcxError), "");
}

}  // namespace
}  // namespace sparkstack
