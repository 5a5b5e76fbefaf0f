// Bounded reading of small input files (config.json, tokenizer.json, indexes, chat files).
//
// Every file a user or a downloaded model directory hands us is untrusted: it may be a FIFO that
// never delivers EOF, /dev/zero, a directory, or a multi-gigabyte file where a few kilobytes of
// JSON were expected. ReadRegularFile refuses all of these before reading a byte, so callers never
// block and never allocate more than `max_bytes` (which is also checked against the memory
// budget, runtime/core/memory_budget.h).
#ifndef SPARKSTACK_RUNTIME_CORE_READ_FILE_H_
#define SPARKSTACK_RUNTIME_CORE_READ_FILE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sparkstack {

// Limits for the JSON files of a model directory. Real files are far smaller (config.json: a few
// KiB; the largest tokenizer.json we know is ~35 MiB; a 100k-tensor index ~10 MiB).
inline constexpr uint64_t kMaxConfigFileBytes = 16ull << 20;      // config.json & co.
inline constexpr uint64_t kMaxTokenizerFileBytes = 512ull << 20;  // tokenizer.json
inline constexpr uint64_t kMaxIndexFileBytes = 256ull << 20;      // *.safetensors.index.json
inline constexpr uint64_t kMaxChatFileBytes = 64ull << 20;        // `generate --chat FILE`

// Memory a parsed nlohmann::json DOM may take per byte of JSON text, worst case: "[0,0,..." spends
// 2 bytes of text per 16-byte value, and vector growth can double that.
inline constexpr uint64_t kJsonDomBytesPerTextByte = 16;

// Checks that `path` names a regular file (after following symlinks) without opening anything
// that could block. `what` describes the file in messages ("model config"). Errors:
//   NotFound         — no such file ("<what> <path> not found")
//   PermissionDenied — from the OS
//   InvalidArgument  — a directory, FIFO, socket or device ("<what> <path> is a FIFO, not a
//                      regular file")
absl::Status CheckRegularFile(const std::string& path, absl::string_view what);

// Reads the whole regular file `path`, at most `max_bytes` bytes. Opens with O_NONBLOCK so a FIFO
// swapped in after the check still cannot block, and re-checks the opened file. Before reading,
// size x `memory_per_byte` (what the caller will hold: kJsonDomBytesPerTextByte when the text is
// parsed into a JSON DOM) is checked against the memory budget. Errors: as CheckRegularFile;
// InvalidArgument when the file is larger than `max_bytes` ("<what> <path> is 3.0 GiB, more than
// the 16.0 MiB such a file may be"); ResourceExhausted when it does not fit the memory budget;
// Internal for read errors. Thread-safe.
absl::StatusOr<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes,
                                            absl::string_view what, uint64_t memory_per_byte = 1);

// "512 B", "3.0 KiB", "16.0 MiB", "1.5 GiB", "2.0 TiB": sizes as people read them.
std::string HumanBytes(uint64_t bytes);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_CORE_READ_FILE_H_
