// Helpers shared by the libFuzzer targets: what every target checks beyond "no crash, no
// sanitizer report".
#ifndef SPARKSTACK_TESTS_FUZZ_FUZZ_COMMON_H_
#define SPARKSTACK_TESTS_FUZZ_FUZZ_COMMON_H_

#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"

namespace sparkstack::fuzz {

// Fails the run (libFuzzer saves the input as a crash) with `why` on stderr.
[[noreturn]] inline void Fail(const char* why) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", why);
  std::abort();
}

// Every error must say what went wrong: a rejected input never gives an empty message, and
// never one of the codes reserved for bugs (Internal, Unknown).
inline void CheckError(const absl::Status& status) {
  if (status.ok()) return;
  if (status.message().empty()) Fail("error with an empty message");
  if (status.code() == absl::StatusCode::kInternal || status.code() == absl::StatusCode::kUnknown) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    Fail("an input error reported as Internal/Unknown");
  }
}

}  // namespace sparkstack::fuzz

#endif  // SPARKSTACK_TESTS_FUZZ_FUZZ_COMMON_H_
