// UTF-8 helpers. Expected values come from the Unicode Standard (ch. 3, "U+FFFD Substitution of
// Maximal Subparts") and the well-formedness table, not from our output.
#include "runtime/tokenizer/utf8.h"

#include "gtest/gtest.h"

namespace sparkstack::tokenizer {
namespace {

TEST(Utf8Test, ValidatesAndReportsByteOffset) {
  EXPECT_TRUE(ValidateUtf8("plain ascii").ok());
  EXPECT_TRUE(ValidateUtf8("caf\xC3\xA9 \xF0\x9F\x98\x80 \xE4\xB8\xAD").ok());
  struct Case {
    std::string text;
    size_t offset;
  };
  for (const Case& c : {Case{"ab\xC3", 2}, Case{"\x80", 0}, Case{"ok\xC0\xAF", 2},
                        Case{"x\xED\xA0\x80", 1} /* surrogate */, Case{"xy\xF4\x90\x80\x80", 2},
                        Case{"abc\xE2\x82", 3}, Case{"\xFF", 0}}) {
    absl::Status status = ValidateUtf8(c.text);
    ASSERT_FALSE(status.ok()) << c.text;
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(status.message()).find("byte offset " + std::to_string(c.offset)),
              std::string::npos)
        << status.message();
  }
}

TEST(Utf8Test, LossyReplacesMaximalSubparts) {
  const std::string fffd = "\xEF\xBF\xBD";
  // The Unicode Standard's example: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64
  // -> a, FFFD, FFFD, FFFD, b, FFFD, c, FFFD, FFFD, d.
  EXPECT_EQ(Utf8Lossy("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + fffd + fffd + fffd + "b" + fffd + "c" + fffd + fffd + "d");
  EXPECT_EQ(Utf8Lossy("\xF0\x9F\x98"), fffd);        // truncated 4-byte sequence: one FFFD
  EXPECT_EQ(Utf8Lossy("\xED\xA0\x80"), fffd + fffd + fffd);  // surrogates: each byte
  EXPECT_EQ(Utf8Lossy("ok \xC3\xA9"), "ok \xC3\xA9");
}

TEST(Utf8Test, IncompleteSuffix) {
  EXPECT_EQ(IncompleteUtf8Suffix("abc"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("a\xF0\x9F"), 2u);
  EXPECT_EQ(IncompleteUtf8Suffix("a\xF0\x9F\x98"), 3u);
  EXPECT_EQ(IncompleteUtf8Suffix("a\xF0\x9F\x98\x80"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("\xE4"), 1u);
  EXPECT_EQ(IncompleteUtf8Suffix("\x80"), 0u);  // stray continuation can never complete
}

TEST(Utf8Test, WhitespaceAndWordClasses) {
  for (char32_t cp : {U'\t', U'\n', U'\v', U'\f', U'\r', U' ', U'\u0085', U'\u00A0', U'\u2009',
                      U'\u3000', U'\u2028'}) {
    EXPECT_TRUE(IsUnicodeWhitespace(cp)) << static_cast<uint32_t>(cp);
  }
  EXPECT_FALSE(IsUnicodeWhitespace(U'\u200B'));  // zero-width space is not White_Space
  EXPECT_TRUE(IsWordChar(U'_'));
  EXPECT_TRUE(IsWordChar(U'\u00E9'));
  EXPECT_TRUE(IsWordChar(U'\u4E2D'));
  EXPECT_FALSE(IsWordChar(U'-'));
}

}  // namespace
}  // namespace sparkstack::tokenizer
