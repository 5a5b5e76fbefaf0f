// Encoding/decoding behaviour on small synthetic tokenizer.json files: BPE merges by rank,
// ignore_merges, merges as pairs, added tokens and their flags, normalizers, pre-tokenizer split
// behaviours, post-processors, decoders, and the SentencePiece-style byte-fallback path.
#include <fstream>
#include <atomic>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/tokenizer/pre_tokenizer.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/unit/tokenizer/test_tokenizers.h"

namespace sparkstack::tokenizer {
namespace {

using ::testing::ElementsAre;
using testing::AddedTokenJson;
using testing::ByteLevelTokenizerJson;
using testing::Gpt2Char;

std::unique_ptr<Tokenizer> Make(const nlohmann::json& j, const nlohmann::json& config = nullptr) {
  auto tok = Tokenizer::FromJson(j.dump(), config.is_null() ? "" : config.dump());
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? std::move(*tok) : nullptr;
}

int32_t Id(const Tokenizer& tok, const std::string& spelling) {
  auto id = tok.TokenToId(spelling);
  EXPECT_TRUE(id.has_value()) << spelling;
  return id.value_or(-1);
}

std::vector<int32_t> Enc(const Tokenizer& tok, std::string_view text, bool special = false) {
  auto ids = tok.Encode(text, special);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<int32_t>{};
}

const std::string G = Gpt2Char(' ');

TEST(BpeTokenizerTest, MergesByRank) {
  auto tok = Make(ByteLevelTokenizerJson());
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "hello world"), ElementsAre(Id(*tok, "hello"), Id(*tok, G + "world")));
  // Equal-rank pairs merge leftmost first: "lll" -> "ll" + "l".
  EXPECT_THAT(Enc(*tok, "lll"), ElementsAre(Id(*tok, "ll"), 'l'));
  // One word, two "hello"s.
  EXPECT_THAT(Enc(*tok, "hellohello"), ElementsAre(Id(*tok, "hello"), Id(*tok, "hello")));
  // Bytes without merges map to their byte tokens (ids = byte values in this vocabulary).
  EXPECT_THAT(Enc(*tok, "\xE4\xB8\xAD"), ElementsAre(0xE4, 0xB8, 0xAD));
  EXPECT_THAT(Enc(*tok, "caf\xC3\xA9"), ElementsAre('c', 'a', 'f', Id(*tok, Gpt2Char(0xC3) + Gpt2Char(0xA9))));
  EXPECT_TRUE(Enc(*tok, "").empty());
  EXPECT_EQ(tok->vocab_size(), 256 + 11);
}

TEST(BpeTokenizerTest, LongWordUsesSameMergeOrder) {
  auto tok = Make(ByteLevelTokenizerJson());
  ASSERT_NE(tok, nullptr);
  std::string word;
  std::vector<int32_t> expected;
  for (int i = 0; i < 40; ++i) {
    word += "hello";
    expected.push_back(Id(*tok, "hello"));
  }
  word += "l";
  expected.push_back('l');
  EXPECT_EQ(Enc(*tok, word), expected);  // > 48 symbols: heap-based merge loop
  std::string ls(101, 'l');              // 50 x "ll" then one "l"
  std::vector<int32_t> expected_ls(50, Id(*tok, "ll"));
  expected_ls.push_back('l');
  EXPECT_EQ(Enc(*tok, ls), expected_ls);
}

TEST(BpeTokenizerTest, MergesAsPairsEqualStrings) {
  nlohmann::json j = ByteLevelTokenizerJson();
  nlohmann::json pairs = nlohmann::json::array();
  for (const auto& m : j["model"]["merges"]) {
    const std::string s = m.get<std::string>();
    pairs.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  j["model"]["merges"] = pairs;
  auto tok = Make(j);
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "hello world"), ElementsAre(Id(*tok, "hello"), Id(*tok, G + "world")));
}

TEST(BpeTokenizerTest, IgnoreMergesTakesWholeWordFromVocab) {
  nlohmann::json j = ByteLevelTokenizerJson();
  j["model"]["vocab"]["hlo"] = 500;  // reachable only as a whole word
  auto plain = Make(j);
  j["model"]["ignore_merges"] = true;
  auto ignoring = Make(j);
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(ignoring, nullptr);
  EXPECT_THAT(Enc(*plain, "hlo"), ElementsAre('h', 'l', 'o'));
  EXPECT_THAT(Enc(*ignoring, "hlo"), ElementsAre(500));
}

