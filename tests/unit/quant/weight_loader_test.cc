// Readers: tiny ModelOpt and compressed-tensors checkpoints written here load back to the weights
// the quantizer produced; every malformed case gives its own error; fused q/k/v reconciliation.
#include "runtime/quant/weight_loader.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/nvfp4_reference.h"
#include "runtime/core/float8.h"
#include "runtime/core/half.h"
#include "runtime/model/safetensors.h"
#include "runtime/quant/nvfp4_quantizer.h"
#include "runtime/quant/quant_scheme.h"

namespace sparkstack {
namespace {

namespace fs = std::filesystem;
using Tensors = std::vector<std::pair<std::string, Tensor>>;

Tensor RandomBf16(int64_t n, int64_t k, uint64_t seed, double stddev = 0.02) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, stddev);
  Tensor t = Tensor::Zeros(DType::kBF16, {n, k});
  for (int64_t i = 0; i < n * k; ++i) {
    t.data_as<uint16_t>()[i] = FloatToBf16(static_cast<float>(normal(rng)));
  }
  return t;
}

Tensor Scalar(float v, bool one_dim = false) {
  Tensor t = one_dim ? Tensor::Zeros(DType::kF32, {1}) : Tensor::Zeros(DType::kF32, {});
  t.data_as<float>()[0] = v;
  return t;
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("sparkstack_quant_test_" + std::to_string(::getpid()) + "_" + std::to_string(next_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string path() const { return path_.string(); }
  void WriteFile(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
  }

 private:
  static inline int next_ = 0;
  fs::path path_;
};

void WriteCheckpoint(const TempDir& dir, const Tensors& tensors) {
  ASSERT_TRUE(WriteSafetensors(dir.path() + "/model.safetensors", tensors).ok());
}

const char kModelOptConfig[] =
    R"({"quantization": {"quant_algo": "NVFP4", "group_size": 16, "kv_cache_quant_algo": null,
        "exclude_modules": ["lm_head", "model.layers.*.mlp.gate"]}})";

// Element-wise equality of two weights' dequantized values (within `rel` relative).
void ExpectSameValues(const Weight& a, const Weight& b, double rel) {
  ASSERT_EQ(a.rows(), b.rows());
  ASSERT_EQ(a.cols(), b.cols());
  auto da = DequantizeNvfp4(a);
  auto db = DequantizeNvfp4(b);
  ASSERT_TRUE(da.ok() && db.ok());
  int bad = 0;
  for (int64_t i = 0; i < da->numel(); ++i) {
    const float x = da->data_as<float>()[i], y = db->data_as<float>()[i];
    if (!(std::fabs(x - y) <= rel * std::fabs(y)) && bad++ < 5) {
      ADD_FAILURE() << "element " << i << ": " << x << " vs " << y;
    }
  }
}

TEST(WeightLoaderTest, ModelOptCheckpointLoadsQuantizerOutput) {
  TempDir dir;
  const Tensor w = RandomBf16(19, 80, 1);
  auto q = QuantizeNvfp4(w);
  ASSERT_TRUE(q.ok());
  const std::string p = "model.layers.0.self_attn.q_proj";
  WriteCheckpoint(dir, {{p + ".weight", q->nvfp4().codes},
                        {p + ".weight_scale", q->nvfp4().block_scales},
                        {p + ".weight_scale_2", Scalar(q->nvfp4().global_scale)},
                        {p + ".input_scale", Scalar(0.5f, /*one_dim=*/true)},
                        {"lm_head.weight", RandomBf16(7, 80, 2)}});
  dir.WriteFile("hf_quant_config.json", kModelOptConfig);
  auto ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  auto scheme = ReadQuantScheme(dir.path());
  ASSERT_TRUE(scheme.ok()) << scheme.status();
  EXPECT_EQ(scheme->method, QuantMethod::kModelOptNvfp4);
  EXPECT_TRUE(ExpectsNvfp4(*scheme, p));
  EXPECT_FALSE(ExpectsNvfp4(*scheme, "lm_head"));
  EXPECT_FALSE(ExpectsNvfp4(*scheme, "model.layers.3.mlp.gate"));
  EXPECT_TRUE(ExpectsNvfp4(*scheme, "model.layers.3.mlp.gate_proj"));

  auto loaded = LoadLinearWeight(*ckpt, *scheme, p);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->format(), WeightFormat::kNvfp4);
  EXPECT_EQ(loaded->nvfp4().global_scale, q->nvfp4().global_scale);
  EXPECT_EQ(loaded->nvfp4().input_scale, std::optional<float>(0.5f));
  EXPECT_EQ(std::memcmp(loaded->nvfp4().codes.data(), q->nvfp4().codes.data(), 19 * 40), 0);
  ExpectSameValues(*loaded, *q, 0.0);

  auto head = LoadLinearWeight(*ckpt, *scheme, "lm_head");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->format(), WeightFormat::kDense);
  EXPECT_EQ(head->dense().dtype(), DType::kBF16);
}

