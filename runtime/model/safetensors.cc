#include "runtime/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/core/read_file.h"
#include "runtime/core/status_macros.h"

namespace sparkstack {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kMetadataKey = "__metadata__";

// The header nests at most three levels: root object -> entry object -> shape/offsets array.
// Anything deeper is rejected while parsing, so a hostile header cannot build a deep tree.
constexpr int kMaxHeaderDepth = 3;

absl::Status OsError(const std::string& what, const std::string& path, int err) {
  const std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
  return absl::InternalError(message);
}

uint64_t ReadLittleEndian64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string JsonTypeName(const Json& j) { return j.type_name(); }

// Reads a non-negative integer from a JSON number. JSON integers only (no 2.0, no "2").
bool JsonToUint64(const Json& j, uint64_t* out) {
  if (j.is_number_unsigned()) {
    *out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer()) {
    const int64_t v = j.get<int64_t>();
    if (v < 0) return false;
    *out = static_cast<uint64_t>(v);
    return true;
  }
  return false;
}

absl::Status ParseEntry(const std::string& name, const Json& j, uint64_t data_size,
                        const std::string& source, SafetensorsEntry* entry) {
  auto error = [&](const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors file ", source, ": tensor '", name, "': ", what));
  };
  if (!j.is_object()) {
    return error(absl::StrCat("header entry must be a JSON object, found ", JsonTypeName(j)));
  }
  entry->name = name;

  auto dtype_it = j.find("dtype");
  if (dtype_it == j.end()) return error("missing field 'dtype'");
  if (!dtype_it->is_string()) {
    return error(absl::StrCat("'dtype' must be a string, found ", JsonTypeName(*dtype_it)));
  }
  const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
  auto dtype = DTypeFromSafetensorsName(dtype_name);
  if (!dtype.ok()) return error(std::string(dtype.status().message()));
  entry->dtype = *dtype;

  auto shape_it = j.find("shape");
  if (shape_it == j.end()) return error("missing field 'shape'");
  if (!shape_it->is_array()) {
    return error(absl::StrCat("'shape' must be an array, found ", JsonTypeName(*shape_it)));
  }
  // Element count with overflow checks: the product must stay within int64 (Tensor's numel type)
  // and its byte size within uint64.
  // The product of the non-zero dimensions is bounded too, so that code computing a row size
  // (product of the trailing dimensions) of an empty tensor cannot overflow either.
  uint64_t numel = 1;
  uint64_t nonzero_product = 1;
  entry->shape.clear();
  for (size_t i = 0; i < shape_it->size(); ++i) {
    const Json& d = (*shape_it)[i];
    if (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0) {
      return error(absl::StrCat("negative dimension ", d.get<int64_t>(), " at shape index ", i));
    }
    uint64_t dim = 0;
    if (!JsonToUint64(d, &dim)) {
      return error(
          absl::StrCat("shape dimension ", i, " must be a non-negative integer, found ", d.dump()));
    }
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return error(absl::StrCat("dimension ", dim, " at shape index ", i, " is too large"));
    }
    entry->shape.push_back(static_cast<int64_t>(dim));
    // Keep numel * 64 bits representable (DTypeByteSize multiplies by the bit width): larger
    // shapes cannot describe a real file anyway.
    if (dim != 0 &&
        nonzero_product > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / 64 / dim) {
      return error(absl::StrCat("shape ", shape_it->dump(), " overflows the element count"));
    }
    if (dim != 0) nonzero_product *= dim;
    numel *= dim;
  }

  auto offsets_it = j.find("data_offsets");
  if (offsets_it == j.end()) return error("missing field 'data_offsets'");
  if (!offsets_it->is_array() || offsets_it->size() != 2) {
    return error(
        absl::StrCat("'data_offsets' must be an array [begin, end], found ", offsets_it->dump()));
  }
  if (!JsonToUint64((*offsets_it)[0], &entry->begin) ||
      !JsonToUint64((*offsets_it)[1], &entry->end)) {
    return error(absl::StrCat("'data_offsets' must hold two non-negative integers, found ",
                              offsets_it->dump()));
  }
  if (entry->begin > entry->end) {
    return error(absl::StrCat("data_offsets begin ", entry->begin, " is after end ", entry->end));
  }
  if (entry->end > data_size) {
    return error(absl::StrCat("data_offsets [", entry->begin, ", ", entry->end,
                              "] run past the end of the data section (", data_size, " bytes)"));
  }
  const uint64_t expected = DTypeByteSize(entry->dtype, static_cast<int64_t>(numel));
  if (entry->nbytes() != expected) {
    return error(absl::StrCat("byte size mismatch: shape ", ShapeToString(entry->shape), " of ",
                              dtype_name, " needs ", expected, " bytes, data_offsets [",
                              entry->begin, ", ", entry->end, "] hold ", entry->nbytes()));
  }
  return absl::OkStatus();
}

