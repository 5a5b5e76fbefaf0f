#include "runtime/model/safetensors.h"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/model/test_util.h"

namespace sparkstack {
namespace {

using ::sparkstack::testing::RawSafetensors;
using ::sparkstack::testing::ReadBytes;
using ::sparkstack::testing::ScratchDir;
using ::sparkstack::testing::WriteBytes;
using ::testing::HasSubstr;

Tensor RandomTensor(DType dtype, const Shape& shape, std::mt19937& rng) {
  Tensor t = Tensor::Zeros(dtype, shape);
  auto* bytes = t.data_as<uint8_t>();
  for (size_t i = 0; i < t.nbytes(); ++i) bytes[i] = static_cast<uint8_t>(rng());
  return t;
}

std::string Bytes(const Tensor& t) {
  return std::string(static_cast<const char*>(t.data()), t.nbytes());
}

TEST(SafetensorsTest, RoundTripEveryDTypeAndOddShapes) {
  ScratchDir dir;
  std::mt19937 rng(1234);
  const std::vector<DType> dtypes = {DType::kF32, DType::kF16, DType::kBF16, DType::kF8E4M3,
                                     DType::kI32, DType::kI64, DType::kU8};
  const std::vector<Shape> shapes = {{}, {0}, {1}, {7}, {3, 5}, {3, 0, 5}, {2, 3, 5, 7}, {13, 1}};
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (DType dtype : dtypes) {
    for (size_t s = 0; s < shapes.size(); ++s) {
      // Names out of alphabetical order, so file order (as given) differs from header key order.
      tensors.emplace_back("t" + std::to_string(99 - s) + "." + std::string(DTypeName(dtype)),
                           RandomTensor(dtype, shapes[s], rng));
    }
  }
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "odd \"q\""}};
  const std::string path = dir.File("round_trip.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors, metadata).ok());

  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->path(), path);
  EXPECT_EQ((*file)->metadata(), metadata);
  ASSERT_EQ((*file)->entries().size(), tensors.size());
  // File order is the order given: the data is laid out back to back.
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, expected] = tensors[i];
    const SafetensorsEntry& entry = (*file)->entries()[i];
    EXPECT_EQ(entry.name, name);
    EXPECT_EQ(entry.begin, offset) << name;
    offset = entry.end;
    const SafetensorsEntry* found = (*file)->Find(name);
    ASSERT_NE(found, nullptr) << name;
    EXPECT_EQ(found->dtype, expected.dtype()) << name;
    EXPECT_EQ(found->shape, expected.shape()) << name;
    auto got = (*file)->Get(name);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->dtype(), expected.dtype());
    EXPECT_EQ(got->shape(), expected.shape());
    EXPECT_EQ(Bytes(*got), Bytes(expected)) << name;
  }
  EXPECT_EQ((*file)->data_size(), offset);
  EXPECT_EQ((*file)->Find("absent"), nullptr);
  auto missing = (*file)->Get("absent");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("absent"));
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(path));
}

