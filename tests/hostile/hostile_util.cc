#include "tests/hostile/hostile_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nlohmann/json.hpp"
#include "runtime/model/tiny_model.h"

namespace sparkstack::hostile {
namespace {

std::string Binary() {
  const char* binary = std::getenv("SPARKSTACK_BINARY");
  return binary != nullptr ? binary : "sparkstack";
}

}  // namespace

RunResult RunSparkstack(const std::vector<std::string>& args, const RunOptions& options) {
  RunResult result;
  int out_pipe[2], err_pipe[2], in_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0 ||
      pipe2(in_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return result;
  }
  const std::string binary = Binary();
  std::vector<std::string> argv_storage = {binary};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);  // its own group, so a timeout kills any children too
    if (options.stdin_text.empty()) {
      const int in = open(options.stdin_path.c_str(), O_RDONLY);
      if (in < 0) _exit(126);
      dup2(in, 0);
    } else {
      dup2(in_pipe[0], 0);
    }
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    for (const auto& [key, value] : options.env) setenv(key.c_str(), value.c_str(), 1);
    // An ASan-built binary must report a failed huge allocation as bad_alloc (as glibc's
    // allocator does), not abort.
    const char* asan = getenv("ASAN_OPTIONS");
    const std::string asan_options =
        std::string(asan != nullptr ? asan : "") + ":allocator_may_return_null=1";
    setenv("ASAN_OPTIONS", asan_options.c_str(), 1);
    if (options.address_space_limit > 0) {
      struct rlimit limit = {options.address_space_limit, options.address_space_limit};
      setrlimit(RLIMIT_AS, &limit);
    }
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(in_pipe[0]);
  if (!options.stdin_text.empty()) {
    // Small inputs only: fits the pipe buffer, so this never blocks on a child that does not read.
    const ssize_t written = write(in_pipe[1], options.stdin_text.data(), options.stdin_text.size());
    (void)written;
  }
  close(in_pipe[1]);

  const auto deadline =
      start + std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000));
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      kill(-pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 1000))) < 0 &&
        errno != EINTR) {
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[65536];
      const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        // Keep the start and the end of huge outputs; cases only look for short fragments.
        if (sinks[i]->size() < (8u << 20)) sinks[i]->append(buffer, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (const pollfd& p : fds) {
    if (p.fd >= 0) close(p.fd);
  }
  int status = 0;
  if (result.timed_out) {
    waitpid(pid, &status, 0);
  } else {
    // Output closed: the process is exiting; give it the rest of the limit to do so.
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        result.timed_out = true;
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      usleep(2000);
    }
  }
  kill(-pid, SIGKILL);  // anything the command left behind in its group
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string Describe(const RunResult& r) {
  std::ostringstream out;
  out << "exit " << r.exit_code << (r.timed_out ? " (TIMED OUT)" : "") << " after " << r.seconds
      << " s\n--- stderr ---\n"
      << r.err.substr(0, 4000) << "\n--- stdout ---\n"
      << r.out.substr(0, 2000);
  return out.str();
}

void ExpectFailure(const RunResult& result, int exit_code, const std::string& fragment) {
  EXPECT_FALSE(result.timed_out) << Describe(result);
  EXPECT_EQ(result.exit_code, exit_code) << Describe(result);
  EXPECT_THAT(result.err, ::testing::HasSubstr(fragment)) << Describe(result);
  for (const char* crash : {"AddressSanitizer", "runtime error:", "terminate called", "Aborted",
                            "std::bad_alloc", "Segmentation"}) {
    EXPECT_THAT(result.err, ::testing::Not(::testing::HasSubstr(crash))) << Describe(result);
  }
}

ScratchDir::ScratchDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  path_ = std::filesystem::path(::testing::TempDir()) /
          (std::string("sparkstack_hostile_") + info->test_suite_name() + "_" + info->name() + "_" +
           std::to_string(getpid()));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string SourceDir() {
  const char* dir = std::getenv("SPARKSTACK_SOURCE_DIR");
  return dir != nullptr ? dir : SPARKSTACK_TEST_SOURCE_DIR;
}

void WriteTinyLlama(const std::string& dir) {
  TinyModelOptions options;
  options.config = TinyModelConfig(Architecture::kLlama);
  options.seed = 7;
  ASSERT_TRUE(WriteTinyModel(options, dir).ok());
}

void WriteTokenizer(const std::string& dir, const std::string& chat_template) {
  std::filesystem::copy_file(SourceDir() + "/tests/fuzz/corpus/tokenizer_json/byte_level.json",
                             dir + "/tokenizer.json",
                             std::filesystem::copy_options::overwrite_existing);
  const nlohmann::json config = {{"bos_token", "<|endoftext|>"},
                                 {"eos_token", "<|endoftext|>"},
                                 {"chat_template", chat_template}};
  WriteFile(dir + "/tokenizer_config.json", config.dump());
}

}  // namespace sparkstack::hostile
