// White space in chat templates against Python: every code point's IsUnicodeSpace against
// str.isspace(), and trim / strip / split / '-' whitespace control against Jinja2's own renderings.
// Both tables come from gen_python_whitespace.py (run it again after any change), so the expected
// values are Python's, not ours.
#include <cstdint>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/tokenizer/jinja/chat_template.h"
#include "runtime/tokenizer/jinja/unicode.h"

namespace sparkstack {
namespace {

#include "tests/unit/chat_template/python_whitespace.inc"

TEST(PythonWhitespace, EveryCodePointMatchesStrIsspace) {
  const std::set<uint32_t> python(std::begin(kPythonWhitespace), std::end(kPythonWhitespace));
  int mismatches = 0;
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    const bool expected = python.count(cp) > 0;
    if (jinja::IsUnicodeSpace(cp) != expected && ++mismatches <= 5) {
      ADD_FAILURE() << "U+" << std::hex << cp << ": Python isspace() is " << expected;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(PythonWhitespace, RenderingsMatchJinja2) {
  int index = 0;
  for (const PythonRenderCase& c : kPythonRenderCases) {
    SCOPED_TRACE(testing::Message() << "case " << index++ << ": " << c.source);
    absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(c.source);
    ASSERT_TRUE(t.ok()) << t.status();
    absl::StatusOr<std::string> out = t->Render(nlohmann::ordered_json{{"s", c.s}});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(*out, c.expected);
  }
}

// The case from the issue: Llama 3.1's template trims message content, and transformers' output
// drops a trailing U+0085 (NEXT LINE) while keeping a trailing U+FEFF.
TEST(PythonWhitespace, Llama31TrimOfNextLine) {
  absl::StatusOr<ChatTemplate> t =
      ChatTemplate::Parse("{% for m in messages %}[{{ m['content'] | trim }}]{% endfor %}");
  ASSERT_TRUE(t.ok()) << t.status();
  const nlohmann::ordered_json messages = {{{"role", "user"}, {"content", "hi\u0085"}},
                                           {{"role", "user"}, {"content", "\ufeffhi\ufeff"}}};
  absl::StatusOr<std::string> out = RenderChat(*t, messages, false, "", "");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "[hi][\ufeffhi\ufeff]");
}

TEST(PythonWhitespace, TrimBackNeverSplitsACharacter) {
  // U+3000 is E3 80 80; a lone continuation byte or a truncated sequence is not white space.
  const std::string s = "a\xe3\x80\x80\x80";
  EXPECT_EQ(jinja::TrimUnicodeSpaceBack(s, 0, s.size()), s.size());
  const std::string t = "a\xe3\x80\x80";
  EXPECT_EQ(jinja::TrimUnicodeSpaceBack(t, 0, t.size()), 1u);
  const std::string u = "\x80\x80";
  EXPECT_EQ(jinja::TrimUnicodeSpaceBack(u, 0, u.size()), 2u);
  EXPECT_EQ(jinja::SkipUnicodeSpace(u, 0, u.size()), 0u);
}

}  // namespace
}  // namespace sparkstack
