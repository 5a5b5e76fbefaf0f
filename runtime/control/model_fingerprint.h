// The compatibility check on model files: before anything loads, every node fingerprints its copy
// of the model directory and the coordinator compares it with the head's, so that a node with a
// different or half-copied checkpoint is named before it serves wrong numbers.
//
// A fingerprint lists the regular files directly in the directory (hidden files skipped): name,
// size, and the FNV-1a 64 hash of the header — a safetensors file's 8-byte length and JSON header
// (every tensor's name, dtype, shape and offsets), the first 1 MiB of any other file (config,
// tokenizer). Reading only headers keeps it fast on 100+ GB checkpoints; a corrupted tensor body
// of the same size is not caught (loading does not check that either).
#ifndef SPARKSTACK_RUNTIME_CONTROL_MODEL_FINGERPRINT_H_
#define SPARKSTACK_RUNTIME_CONTROL_MODEL_FINGERPRINT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/control/control_types.h"

namespace sparkstack::control {

// FNV-1a, 64-bit: continues `hash` over `data` (start from kFnvOffset).
inline constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
uint64_t Fnv1a64(std::string_view data, uint64_t hash = kFnvOffset);

// Fingerprints `dir`. Errors: not a directory, unreadable file, more than kMaxModelFiles files.
absl::StatusOr<ModelFingerprint> FingerprintModel(const std::string& dir);

// Total bytes of the *.safetensors files (the weights) in a fingerprint.
uint64_t WeightBytes(const ModelFingerprint& fingerprint);

// OK when `node` lists the same files as `head` with the same sizes and header hashes; otherwise
// FailedPrecondition naming `node_name`, both directories and up to five differing files.
absl::Status CompareModels(const ModelFingerprint& head, const ModelFingerprint& node,
                           std::string_view node_name);

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_MODEL_FINGERPRINT_H_
