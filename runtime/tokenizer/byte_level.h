// The GPT-2 byte <-> unicode map used by byte-level BPE vocabularies: every byte is shown as a
// printable code point (printable Latin-1 maps to itself, the rest to U+0100 onwards).
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_BYTE_LEVEL_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_BYTE_LEVEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sparkstack::tokenizer {

// Code point that represents `byte` in a byte-level vocabulary.
char32_t ByteToUnicode(uint8_t byte);

// Inverse of ByteToUnicode; nullopt for code points outside the map.
std::optional<uint8_t> UnicodeToByte(char32_t cp);

// Maps raw bytes to their vocabulary spelling (UTF-8 of the mapped code points).
std::string BytesToVocabString(std::string_view bytes);

// Maps a vocabulary spelling back to raw bytes; nullopt if any character is outside the map
// (e.g. added tokens such as "<｜begin▁of▁sentence｜>").
std::optional<std::string> VocabStringToBytes(std::string_view token);

}  // namespace sparkstack::tokenizer

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_BYTE_LEVEL_H_