// Checks the bytes on disk with an independent JSON parse: length prefix, sorted keys, space
// padding to an 8-byte data start, offsets.
TEST(SafetensorsTest, WrittenLayoutMatchesTheFormat) {
  ScratchDir dir;
  std::mt19937 rng(7);
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"zeta", RandomTensor(DType::kBF16, {3}, rng)},
      {"alpha", RandomTensor(DType::kF32, {1, 1}, rng)}};
  const std::string path = dir.File("layout.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors, {{"format", "pt"}}).ok());
  const std::string bytes = ReadBytes(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ((8 + n) % 8, 0u);
  ASSERT_EQ(bytes.size(), 8 + n + 6 + 4);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  const size_t last = header.find_last_not_of(' ');
  EXPECT_EQ(header[last], '}');
  // Keys in sorted order in the text.
  EXPECT_LT(header.find("\"__metadata__\""), header.find("\"alpha\""));
  EXPECT_LT(header.find("\"alpha\""), header.find("\"zeta\""));
  const auto json = nlohmann::json::parse(header);
  EXPECT_EQ(json["__metadata__"]["format"], "pt");
  EXPECT_EQ(json["zeta"]["dtype"], "BF16");
  EXPECT_EQ(json["zeta"]["shape"], nlohmann::json::array({3}));
  EXPECT_EQ(json["zeta"]["data_offsets"], nlohmann::json::array({0, 6}));
  EXPECT_EQ(json["alpha"]["dtype"], "F32");
  EXPECT_EQ(json["alpha"]["data_offsets"], nlohmann::json::array({6, 10}));
  EXPECT_EQ(bytes.substr(8 + n, 6), Bytes(tensors[0].second));
  EXPECT_EQ(bytes.substr(8 + n + 6, 4), Bytes(tensors[1].second));
}

TEST(SafetensorsTest, Nvfp4IsStoredAsPackedU8) {
  ScratchDir dir;
  std::mt19937 rng(3);
  Tensor codes = RandomTensor(DType::kNvfp4, {3, 10}, rng);
  const std::string path = dir.File("fp4.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"w", codes}}).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  auto got = (*file)->Get("w");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->dtype(), DType::kU8);
  EXPECT_EQ(got->shape(), (Shape{3, 5}));
  EXPECT_EQ(Bytes(*got), Bytes(codes));

  auto odd = WriteSafetensors(dir.File("odd.safetensors"),
                              {{"w", RandomTensor(DType::kNvfp4, {3, 5}, rng)}});
  EXPECT_EQ(odd.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(odd.message()), HasSubstr("even last dimension"));
}

TEST(SafetensorsTest, WriterRejectsDuplicateNames) {
  ScratchDir dir;
  auto status = WriteSafetensors(dir.File("dup.safetensors"),
                                 {{"a", Tensor::Zeros(DType::kF32, {1})},
                                  {"a", Tensor::Zeros(DType::kF32, {2})}});
  EXPECT_THAT(std::string(status.message()), HasSubstr("duplicate tensor name 'a'"));
}

TEST(SafetensorsTest, TensorKeepsMappingAliveAfterFileIsDropped) {
  ScratchDir dir;
  std::mt19937 rng(11);
  Tensor t = RandomTensor(DType::kF32, {4, 3}, rng);
  const std::string path = dir.File("alive.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"x", t}}).ok());
  Tensor borrowed;
  {
    auto file = SafetensorsFile::Open(path);
    ASSERT_TRUE(file.ok());
    borrowed = *(*file)->Get("x");
  }
  EXPECT_EQ(Bytes(borrowed), Bytes(t));  // ASan would flag a use after munmap
}

// The layout the Python library (Rust core) writes, built by hand from the format description:
// "__metadata__" first, tensors ordered by alignment then name (so header keys are NOT sorted),
// spaces after the JSON so that the data starts on an 8-byte boundary.
TEST(SafetensorsTest, ReadsHandWrittenPythonLibraryFile) {
  ScratchDir dir;
  std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
      R"("c":{"dtype":"BF16","shape":[1, 3],"data_offsets":[16,22]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  ASSERT_EQ(header.size() % 8, 0u);
  std::string data;
  const int64_t b = -5;
  const float a[2] = {1.5f, -2.25f};
  const uint16_t c[3] = {0x3f80, 0xc000, 0x4049};  // bf16 1.0, -2.0, 3.140625
  data.append(reinterpret_cast<const char*>(&b), 8);
  data.append(reinterpret_cast<const char*>(a), 8);
  data.append(reinterpret_cast<const char*>(c), 6);
  const std::string path = dir.File("python.safetensors");
  WriteBytes(path, RawSafetensors(header, data));

  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  ASSERT_EQ((*file)->entries().size(), 3u);
  EXPECT_EQ((*file)->entries()[0].name, "b");  // file order, not key order
  EXPECT_EQ((*file)->entries()[1].name, "a");
  EXPECT_EQ((*file)->entries()[2].name, "c");
  auto tb = (*file)->Get("b");
  ASSERT_TRUE(tb.ok());
  int64_t vb;
  std::memcpy(&vb, tb->data(), 8);
  EXPECT_EQ(vb, -5);
  auto ta = (*file)->Get("a");
  ASSERT_TRUE(ta.ok());
  float va[2];
  std::memcpy(va, ta->data(), 8);
  EXPECT_EQ(va[0], 1.5f);
  EXPECT_EQ(va[1], -2.25f);
  auto tc = (*file)->Get("c");
  ASSERT_TRUE(tc.ok());
  EXPECT_EQ(tc->dtype(), DType::kBF16);
  EXPECT_EQ(tc->shape(), (Shape{1, 3}));
  uint16_t vc[3];
  std::memcpy(vc, tc->data(), 6);
  EXPECT_EQ(vc[2], 0x4049);
}

// A header that leaves the data section unaligned must still read (data may be unaligned).
TEST(SafetensorsTest, ReadsUnalignedDataSection) {
  ScratchDir dir;
  const std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  ASSERT_NE((8 + header.size() + 1) % 4, 0u);
  const float x[2] = {3.0f, -7.5f};
  std::string data(1, '\0');
  data.append(reinterpret_cast<const char*>(x), 8);
  const std::string path = dir.File("unaligned.safetensors");
  WriteBytes(path, RawSafetensors(header, data));
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  auto t = (*file)->Get("x");
  ASSERT_TRUE(t.ok());
  float got[2];
  std::memcpy(got, t->data(), 8);
  EXPECT_EQ(got[0], 3.0f);
  EXPECT_EQ(got[1], -7.5f);
}

struct MalformedCase {
  const char* label;
  std::string bytes;      // whole file
  std::string expected;   // distinctive substring of the message
  std::string tensor;     // tensor the message must name ("" if none)
  absl::StatusCode code = absl::StatusCode::kInvalidArgument;
};

std::string Entry(const std::string& name, const std::string& body) {
  return "\"" + name + "\":" + body;
}

std::vector<MalformedCase> MalformedCases() {
  const std::string ok_entry = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string data8(8, '\x01');
  auto file = [](const std::string& header, const std::string& data) {
    return RawSafetensors(header, data);
  };
  std::string huge_length(8, '\0');
  huge_length[7] = '\x7f';
  std::string past_end = std::string("\x40\0\0\0\0\0\0\0", 8) + "{}";
  const std::string deep = R"({"a":{"dtype":"F32","shape":[[[[1]]]],"data_offsets":[0,4]}})";
  return {
      {"empty file", "", "shorter than the 8-byte header length", "", absl::StatusCode::kDataLoss},
      {"truncated length", std::string("\x02\0\0", 3), "shorter than the 8-byte header length", "",
       absl::StatusCode::kDataLoss},
      {"header length past end", past_end, "runs past the end of the file", "",
       absl::StatusCode::kDataLoss},
      {"absurd header length", huge_length + "{}", "absurdly large", "",
       absl::StatusCode::kDataLoss},
      {"zero header", file("", ""), "must start with '{'", ""},
      {"header is an array", file("[1,2]", ""), "must start with '{'", ""},
      {"bad json", file(R"({"a": {"dtype": "F32",)", ""), "not valid JSON", ""},
      {"trailing garbage", file(R"({} x)", ""), "not valid JSON", ""},
      {"too deep", file(deep, ""), "nested too deeply", ""},
      {"entry not an object", file(R"({"a":5})", ""), "header entry must be a JSON object", "a"},
      {"missing dtype", file(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", data8),
       "missing field 'dtype'", "w"},
      {"missing shape", file(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", data8),
       "missing field 'shape'", "w"},
      {"missing offsets", file(R"({"w":{"dtype":"F32","shape":[2]}})", data8),
       "missing field 'data_offsets'", "w"},
      {"dtype not a string", file(R"({"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", data8),
       "'dtype' must be a string", "w"},
      {"shape not an array",
       file(R"({"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", data8),
       "'shape' must be an array", "w"},
      {"fractional dim", file(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}})", data8),
       "must be a non-negative integer", "w"},
      {"offsets wrong arity",
       file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8]}})", data8),
       "must be an array [begin, end]", "w"},
      {"offsets not integers",
       file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}})", data8),
       "two non-negative integers", "w"},
      {"negative offset",
       file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", data8),
       "two non-negative integers", "w"},
      {"unknown dtype", file(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", data8),
       "unsupported safetensors dtype 'F64'", "w"},
      {"negative dim", file(R"({"w":{"dtype":"U8","shape":[-3],"data_offsets":[0,8]}})", data8),
       "negative dimension -3", "w"},
      {"element overflow",
       file(R"({"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
            data8),
       "overflows the element count", "w"},
      {"overflow after zero",
       file(R"({"w":{"dtype":"U8","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})",
            data8),
       "overflows the element count", "w"},
      {"begin after end", file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data8),
       "is after end", "w"},
      {"offsets past data",
       file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data8),
       "run past the end of the data section", "w"},
      {"huge offsets",
       file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551608,18446744073709551615]}})",
            data8),
       "run past the end of the data section", "w"},
      {"byte size mismatch",
       file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8),
       "shape [3] of F32 needs 12 bytes, data_offsets [0, 8] hold 8", "w"},
      {"overlap", file("{" + Entry("a", ok_entry) + "," +
                           Entry("b", R"({"dtype":"U8","shape":[4],"data_offsets":[6,10]})") + "}",
                       std::string(10, 'x')),
       "overlap", "b"},
      {"contained overlap",
       file("{" + Entry("big", R"({"dtype":"U8","shape":[10],"data_offsets":[0,10]})") + "," +
                Entry("small", R"({"dtype":"U8","shape":[2],"data_offsets":[2,4]})") + "}",
            std::string(10, 'x')),
       "overlap", "small"},
      {"duplicate names", file("{" + Entry("a", ok_entry) + "," + Entry("a", ok_entry) + "}", data8),
       "duplicate tensor name 'a'", "a"},
      {"metadata not object", file(R"({"__metadata__":[1]})", ""),
       "'__metadata__' must be an object", ""},
      {"metadata value not string", file(R"({"__metadata__":{"k":1}})", ""),
       "'__metadata__' value for key 'k'", ""},
  };
}