absl::Status ParseMetadata(const Json& j, const std::string& source,
                           std::map<std::string, std::string>* metadata) {
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors file ", source,
                                                   ": '__metadata__' must be an object, found ",
                                                   JsonTypeName(j)));
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("safetensors file ", source, ": '__metadata__' value for key '", it.key(),
                       "' must be a string, found ", JsonTypeName(*it)));
    }
    (*metadata)[it.key()] = it->get<std::string>();
  }
  return absl::OkStatus();
}

// Parses the header in one pass, in time linear in its size. The root object is never built as a
// DOM: each top-level value (one tensor entry, or __metadata__) is built on its own, checked by
// ParseEntry/ParseMetadata and dropped. (nlohmann's DOM parser with a callback rescans the whole
// root object after every entry, which made a 30,000-entry header take 10 s.)
class HeaderSax {
 public:
  HeaderSax(uint64_t header_size, uint64_t data_size, const std::string& source,
            std::vector<SafetensorsEntry>* entries, std::map<std::string, std::string>* metadata)
      : data_size_(data_size), source_(source), entries_(entries), metadata_(metadata) {
    names_.reserve(header_size / 64);  // an entry takes at least ~50 bytes of JSON
  }

  const absl::Status& status() const { return status_; }

  bool null() { return Add(Json(nullptr)); }
  bool boolean(bool v) { return Add(Json(v)); }
  bool number_integer(Json::number_integer_t v) { return Add(Json(v)); }
  bool number_unsigned(Json::number_unsigned_t v) { return Add(Json(v)); }
  bool number_float(Json::number_float_t v, const std::string&) { return Add(Json(v)); }
  bool string(std::string& v) { return Add(Json(std::move(v))); }
  bool binary(Json::binary_t& v) { return Add(Json::binary(std::move(v))); }

  bool start_object(std::size_t) { return Open(Json::object()); }
  bool start_array(std::size_t) { return Open(Json::array()); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }

  bool key(std::string& k) {
    if (depth_ == 1) {  // a tensor name (or __metadata__)
      if (!names_.insert(k).second) {
        return Fail(absl::StrCat("duplicate tensor name '", k, "'"));
      }
      top_key_ = std::move(k);
    } else {
      pending_key_ = std::move(k);
    }
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const Json::exception& e) {
    return Fail(absl::StrCat("header is not valid JSON: ", e.what()));
  }

 private:
  bool Fail(const std::string& what) {
    if (status_.ok()) {
      status_ = absl::InvalidArgumentError(absl::StrCat("safetensors file ", source_, ": ", what));
    }
    return false;
  }

  // A scalar, or a container that has just been opened, goes into the value being built.
  // Returns the stored value.
  Json* Insert(Json value) {
    if (depth_ == 1) {
      top_value_ = std::move(value);
      return &top_value_;
    }
    Json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(value));
      return &parent.back();
    }
    Json& slot = parent[pending_key_];
    slot = std::move(value);
    return &slot;
  }

  bool Add(Json value) {
    if (depth_ == 0) return Fail("header must be a JSON object");
    Insert(std::move(value));
    return depth_ == 1 ? Finish() : true;
  }

  bool Open(Json container) {
    // Root object -> entry object -> shape/offsets array: anything deeper is rejected, so a
    // hostile header cannot build a deep tree.
    if (depth_ >= kMaxHeaderDepth) {
      return Fail("header JSON is nested too deeply for a safetensors header");
    }
    if (depth_ == 0) {
      if (!container.is_object()) return Fail("header must be a JSON object");
    } else {
      // Pointers stay valid: a container only grows while it is the innermost open one.
      stack_.push_back(Insert(std::move(container)));
    }
    ++depth_;
    return true;
  }

  bool Close() {
    --depth_;
    if (depth_ >= 1) stack_.pop_back();
    return depth_ == 1 ? Finish() : true;
  }

  // One top-level value is complete.
  bool Finish() {
    absl::Status status;
    if (top_key_ == kMetadataKey) {
      status = ParseMetadata(top_value_, source_, metadata_);
    } else {
      SafetensorsEntry entry;
      status = ParseEntry(top_key_, top_value_, data_size_, source_, &entry);
      if (status.ok()) entries_->push_back(std::move(entry));
    }
    top_value_ = Json();
    if (!status.ok()) {
      status_ = std::move(status);
      return false;
    }
    return true;
  }

  const uint64_t data_size_;
  const std::string& source_;
  std::vector<SafetensorsEntry>* entries_;
  std::map<std::string, std::string>* metadata_;
  absl::Status status_;
  int depth_ = 0;  // containers open
  std::unordered_set<std::string> names_;
  std::string top_key_;       // name of the top-level value being built
  std::string pending_key_;   // key of the next value inside it
  Json top_value_;            // the top-level value being built
  std::vector<Json*> stack_;  // its open containers, innermost last
};

}  // namespace

