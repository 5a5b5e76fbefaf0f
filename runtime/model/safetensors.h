// Reading and writing the safetensors format (https://github.com/huggingface/safetensors).
//
// File layout:
//   [8 bytes]  N, the header length, unsigned 64-bit little-endian
//   [N bytes]  UTF-8 JSON object: {"__metadata__": {str: str}?,
//                                  "<name>": {"dtype": "BF16", "shape": [d0, ...],
//                                             "data_offsets": [begin, end]}, ...}
//              possibly padded at the end with spaces (0x20)
//   [rest]     the data section; tensor offsets are relative to its start, row-major,
//              little-endian.
//
// Reading maps the file read-only and never copies tensor data: SafetensorsFile::Get returns a
// Tensor that borrows the mapping and keeps it alive. Every size and offset in the header is
// checked before any tensor byte is touched, so a malformed or hostile file gives an error, never a
// crash or an out-of-bounds read.
#ifndef SPARKSTACK_RUNTIME_MODEL_SAFETENSORS_H_
#define SPARKSTACK_RUNTIME_MODEL_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"

namespace sparkstack {

// Largest header accepted (the Python library's limit is 100 MB too). Bigger values are treated as
// corruption rather than an allocation request.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

// One tensor's header entry. `begin`/`end` are byte offsets relative to the start of the data
// section (not the file); end - begin == DTypeByteSize(dtype, NumElements(shape)).
struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  uint64_t begin = 0;
  uint64_t end = 0;

  uint64_t nbytes() const { return end - begin; }
};

// A safetensors file mapped into memory. Always owned by a std::shared_ptr (Open returns one) so
// that tensors handed out by Get can keep the mapping alive after the file object is dropped.
//
// Thread safety: immutable after Open; every const method may be called from any thread.
// The file must not be truncated or rewritten in place while mapped (reading a page that no longer
// exists raises SIGBUS); WriteSafetensors replaces files by rename, which is safe.
class SafetensorsFile : public std::enable_shared_from_this<SafetensorsFile> {
 public:
  // Maps and validates `path`. Errors (each names the file and, where one is involved, the
  // tensor): NotFound / PermissionDenied / Internal from the OS; InvalidArgument (DataLoss for
  // a truncated file) for a file shorter than 8 bytes, a header length past the end of the file,
  // a header that is not a JSON object, an entry with missing or mistyped dtype/shape/data_offsets,
  // an unsupported dtype (named), a negative dimension or element-count overflow, data_offsets
  // that are not [begin, end] with begin <= end or that run past the data section, tensors whose
  // byte ranges overlap, a byte count that does not match shape x dtype (expected vs found),
  // duplicate tensor names, and a __metadata__ that is not an object of strings.
  static absl::StatusOr<std::shared_ptr<SafetensorsFile>> Open(const std::string& path);

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }

  // All tensors, in file order (sorted by data offset).
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }

  // The entry called `name`, or nullptr. Does not touch tensor data.
  const SafetensorsEntry* Find(std::string_view name) const;

  // A CPU tensor borrowing the mapping (zero copy); it keeps this file mapped while it lives. The
  // storage is READ-ONLY (the pages are mapped PROT_READ: writing through data() faults) and may
  // be UNALIGNED (the data section starts wherever the header ends, and offsets need not be
  // multiples of the element size): read elements with memcpy or copy the tensor (Clone) before
  // using aligned loads. NotFound naming the tensor and the file if absent.
  absl::StatusOr<Tensor> Get(std::string_view name) const;

  // The "__metadata__" object (empty if absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Bytes of tensor data (the file size minus 8 and the header).
  uint64_t data_size() const { return data_size_; }

 private:
  SafetensorsFile() = default;

  std::string path_;
  const uint8_t* mapping_ = nullptr;  // whole file, PROT_READ
  uint64_t mapping_size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the data section inside mapping_
  uint64_t data_size_ = 0;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in entries_
  std::map<std::string, std::string> metadata_;
};

// Parses and validates a safetensors header (the bytes after the 8-byte length) against a data
// section of `data_size` bytes. Exposed for SafetensorsFile::Open, the fuzzer and tests; `source`
// names the file in messages. Entries come back sorted by offset.
absl::Status ParseSafetensorsHeader(std::string_view header, uint64_t data_size,
                                    const std::string& source,
                                    std::vector<SafetensorsEntry>* entries,
                                    std::map<std::string, std::string>* metadata);

// The bytes before a safetensors file's data section: the 8-byte length and the header JSON,
// formatted exactly as WriteSafetensors formats them (keys sorted, padded with spaces to a multiple
// of 8). `entries` give each tensor's stored dtype, shape and offsets within the data section, as
// the caller will write the data. For writers that stream tensor data after the header. The
// entries' sizes and offsets are not checked here. InvalidArgument naming `path` for a duplicate
// name or one called "__metadata__".
absl::StatusOr<std::string> EncodeSafetensorsHeader(
    const std::vector<SafetensorsEntry>& entries,
    const std::map<std::string, std::string>& metadata, const std::string& path);

// Writes a safetensors file readable by the Python library: the header JSON has its keys sorted
// by name ("__metadata__" included, omitted when empty), it is padded with spaces so that the data
// section starts at a multiple of 8 bytes, and tensor data follows in the order given, back to
// back. nvfp4 tensors are written as U8 with their packed byte shape (last dimension halved,
// which must be even). Tensors must be on the CPU. Errors name the path and the offending tensor
// (duplicate names, device tensors, odd nvfp4 rows, I/O failures). The file is written to a
// temporary name and renamed into place, so readers never see a half-written file.
absl::Status WriteSafetensors(const std::string& path,
                              const std::vector<std::pair<std::string, Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_SAFETENSORS_H_