TEST(SafetensorsTest, EachMalformedFileGivesItsOwnError) {
  ScratchDir dir;
  int index = 0;
  for (const MalformedCase& c : MalformedCases()) {
    SCOPED_TRACE(c.label);
    const std::string path = dir.File("bad" + std::to_string(index++) + ".safetensors");
    WriteBytes(path, c.bytes);
    auto file = SafetensorsFile::Open(path);
    ASSERT_FALSE(file.ok());
    EXPECT_EQ(file.status().code(), c.code) << file.status();
    const std::string message(file.status().message());
    EXPECT_THAT(message, HasSubstr(c.expected));
    EXPECT_THAT(message, HasSubstr(path));
    if (!c.tensor.empty()) EXPECT_THAT(message, HasSubstr("'" + c.tensor + "'"));
  }
}

TEST(SafetensorsTest, OsErrors) {
  ScratchDir dir;
  auto missing = SafetensorsFile::Open(dir.File("nope.safetensors"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("nope.safetensors"));
  auto directory = SafetensorsFile::Open(dir.path());
  EXPECT_THAT(std::string(directory.status().message()), HasSubstr("not a regular file"));
}

// Random corruptions of a valid file: every outcome is a clean success or error (run under
// ASan/UBSan this is a small fuzzer).
TEST(SafetensorsTest, RandomCorruptionNeverCrashes) {
  ScratchDir dir;
  std::mt19937 rng(99);
  const std::string path = dir.File("valid.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"a", RandomTensor(DType::kBF16, {3, 2}, rng)},
                                      {"b", RandomTensor(DType::kI64, {2}, rng)},
                                      {"c", RandomTensor(DType::kU8, {0}, rng)}},
                               {{"k", "v"}})
                  .ok());
  const std::string valid = ReadBytes(path);
  const std::string corrupt_path = dir.File("corrupt.safetensors");
  const char* interesting = "{}[]\",:-0123456789eE. \x00\xff";
  for (int iter = 0; iter < 300; ++iter) {
    std::string bytes = valid;
    const int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations; ++m) {
      const size_t pos = rng() % bytes.size();
      switch (rng() % 4) {
        case 0: bytes[pos] = static_cast<char>(rng()); break;
        case 1: bytes[pos] = interesting[rng() % 23]; break;
        case 2: bytes.resize(pos); break;
        case 3: bytes.insert(pos, 1, interesting[rng() % 23]); break;
      }
      if (bytes.empty()) break;
    }
    WriteBytes(corrupt_path, bytes);
    auto file = SafetensorsFile::Open(corrupt_path);
    if (file.ok()) {
      for (const SafetensorsEntry& e : (*file)->entries()) {
        auto t = (*file)->Get(e.name);
        ASSERT_TRUE(t.ok());
        // Touch every byte: ASan checks the bounds.
        uint64_t sum = 0;
        for (size_t i = 0; i < t->nbytes(); ++i) sum += t->data_as<uint8_t>()[i];
        (void)sum;
      }
    } else {
      EXPECT_FALSE(file.status().message().empty());
    }
  }
}

