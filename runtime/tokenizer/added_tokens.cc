#include "runtime/tokenizer/added_tokens.h"

#include <algorithm>

#include "runtime/tokenizer/utf8.h"

namespace sparkstack::tokenizer {
namespace {

// Code point that ends text[0, end) (text is valid UTF-8, end > 0).
char32_t LastChar(std::string_view text, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  size_t len;
  return DecodeUtf8(text, start, &len);
}

}  // namespace

int32_t AddedTokenMatcher::Child(int32_t node, uint8_t byte) const {
  const auto& children = nodes_[node].children;
  auto it = std::lower_bound(children.begin(), children.end(), byte,
                             [](const auto& c, uint8_t b) { return c.first < b; });
  return (it != children.end() && it->first == byte) ? it->second : -1;
}

void AddedTokenMatcher::Add(std::string_view pattern, const AddedToken& token) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (char c : pattern) {
    const auto byte = static_cast<uint8_t>(c);
    int32_t child = Child(node, byte);
    if (child < 0) {
      child = static_cast<int32_t>(nodes_.size());
      nodes_.push_back(Node{});
      auto& children = nodes_[node].children;
      children.insert(std::lower_bound(children.begin(), children.end(), byte,
                                       [](const auto& e, uint8_t b) { return e.first < b; }),
                      {byte, child});
    }
    node = child;
  }
  if (nodes_[node].token < 0) {
    nodes_[node].token = static_cast<int32_t>(tokens_.size());
    tokens_.push_back(token);
  }
  first_byte_[static_cast<uint8_t>(pattern[0])] = true;
}

void AddedTokenMatcher::Split(std::string_view text, bool skip_special,
                              std::vector<TextSegment>* out) const {
  const size_t n = text.size();
  size_t segment_start = 0;  // end of the last emitted piece
  size_t pos = 0;
  while (pos < n) {
    if (!first_byte_[static_cast<uint8_t>(text[pos])]) {
      ++pos;
      continue;
    }
    // Longest pattern starting at pos.
    int32_t best = -1;
    size_t best_end = 0;
    int32_t node = 0;
    for (size_t i = pos; i < n; ++i) {
      node = Child(node, static_cast<uint8_t>(text[i]));
      if (node < 0) break;
      if (nodes_[node].token >= 0) {
        best = nodes_[node].token;
        best_end = i + 1;
      }
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[best];
    if (skip_special && token.special) {
      pos = best_end;
      continue;
    }
    size_t start = pos, stop = best_end;
    if (token.single_word) {
      const bool word_before = start > 0 && IsWordChar(LastChar(text, start));
      size_t len = 0;
      const bool word_after = stop < n && IsWordChar(DecodeUtf8(text, stop, &len));
      if (word_before || word_after) {
        pos = best_end;  // not a match; the text stays plain (no shorter retry, as in HF)
        continue;
      }
    }
    if (token.lstrip) {
      while (start > segment_start && IsUnicodeWhitespace(LastChar(text, start))) {
        size_t back = start - 1;
        while (back > 0 && (static_cast<uint8_t>(text[back]) & 0xC0) == 0x80) --back;
        start = back;
      }
    }
    if (token.rstrip) {
      size_t len;
      while (stop < n && IsUnicodeWhitespace(DecodeUtf8(text, stop, &len))) stop += len;
    }
    if (start > segment_start) {
      out->push_back({-1, static_cast<uint32_t>(segment_start), static_cast<uint32_t>(start)});
    }
    out->push_back({token.id, static_cast<uint32_t>(start), static_cast<uint32_t>(stop)});
    segment_start = stop;
    pos = stop;
  }
  if (segment_start < n) {
    out->push_back({-1, static_cast<uint32_t>(segment_start), static_cast<uint32_t>(n)});
  }
}

}  // namespace sparkstack::tokenizer
