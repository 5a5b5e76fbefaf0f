// DeepSeek FP8 (e4m3, 128x128 block scales): dequantization at block edges, the FP8 -> NVFP4
// conversion at load (equal to ModelOpt's quantization of the bf16 dequantization), its accuracy
// against that bf16 dequantization, and the errors for malformed tensors and configs.
#include "runtime/quant/fp8_block.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/core/float8.h"
#include "runtime/core/half.h"
#include "runtime/model/safetensors.h"
#include "runtime/quant/nvfp4_quantizer.h"
#include "runtime/quant/quant_scheme.h"
#include "runtime/quant/weight_loader.h"

namespace sparkstack {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

Tensor RandomF32(int64_t n, int64_t k, uint64_t seed, double stddev) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, stddev);
  Tensor t = Tensor::Zeros(DType::kF32, {n, k});
  for (int64_t i = 0; i < n * k; ++i) t.data_as<float>()[i] = static_cast<float>(normal(rng));
  return t;
}

std::string Dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() /
                     ("sparkstack_fp8_test_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

constexpr char kFp8Config[] = R"({"quantization_config": {"activation_scheme": "dynamic",
    "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}})";

TEST(Fp8BlockTest, DequantizeUsesTheBlockOfEachElement) {
  // [130, 260]: blocks of rows {0..127, 128..129} x cols {0..127, 128..255, 256..259}.
  Tensor codes = Tensor::Zeros(DType::kF8E4M3, {130, 260});
  Tensor scales = Tensor::Zeros(DType::kF32, {2, 3});
  for (int i = 0; i < 6; ++i) scales.data_as<float>()[i] = 0.5f * static_cast<float>(i + 1);
  auto* q = static_cast<uint8_t*>(codes.data());
  // e4m3 bits: 0x38 = 1.0, 0xc0 = -2.0, 0x01 = 2^-9 (smallest subnormal), 0x7e = 448.
  q[127 * 260 + 127] = 0x38;  // block (0, 0): scale 0.5
  q[127 * 260 + 128] = 0xc0;  // block (0, 1): scale 1.0
  q[128 * 260 + 255] = 0x01;  // block (1, 1): scale 2.5
  q[129 * 260 + 259] = 0x7e;  // block (1, 2): scale 3.0
  auto w = DequantizeFp8Block(codes, scales, "w");
  ASSERT_TRUE(w.ok()) << w.status();
  const float* v = w->data_as<float>();
  EXPECT_EQ(v[127 * 260 + 127], 0.5f);
  EXPECT_EQ(v[127 * 260 + 128], -2.0f);
  EXPECT_EQ(v[128 * 260 + 255], 2.5f / 512.0f);
  EXPECT_EQ(v[129 * 260 + 259], 448.0f * 3.0f);
  EXPECT_EQ(v[0], 0.0f);

  // bf16 scales are accepted too.
  Tensor bf16_scales = Tensor::Zeros(DType::kBF16, {2, 3});
  for (int i = 0; i < 6; ++i) bf16_scales.data_as<uint16_t>()[i] = FloatToBf16(0.25f);
  auto w2 = DequantizeFp8Block(codes, bf16_scales, "w");
  ASSERT_TRUE(w2.ok()) << w2.status();
  EXPECT_EQ(w2->data_as<float>()[129 * 260 + 259], 112.0f);
}

TEST(Fp8BlockTest, QuantizeRoundTripWithinE4m3Precision) {
  const Tensor w = RandomF32(200, 272, 3, 0.05);
  auto parts = QuantizeFp8Block(w);
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_EQ(parts->scale_inv.shape(), (Shape{2, 3}));
  auto back = DequantizeFp8Block(parts->codes, parts->scale_inv, "w");
  ASSERT_TRUE(back.ok()) << back.status();
  for (int64_t i = 0; i < w.numel(); ++i) {
    const float x = w.data_as<float>()[i];
    const float y = back->data_as<float>()[i];
    // 3 mantissa bits: half an ulp is 2^-4 relative for normals; subnormals (below 2^-6 of the
    // block scale's 448) have an absolute quantum of 2^-9 * scale.
    const float scale = parts->scale_inv.data_as<float>()[(i / 272 / 128) * 3 + (i % 272) / 128];
    ASSERT_LE(std::fabs(x - y), std::max(std::fabs(x) / 16.0f, scale / 1024.0f) * 1.0001f) << i;
  }
}

TEST(Fp8BlockTest, CheckpointLoadsAsNvfp4OfItsBf16Dequantization) {
  const std::string dir = Dir("load");
  const std::string p = "model.layers.0.mlp.experts.3.down_proj";
  const Tensor w = RandomF32(144, 400, 5, 0.02);
  auto parts = QuantizeFp8Block(w);
  ASSERT_TRUE(parts.ok());
  ASSERT_TRUE(
      WriteSafetensors(dir + "/model.safetensors",
                       {{p + ".weight", parts->codes}, {p + ".weight_scale_inv", parts->scale_inv}})
          .ok());
  std::ofstream(dir + "/config.json") << kFp8Config;
  auto ckpt = Checkpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  auto scheme = ReadQuantScheme(dir);
  ASSERT_TRUE(scheme.ok()) << scheme.status();
  EXPECT_EQ(scheme->method, QuantMethod::kFp8Block);
  EXPECT_TRUE(IsFp8BlockLinear(*ckpt, p));
  auto loaded = LoadLinearWeight(*ckpt, *scheme, p);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->format(), WeightFormat::kNvfp4);

  // Bit for bit what ModelOpt's math gives for the dequantized weights.
  auto dense = DequantizeFp8Block(parts->codes, parts->scale_inv, "w");
  ASSERT_TRUE(dense.ok());
  auto want = QuantizeNvfp4(*dense);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(loaded->nvfp4().global_scale, want->nvfp4().global_scale);
  EXPECT_EQ(0, std::memcmp(loaded->nvfp4().codes.data(), want->nvfp4().codes.data(),
                           want->nvfp4().codes.nbytes()));
  EXPECT_EQ(0, std::memcmp(loaded->nvfp4().block_scales.data(), want->nvfp4().block_scales.data(),
                           want->nvfp4().block_scales.nbytes()));

  // Accuracy against the bf16 dequantization: relative RMS error of the weights and of y = W x
  // for random x. NVFP4 (e2m1 with e4m3 per-16 scales) of Gaussian weights lands near 8-9% per
  // weight; outputs average the errors of 400 terms, so they come out about the same relative.
  auto nvfp4 = DequantizeNvfp4(*loaded);
  ASSERT_TRUE(nvfp4.ok());
  Tensor bf16 = Tensor::Zeros(DType::kF32, dense->shape());
  for (int64_t i = 0; i < dense->numel(); ++i) {
    bf16.data_as<float>()[i] = Bf16ToFloat(FloatToBf16(dense->data_as<float>()[i]));
  }
  double err2 = 0, ref2 = 0;
  for (int64_t i = 0; i < bf16.numel(); ++i) {
    const double d = nvfp4->data_as<float>()[i] - bf16.data_as<float>()[i];
    err2 += d * d;
    ref2 += double{bf16.data_as<float>()[i]} * bf16.data_as<float>()[i];
  }
  const double weight_rel = std::sqrt(err2 / ref2);
  const Tensor x = RandomF32(16, 400, 9, 1.0);
  double yerr2 = 0, yref2 = 0;
  for (int64_t m = 0; m < 16; ++m) {
    for (int64_t r = 0; r < 144; ++r) {
      double a = 0, b = 0;
      for (int64_t c = 0; c < 400; ++c) {
        a += double{x.data_as<float>()[m * 400 + c]} * nvfp4->data_as<float>()[r * 400 + c];
        b += double{x.data_as<float>()[m * 400 + c]} * bf16.data_as<float>()[r * 400 + c];
      }
      yerr2 += (a - b) * (a - b);
      yref2 += b * b;
    }
  }
  const double output_rel = std::sqrt(yerr2 / yref2);
  RecordProperty("weight_rel_rms_error", std::to_string(weight_rel));
  RecordProperty("output_rel_rms_error", std::to_string(output_rel));
  std::printf("FP8 -> NVFP4 vs bf16 dequantization: weights rel RMS %.4f, outputs rel RMS %.4f\n",
              weight_rel, output_rel);
  EXPECT_GT(weight_rel, 0.02);  // it is a 4-bit format: an error this small means no conversion
  EXPECT_LT(weight_rel, 0.12);
  EXPECT_LT(output_rel, 0.12);
  fs::remove_all(dir);
}

