// UTF-8 helpers shared by the tokenizer pieces: validation with byte offsets, code point decoding,
// Unicode 16 categories and Rust-compatible lossy conversion.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_UTF8_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace sparkstack::tokenizer {

// Returns OK when `text` is well-formed UTF-8, otherwise InvalidArgument naming the byte offset of
// the first bad sequence.
absl::Status ValidateUtf8(std::string_view text);

// Length in bytes of the well-formed UTF-8 sequence starting at text[pos], or 0 when the bytes at
// `pos` are not a complete, well-formed sequence.
size_t Utf8SequenceLength(std::string_view text, size_t pos);

// Decodes the code point at text[pos] (which must start a well-formed sequence, as after
// ValidateUtf8) and stores its length in *len.
char32_t DecodeUtf8(std::string_view text, size_t pos, size_t* len);

void AppendUtf8(char32_t cp, std::string* out);

// Replaces ill-formed sequences by U+FFFD, one per maximal subpart, exactly like Rust's
// String::from_utf8_lossy (which Hugging Face's decoders use).
std::string Utf8Lossy(std::string_view bytes);

// Number of bytes at the end of `bytes` that form an incomplete (but so far valid) UTF-8 sequence
// prefix: 0..3. Used by streaming decoders to hold back half a character.
size_t IncompleteUtf8Suffix(std::string_view bytes);

// Unicode White_Space (what Rust's char::is_whitespace and Oniguruma's \s match).
bool IsUnicodeWhitespace(char32_t cp);
// Membership in a Unicode 16 General_Category given by short name ("L", "Nd", "N", ...).
bool InUnicodeCategory(char32_t cp, std::string_view category);
// Rust regex \w: alphabetic, marks, decimal digits, connector punctuation.
bool IsWordChar(char32_t cp);

}  // namespace sparkstack::tokenizer

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_UTF8_H_
