// The engine end to end in one process (a world of one): continuous batching, chunked prefill,
// preemption, prefix caching and aborts never change what a request generates.
#include "runtime/engine/engine.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "runtime/model/tiny_model.h"
#include "tests/unit/tokenizer/test_tokenizers.h"

namespace sparkstack {
namespace {

std::string WriteModel(const std::string& name, Architecture arch = Architecture::kQwen3) {
  ModelConfig c = TinyModelConfig(arch);
  c.hidden_size = 48;
  c.intermediate_size = 90;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 12;
  c.vocab_size = 251;
  c.max_position_embeddings = 512;
  c.torch_dtype = DType::kF32;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("sparkstack_engine_test_" + std::to_string(getpid()) + "_" + name);
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(WriteTinyModel({.config = c, .seed = 23}, dir.string()).ok());
  return dir.string();
}

struct Result {
  std::vector<int32_t> tokens;
  std::vector<float> first_logits;
  FinishReason reason = FinishReason::kNone;
  int64_t cached_prompt_tokens = 0;
  absl::Status error;
};

// Collects the streams of many requests.
class Results {
 public:
  Engine::OutputCallback For(size_t i) {
    absl::MutexLock lock(&mu_);
    if (results_.size() <= i) results_.resize(i + 1);
    return [this, i](RequestOutput out) {
      absl::MutexLock lock(&mu_);
      Result& r = results_[i];
      r.tokens.insert(r.tokens.end(), out.token_ids.begin(), out.token_ids.end());
      if (!out.first_logits.empty()) r.first_logits = out.first_logits;
      r.cached_prompt_tokens = out.cached_prompt_tokens;
      if (out.finished()) {
        r.reason = out.finish_reason;
        r.error = out.error;
        ++finished_;
      }
    };
  }
  void WaitFor(size_t count) {
    absl::MutexLock lock(&mu_);
    auto done = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_ >= count; };
    mu_.Await(absl::Condition(&done));
  }
  std::vector<Result> Take() {
    absl::MutexLock lock(&mu_);
    return results_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Result> results_ ABSL_GUARDED_BY(mu_);
  size_t finished_ ABSL_GUARDED_BY(mu_) = 0;
};

EngineOptions Options(const std::string& dir) {
  EngineOptions o;
  o.model_dir = dir;
  o.threads = 2;
  o.max_num_seqs = 64;
  o.max_num_batched_tokens = 96;
  o.max_model_len = 512;
  o.kv_cache_bytes = 8 << 20;
  return o;
}

Request RandomRequest(std::mt19937_64& rng, int64_t max_prompt) {
  Request r;
  r.prompt_ids.resize(1 + rng() % max_prompt);
  for (int32_t& t : r.prompt_ids) t = static_cast<int32_t>(rng() % 251);
  r.stopping.max_tokens = 1 + rng() % 12;
  r.stopping.ignore_eos = rng() % 2;
  r.detokenize = false;
  r.return_first_logits = true;
  if (rng() % 2) {  // seeded sampling with every filter and penalty in play
    SamplingParams& s = r.sampling;
    s.temperature = 0.5f + (rng() % 100) / 100.0f;
    s.top_k = static_cast<int32_t>(rng() % 50);
    s.top_p = 0.5f + (rng() % 50) / 100.0f;
    s.min_p = (rng() % 10) / 100.0f;
    s.repetition_penalty = 1.0f + (rng() % 30) / 100.0f;
    s.presence_penalty = (rng() % 10) / 10.0f;
    s.frequency_penalty = (rng() % 10) / 20.0f;
    s.seed = rng();
    s.logprobs = static_cast<int32_t>(rng() % 4) - 1;
  }
  if (rng() % 4 == 0) {
    r.stopping.min_tokens = std::min<int64_t>(r.stopping.max_tokens, 3);
    r.stopping.stop_token_ids = {static_cast<int32_t>(rng() % 251)};
  }
  return r;
}

// Each request alone in a fresh engine without prefix caching.
std::vector<Result> RunAlone(const std::string& dir, const std::vector<Request>& requests) {
  EngineOptions o = Options(dir);
  o.enable_prefix_caching = false;
  auto engine = Engine::Create(o);
  EXPECT_TRUE(engine.ok()) << engine.status();
  std::vector<Result> out;
  for (const Request& r : requests) {
    Results one;
    EXPECT_TRUE((*engine)->AddRequest(r, one.For(0)).ok());
    one.WaitFor(1);
    out.push_back(one.Take()[0]);
  }
  return out;
}

void ExpectSameAsAlone(const std::vector<Result>& got, const std::vector<Result>& alone) {
  ASSERT_EQ(got.size(), alone.size());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    EXPECT_TRUE(got[i].error.ok()) << got[i].error;
    EXPECT_EQ(got[i].tokens, alone[i].tokens);
    EXPECT_EQ(got[i].reason, alone[i].reason);
    ASSERT_EQ(got[i].first_logits.size(), alone[i].first_logits.size());
    double scale = 0, worst = 0;
    for (size_t v = 0; v < alone[i].first_logits.size(); ++v) {
      scale = std::max(scale, std::fabs(double{alone[i].first_logits[v]}));
      worst = std::max(worst, std::fabs(double{got[i].first_logits[v]} - alone[i].first_logits[v]));
    }
    EXPECT_LE(worst, 1e-5 * scale);
  }
}

// Once the last output is out, the engine settles with nothing running and every block free
// (its statistics are published after the step that finished the requests).
void ExpectIdle(const Engine& engine) {
  for (int i = 0; i < 200 && engine.stats().running + engine.stats().kv_blocks_used > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(engine.stats().running, 0);
  EXPECT_EQ(engine.stats().kv_blocks_used, 0) << "blocks leaked";
}

// Random mixes of up to 64 requests arriving while others run: each equals its run alone.
TEST(EngineTest, BatchedEqualsAlone) {
  const std::string dir = WriteModel("batched");
  for (uint64_t seed : {1, 2}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const size_t n = seed == 1 ? 64 : 1 + rng() % 20;
    std::vector<Request> requests;
    for (size_t i = 0; i < n; ++i) requests.push_back(RandomRequest(rng, 80));
    const std::vector<Result> alone = RunAlone(dir, requests);
    auto engine = Engine::Create(Options(dir));
    ASSERT_TRUE(engine.ok()) << engine.status();
    Results results;
    for (size_t i = 0; i < n; ++i) {
      if (rng() % 4 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 5));
      ASSERT_TRUE((*engine)->AddRequest(requests[i], results.For(i)).ok());
    }
    results.WaitFor(n);
    ExpectSameAsAlone(results.Take(), alone);
    ExpectIdle(**engine);
  }
}

// A KV pool far too small for everything at once forces preemption; outputs do not change.
TEST(EngineTest, PreemptedRequestsEqualUninterruptedOnes) {
  const std::string dir = WriteModel("preempt");
  std::mt19937_64 rng(7);
  std::vector<Request> requests;
  for (int i = 0; i < 12; ++i) {
    Request r = RandomRequest(rng, 60);
    r.stopping.max_tokens = 40;
    r.stopping.ignore_eos = true;
    requests.push_back(r);
  }
  const std::vector<Result> alone = RunAlone(dir, requests);
  EngineOptions o = Options(dir);
  o.max_model_len = 128;  // a sequence needs 8 blocks; the pool holds 24
  const int64_t per_block = 2 /*layers*/ * 2 /*kv heads*/ * 12 * 2 /*k and v*/ * 4 * 16;
  o.kv_cache_bytes = 24 * per_block;
  auto engine = Engine::Create(o);
  ASSERT_TRUE(engine.ok()) << engine.status();
  // The pool's size is in the statistics from the start (serve prints it before any request).
  EXPECT_EQ((*engine)->stats().kv_blocks_total, 24);
  Results results;
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE((*engine)->AddRequest(requests[i], results.For(i)).ok());
  }
  results.WaitFor(requests.size());
  ExpectSameAsAlone(results.Take(), alone);
  EXPECT_GT((*engine)->stats().preemptions, 0) << "the pool was meant to run out";
}

