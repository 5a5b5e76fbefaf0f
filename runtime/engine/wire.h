// Byte writer and bounds-checked reader for the engine's data-plane messages (StepPlan, step
// results). Integers are little-endian; counts and ids are unsigned LEB128 varints so that a
// decoding sequence costs a few bytes per step. The reader treats its input as untrusted: every
// read is checked against the end, and a failed read poisons the reader (ok() false) so a decoder
// can check once at the end of a record.
#ifndef SPARKSTACK_RUNTIME_ENGINE_WIRE_H_
#define SPARKSTACK_RUNTIME_ENGINE_WIRE_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace sparkstack::wire {

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void Varint(uint64_t value) {
    while (value >= 0x80) {
      out_.push_back(static_cast<char>(value | 0x80));
      value >>= 7;
    }
    out_.push_back(static_cast<char>(value));
  }
  // Signed values through zigzag, so small negatives stay small.
  void SignedVarint(int64_t value) {
    Varint((static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63));
  }
  template <typename T>
  void Fixed(T value) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));
    out_.append(bytes, sizeof(T));
  }
  void Bytes(const void* data, size_t size) { out_.append(static_cast<const char*>(data), size); }

 private:
  std::string& out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  uint64_t Varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return Fail();
      const auto byte = static_cast<uint8_t>(in_[pos_++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    return Fail();  // more than 10 bytes: not a varint we wrote
  }
  int64_t SignedVarint() {
    const uint64_t v = Varint();
    return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
  }
  template <typename T>
  T Fixed() {
    T value{};
    if (in_.size() - pos_ < sizeof(T)) return static_cast<T>(Fail());
    std::memcpy(&value, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  // `size` bytes, or an empty view (and !ok()) when fewer are left.
  std::string_view Bytes(size_t size) {
    if (in_.size() - pos_ < size) {
      Fail();
      return {};
    }
    std::string_view bytes = in_.substr(pos_, size);
    pos_ += size;
    return bytes;
  }

  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == in_.size(); }
  size_t remaining() const { return in_.size() - pos_; }

 private:
  uint64_t Fail() {
    ok_ = false;
    pos_ = in_.size();
    return 0;
  }

  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace sparkstack::wire

#endif  // SPARKSTACK_RUNTIME_ENGINE_WIRE_H_
