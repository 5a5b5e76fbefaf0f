// End to end on the CPU backend: a tiny Llama written dense, converted by the quantize writer,
// loaded back as NVFP4, gives the same logits as the float model whose linear weights were
// quantized in memory (replaced by their dequantized values) — and visibly different logits from
// the unquantized model, so the test cannot pass by loading the dense weights.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/model.h"
#include "runtime/model/safetensors.h"
#include "runtime/model/tiny_model.h"
#include "runtime/quant/nvfp4_checkpoint_writer.h"
#include "runtime/quant/nvfp4_quantizer.h"
#include "runtime/quant/quant_scheme.h"
#include "tests/unit/quant/quant_test_util.h"

namespace sparkstack {
namespace {

namespace fs = std::filesystem;

using testing::QuantTempDir;
using testing::RunLogits;

double RelativeDifference(const std::vector<float>& a, const std::vector<float>& b) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err += (double{a[i]} - b[i]) * (double{a[i]} - b[i]);
    ref += double{b[i]} * b[i];
  }
  return std::sqrt(err / ref);
}

TEST(Nvfp4ModelTest, QuantizedCheckpointMatchesInMemoryQuantization) {
  QuantTempDir tmp("sparkstack_nvfp4_model_");
  TinyModelOptions options;
  options.config = TinyModelConfig(Architecture::kLlama);
  options.config.torch_dtype = DType::kBF16;
  options.seed = 7;
  const std::string dense = tmp.sub("dense"), nvfp4 = tmp.sub("nvfp4"), fake = tmp.sub("fake");
  ASSERT_TRUE(WriteTinyModel(options, dense).ok());

  auto report = QuantizeCheckpointToNvfp4(dense, nvfp4, {});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->quantized_layers, 7 * options.config.num_layers);
  auto scheme = ReadQuantScheme(nvfp4);
  ASSERT_TRUE(scheme.ok() && scheme->method == QuantMethod::kModelOptNvfp4);

  // The float model quantized in memory: every linear weight the writer quantizes (not lm_head,
  // embeddings, norms) replaced by the f32 values of QuantizeNvfp4 -> DequantizeNvfp4.
  auto ckpt = Checkpoint::Open(dense);
  ASSERT_TRUE(ckpt.ok());
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& name : ckpt->TensorNames()) {
    auto t = ckpt->Get(name);
    ASSERT_TRUE(t.ok());
    const bool linear =
        absl::StartsWith(name, "model.layers.") && absl::EndsWith(name, "_proj.weight");
    if (linear) {
      auto q = QuantizeNvfp4(*t, name);
      ASSERT_TRUE(q.ok()) << q.status();
      auto d = DequantizeNvfp4(*q);
      ASSERT_TRUE(d.ok());
      tensors.emplace_back(name, *d);
    } else {
      tensors.emplace_back(name, t->Clone());
    }
  }
  fs::create_directories(fake);
  ASSERT_TRUE(WriteSafetensors(fake + "/model.safetensors", tensors).ok());
  fs::copy_file(dense + "/config.json", fake + "/config.json");

  const std::vector<int32_t> prompt = {1, 5, 17, 3, 42, 8, 8, 29};
  const std::vector<float> from_checkpoint = RunLogits(nvfp4, prompt);
  const std::vector<float> in_memory = RunLogits(fake, prompt);
  const std::vector<float> unquantized = RunLogits(dense, prompt);
  ASSERT_FALSE(from_checkpoint.empty());
  ASSERT_EQ(from_checkpoint.size(), in_memory.size());
  const double same = RelativeDifference(from_checkpoint, in_memory);
  const double quantization = RelativeDifference(in_memory, unquantized);
  std::printf("nvfp4 checkpoint vs in-memory quantization: %.3g; in-memory vs dense: %.3g\n", same,
              quantization);
  // Same weights exactly; only f32 summation order differs between the NVFP4 and dense kernels.
  EXPECT_LT(same, 1e-5);
  EXPECT_GT(quantization, 1e-3);
}

}  // namespace
}  // namespace sparkstack