TEST(WeightLoaderTest, ModelOptSchemeFromConfigJson) {
  TempDir dir;
  dir.WriteFile("config.json", R"({"model_type": "llama", "quantization_config": {
      "quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16,
      "ignore": ["lm_head"]}})");
  auto scheme = ReadQuantScheme(dir.path());
  ASSERT_TRUE(scheme.ok()) << scheme.status();
  EXPECT_EQ(scheme->method, QuantMethod::kModelOptNvfp4);
  EXPECT_FALSE(ExpectsNvfp4(*scheme, "lm_head"));
  EXPECT_TRUE(ExpectsNvfp4(*scheme, "model.layers.0.mlp.down_proj"));
}

TEST(WeightLoaderTest, MixedPrecisionLayers) {
  TempDir dir;
  dir.WriteFile("hf_quant_config.json", R"({"quantization": {"quant_algo": "MIXED_PRECISION",
      "quantized_layers": {"model.layers.0.mlp.down_proj": {"quant_algo": "NVFP4", "group_size": 16},
                           "model.layers.1.mlp.down_proj": {"quant_algo": "FP8"}}}})");
  WriteCheckpoint(dir, {{"model.layers.1.mlp.down_proj.weight", RandomBf16(4, 16, 3)}});
  auto scheme = ReadQuantScheme(dir.path());
  ASSERT_TRUE(scheme.ok()) << scheme.status();
  EXPECT_TRUE(ExpectsNvfp4(*scheme, "model.layers.0.mlp.down_proj"));
  EXPECT_FALSE(ExpectsNvfp4(*scheme, "model.layers.1.mlp.down_proj"));
  EXPECT_FALSE(ExpectsNvfp4(*scheme, "model.layers.0.mlp.up_proj"));
  auto ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok());
  auto fp8 = LoadLinearWeight(*ckpt, *scheme, "model.layers.1.mlp.down_proj");
  EXPECT_EQ(fp8.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(fp8.status().message()).find("model.layers.1.mlp.down_proj"),
            std::string::npos);
  EXPECT_NE(std::string(fp8.status().message()).find("FP8"), std::string::npos);
}

TEST(WeightLoaderTest, CompressedTensorsCheckpointInvertsGlobalScales) {
  TempDir dir;
  const Tensor w = RandomBf16(13, 48, 4);
  auto q = QuantizeNvfp4(w);
  ASSERT_TRUE(q.ok());
  const std::string p = "model.layers.0.mlp.up_proj";
  // compressed-tensors stores 1 / global (= 448 * 6 / amax) and the same codes and scales.
  const float inverted = 1.0f / q->nvfp4().global_scale;
  WriteCheckpoint(dir, {{p + ".weight_packed", q->nvfp4().codes},
                        {p + ".weight_scale", q->nvfp4().block_scales},
                        {p + ".weight_global_scale", Scalar(inverted, true)},
                        {p + ".input_global_scale", Scalar(4.0f, true)}});
  dir.WriteFile("config.json", R"({"quantization_config": {"quant_method": "compressed-tensors",
      "format": "nvfp4-pack-quantized", "ignore": ["lm_head", "re:.*mlp\\.gate$"],
      "config_groups": {"group_0": {"targets": ["Linear"], "format": "nvfp4-pack-quantized",
        "weights": {"num_bits": 4, "type": "float", "group_size": 16, "strategy": "tensor_group"},
        "input_activations": {"num_bits": 4, "type": "float", "group_size": 16}}}}})");
  auto scheme = ReadQuantScheme(dir.path());
  ASSERT_TRUE(scheme.ok()) << scheme.status();
  EXPECT_EQ(scheme->method, QuantMethod::kCompressedTensorsNvfp4);
  EXPECT_FALSE(ExpectsNvfp4(*scheme, "model.layers.5.mlp.gate"));
  EXPECT_TRUE(ExpectsNvfp4(*scheme, "model.layers.5.mlp.gate_proj"));
  auto ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok());
  auto loaded = LoadLinearWeight(*ckpt, *scheme, p);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->nvfp4().input_scale, std::optional<float>(0.25f));
  // Dequantized values match to one float32 rounding (1/(1/g) need not be g exactly).
  ExpectSameValues(*loaded, *q, 2.5e-7);
}

