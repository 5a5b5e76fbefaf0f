// Unicode 16.0 General_Category ranges (generated: tools/gen_unicode_tables.mjs). Hugging Face
// tokenizers' Oniguruma uses Unicode 16 tables, Debian's RE2 older ones; pre-tokenizer regexes
// are rewritten to these ranges so letters added in recent Unicode versions split identically.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_UNICODE_TABLES_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_UNICODE_TABLES_H_

#include <span>
#include <string_view>

namespace sparkstack::tokenizer {

struct CodePointRange {
  char32_t first;
  char32_t last;  // inclusive
};

// Sorted, disjoint ranges of the category with the short name `name` ("L", "Nd", "P", "Zs", ...);
// empty for names not in the table.
std::span<const CodePointRange> UnicodeCategoryRanges(std::string_view name);

}  // namespace sparkstack::tokenizer

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_UNICODE_TABLES_H_
