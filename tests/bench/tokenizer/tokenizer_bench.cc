// Single-thread encode throughput of sparkstack's tokenizer over a corpus file (one JSON string
// per line, as written by tests/conformance/tokenizer/make_corpus.mjs). Prints one JSON line:
// {"model": ..., "bytes": N, "strings": N, "tokens": N, "best_seconds": s, "mb_per_s": x,
//  "first_pass_mb_per_s": y} (the first pass runs with an empty word cache).
// Usage: tokenizer_bench MODEL_DIR CORPUS.jsonl [ITERATIONS]
#include <chrono>
#include <fstream>
#include <iostream>

#include "nlohmann/json.hpp"
#include "runtime/tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: tokenizer_bench MODEL_DIR CORPUS.jsonl [ITERATIONS]\n";
    return 2;
  }
  const int iterations = argc > 3 ? std::atoi(argv[3]) : 5;
  auto tok = sparkstack::tokenizer::Tokenizer::Load(argv[1]);
  if (!tok.ok()) {
    std::cerr << tok.status() << "\n";
    return 1;
  }
  std::ifstream in(argv[2]);
  std::vector<std::string> corpus;
  size_t bytes = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    corpus.push_back(nlohmann::json::parse(line).get<std::string>());
    bytes += corpus.back().size();
  }
  double best = 1e30, first = 0;
  size_t tokens = 0;
  for (int it = 0; it < iterations; ++it) {
    tokens = 0;
    const auto start = std::chrono::steady_clock::now();
    for (const std::string& s : corpus) {
      auto ids = (*tok)->Encode(s, /*add_special_tokens=*/false);
      if (!ids.ok()) {
        std::cerr << ids.status() << "\n";
        return 1;
      }
      tokens += ids->size();
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::min(best, seconds);
    if (it == 0) first = seconds;
  }
  nlohmann::json out = {{"model", argv[1]},    {"bytes", bytes},
                        {"strings", corpus.size()}, {"tokens", tokens},
                        {"best_seconds", best}, {"mb_per_s", bytes / best / 1e6},
                        {"first_pass_mb_per_s", bytes / first / 1e6}};
  std::cout << out.dump() << "\n";
  return 0;
}