// Each malformed checkpoint gives its own error, naming the tensor or field.
struct Malformed {
  const char* what;
  absl::StatusCode code;
  const char* must_mention;
};

TEST(WeightLoaderTest, MalformedModelOptLayers) {
  const std::string p = "model.layers.0.self_attn.o_proj";
  auto q = QuantizeNvfp4(RandomBf16(6, 32, 5));
  ASSERT_TRUE(q.ok());
  const Tensor codes = q->nvfp4().codes, scales = q->nvfp4().block_scales;
  const Tensor gs = Scalar(q->nvfp4().global_scale);
  struct Case {
    const char* what;
    Tensors tensors;
    absl::StatusCode code;
    std::string must_mention;
  };
  Tensor wrong_shape_scales = Tensor::Zeros(DType::kF8E4M3, {6, 4});
  Tensor f32_scales = Tensor::Zeros(DType::kF32, {6, 2});
  Tensor odd_codes = Tensor::Zeros(DType::kU8, {6, 12});  // K = 24
  Tensor vector_gs = Tensor::Zeros(DType::kF32, {2});
  std::vector<Case> cases = {
      {"missing weight_scale",
       {{p + ".weight", codes}, {p + ".weight_scale_2", gs}},
       absl::StatusCode::kNotFound,
       p + ".weight_scale"},
      {"missing weight_scale_2",
       {{p + ".weight", codes}, {p + ".weight_scale", scales}},
       absl::StatusCode::kNotFound,
       p + ".weight_scale_2"},
      {"wrong scale shape",
       {{p + ".weight", codes},
        {p + ".weight_scale", wrong_shape_scales},
        {p + ".weight_scale_2", gs}},
       absl::StatusCode::kInvalidArgument,
       "[6, 2]"},
      {"wrong scale dtype",
       {{p + ".weight", codes}, {p + ".weight_scale", f32_scales}, {p + ".weight_scale_2", gs}},
       absl::StatusCode::kInvalidArgument,
       "fp8_e4m3"},
      {"K not a multiple of 16",
       {{p + ".weight", odd_codes}, {p + ".weight_scale", scales}, {p + ".weight_scale_2", gs}},
       absl::StatusCode::kInvalidArgument,
       "multiple of the group size 16"},
      {"global scale not a scalar",
       {{p + ".weight", codes}, {p + ".weight_scale", scales}, {p + ".weight_scale_2", vector_gs}},
       absl::StatusCode::kInvalidArgument,
       p + ".weight_scale_2"},
      {"negative global scale",
       {{p + ".weight", codes}, {p + ".weight_scale", scales}, {p + ".weight_scale_2", Scalar(-1)}},
       absl::StatusCode::kInvalidArgument,
       "non-negative"},
      {"no weight at all",
       {{"other.weight", RandomBf16(2, 16, 6)}},
       absl::StatusCode::kNotFound,
       p + ".weight"},
      {"fp8 weight without block scales",
       {{p + ".weight", Tensor::Zeros(DType::kF8E4M3, {6, 32})}},
       absl::StatusCode::kNotFound,
       p + ".weight_scale_inv"},
  };
  for (const Case& c : cases) {
    TempDir dir;
    WriteCheckpoint(dir, c.tensors);
    dir.WriteFile("hf_quant_config.json", kModelOptConfig);
    auto ckpt = Checkpoint::Open(dir.path());
    ASSERT_TRUE(ckpt.ok()) << c.what << ": " << ckpt.status();
    auto scheme = ReadQuantScheme(dir.path());
    ASSERT_TRUE(scheme.ok()) << c.what;
    auto loaded = LoadLinearWeight(*ckpt, *scheme, p);
    EXPECT_EQ(loaded.status().code(), c.code) << c.what << ": " << loaded.status();
    EXPECT_NE(std::string(loaded.status().message()).find(c.must_mention), std::string::npos)
        << c.what << ": " << loaded.status();
  }
}

