#include "runtime/tokenizer/bpe_model.h"

#include <climits>
#include <queue>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/tokenizer/byte_level.h"
#include "runtime/tokenizer/utf8.h"

namespace sparkstack::tokenizer {
namespace {

absl::string_view AsAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Word length (in symbols) above which the heap-based merge loop is used.
constexpr size_t kSmallWordSymbols = 48;

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::FromJson(const Json& json,
                                                             std::string_view where,
                                                             bool byte_level) {
  auto type = OptionalString(json, where, "type", "BPE");
  if (!type.ok()) return type.status();
  if (*type != "BPE") {
    return absl::UnimplementedError(absl::StrCat(FieldPath(where, "type"), ": model type '",
                                                 *type, "' is not supported (only BPE)"));
  }
  std::unique_ptr<BpeModel> model(new BpeModel());
  model->byte_level_ = byte_level;
  auto byte_fallback = OptionalBool(json, where, "byte_fallback", false);
  if (!byte_fallback.ok()) return byte_fallback.status();
  model->byte_fallback_ = *byte_fallback;
  auto ignore_merges = OptionalBool(json, where, "ignore_merges", false);
  if (!ignore_merges.ok()) return ignore_merges.status();
  model->ignore_merges_ = *ignore_merges;
  auto fuse_unk = OptionalBool(json, where, "fuse_unk", false);
  if (!fuse_unk.ok()) return fuse_unk.status();
  model->fuse_unk_ = *fuse_unk;
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto value = OptionalString(json, where, key, "");
    if (!value.ok()) return value.status();
    if (!value->empty()) {
      return absl::UnimplementedError(absl::StrCat(FieldPath(where, key), ": '", *value,
                                                   "' is not supported (only empty or null)"));
    }
  }

  // Vocabulary.
  auto vocab = RequiredField(json, where, "vocab");
  if (!vocab.ok()) return vocab.status();
  const std::string vocab_path = FieldPath(where, "vocab");
  if (!(*vocab)->is_object()) return FieldError(vocab_path, "an object {token: id}", *vocab);
  int64_t max_id = -1;
  model->vocab_.reserve((*vocab)->size());
  for (auto it = (*vocab)->begin(); it != (*vocab)->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > INT32_MAX) {
      return FieldError(FieldPath(vocab_path, it.key()), "a non-negative 32-bit integer id",
                        &it.value());
    }
    const int64_t id = it.value().get<int64_t>();
    max_id = std::max(max_id, id);
    model->vocab_.emplace(it.key(), static_cast<int32_t>(id));
  }
  if (max_id >= (int64_t{1} << 24)) {
    return absl::InvalidArgumentError(
        absl::StrCat(vocab_path, ": largest id ", max_id, " is implausibly large"));
  }
  model->id_to_token_.resize(static_cast<size_t>(max_id + 1));
  model->id_present_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [token, id] : model->vocab_) {
    model->id_to_token_[id] = token;
    model->id_present_[id] = true;
  }
  model->byte_ids_.fill(-1);
  model->byte_fallback_ids_.fill(-1);
  if (byte_level) {
    model->word_vocab_.reserve(model->vocab_.size());
    for (const auto& [token, id] : model->vocab_) {
      // Entries outside the byte map (special tokens kept in the vocab) can never be produced by
      // merging bytes, so they are simply not reachable from words.
      if (auto bytes = VocabStringToBytes(token)) {
        if (bytes->size() == 1) model->byte_ids_[static_cast<uint8_t>((*bytes)[0])] = id;
        model->word_vocab_.emplace(std::move(*bytes), id);
      }
    }
  }
  for (int b = 0; b < 256; ++b) {
    auto it = model->vocab_.find(absl::StrFormat("<0x%02X>", b));
    if (it != model->vocab_.end()) model->byte_fallback_ids_[b] = it->second;
  }

  auto unk = OptionalString(json, where, "unk_token", "");
  if (!unk.ok()) return unk.status();
  if (!unk->empty()) {
    auto it = model->vocab_.find(*unk);
    if (it == model->vocab_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(FieldPath(where, "unk_token"), ": '", *unk,
                                                     "' is not in ", vocab_path));
    }
    model->unk_id_ = it->second;
  }

  // Merges: "left right" strings or [left, right] pairs, ranked by position.
  auto merges = RequiredField(json, where, "merges");
  if (!merges.ok()) return merges.status();
  const std::string merges_path = FieldPath(where, "merges");
  if (!(*merges)->is_array()) return FieldError(merges_path, "an array", *merges);
  model->merges_.reserve((*merges)->size());
  std::string left, right;
  for (size_t rank = 0; rank < (*merges)->size(); ++rank) {
    const Json& m = (**merges)[rank];
    const std::string path = absl::StrCat(merges_path, "[", rank, "]");
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return FieldError(path, "\"left right\" (two tokens separated by one space)", &m);
      }
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      return FieldError(path, "\"left right\" or [left, right]", &m);
    }
    auto l = model->vocab_.find(left), r = model->vocab_.find(right),
         merged = model->vocab_.find(left + right);
    for (const auto& [it, name] : {std::pair{l, &left}, std::pair{r, &right}}) {
      if (it == model->vocab_.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": token '", *name, "' is not in ", vocab_path));
      }
    }
    if (merged == model->vocab_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": merged token '", left + right, "' is not in ", vocab_path));
    }
    const uint64_t key =
        (static_cast<uint64_t>(static_cast<uint32_t>(l->second)) << 32) |
        static_cast<uint32_t>(r->second);
    // The first (lowest-rank) occurrence of a pair wins, as in Hugging Face.
    model->merges_.try_emplace(key, Merge{static_cast<int32_t>(rank), merged->second});
  }
  return model;
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  auto it = vocab_.find(AsAbsl(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !id_present_[id]) {
    return nullptr;
  }
  return &id_to_token_[id];
}