TEST(BpeTokenizerTest, AddedTokensAndFlags) {
  nlohmann::json j = ByteLevelTokenizerJson();
  j["added_tokens"] = {AddedTokenJson(300, "<|x|>", true),
                       AddedTokenJson(301, "[LS]", true, /*lstrip=*/true),
                       AddedTokenJson(302, "[RS]", true, false, /*rstrip=*/true),
                       AddedTokenJson(303, "word", false, false, false, /*single_word=*/true),
                       AddedTokenJson(304, "<|x|>y", true)};
  auto tok = Make(j);
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "a <|x|>b"), ElementsAre('a', Id(*tok, G), 300, 'b'));
  EXPECT_THAT(Enc(*tok, "<|x|>y"), ElementsAre(304));  // longest match wins
  EXPECT_THAT(Enc(*tok, "a  [LS]b"), ElementsAre('a', 301, 'b'));
  EXPECT_THAT(Enc(*tok, "a[RS] \t b"), ElementsAre('a', 302, 'b'));
  EXPECT_THAT(Enc(*tok, "a word b"), ElementsAre('a', Id(*tok, G), 303, Id(*tok, G), 'b'));
  // single_word: inside a longer word it is plain text.
  EXPECT_THAT(Enc(*tok, "swords"), ElementsAre('s', 'w', Id(*tok, "or"), 'd', 's'));
  EXPECT_EQ(tok->vocab_size(), 305);
  EXPECT_TRUE(tok->IsSpecial(300));
  EXPECT_FALSE(tok->IsSpecial(303));
  auto decoded = tok->Decode(Enc(*tok, "a <|x|>b word"), /*skip_special_tokens=*/true);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, "a b word");
  decoded = tok->Decode(Enc(*tok, "a <|x|>b"), false);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, "a <|x|>b");
}

TEST(BpeTokenizerTest, SpecialTokensAsPlainText) {
  nlohmann::json j = ByteLevelTokenizerJson();
  auto plain = Make(j);  // reference: the same vocabulary without added tokens
  j["added_tokens"] = {AddedTokenJson(300, "<|x|>", true), AddedTokenJson(301, "word", false)};
  auto tok = Make(j);
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(tok, nullptr);
  const std::string text = "a<|x|> word<|x|>";
  auto literal = tok->Encode(text, false, /*parse_special_tokens=*/false);
  ASSERT_TRUE(literal.ok());
  // Special tokens become plain text; the non-special "word" is still an added token.
  std::vector<int32_t> expected = Enc(*plain, "a<|x|>");
  expected.push_back(Id(*plain, G));
  expected.push_back(301);
  for (int32_t id : Enc(*plain, "<|x|>")) expected.push_back(id);
  EXPECT_EQ(*literal, expected);
  EXPECT_THAT(Enc(*tok, "a<|x|>"), ElementsAre('a', 300));
}

TEST(BpeTokenizerTest, NormalizedAddedTokensMatchAfterNormalization) {
  nlohmann::json j = ByteLevelTokenizerJson();
  j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", "!"}}}, {"content", "?"}};
  j["added_tokens"] = {AddedTokenJson(300, "<!>", false, false, false, false, /*normalized=*/true)};
  auto tok = Make(j);
  ASSERT_NE(tok, nullptr);
  // The token is looked for in normalized text, where "<?>" is what "<!>" normalizes to.
  EXPECT_THAT(Enc(*tok, "a<?>"), ElementsAre('a', 300));
  EXPECT_THAT(Enc(*tok, "a<!>"), ElementsAre('a', 300));
}

TEST(BpeTokenizerTest, Normalizers) {
  nlohmann::json j = ByteLevelTokenizerJson();
  j["normalizer"] = {{"type", "NFC"}};
  auto nfc = Make(j);
  ASSERT_NE(nfc, nullptr);
  // e + COMBINING ACUTE composes to U+00E9 (bytes C3 A9), which has a merge.
  EXPECT_THAT(Enc(*nfc, "e\xCC\x81"), ElementsAre(Id(*nfc, Gpt2Char(0xC3) + Gpt2Char(0xA9))));
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers",
                      {{{"type", "Prepend"}, {"prepend", "h"}},
                       {{"type", "Replace"}, {"pattern", {{"Regex", "\\s+"}}}, {"content", "o"}}}}};
  auto seq = Make(j);
  ASSERT_NE(seq, nullptr);
  EXPECT_THAT(Enc(*seq, "ell \t"), ElementsAre(Id(*seq, "hello")));
}