TEST(Fp8BlockTest, ErrorsNameTheProblem) {
  Tensor codes = Tensor::Zeros(DType::kF8E4M3, {130, 64});
  Tensor good = Tensor::Zeros(DType::kF32, {2, 1});
  good.data_as<float>()[0] = good.data_as<float>()[1] = 1.0f;
  auto wrong_shape = DequantizeFp8Block(codes, Tensor::Zeros(DType::kF32, {1, 1}), "layer.w");
  EXPECT_EQ(wrong_shape.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong_shape.status().message(), HasSubstr("layer.w"));
  EXPECT_THAT(wrong_shape.status().message(), HasSubstr("[2, 1]"));
  auto zero_scale = DequantizeFp8Block(codes, Tensor::Zeros(DType::kF32, {2, 1}), "w");
  EXPECT_THAT(zero_scale.status().message(), HasSubstr("finite and positive"));
  static_cast<uint8_t*>(codes.data())[129 * 64 + 5] = 0xff;
  auto nan = DequantizeFp8Block(codes, good, "w");
  EXPECT_THAT(nan.status().message(), HasSubstr("[129, 5] is NaN"));
  auto not_fp8 = DequantizeFp8Block(Tensor::Zeros(DType::kBF16, {2, 2}), good, "w");
  EXPECT_THAT(not_fp8.status().message(), HasSubstr("f8_e4m3"));

  for (const auto& [config, expected] : std::vector<std::pair<std::string, std::string>>{
           {R"({"quantization_config": {"quant_method": "fp8", "fmt": "e5m2",
                "weight_block_size": [128, 128]}})",
            "e5m2"},
           {R"({"quantization_config": {"quant_method": "fp8", "fmt": "e4m3"}})",
            "weight_block_size [128, 128]"},
           {R"({"quantization_config": {"quant_method": "fp8",
                "weight_block_size": [64, 64]}})",
            "[64,64]"}}) {
    auto scheme = ParseQuantScheme(nullptr, nlohmann::json::parse(config), "m/config.json");
    EXPECT_EQ(scheme.status().code(), absl::StatusCode::kInvalidArgument) << config;
    EXPECT_THAT(scheme.status().message(), HasSubstr(expected));
    EXPECT_THAT(scheme.status().message(), HasSubstr("m/config.json"));
  }
  auto ignored = ParseQuantScheme(
      nullptr, nlohmann::json::parse(R"({"quantization_config": {"quant_method": "fp8",
          "weight_block_size": [128, 128], "ignored_layers": ["lm_head"]}})"),
      "x");
  ASSERT_TRUE(ignored.ok()) << ignored.status();
  EXPECT_TRUE(IsExcludedModule(*ignored, "lm_head"));
}

}  // namespace
}  // namespace sparkstack