absl::Status ParseSafetensorsHeader(std::string_view header, uint64_t data_size,
                                    const std::string& source,
                                    std::vector<SafetensorsEntry>* entries,
                                    std::map<std::string, std::string>* metadata) {
  entries->clear();
  metadata->clear();
  auto error = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors file ", source, ": ", what));
  };
  // The Python library requires the header to start with '{'; leading whitespace would be
  // accepted by a JSON parser but not by other readers, so reject it here too.
  if (header.empty() || header.front() != '{') {
    return error("header is not a JSON object (it must start with '{')");
  }

  HeaderSax sax(header.size(), data_size, source, entries, metadata);
  bool parsed = false;
  // nlohmann reports syntax errors through the SAX handler; anything else it throws stays here.
  try {
    parsed = Json::sax_parse(header.begin(), header.end(), &sax);
  } catch (const Json::exception& e) {
    return error(absl::StrCat("header is not valid JSON: ", e.what()));
  }
  if (!sax.status().ok()) return sax.status();
  if (!parsed) return error("header is not valid JSON");

  // File order; ties (empty tensors) by end then name so the order is deterministic.
  std::sort(entries->begin(), entries->end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
              if (a.begin != b.begin) return a.begin < b.begin;
              if (a.end != b.end) return a.end < b.end;
              return a.name < b.name;
            });
  // Overlap: with entries sorted by begin, a range overlaps an earlier one exactly when it starts
  // before the furthest end seen so far. Empty ranges occupy no bytes and never overlap.
  uint64_t max_end = 0;
  const SafetensorsEntry* max_end_entry = nullptr;
  for (const SafetensorsEntry& e : *entries) {
    if (e.nbytes() == 0) continue;
    if (max_end_entry != nullptr && e.begin < max_end) {
      return error(absl::StrCat("tensors '", max_end_entry->name, "' and '", e.name,
                                "' overlap: data_offsets ending at ", max_end, " and starting at ",
                                e.begin));
    }
    if (e.end > max_end) {
      max_end = e.end;
      max_end_entry = &e;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;

  // Checked before opening, and opened non-blocking, so a FIFO or device never blocks us.
  SPARKSTACK_RETURN_IF_ERROR(CheckRegularFile(path, "safetensors file"));
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return OsError("cannot open safetensors file", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return OsError("cannot stat safetensors file", path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors file ", path, " is not a regular file"));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return absl::DataLossError(absl::StrCat("safetensors file ", path, ": truncated: ", size,
                                            " bytes, shorter than the 8-byte header length"));
  }
  void* mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int mmap_errno = errno;
  ::close(fd);  // the mapping holds its own reference to the file
  if (mapping == MAP_FAILED) return OsError("cannot mmap safetensors file", path, mmap_errno);
  file->mapping_ = static_cast<const uint8_t*>(mapping);
  file->mapping_size_ = size;

  const uint64_t header_size = ReadLittleEndian64(file->mapping_);
  if (header_size > kMaxSafetensorsHeaderBytes) {
    return absl::DataLossError(absl::StrCat(
        "safetensors file ", path, ": header length ", header_size, " is absurdly large (limit ",
        kMaxSafetensorsHeaderBytes, "); not a safetensors file?"));
  }
  if (header_size > size - 8) {
    return absl::DataLossError(absl::StrCat("safetensors file ", path, ": header length ",
                                            header_size, " runs past the end of the file (", size,
                                            " bytes); truncated file?"));
  }
  file->data_ = file->mapping_ + 8 + header_size;
  file->data_size_ = size - 8 - header_size;
  const std::string_view header(reinterpret_cast<const char*>(file->mapping_ + 8), header_size);
  SPARKSTACK_RETURN_IF_ERROR(
      ParseSafetensorsHeader(header, file->data_size_, path, &file->entries_, &file->metadata_));
  for (size_t i = 0; i < file->entries_.size(); ++i)
    file->index_.emplace(file->entries_[i].name, i);
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(const_cast<uint8_t*>(mapping_), mapping_size_);
}