std::vector<std::string> PreTokenize(const nlohmann::json& config, std::string text) {
  PreTokenizerInfo info;
  auto pre = PreTokenizerFromJson(config, "test", &info);
  EXPECT_TRUE(pre.ok()) << pre.status();
  PieceList list;
  list.text = std::move(text);
  list.pieces.push_back({0, static_cast<uint32_t>(list.text.size())});
  list.at_origin = true;
  (*pre)->PreTokenize(&list);
  std::vector<std::string> out;
  for (const ByteRange& r : list.pieces) out.push_back(list.text.substr(r.begin, r.end - r.begin));
  return out;
}

TEST(PreTokenizerTest, SplitBehaviours) {
  auto split = [](const char* behavior, bool invert = false) {
    return nlohmann::json{{"type", "Split"},
                          {"pattern", {{"String", "-"}}},
                          {"behavior", behavior},
                          {"invert", invert}};
  };
  const std::string text = "a-b--c-";
  EXPECT_THAT(PreTokenize(split("Isolated"), text), ElementsAre("a", "-", "b", "-", "-", "c", "-"));
  EXPECT_THAT(PreTokenize(split("Removed"), text), ElementsAre("a", "b", "c"));
  EXPECT_THAT(PreTokenize(split("MergedWithPrevious"), text), ElementsAre("a-", "b-", "-", "c-"));
  EXPECT_THAT(PreTokenize(split("MergedWithNext"), text), ElementsAre("a", "-b", "-", "-c", "-"));
  EXPECT_THAT(PreTokenize(split("Contiguous"), text), ElementsAre("a", "-", "b", "--", "c", "-"));
  EXPECT_THAT(PreTokenize(split("Removed", true), text), ElementsAre("-", "-", "-", "-"));
}

TEST(PreTokenizerTest, DigitsAndMetaspace) {
  EXPECT_THAT(PreTokenize({{"type", "Digits"}, {"individual_digits", true}}, "ab12c3"),
              ElementsAre("ab", "1", "2", "c", "3"));
  EXPECT_THAT(PreTokenize({{"type", "Digits"}, {"individual_digits", false}}, "ab12c3"),
              ElementsAre("ab", "12", "c", "3"));
  const nlohmann::json metaspace = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"},
                                    {"prepend_scheme", "always"}, {"split", true}};
  EXPECT_THAT(PreTokenize(metaspace, "hi  there"),
              ElementsAre("\xE2\x96\x81hi", "\xE2\x96\x81", "\xE2\x96\x81there"));
  EXPECT_THAT(PreTokenize({{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}},
                          "hi there"),
              ElementsAre(" hi", " there"));
}

TEST(BpeTokenizerTest, PostProcessorAddsSpecialTokens) {
  nlohmann::json j = ByteLevelTokenizerJson();
  j["added_tokens"] = {AddedTokenJson(300, "<bos>", true), AddedTokenJson(301, "<eos>", true)};
  j["post_processor"] = {
      {"type", "Sequence"},
      {"processors",
       {{{"type", "ByteLevel"}, {"add_prefix_space", true}},
        {{"type", "TemplateProcessing"},
         {"single",
          {{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}},
           {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
           {{"SpecialToken", {{"id", "<eos>"}, {"type_id", 0}}}}}},
         {"special_tokens",
          {{"<bos>", {{"id", "<bos>"}, {"ids", {300}}, {"tokens", {"<bos>"}}}},
           {"<eos>", {{"id", "<eos>"}, {"ids", {301}}, {"tokens", {"<eos>"}}}}}}}}}};
  auto tok = Make(j, {{"bos_token", "<bos>"}, {"eos_token", {{"content", "<eos>"}}}});
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "hello", true), ElementsAre(300, Id(*tok, "hello"), 301));
  EXPECT_THAT(Enc(*tok, "hello", false), ElementsAre(Id(*tok, "hello")));
  EXPECT_EQ(tok->bos_id(), 300);
  EXPECT_THAT(tok->eos_ids(), ElementsAre(301));
}

TEST(BpeTokenizerTest, LlamaConfigAddBosOverridesPostProcessor) {
  nlohmann::json j = ByteLevelTokenizerJson();
  j["added_tokens"] = {AddedTokenJson(300, "<bos>", true)};
  auto tok = Make(j, {{"bos_token", "<bos>"}, {"add_bos_token", true},
                      {"tokenizer_class", "LlamaTokenizerFast"}});
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "hello", true), ElementsAre(300, Id(*tok, "hello")));
}

