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

// White space as both Python's str.strip() and JavaScript's trim() see it (their common set).
bool IsUnicodeSpace(uint32_t code_point);
// Letters, digits and underscore (Python's \w for the alphabets the case mapping knows).
bool IsWordChar(uint32_t code_point);
uint32_t ToLowerCodePoint(uint32_t code_point);
uint32_t ToUpperCodePoint(uint32_t code_point);
std::string ToLowerUtf8(std::string_view s);
std::string ToUpperUtf8(std::string_view s);

}  // namespace sparkstack::jinja

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_JINJA_UNICODE_H_