TEST(WeightLoaderTest, MalformedCompressedTensorsLayers) {
  const std::string p = "model.layers.0.mlp.down_proj";
  auto q = QuantizeNvfp4(RandomBf16(6, 32, 7));
  ASSERT_TRUE(q.ok());
  const Tensor codes = q->nvfp4().codes, scales = q->nvfp4().block_scales;
  struct Case {
    const char* what;
    Tensors tensors;
    absl::StatusCode code;
    std::string must_mention;
  };
  std::vector<Case> cases = {
      {"missing weight_global_scale",
       {{p + ".weight_packed", codes}, {p + ".weight_scale", scales}},
       absl::StatusCode::kNotFound,
       p + ".weight_global_scale"},
      {"zero weight_global_scale",
       {{p + ".weight_packed", codes},
        {p + ".weight_scale", scales},
        {p + ".weight_global_scale", Scalar(0, true)}},
       absl::StatusCode::kInvalidArgument,
       "positive"},
      {"missing weight_scale",
       {{p + ".weight_packed", codes}, {p + ".weight_global_scale", Scalar(2, true)}},
       absl::StatusCode::kNotFound,
       p + ".weight_scale"},
      {"packed weight not u8",
       {{p + ".weight_packed", Tensor::Zeros(DType::kI32, {6, 16})},
        {p + ".weight_scale", scales},
        {p + ".weight_global_scale", Scalar(2, true)}},
       absl::StatusCode::kInvalidArgument,
       p + ".weight_packed"},
  };
  for (const Case& c : cases) {
    TempDir dir;
    WriteCheckpoint(dir, c.tensors);
    dir.WriteFile("config.json", R"({"quantization_config": {"quant_method": "compressed-tensors",
        "format": "nvfp4-pack-quantized"}})");
    auto ckpt = Checkpoint::Open(dir.path());
    ASSERT_TRUE(ckpt.ok()) << c.what;
    auto scheme = ReadQuantScheme(dir.path());
    ASSERT_TRUE(scheme.ok()) << c.what << scheme.status();
    auto loaded = LoadLinearWeight(*ckpt, *scheme, p);
    EXPECT_EQ(loaded.status().code(), c.code) << c.what << ": " << loaded.status();
    EXPECT_NE(std::string(loaded.status().message()).find(c.must_mention), std::string::npos)
        << c.what << ": " << loaded.status();
  }
}

TEST(WeightLoaderTest, MalformedSchemes) {
  struct Case {
    const char* file;
    const char* text;
    const char* must_mention;
  };
  const Case cases[] = {
      {"hf_quant_config.json", R"({"quantization": {"quant_algo": "W4A8_AWQ"}})", "W4A8_AWQ"},
      {"hf_quant_config.json", R"({"quantization": {"quant_algo": "NVFP4", "group_size": 32}})",
       "group_size 16"},
      {"hf_quant_config.json", R"({"quantization": {"group_size": 16}})", "quant_algo"},
      {"hf_quant_config.json", R"({"quant": 1})", "quantization"},
      {"hf_quant_config.json", R"({"quantization": {"quant_algo": "NVFP4", "exclude_modules": 3}})",
       "exclude_modules"},
      {"hf_quant_config.json", "{not json", "not valid JSON"},
      {"hf_quant_config.json", R"({"quantization": {"quant_algo": "MIXED_PRECISION"}})",
       "quantized_layers"},
      {"config.json", R"({"quantization_config": {"quant_method": "awq"}})", "awq"},
      {"config.json", R"({"quantization_config": {"quant_method": "compressed-tensors",
          "format": "int-quantized"}})",
       "int-quantized"},
      {"config.json", R"({"quantization_config": {"quant_method": "compressed-tensors",
          "config_groups": {"g": {"format": "nvfp4-pack-quantized",
          "weights": {"num_bits": 4, "group_size": 32}}}}})",
       "group_size 16"},
  };
  for (const Case& c : cases) {
    TempDir dir;
    dir.WriteFile(c.file, c.text);
    auto scheme = ReadQuantScheme(dir.path());
    EXPECT_EQ(scheme.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(std::string(scheme.status().message()).find(c.must_mention), std::string::npos)
        << c.text << " -> " << scheme.status();
    EXPECT_NE(std::string(scheme.status().message()).find(c.file), std::string::npos)
        << scheme.status();
  }
  TempDir dense;
  dense.WriteFile("config.json", R"({"model_type": "llama"})");
  auto none = ReadQuantScheme(dense.path());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->method, QuantMethod::kNone);
}

