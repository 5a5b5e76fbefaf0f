// Runs the serving fuzz targets without libFuzzer: on hand-written seeds (valid and broken OpenAI
// bodies, serialized GenerateRequests) and on 20,000 seeded random mutations of them (byte flips,
// insertions, deletions, truncations, splices). Any crash or broken invariant aborts.
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sparkstack/v1/inference.pb.h"
#include "tests/fuzz/serving/serving_fuzz_targets.h"

namespace sparkstack::serving {
namespace {

std::vector<std::string> OpenAiSeeds() {
  return {
      R"({"prompt": [1, 2, 3], "max_tokens": 5, "temperature": 0.7, "top_p": 0.9, "seed": 4})",
      R"({"prompt": [[1], [2, 3]], "n": 2, "stop": ["a"], "logprobs": 3, "stream": true,
          "stream_options": {"include_usage": true}})",
      R"({"prompt": "text", "top_k": -1, "min_p": 0.5, "presence_penalty": 2,
          "frequency_penalty": -2, "repetition_penalty": 1.5, "stop_token_ids": [9]})",
      R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
          "max_completion_tokens": 7, "logprobs": true, "top_logprobs": 2})",
      R"({"messages": [{"role": "assistant", "content": null, "tool_calls": []}],
          "chat_template_kwargs": {"a": 1}})",
      R"({"prompt": [255, 999, 1000], "max_tokens": 250, "seed": -1, "min_tokens": 3})",
      "{\"prompt\": \"\\ud800\", \"max_tokens\": 1e30}",
      "[]",
      "",
      "{",
      "null",
  };
}

std::vector<std::string> ProtoSeeds() {
  std::vector<std::string> seeds;
  v1::GenerateRequest a;
  a.mutable_token_ids()->add_ids(5);
  a.mutable_token_ids()->add_ids(999);
  a.mutable_sampling()->set_temperature(0.5f);
  a.mutable_sampling()->set_logprobs(3);
  a.mutable_stopping()->set_max_tokens(10);
  a.mutable_stopping()->add_stop("x");
  a.mutable_stopping()->add_stop_token_ids(3);
  seeds.push_back(a.SerializeAsString());
  v1::GenerateRequest b;
  v1::ChatMessage* m = b.mutable_chat()->add_messages();
  m->set_role("user");
  m->set_content("hi");
  b.mutable_chat()->set_template_kwargs_json("{\"k\": true}");
  seeds.push_back(b.SerializeAsString());
  v1::GenerateRequest c;
  c.set_text("hello");
  c.set_request_id("id");
  c.mutable_sampling()->set_top_p(0.0f);
  seeds.push_back(c.SerializeAsString());
  return seeds;
}

std::string Mutate(const std::string& seed, const std::vector<std::string>& all,
                   std::mt19937_64& rng) {
  std::string s = seed;
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    const size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 5) {
      case 0:
        if (!s.empty()) s[at % s.size()] = static_cast<char>(rng());
        break;
      case 1:
        s.insert(at, 1, static_cast<char>(rng()));
        break;
      case 2:
        if (!s.empty()) s.erase(at % s.size(), 1 + rng() % 8);
        break;
      case 3:
        s.resize(at);
        break;
      default: {
        const std::string& other = all[rng() % all.size()];
        const size_t from = other.empty() ? 0 : rng() % other.size();
        s.insert(at, other.substr(from, rng() % 32));
      }
    }
  }
  return s;
}

void RunTarget(const std::vector<std::string>& seeds, void (*target)(const uint8_t*, size_t)) {
  std::mt19937_64 rng(20261130);
  for (const std::string& seed : seeds) {
    target(reinterpret_cast<const uint8_t*>(seed.data()), seed.size());
  }
  for (int i = 0; i < 10000; ++i) {
    const std::string input = Mutate(seeds[rng() % seeds.size()], seeds, rng);
    target(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  }
}

TEST(ServingFuzzReplayTest, OpenAiRequestParser) { RunTarget(OpenAiSeeds(), &FuzzOpenAiRequest); }
TEST(ServingFuzzReplayTest, ProtoToRequestMapping) { RunTarget(ProtoSeeds(), &FuzzProtoRequest); }

}  // namespace
}  // namespace sparkstack::serving
