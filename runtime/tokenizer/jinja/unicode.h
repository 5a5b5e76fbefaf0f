// Small UTF-8 helpers for the template interpreter: decoding, case mapping of the common
// alphabets, Unicode whitespace. Invalid bytes decode as U+FFFD one byte at a time, so no input
// makes these loop or read out of bounds.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_JINJA_UNICODE_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_JINJA_UNICODE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sparkstack::jinja {

// Decodes the code point starting at s[pos]; *length receives its byte length (>= 1).
uint32_t DecodeUtf8(std::string_view s, size_t pos, size_t* length);
void AppendUtf8(uint32_t code_point, std::string& out);
// Byte offset of every code point, plus s.size() at the end.
std::vector<size_t> CodePointOffsets(std::string_view s);
size_t CodePointCount(std::string_view s);

// White space as Python's str.isspace() sees it, which is what str.strip()/split(), Jinja's trim
// filter and Jinja's whitespace control ('-' in tags: str.rstrip() and the regex \s) use: U+0009..
// U+000D, U+001C..U+001F, U+0020, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029,
// U+202F, U+205F, U+3000. Not U+FEFF (JavaScript's trim() strips it; Python does not), nor
// U+180E or U+200B. tests/unit/chat_template checks every code point against Python's table.
bool IsUnicodeSpace(uint32_t code_point);
// Within s[begin, end): the first position whose code point is not white space (or end), and
// the end of the text once trailing white space is removed (or begin). Invalid UTF-8 is never
// white space.
size_t SkipUnicodeSpace(std::string_view s, size_t begin, size_t end);
size_t TrimUnicodeSpaceBack(std::string_view s, size_t begin, size_t end);
// Letters, digits and underscore (Python's \w for the alphabets the case mapping knows).
bool IsWordChar(uint32_t code_point);
uint32_t ToLowerCodePoint(uint32_t code_point);
uint32_t ToUpperCodePoint(uint32_t code_point);
std::string ToLowerUtf8(std::string_view s);
std::string ToUpperUtf8(std::string_view s);

}  // namespace sparkstack::jinja

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_JINJA_UNICODE_H_