TEST(EngineTest, PrefixCacheHitEqualsMissAndIsCounted) {
  const std::string dir = WriteModel("prefix");
  std::mt19937_64 rng(3);
  Request first = RandomRequest(rng, 1);
  first.prompt_ids.resize(70);
  for (int32_t& t : first.prompt_ids) t = static_cast<int32_t>(rng() % 251);
  first.stopping.max_tokens = 6;
  Request second = first;
  second.prompt_ids.push_back(9);  // shares 4 full blocks with the first
  const std::vector<Result> alone = RunAlone(dir, {first, second});
  auto engine = Engine::Create(Options(dir));
  ASSERT_TRUE(engine.ok());
  Results results;
  ASSERT_TRUE((*engine)->AddRequest(first, results.For(0)).ok());
  results.WaitFor(1);
  ASSERT_TRUE((*engine)->AddRequest(second, results.For(1)).ok());
  results.WaitFor(2);
  const std::vector<Result> got = results.Take();
  ExpectSameAsAlone(got, alone);
  EXPECT_EQ(got[1].cached_prompt_tokens, 64);
  EXPECT_GE((*engine)->stats().prefix_cache_hits, 64);
}

TEST(EngineTest, AbortEndsTheRequestAndFreesItsBlocks) {
  const std::string dir = WriteModel("abort");
  auto engine = Engine::Create(Options(dir));
  ASSERT_TRUE(engine.ok());
  Request r;
  r.prompt_ids = {1, 2, 3};
  r.stopping.max_tokens = 400;
  r.stopping.ignore_eos = true;
  r.detokenize = false;
  Results results;
  // The abort is sent from the stream itself after the third token, so the request is surely
  // still running however fast this machine generates.
  std::promise<RequestId> id_promise;
  std::shared_future<RequestId> id_future = id_promise.get_future().share();
  Engine::OutputCallback collect = results.For(0);
  int seen = 0;
  auto id = (*engine)->AddRequest(r, [&, collect](RequestOutput out) {
    const int before = seen;
    seen += static_cast<int>(out.token_ids.size());
    const bool abort_now = !out.finished() && before < 3 && seen >= 3;
    collect(std::move(out));
    if (abort_now) (*engine)->Abort(id_future.get());
  });
  ASSERT_TRUE(id.ok());
  id_promise.set_value(*id);
  results.WaitFor(1);
  const Result got = results.Take()[0];
  EXPECT_EQ(got.reason, FinishReason::kAbort);
  EXPECT_GE(got.tokens.size(), 3u);
  EXPECT_LT(got.tokens.size(), 400u);
  ExpectIdle(**engine);
}