const SafetensorsEntry* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

absl::StatusOr<Tensor> SafetensorsFile::Get(std::string_view name) const {
  const SafetensorsEntry* entry = Find(name);
  if (entry == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("tensor '", std::string(name), "' not found in safetensors file ", path_));
  }
  // Tensor's API is non-const; the pages are PROT_READ, as the header documents.
  void* data = const_cast<uint8_t*>(data_ + entry->begin);
  return Tensor::Borrow(data, entry->dtype, entry->shape, shared_from_this());
}

absl::StatusOr<std::string> EncodeSafetensorsHeader(
    const std::vector<SafetensorsEntry>& entries,
    const std::map<std::string, std::string>& metadata, const std::string& path) {
  Json header = Json::object();
  if (!metadata.empty()) {
    Json md = Json::object();
    for (const auto& [key, value] : metadata) md[key] = value;
    header[std::string(kMetadataKey)] = std::move(md);
  }
  for (const SafetensorsEntry& e : entries) {
    if (e.name == kMetadataKey) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot write safetensors file ", path, ": '__metadata__' is not a valid tensor name"));
    }
    if (header.contains(e.name)) {
      return absl::InvalidArgumentError(absl::StrCat("cannot write safetensors file ", path,
                                                     ": duplicate tensor name '", e.name, "'"));
    }
    Json entry;
    entry["dtype"] = std::string(SafetensorsName(e.dtype));
    entry["shape"] = Json::array();
    for (int64_t d : e.shape) entry["shape"].push_back(d);
    entry["data_offsets"] = {e.begin, e.end};
    header[e.name] = std::move(entry);
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(header_text.size() >> (8 * i));
  return out + header_text;
}

absl::Status WriteSafetensors(const std::string& path,
                              const std::vector<std::pair<std::string, Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  auto error = [&](const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write safetensors file ", path, ": ", what));
  };
  std::vector<SafetensorsEntry> entries;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (tensor.device() != Device::kCpu) {
      return error(absl::StrCat("tensor '", name, "' is not on the CPU"));
    }
    if (!tensor.defined()) return error(absl::StrCat("tensor '", name, "' has no data"));
    Shape shape = tensor.shape();
    DType dtype = tensor.dtype();
    if (dtype == DType::kNvfp4) {
      // Stored the way NVFP4 checkpoints store it: packed bytes as U8, last dimension halved.
      if (shape.empty() || shape.back() % 2 != 0) {
        return error(absl::StrCat("nvfp4 tensor '", name, "' ", tensor.DebugString(),
                                  " needs an even last dimension to be stored as U8"));
      }
      shape.back() /= 2;
      dtype = DType::kU8;
    }
    const uint64_t nbytes = tensor.nbytes();
    entries.push_back({name, dtype, std::move(shape), offset, offset + nbytes});
    offset += nbytes;
  }
  SPARKSTACK_ASSIGN_OR_RETURN(const std::string header,
                              EncodeSafetensorsHeader(entries, metadata, path));

  const std::string tmp_path = absl::StrCat(path, ".tmp.", ::getpid());
  std::FILE* f = std::fopen(tmp_path.c_str(), "wb");
  if (f == nullptr) return OsError("cannot create", tmp_path, errno);
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
  for (size_t i = 0; ok && i < tensors.size(); ++i) {
    const Tensor& t = tensors[i].second;
    const size_t nbytes = t.nbytes();
    ok = nbytes == 0 || std::fwrite(t.data(), 1, nbytes, f) == nbytes;
  }
  const int write_errno = errno;
  if (std::fclose(f) != 0) ok = false;
  if (!ok) {
    std::remove(tmp_path.c_str());
    return OsError("error writing", tmp_path, write_errno);
  }
  if (std::rename(tmp_path.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp_path.c_str());
    return OsError(absl::StrCat("cannot rename ", tmp_path, " to"), path, err);
  }
  return absl::OkStatus();
}

}  // namespace sparkstack