void BpeModel::InitialSymbols(std::string_view word, std::vector<int32_t>* symbols) const {
  bool last_was_unk = false;
  auto push_unk = [&] {
    if (!unk_id_) return;  // without an unk token, unknown characters are dropped (as in HF)
    if (!(fuse_unk_ && last_was_unk)) symbols->push_back(*unk_id_);
    last_was_unk = true;
  };
  if (byte_level_) {
    for (char c : word) {
      const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
      if (id >= 0) {
        symbols->push_back(id);
        last_was_unk = false;
      } else {
        push_unk();
      }
    }
    return;
  }
  size_t pos = 0;
  while (pos < word.size()) {
    size_t len = Utf8SequenceLength(word, pos);
    if (len == 0) len = 1;
    const std::string_view ch = word.substr(pos, len);
    pos += len;
    if (auto it = vocab_.find(AsAbsl(ch)); it != vocab_.end()) {
      symbols->push_back(it->second);
      last_was_unk = false;
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : ch) all = all && byte_fallback_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        for (char c : ch) symbols->push_back(byte_fallback_ids_[static_cast<uint8_t>(c)]);
        last_was_unk = false;
        continue;
      }
    }
    push_unk();
  }
}

void BpeModel::MergeSmall(std::vector<int32_t>* symbols) const {
  std::vector<int32_t>& s = *symbols;
  if (s.size() < 2) return;
  absl::InlinedVector<Merge, kSmallWordSymbols> pairs(s.size() - 1);
  auto lookup = [&](size_t i) {
    const Merge* m = FindMerge(s[i], s[i + 1]);
    pairs[i] = m != nullptr ? *m : Merge{INT32_MAX, -1};
  };
  for (size_t i = 0; i + 1 < s.size(); ++i) lookup(i);
  while (!pairs.empty()) {
    size_t best = 0;
    for (size_t i = 1; i < pairs.size(); ++i) {
      if (pairs[i].rank < pairs[best].rank) best = i;
    }
    if (pairs[best].rank == INT32_MAX) break;
    s[best] = pairs[best].new_id;
    s.erase(s.begin() + static_cast<ptrdiff_t>(best) + 1);
    pairs.erase(pairs.begin() + static_cast<ptrdiff_t>(best));
    if (best > 0) lookup(best - 1);
    if (best + 1 < s.size()) lookup(best);
  }
}

void BpeModel::MergeLarge(std::vector<int32_t>* symbols) const {
  std::vector<int32_t>& s = *symbols;
  const auto n = static_cast<int32_t>(s.size());
  std::vector<int32_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank, pos, new_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push = [&](int32_t pos) {
    if (pos < 0 || next[pos] < 0) return;
    if (const Merge* m = FindMerge(s[pos], s[next[pos]])) heap.push({m->rank, pos, m->new_id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    if (!alive[top.pos] || next[top.pos] < 0) continue;
    const Merge* m = FindMerge(s[top.pos], s[next[top.pos]]);
    if (m == nullptr || m->new_id != top.new_id || m->rank != top.rank) continue;  // stale
    const int32_t right = next[top.pos];
    s[top.pos] = top.new_id;
    alive[right] = false;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = top.pos;
    push(prev[top.pos]);
    push(top.pos);
  }
  std::vector<int32_t> out;
  out.reserve(n);
  for (int32_t i = 0; i >= 0 && i < n; i = next[i]) out.push_back(s[i]);
  s.swap(out);
}

void BpeModel::EncodeWord(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    const auto& table = byte_level_ ? word_vocab_ : vocab_;
    if (auto it = table.find(AsAbsl(word)); it != table.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    absl::ReaderMutexLock lock(&cache_mutex_);
    if (auto it = cache_.find(AsAbsl(word)); it != cache_.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> symbols;
  symbols.reserve(word.size());
  InitialSymbols(word, &symbols);
  if (symbols.size() <= kSmallWordSymbols) {
    MergeSmall(&symbols);
  } else {
    MergeLarge(&symbols);
  }
  ids->insert(ids->end(), symbols.begin(), symbols.end());
  if (cacheable) {
    absl::MutexLock lock(&cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(word), std::move(symbols));
  }
}

}  // namespace sparkstack::tokenizer
