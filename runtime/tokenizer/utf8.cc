#include "runtime/tokenizer/utf8.h"

#include "absl/strings/str_cat.h"
#include "runtime/tokenizer/unicode_tables.h"

namespace sparkstack::tokenizer {
namespace {

// Walks the sequence at text[pos] following the Unicode well-formedness table (Table 3-7). Returns
// the number of bytes that belong to it: the full length when complete (*complete = true),
// otherwise the length of the maximal valid prefix (at least 1).
size_t ScanSequence(std::string_view text, size_t pos, bool* complete) {
  const auto b0 = static_cast<uint8_t>(text[pos]);
  *complete = false;
  if (b0 < 0x80) {
    *complete = true;
    return 1;
  }
  size_t len;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 1;
  }
  size_t i = 1;
  for (; i < len; ++i) {
    if (pos + i >= text.size()) return i;
    const auto b = static_cast<uint8_t>(text[pos + i]);
    const uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
    if (b < l || b > h) return i;
  }
  *complete = true;
  return len;
}

}  // namespace

absl::Status ValidateUtf8(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<uint8_t>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    bool complete;
    const size_t n = ScanSequence(text, pos, &complete);
    if (!complete) {
      return absl::InvalidArgumentError(
          absl::StrCat("input is not valid UTF-8: bad byte sequence at byte offset ", pos,
                       " (byte 0x", absl::Hex(static_cast<uint8_t>(text[pos]), absl::kZeroPad2),
                       ")"));
    }
    pos += n;
  }
  return absl::OkStatus();
}

size_t Utf8SequenceLength(std::string_view text, size_t pos) {
  bool complete;
  const size_t n = ScanSequence(text, pos, &complete);
  return complete ? n : 0;
}

char32_t DecodeUtf8(std::string_view text, size_t pos, size_t* len) {
  const auto b0 = static_cast<uint8_t>(text[pos]);
  if (b0 < 0x80) {
    *len = 1;
    return b0;
  }
  if (b0 < 0xE0) {
    *len = 2;
    return ((b0 & 0x1F) << 6) | (static_cast<uint8_t>(text[pos + 1]) & 0x3F);
  }
  if (b0 < 0xF0) {
    *len = 3;
    return ((b0 & 0x0F) << 12) | ((static_cast<uint8_t>(text[pos + 1]) & 0x3F) << 6) |
           (static_cast<uint8_t>(text[pos + 2]) & 0x3F);
  }
  *len = 4;
  return ((b0 & 0x07) << 18) | ((static_cast<uint8_t>(text[pos + 1]) & 0x3F) << 12) |
         ((static_cast<uint8_t>(text[pos + 2]) & 0x3F) << 6) |
         (static_cast<uint8_t>(text[pos + 3]) & 0x3F);
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string Utf8Lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    bool complete;
    const size_t n = ScanSequence(bytes, pos, &complete);
    if (complete) {
      out.append(bytes.data() + pos, n);
    } else {
      out.append("\xEF\xBF\xBD");
    }
    pos += n;
  }
  return out;
}

size_t IncompleteUtf8Suffix(std::string_view bytes) {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
  const size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t pos = n - back;
    const auto b = static_cast<uint8_t>(bytes[pos]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    if (b < 0xC2 || b > 0xF4) return 0;
    bool complete;
    const size_t len = ScanSequence(bytes, pos, &complete);
    // An incomplete prefix that consumed everything up to the end may still be completed.
    return (!complete && pos + len == n) ? back : 0;
  }
  return 0;
}

bool IsUnicodeWhitespace(char32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

bool InUnicodeCategory(char32_t cp, std::string_view category) {
  const auto ranges = UnicodeCategoryRanges(category);
  size_t lo = 0, hi = ranges.size();
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (ranges[mid].last < cp) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < ranges.size() && ranges[lo].first <= cp;
}

bool IsWordChar(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           cp == '_';
  }
  if (cp == 0x200C || cp == 0x200D) return true;  // Join_Control
  return InUnicodeCategory(cp, "L") || InUnicodeCategory(cp, "M") ||
         InUnicodeCategory(cp, "Nd") || InUnicodeCategory(cp, "Pc") ||
         InUnicodeCategory(cp, "Nl");
}

}  // namespace sparkstack::tokenizer
