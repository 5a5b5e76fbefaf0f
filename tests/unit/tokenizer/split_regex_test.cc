// Oniguruma-semantics splitting on RE2. Expected splits follow from the regex definitions (greedy
// alternation, leftmost first, `\s+(?!\S)` leaving the last space before a word), worked out by
// hand.
#include "runtime/tokenizer/split_regex.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/tokenizer/pre_tokenizer.h"

namespace sparkstack::tokenizer {
namespace {

constexpr std::string_view kLlama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

std::vector<std::string> Split(std::string_view pattern, std::string_view text) {
  auto regex = SplitRegex::Compile(pattern);
  EXPECT_TRUE(regex.ok()) << regex.status();
  std::vector<ByteRange> ranges;
  (*regex)->FindAll(text, 0, &ranges);
  std::vector<std::string> out;
  for (const ByteRange& r : ranges) out.emplace_back(text.substr(r.begin, r.end - r.begin));
  return out;
}

using ::testing::ElementsAre;

TEST(SplitRegexTest, Gpt2LookaheadLeavesLastSpaceForTheWord) {
  EXPECT_THAT(Split(kGpt2Pattern, "Hello   world"), ElementsAre("Hello", "  ", " world"));
  EXPECT_THAT(Split(kGpt2Pattern, "a b"), ElementsAre("a", " b"));
  EXPECT_THAT(Split(kGpt2Pattern, "trailing   "), ElementsAre("trailing", "   "));
  // Only a plain space may lead a word in GPT-2's pattern, so the tab stands alone.
  EXPECT_THAT(Split(kGpt2Pattern, "x \t\ty"), ElementsAre("x", " \t", "\t", "y"));
  EXPECT_THAT(Split(kGpt2Pattern, "I'm 42!"), ElementsAre("I", "'m", " 42", "!"));
  // A single space before punctuation goes with the punctuation (` ?[^\s\p{L}\p{N}]+`).
  EXPECT_THAT(Split(kGpt2Pattern, "a  ,"), ElementsAre("a", " ", " ,"));
}

TEST(SplitRegexTest, Llama3Pattern) {
  EXPECT_THAT(Split(kLlama3, "Hello   world"), ElementsAre("Hello", "  ", " world"));
  EXPECT_THAT(Split(kLlama3, "12345"), ElementsAre("123", "45"));
  EXPECT_THAT(Split(kLlama3, "line\n\n  next"), ElementsAre("line", "\n\n", " ", " next"));
  EXPECT_THAT(Split(kLlama3, "WE'LL"), ElementsAre("WE", "'LL"));
  // `\s*[\r\n]+` takes spaces before a newline, and the single space before a word is given up.
  EXPECT_THAT(Split(kLlama3, "a  \n  b"), ElementsAre("a", "  \n", " ", " b"));
  // Unicode spaces are \s for Oniguruma: U+3000 runs behave like ASCII spaces.
  EXPECT_THAT(Split(kLlama3, "x\u3000\u3000y"), ElementsAre("x", "\u3000", "\u3000y"));
}

TEST(SplitRegexTest, LookaheadWithoutFallbackSkipsSingleSpace) {
  // Without a trailing `|\s+`, a single space before a non-space matches nothing.
  EXPECT_THAT(Split("\\p{L}+|\\s+(?!\\S)", "ab cd  ef"), ElementsAre("ab", "cd", " ", "ef"));
}

TEST(SplitRegexTest, RejectsOtherLookaround) {
  EXPECT_FALSE(SplitRegex::Compile("a(?=b)").ok());
  EXPECT_FALSE(SplitRegex::Compile("(?<!a)b").ok());
  EXPECT_FALSE(SplitRegex::Compile("[").ok());
}

TEST(SplitRegexTest, UnicodeShorthandsFollowOniguruma) {
  // \w as Hugging Face's Oniguruma: letters, Nl, Latin-1 fractions, "_", circled letters; but not
  // other No such as U+2460 (circled digit one).
  EXPECT_THAT(Split("\\w+", "a\u00BD_b\u216B\u24B6 c\u2460d"),
              ElementsAre("a\u00BD_b\u216B\u24B6", "c", "d"));
  // \d is Decimal_Number only: Arabic-Indic digits yes, "½" no.
  EXPECT_THAT(Split("\\d+", "\u0661\u0662\u00BD3"), ElementsAre("\u0661\u0662", "3"));
  // \s includes U+0085, U+3000 and the vertical tab, not U+200B.
  EXPECT_THAT(Split("\\s+", "a\u3000\v\u0085b\u200Bc"), ElementsAre("\u3000\v\u0085"));
  EXPECT_THAT(Split("[^\\s\\d]+", "ab1 c"), ElementsAre("ab", "c"));
  // \p{L} uses Unicode 16: U+13A79 (Egyptian Hieroglyphs Extended-A) is a letter.
  EXPECT_THAT(Split("\\p{L}+", "x\U00013A79y"), ElementsAre("x\U00013A79y"));
  EXPECT_FALSE(TranslateOnigPattern("[\\S]").ok());
}

}  // namespace
}  // namespace sparkstack::tokenizer