// Fusing q/k/v quantized with different global scales: ours matches an independent float64
// re-quantization of each part's exact values onto the fused global scale; keeping the block
// scales and taking the max global scale (vLLM's old bug) scales the smaller parts up.
TEST(WeightLoaderTest, FuseRowsReconcilesGlobalScales) {
  const int64_t k = 64;
  std::vector<Weight> parts;
  const int64_t rows[] = {8, 3, 5};
  const double stddev[] = {0.02, 0.005, 0.08};  // very different amaxes
  for (int i = 0; i < 3; ++i) {
    auto q = QuantizeNvfp4(RandomBf16(rows[i], k, 100 + i, stddev[i]));
    ASSERT_TRUE(q.ok());
    parts.push_back(*q);
  }
  const float gs_max = std::max({parts[0].nvfp4().global_scale, parts[1].nvfp4().global_scale,
                                 parts[2].nvfp4().global_scale});
  ASSERT_EQ(gs_max, parts[2].nvfp4().global_scale);
  auto fused = FuseRows(parts);
  ASSERT_TRUE(fused.ok()) << fused.status();
  ASSERT_EQ(fused->rows(), 16);
  EXPECT_EQ(fused->nvfp4().global_scale, gs_max);
  auto fused_values = DequantizeNvfp4(*fused);
  ASSERT_TRUE(fused_values.ok());

  int64_t row0 = 0;
  for (const Weight& part : parts) {
    double err_ours = 0, err_max_only = 0, norm = 0;
    std::vector<float> exact(part.rows() * k);
    const Nvfp4Parts& pp = part.nvfp4();
    kernels::Nvfp4DequantizeReference(pp.codes.data_as<uint8_t>(), k / 2,
                                      pp.block_scales.data_as<uint8_t>(), k / 16, pp.global_scale,
                                      part.rows(), k, exact.data(), k);
    for (int64_t r = 0; r < part.rows(); ++r) {
      for (int64_t b = 0; b < k / 16; ++b) {
        // Independent float64 re-quantization onto gs_max.
        const double old_scale = E4M3ToFloat(pp.block_scales.data_as<uint8_t>()[r * (k / 16) + b]);
        const double target = old_scale * pp.global_scale / gs_max;
        const uint8_t want_scale = ToE4M3(std::min(std::max(target, 1.0 / 512), 448.0));
        const uint8_t got_scale =
            fused->nvfp4().block_scales.data_as<uint8_t>()[(row0 + r) * (k / 16) + b];
        ASSERT_EQ(got_scale, want_scale) << "row " << row0 + r << " block " << b;
        for (int i = 0; i < 16; ++i) {
          const int64_t c = b * 16 + i;
          const double v = exact[r * k + c];
          const double want =
              double{kE2M1Values[ToE2M1(v / (double{E4M3ToFloat(want_scale)} * gs_max))]} *
              E4M3ToFloat(want_scale) * gs_max;
          const double got = fused_values->data_as<float>()[(row0 + r) * k + c];
          ASSERT_NEAR(got, want, 1e-12 * std::fabs(want) + 1e-30)
              << "row " << row0 + r << " col " << c;
          // Max-only: the old codes and block scales with gs_max.
          const uint8_t byte = pp.codes.data_as<uint8_t>()[r * (k / 2) + c / 2];
          const double max_only =
              double{kE2M1Values[c % 2 ? byte >> 4 : byte & 0xf]} * old_scale * gs_max;
          err_ours += (got - v) * (got - v);
          err_max_only += (max_only - v) * (max_only - v);
          norm += v * v;
        }
      }
    }
    row0 += part.rows();
    const double ratio = double{gs_max} / part.nvfp4().global_scale;
    const double rel_ours = std::sqrt(err_ours / norm);
    const double rel_max_only = std::sqrt(err_max_only / norm);
    std::printf(
        "fused part gs_max/gs = %.3f: relative error vs the unfused values %.4f "
        "(max-only: %.4f)\n",
        ratio, rel_ours, rel_max_only);
    EXPECT_LT(rel_ours, 0.05);  // re-rounding a 4-bit value onto a new scale costs a little
    // Max-only multiplies every value of the part by gs_max / gs_i.
    EXPECT_NEAR(rel_max_only, ratio - 1, 1e-6 * ratio);
  }

  // A part that already has gs_max is copied bit for bit.
  const int64_t last = rows[0] + rows[1];
  EXPECT_EQ(std::memcmp(fused->nvfp4().codes.data_as<uint8_t>() + last * (k / 2),
                        parts[2].nvfp4().codes.data(), rows[2] * (k / 2)),
            0);
  // Mismatched parts are rejected.
  auto dense = Weight::Dense(RandomBf16(2, k, 9));
  ASSERT_TRUE(dense.ok());
  std::vector<Weight> mixed = {parts[0], *dense};
  EXPECT_FALSE(FuseRows(mixed).ok());
  EXPECT_FALSE(FuseRows(std::span<const Weight>()).ok());
  // Dense parts concatenate.
  std::vector<Weight> dense_parts = {*dense, *dense};
  auto fused_dense = FuseRows(dense_parts);
  ASSERT_TRUE(fused_dense.ok());
  EXPECT_EQ(fused_dense->rows(), 4);
  EXPECT_EQ(std::memcmp(fused_dense->dense().data_as<char>() + dense->dense().nbytes(),
                        dense->dense().data(), dense->dense().nbytes()),
            0);
}

}  // namespace
}  // namespace sparkstack
