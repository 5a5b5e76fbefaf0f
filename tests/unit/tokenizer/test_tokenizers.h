// Builders of small synthetic tokenizer.json files for the unit tests.
#ifndef SPARKSTACK_TESTS_UNIT_TOKENIZER_TEST_TOKENIZERS_H_
#define SPARKSTACK_TESTS_UNIT_TOKENIZER_TEST_TOKENIZERS_H_

#include <cstdlib>
#include <string>

#include "nlohmann/json.hpp"

namespace sparkstack::tokenizer::testing {

// GPT-2's bytes_to_unicode, written out independently of runtime/tokenizer/byte_level.cc:
// printable Latin-1 maps to itself, the other bytes to U+0100.. in byte order.
inline std::string Gpt2Char(unsigned b) {
  auto printable = [](unsigned x) {
    return (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
  };
  unsigned cp = b;
  if (!printable(b)) {
    unsigned n = 0;
    for (unsigned x = 0; x < b; ++x) n += printable(x) ? 0 : 1;
    cp = 256 + n;
  }
  std::string out;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return out;
}

// A byte-level BPE tokenizer.json: all 256 byte tokens (ids 0..255 in byte order) plus merges
// building "hello", " world", "ll", "é" (bytes C3 A9) and "12". Extra vocab entries follow.
inline nlohmann::json ByteLevelTokenizerJson() {
  nlohmann::json vocab = nlohmann::json::object();
  for (unsigned b = 0; b < 256; ++b) vocab[Gpt2Char(b)] = b;
  const std::string G = Gpt2Char(' ');  // "Ġ"
  nlohmann::json merges = nlohmann::json::array();
  auto merge = [&](const std::string& a, const std::string& b) {
    merges.push_back(a + " " + b);
    if (!vocab.contains(a + b)) vocab[a + b] = static_cast<int>(vocab.size());
  };
  merge("h", "e");
  merge("l", "l");
  merge("he", "ll");
  merge("hell", "o");
  merge(G, "w");
  merge("o", "r");
  merge(G + "w", "or");
  merge(G + "wor", "l");
  merge(G + "worl", "d");
  merge(Gpt2Char(0xC3), Gpt2Char(0xA9));
  merge("1", "2");
  nlohmann::json j = {
      {"version", "1.0"},
      {"added_tokens", nlohmann::json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"ignore_merges", false}}}};
  return j;
}

inline nlohmann::json AddedTokenJson(int id, const std::string& content, bool special,
                                     bool lstrip = false, bool rstrip = false,
                                     bool single_word = false, bool normalized = false) {
  return {{"id", id},         {"content", content}, {"single_word", single_word},
          {"lstrip", lstrip}, {"rstrip", rstrip},   {"normalized", normalized},
          {"special", special}};
}

inline std::string SourceDir() {
  const char* dir = std::getenv("SPARKSTACK_SOURCE_DIR");
  return dir != nullptr ? dir : SPARKSTACK_TEST_SOURCE_DIR;
}

}  // namespace sparkstack::tokenizer::testing

#endif  // SPARKSTACK_TESTS_UNIT_TOKENIZER_TEST_TOKENIZERS_H_
