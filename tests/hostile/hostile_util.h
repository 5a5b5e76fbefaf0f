// Helpers for the hostile-input suite: run the real `sparkstack` binary with a time limit (and,
// where a case needs it, stdin from a file, extra environment or an address-space limit), and
// build the small model directories the cases corrupt.
#ifndef SPARKSTACK_TESTS_HOSTILE_HOSTILE_UTIL_H_
#define SPARKSTACK_TESTS_HOSTILE_HOSTILE_UTIL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparkstack::hostile {

// Whether this test (and so the binary, built with the same flags) runs under AddressSanitizer:
// ASan reserves terabytes of address space, so `ulimit -v` cases cannot run there.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kUnderAsan = true;
#else
inline constexpr bool kUnderAsan = false;
#endif
#else
inline constexpr bool kUnderAsan = false;
#endif

struct RunOptions {
  double timeout_s = 30;                   // the per-case limit: past it the run is killed
  std::string stdin_path = "/dev/null";    // file (or device) connected to stdin
  std::string stdin_text;                  // if set, written to stdin instead
  std::map<std::string, std::string> env;  // added to the environment
  uint64_t address_space_limit = 0;        // RLIMIT_AS in bytes (ulimit -v); 0 = none
};

struct RunResult {
  int exit_code = -1;  // exit status, or 128 + signal
  bool timed_out = false;
  double seconds = 0;
  std::string out, err;
};

// Runs $SPARKSTACK_BINARY with `args`. Never blocks past options.timeout_s (+ a little to reap).
RunResult RunSparkstack(const std::vector<std::string>& args, const RunOptions& options = {});

// For assertion messages: the command's exit code and output.
std::string Describe(const RunResult& result);

// The run ended by itself within its limit, with `exit_code`, and wrote `fragment` to stderr;
// nothing aborted (no signal, no sanitizer report, no uncaught exception).
void ExpectFailure(const RunResult& result, int exit_code, const std::string& fragment);

// A fresh directory removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  std::string path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& contents);
std::string ReadFile(const std::string& path);

// The source tree (for the fuzz corpus files reused as fixtures).
std::string SourceDir();

// A tiny random Llama model (config.json + model.safetensors) written by the library.
void WriteTinyLlama(const std::string& dir);
// tokenizer.json (a byte-level BPE) and tokenizer_config.json with `chat_template`.
void WriteTokenizer(const std::string& dir, const std::string& chat_template);

}  // namespace sparkstack::hostile

#endif  // SPARKSTACK_TESTS_HOSTILE_HOSTILE_UTIL_H_
