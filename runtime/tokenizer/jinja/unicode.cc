#include "runtime/tokenizer/jinja/unicode.h"

namespace sparkstack::jinja {

uint32_t DecodeUtf8(std::string_view s, size_t pos, size_t* length) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = byte(pos);
  *length = 1;
  if (c < 0x80) return c;
  int extra = 0;
  uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    extra = 1;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    extra = 2;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    extra = 3;
    cp = c & 0x07;
  } else {
    return 0xFFFD;
  }
  if (pos + extra >= s.size()) return 0xFFFD;
  for (int i = 1; i <= extra; ++i) {
    const unsigned char cc = byte(pos + i);
    if ((cc & 0xC0) != 0x80) return 0xFFFD;
    cp = (cp << 6) | (cc & 0x3F);
  }
  *length = static_cast<size_t>(extra) + 1;
  return cp;
}

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::vector<size_t> CodePointOffsets(std::string_view s) {
  std::vector<size_t> offsets;
  offsets.reserve(s.size() + 1);
  size_t i = 0;
  while (i < s.size()) {
    offsets.push_back(i);
    size_t len = 1;
    DecodeUtf8(s, i, &len);
    i += len;
  }
  offsets.push_back(s.size());
  return offsets;
}

size_t CodePointCount(std::string_view s) {
  size_t count = 0;
  for (unsigned char c : s) count += (c & 0xC0) != 0x80;
  return count;
}

bool IsUnicodeSpace(uint32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) || c == 0x85 ||
         c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

size_t SkipUnicodeSpace(std::string_view s, size_t begin, size_t end) {
  while (begin < end) {
    size_t length = 1;
    const uint32_t cp = DecodeUtf8(s.substr(0, end), begin, &length);
    if (!IsUnicodeSpace(cp)) break;
    begin += length;
  }
  return begin;
}

size_t TrimUnicodeSpaceBack(std::string_view s, size_t begin, size_t end) {
  while (end > begin) {
    // Back up to the lead byte of the last code point (at most 3 continuation bytes).
    size_t start = end - 1;
    while (start > begin && end - start < 4 &&
           (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) {
      --start;
    }
    size_t length = 1;
    const uint32_t cp = DecodeUtf8(s.substr(0, end), start, &length);
    if (start + length != end || !IsUnicodeSpace(cp)) break;
    end = start;
  }
  return end;
}

uint32_t ToLowerCodePoint(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if ((c >= 0xC0 && c <= 0xDE && c != 0xD7) || (c >= 0x391 && c <= 0x3AB && c != 0x3A2) ||
      (c >= 0x410 && c <= 0x42F)) {
    return c + 32;
  }
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 &&
      c != 0x17F) {
    // Latin Extended-A alternates upper/lower; the run breaks parity at U+0139..U+0148 and
    // U+0179..U+017E.
    const bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if ((c % 2 == 1) == odd_upper) return c + 1;
  }
  return c;
}

uint32_t ToUpperCodePoint(uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if ((c >= 0xE0 && c <= 0xFE && c != 0xF7) || (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2) ||
      (c >= 0x430 && c <= 0x44F)) {
    return c - 32;
  }
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 &&
      c != 0x17F) {
    const bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if ((c % 2 == 1) != odd_upper) return c - 1;
  }
  return c;
}

bool IsWordChar(uint32_t c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
    return true;
  }
  return c >= 0x80 && (ToLowerCodePoint(c) != c || ToUpperCodePoint(c) != c);
}

namespace {
template <typename Map>
std::string MapCase(std::string_view s, Map map) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    size_t len = 1;
    const uint32_t cp = DecodeUtf8(s, i, &len);
    if (cp == 0xFFFD && len == 1) {
      out.push_back(s[i]);  // keep invalid bytes as they are
    } else {
      AppendUtf8(map(cp), out);
    }
    i += len;
  }
  return out;
}
}  // namespace

std::string ToLowerUtf8(std::string_view s) { return MapCase(s, ToLowerCodePoint); }
std::string ToUpperUtf8(std::string_view s) { return MapCase(s, ToUpperCodePoint); }

}  // namespace sparkstack::jinja
