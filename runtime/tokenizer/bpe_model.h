// The BPE model of tokenizer.json ("model": {"type": "BPE"}): byte-level vocabularies (GPT-2 byte
// map; Llama 3, Qwen, DeepSeek) and SentencePiece-style ones with byte fallback (Llama 2, Mistral).
//
// Speed: in byte-level mode the vocabulary is re-keyed by raw bytes at load time, so words are
// never re-spelled through the byte map; merges live in a hash map keyed by the (left id, right id)
// pair; results are cached per word.
#ifndef SPARKSTACK_RUNTIME_TOKENIZER_BPE_MODEL_H_
#define SPARKSTACK_RUNTIME_TOKENIZER_BPE_MODEL_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "runtime/tokenizer/json_util.h"

namespace sparkstack::tokenizer {

class BpeModel {
 public:
  // `json` is tokenizer.json's "model" object; `where` names it in errors. `byte_level` says the
  // pre-tokenizer is ByteLevel, so vocabulary entries are spelled in the GPT-2 byte map.
  static absl::StatusOr<std::unique_ptr<BpeModel>> FromJson(const Json& json,
                                                           std::string_view where,
                                                           bool byte_level);

  // Appends the ids of one pre-tokenized word (raw bytes; valid UTF-8 when not byte-level).
  // Thread-safe.
  void EncodeWord(std::string_view word, std::vector<int32_t>* ids) const;

  // Vocabulary lookups by the token's spelling in tokenizer.json.
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // Spelling of `id`, or nullptr when the model has no such id.
  const std::string* IdToToken(int32_t id) const;
  // One more than the largest id in the vocabulary.
  int32_t vocab_size() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };

  BpeModel() = default;
  void InitialSymbols(std::string_view word, std::vector<int32_t>* symbols) const;
  void MergeSmall(std::vector<int32_t>* symbols) const;
  void MergeLarge(std::vector<int32_t>* symbols) const;
  const Merge* FindMerge(int32_t left, int32_t right) const {
    auto it = merges_.find((static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
                           static_cast<uint32_t>(right));
    return it == merges_.end() ? nullptr : &it->second;
  }

  bool byte_level_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  bool fuse_unk_ = false;
  std::optional<int32_t> unk_id_;

  absl::flat_hash_map<std::string, int32_t> vocab_;       // spelling -> id
  absl::flat_hash_map<std::string, int32_t> word_vocab_;  // raw bytes -> id (byte-level only)
  std::vector<std::string> id_to_token_;
  std::vector<bool> id_present_;
  absl::flat_hash_map<uint64_t, Merge> merges_;
  std::array<int32_t, 256> byte_ids_{};           // byte-level: id of each single byte, or -1
  std::array<int32_t, 256> byte_fallback_ids_{};  // "<0xXX>" ids, or -1

  static constexpr size_t kMaxCachedWordBytes = 256;
  static constexpr size_t kMaxCacheEntries = 1 << 17;
  mutable absl::Mutex cache_mutex_;
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> cache_
      ABSL_GUARDED_BY(cache_mutex_);
};

}  // namespace sparkstack::tokenizer

#endif  // SPARKSTACK_RUNTIME_TOKENIZER_BPE_MODEL_H_