// The word cache is shared between threads: concurrent encodes give the single-thread results.
TEST(BpeTokenizerTest, ConcurrentEncodes) {
  auto tok = Make(ByteLevelTokenizerJson());
  ASSERT_NE(tok, nullptr);
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) {
    texts.push_back("hello world " + std::to_string(i * 7919) + std::string(i % 13, 'l') + " caf\xC3\xA9");
  }
  std::vector<std::vector<int32_t>> expected;
  auto fresh = Make(ByteLevelTokenizerJson());
  for (const auto& t : texts) expected.push_back(Enc(*fresh, t));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int round = 0; round < 5; ++round) {
        for (size_t i = w; i < texts.size() + w; ++i) {
          const size_t k = i % texts.size();
          auto ids = tok->Encode(texts[k], false);
          if (!ids.ok() || *ids != expected[k]) ++mismatches;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(BpeTokenizerTest, ChatTemplateFromConfig) {
  nlohmann::json j = ByteLevelTokenizerJson();
  j["added_tokens"] = {AddedTokenJson(300, "<bos>", true)};
  const std::string tmpl =
      "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"
      "{% if add_generation_prompt %}[assistant]{% endif %}{% if flag %}!{% endif %}";
  auto tok = Make(j, {{"bos_token", "<bos>"}, {"chat_template", tmpl}});
  ASSERT_NE(tok, nullptr);
  const auto messages = nlohmann::ordered_json::parse(
      R"([{"role": "user", "content": "hello"}, {"role": "assistant", "content": " world"}])");
  auto text = tok->ApplyChatTemplate(messages, true, nlohmann::ordered_json{{"flag", true}});
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "<bos>[user]hello[assistant] world[assistant]!");
  // Rendered text carries the BOS itself; encoding it without special tokens gives it once.
  auto ids = tok->Encode(*text, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->front(), 300);

  auto raising = Make(j, {{"chat_template", "{{ raise_exception('no system role') }}"}});
  ASSERT_NE(raising, nullptr);
  auto error = raising->ApplyChatTemplate(messages, false, nullptr);
  ASSERT_FALSE(error.ok());
  EXPECT_EQ(error.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(error.status().message()).find("no system role"), std::string::npos);

  // A template that does not parse still loads; only rendering fails, naming the field.
  auto broken = Make(j, {{"chat_template", "{% for %}"}});
  ASSERT_NE(broken, nullptr);
  error = broken->ApplyChatTemplate(messages, false, nullptr);
  ASSERT_FALSE(error.ok());
  EXPECT_NE(std::string(error.status().message()).find("chat_template"), std::string::npos);

  auto none = Make(j);
  ASSERT_NE(none, nullptr);
  EXPECT_EQ(none->ApplyChatTemplate(messages, false, nullptr).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

class SentencePieceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tok = Tokenizer::Load(testing::SourceDir() +
                               "/tests/conformance/tokenizer/testdata/spm_tiny");
    ASSERT_TRUE(tok.ok()) << tok.status();
    tok_ = std::move(*tok);
  }
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(SentencePieceTest, ByteFallbackAndDecoders) {
  const std::string sp = "\xE2\x96\x81";  // ▁
  // "们" (E4 BB AC) is not in the vocabulary: it falls back to three byte tokens.
  EXPECT_THAT(Enc(*tok_, "\xE6\x88\x91\xE4\xBB\xAC"),
              ElementsAre(Id(*tok_, sp), Id(*tok_, "\xE6\x88\x91"), Id(*tok_, "<0xE4>"),
                          Id(*tok_, "<0xBB>"), Id(*tok_, "<0xAC>")));
  auto ids = Enc(*tok_, " Hi  there \xF0\x9F\x98\x80!", true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], tok_->bos_id());
  auto text = tok_->Decode(ids, /*skip_special_tokens=*/true);
  ASSERT_TRUE(text.ok());
  // Strip removes the one space that the Prepend normalizer added.
  EXPECT_EQ(*text, " Hi  there \xF0\x9F\x98\x80!");
  // A lone continuation byte decodes to U+FFFD per byte (ByteFallback's rule).
  text = tok_->Decode(std::vector<int32_t>{Id(*tok_, "a"), Id(*tok_, "<0xBB>")}, false);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "a\xEF\xBF\xBD");
}

}  // namespace
}  // namespace sparkstack::tokenizer