// The header parser alone on many mutated headers (no file I/O, so many more iterations).
TEST(SafetensorsTest, RandomHeaderMutationsNeverCrash) {
  std::mt19937 rng(5);
  const std::string valid =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[3,2],"data_offsets":[0,12]},)"
      R"("b":{"dtype":"I64","shape":[2],"data_offsets":[12,28]},"c":{"dtype":"U8","shape":[0],)"
      R"("data_offsets":[28,28]}})";
  const char* interesting = "{}[]\",:-0123456789eE. \x00\xff";
  std::vector<SafetensorsEntry> entries;
  std::map<std::string, std::string> metadata;
  int accepted = 0;
  for (int iter = 0; iter < 5000; ++iter) {
    std::string header = valid;
    const int mutations = 1 + static_cast<int>(rng() % 3);
    for (int m = 0; m < mutations && !header.empty(); ++m) {
      const size_t pos = rng() % header.size();
      switch (rng() % 4) {
        case 0: header[pos] = static_cast<char>(rng()); break;
        case 1: header[pos] = interesting[rng() % 23]; break;
        case 2: header.erase(pos, 1 + rng() % 4); break;
        case 3: header.insert(pos, 1, interesting[rng() % 23]); break;
      }
    }
    const uint64_t data_size = rng() % 40;
    const absl::Status status = ParseSafetensorsHeader(header, data_size, "fuzz", &entries, &metadata);
    if (status.ok()) {
      ++accepted;
      for (const SafetensorsEntry& e : entries) {
        ASSERT_LE(e.begin, e.end);
        ASSERT_LE(e.end, data_size);
        ASSERT_EQ(e.nbytes(), DTypeByteSize(e.dtype, NumElements(e.shape)));
      }
    }
  }
  EXPECT_GT(accepted, 0);  // the mutations are not all fatal, so the checks above ran
}

}  // namespace
}  // namespace sparkstack