TEST(EngineTest, MaxTokensZeroReturnsOnlyThePromptLogits) {
  const std::string dir = WriteModel("prefill_only");
  auto engine = Engine::Create(Options(dir));
  ASSERT_TRUE(engine.ok());
  Request r;
  r.prompt_ids = {5, 6, 7};
  r.stopping.max_tokens = 0;
  r.detokenize = false;
  r.return_first_logits = true;
  Results results;
  ASSERT_TRUE((*engine)->AddRequest(r, results.For(0)).ok());
  results.WaitFor(1);
  const Result got = results.Take()[0];
  EXPECT_TRUE(got.tokens.empty());
  EXPECT_EQ(got.first_logits.size(), 251u);
  EXPECT_EQ(got.reason, FinishReason::kLength);
}

// The embedding is padded past the tokenizer's vocabulary (300 rows, 267 tokens): ids the
// tokenizer cannot decode are never sampled, even at a high temperature, and text decodes.
TEST(EngineTest, IdsPastTheTokenizersVocabularyAreNeverSampled) {
  ModelConfig c = TinyModelConfig(Architecture::kLlama);
  c.vocab_size = 300;
  c.torch_dtype = DType::kF32;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("sparkstack_engine_test_" + std::to_string(getpid()) + "_padded");
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(WriteTinyModel({.config = c, .seed = 3}, dir.string()).ok());
  const nlohmann::json tokenizer = tokenizer::testing::ByteLevelTokenizerJson();
  std::ofstream(dir / "tokenizer.json") << tokenizer.dump();
  const int64_t tokenizer_vocab = tokenizer["model"]["vocab"].size();
  ASSERT_LT(tokenizer_vocab, 300);
  auto engine = Engine::Create(Options(dir.string()));
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ((*engine)->options().sampling_vocab_limit, tokenizer_vocab);
  Request r;
  r.prompt_ids = {104, 101, 108};
  r.stopping.max_tokens = 200;
  r.stopping.ignore_eos = true;
  r.sampling = {.temperature = 3.0f, .seed = 9};
  Results results;
  ASSERT_TRUE((*engine)->AddRequest(r, results.For(0)).ok());
  results.WaitFor(1);
  const Result got = results.Take()[0];
  EXPECT_TRUE(got.error.ok()) << got.error;
  ASSERT_EQ(got.tokens.size(), 200u);
  for (int32_t id : got.tokens) EXPECT_LT(id, tokenizer_vocab);
}

TEST(EngineTest, InvalidRequestsAreRefusedWithTheField) {
  const std::string dir = WriteModel("invalid");
  auto engine = Engine::Create(Options(dir));
  ASSERT_TRUE(engine.ok());
  auto refuse = [&](Request r, const char* fragment) {
    auto id = (*engine)->AddRequest(std::move(r), [](RequestOutput) {});
    ASSERT_FALSE(id.ok()) << fragment;
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(id.status().message().find(fragment), absl::string_view::npos) << id.status();
  };
  Request ok;
  ok.prompt_ids = {1, 2};
  ok.detokenize = false;
  Request r = ok;
  r.prompt_ids = {};
  refuse(r, "no tokens");
  r = ok;
  r.prompt_ids = {1, 251};
  refuse(r, "outside the vocabulary");
  r = ok;
  r.stopping.max_tokens = 600;
  refuse(r, "exceeds the context of 512");
  r = ok;
  r.sampling.top_p = 1.5f;
  refuse(r, "top_p");
  r = ok;
  r.detokenize = true;
  refuse(r, "tokenizer.json");
}

}  // namespace
}  // namespace sparkstack
