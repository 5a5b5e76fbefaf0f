#include "runtime/tokenizer/byte_level.h"

#include <array>

#include "runtime/tokenizer/utf8.h"

namespace sparkstack::tokenizer {
namespace {

struct ByteMap {
  std::array<char32_t, 256> to_unicode{};
  std::array<int16_t, 512> to_byte{};  // every mapped code point is below 0x144

  ByteMap() {
    to_byte.fill(-1);
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp = printable(b) ? static_cast<char32_t>(b) : 256 + next++;
      to_unicode[b] = cp;
      to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& Map() {
  static const ByteMap map;
  return map;
}

}  // namespace

char32_t ByteToUnicode(uint8_t byte) { return Map().to_unicode[byte]; }

std::optional<uint8_t> UnicodeToByte(char32_t cp) {
  if (cp >= 512 || Map().to_byte[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(Map().to_byte[cp]);
}

std::string BytesToVocabString(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) AppendUtf8(ByteToUnicode(static_cast<uint8_t>(c)), &out);
  return out;
}

std::optional<std::string> VocabStringToBytes(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  size_t pos = 0;
  while (pos < token.size()) {
    if (Utf8SequenceLength(token, pos) == 0) return std::nullopt;
    size_t len;
    const char32_t cp = DecodeUtf8(token, pos, &len);
    auto byte = UnicodeToByte(cp);
    if (!byte) return std::nullopt;
    out.push_back(static_cast<char>(*byte));
    pos += len;
  }
  return out;
}

}  // namespace sparkstack::tokenizer
