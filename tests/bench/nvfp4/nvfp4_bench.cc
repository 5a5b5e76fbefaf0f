// NVFP4 GEMM benchmark: decode GEMV bandwidth and prefill throughput against the device's copy
// bandwidth and cuBLAS bf16, on Llama-3.1-405B layer shapes and their tensor-parallel slices.
//
//   nvfp4_bench [--reps N] [--quick]
//
// Conventions (printed with the results):
//   * copy bandwidth: cudaMemcpyAsync device-to-device of a 1 GiB buffer; bytes = 2 x size (each
//     byte is read once and written once).
//   * decode GB/s: bytes of packed codes + E4M3 block scales (the weight bytes a decode step must
//     stream; x and y are negligible) / kernel time. cuBLAS: bf16 weight bytes / time.
//   * every timed repetition is preceded by a write of 2 x L2 size bytes to another buffer, so
//     weights never start in L2; each repetition is timed alone with CUDA events and the median is
//     reported.
//   * prefill TFLOP/s: 2 * m * n * k / time.
// Exits 0 with a message when no GPU is visible. Honors SPARKSTACK_SMEM_CAP_BYTES.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/nvfp4/gemm.h"
#include "kernels/nvfp4/selector.h"
#include "kernels/nvfp4/self_check.h"

namespace fp4 = sparkstack::kernels::nvfp4;

namespace {

#define CHECK_CUDA(expr)                                                                  \
  do {                                                                                    \
    const cudaError_t e_ = (expr);                                                        \
    if (e_ != cudaSuccess) {                                                              \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr,                  \
                   cudaGetErrorString(e_));                                               \
      std::exit(1);                                                                       \
    }                                                                                     \
  } while (0)

#define CHECK_CUBLAS(expr)                                                                \
  do {                                                                                    \
    const cublasStatus_t s_ = (expr);                                                     \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                    \
      std::fprintf(stderr, "%s:%d: %s: cublas status %d\n", __FILE__, __LINE__, #expr,   \
                   static_cast<int>(s_));                                                 \
      std::exit(1);                                                                       \
    }                                                                                     \
  } while (0)

struct Buffer {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Buffer(size_t n) : bytes(n) { CHECK_CUDA(cudaMalloc(&p, n)); }
  ~Buffer() { cudaFree(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

class Timer {
 public:
  Timer(size_t l2_bytes, int reps) : flush_(std::max<size_t>(2 * l2_bytes, 1 << 20)), reps_(reps) {
    CHECK_CUDA(cudaEventCreate(&start_));
    CHECK_CUDA(cudaEventCreate(&stop_));
  }
  ~Timer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  // Median milliseconds of `fn` over reps_ repetitions after 2 warm-ups, L2 flushed before each.
  double MedianMs(const std::function<void()>& fn, bool flush = true) {
    for (int i = 0; i < 2; ++i) fn();
    CHECK_CUDA(cudaDeviceSynchronize());
    std::vector<float> ms;
    for (int i = 0; i < reps_; ++i) {
      if (flush) CHECK_CUDA(cudaMemsetAsync(flush_.p, i & 0xff, flush_.bytes));
      CHECK_CUDA(cudaEventRecord(start_));
      fn();
      CHECK_CUDA(cudaEventRecord(stop_));
      CHECK_CUDA(cudaEventSynchronize(stop_));
      float t = 0.0f;
      CHECK_CUDA(cudaEventElapsedTime(&t, start_, stop_));
      ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  }

 private:
  Buffer flush_;
  int reps_;
  cudaEvent_t start_{}, stop_{};
};

struct LayerShape {
  std::string name;
  int64_t n, k;
};

// Llama-3.1-405B: hidden 16384, 128 q heads + 8 kv heads of 128 (QKV 18432), FFN 53248.
std::vector<LayerShape> DecodeShapes(bool quick) {
  std::vector<LayerShape> base = {{"qkv", 18432, 16384},
                                  {"o", 16384, 16384},
                                  {"gate_up", 106496, 16384},
                                  {"down", 16384, 53248}};
  std::vector<LayerShape> out;
  for (int tp : {1, 2, 4}) {
    if (quick && tp != 1) continue;
    for (const auto& s : base) {
      // Column-parallel (qkv, gate_up) split n; row-parallel (o, down) split k.
      const bool row_parallel = s.name == "o" || s.name == "down";
      LayerShape t = s;
      if (row_parallel) {
        t.k /= tp;
      } else {
        t.n /= tp;
      }
      t.name = s.name + "/tp" + std::to_string(tp);
      out.push_back(t);
    }
  }
  return out;
}

void FillRandomBytes(void* d, size_t bytes, uint32_t seed, uint8_t mask, uint8_t base) {
  std::vector<uint8_t> h(std::min<size_t>(bytes, size_t{1} << 24));
  uint32_t s = seed;
  for (auto& b : h) {
    s = s * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(((s >> 24) & mask) + base);
  }
  for (size_t off = 0; off < bytes; off += h.size()) {
    CHECK_CUDA(cudaMemcpy(static_cast<uint8_t*>(d) + off, h.data(), std::min(h.size(), bytes - off),
                          cudaMemcpyHostToDevice));
  }
}

// Arguments for y[m, n] = x[m, k] · W^T with W's NVFP4 codes and scales, bf16 in and out.
fp4::GemmArgs BenchArgs(const Buffer& x, const Buffer& codes, const Buffer& scales, Buffer& y,
                        int64_t m, int64_t n, int64_t k) {
  fp4::GemmArgs a;
  a.x = x.p;
  a.ldx = k;
  a.codes = static_cast<const uint8_t*>(codes.p);
  a.ldw = k / 2;
  a.scales = static_cast<const uint8_t*>(scales.p);
  a.lds = k / 16;
  a.global_scale = 1.0f / 2688.0f;
  a.input_scale = 1.0f / 2688.0f;  // static activation scale: read only by the W4A4 FP4-MMA variant
  a.y = y.p;
  a.ldy = n;
  a.out_type = fp4::OutType::kBF16;
  a.m = m;
  a.n = n;
  a.k = k;
  return a;
}

// The reference: the same product with a bf16 W [n, k] through cuBLAS.
void CublasBf16(cublasHandle_t handle, const Buffer& w, const Buffer& x, Buffer& y, int64_t m,
                int64_t n, int64_t k) {
  const float alpha = 1.0f, beta = 0.0f;
  CHECK_CUBLAS(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n),
                            static_cast<int>(m), static_cast<int>(k), &alpha, w.p, CUDA_R_16BF,
                            static_cast<int>(k), x.p, CUDA_R_16BF, static_cast<int>(k), &beta, y.p,
                            CUDA_R_16BF, static_cast<int>(n), CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT));
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 20;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = std::max(3, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: %s [--reps N] [--quick]\n", argv[0]);
      return 2;
    }
  }
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("nvfp4_bench: no CUDA device visible; nothing to measure.\n");
    return 0;
  }
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  auto info = fp4::QueryDeviceInfo(0);
  auto options = fp4::SelectOptionsFromEnv();
  if (!info.ok() || !options.ok()) {
    std::fprintf(stderr, "nvfp4_bench: %s\n",
                 std::string(info.ok() ? options.status().message() : info.status().message()).c_str());
    return 1;
  }
  const int smem_limit = fp4::EffectiveSmemLimit(*info, *options);
  auto decode_variant = fp4::SelectVerifiedVariant(fp4::GemmOp::kDecode, *info, *options);
  auto prefill_variant = fp4::SelectVerifiedVariant(fp4::GemmOp::kPrefill, *info, *options);
  if (!decode_variant.ok() || !prefill_variant.ok()) {
    std::fprintf(stderr, "nvfp4_bench: self-check failed: %s\n",
                 std::string(decode_variant.ok() ? prefill_variant.status().message()
                                                 : decode_variant.status().message())
                     .c_str());
    return 1;
  }
  std::printf("device: %s (sm_%d%d, %d SMs, L2 %d MiB, smem limit %d B%s)\n", prop.name,
              info->cc_major, info->cc_minor, info->sm_count, prop.l2CacheSize >> 20, smem_limit,
              options->smem_cap_bytes > 0 ? ", capped by SPARKSTACK_SMEM_CAP_BYTES" : "");
  std::printf("variants: decode=%s prefill=%s; reps=%d (median), L2 flushed before each rep\n",
              std::string(fp4::VariantName(*decode_variant)).c_str(),
              std::string(fp4::VariantName(*prefill_variant)).c_str(), reps);

  Timer timer(static_cast<size_t>(prop.l2CacheSize), reps);
  cublasHandle_t handle;
  CHECK_CUBLAS(cublasCreate(&handle));

  // Copy bandwidth.
  double copy_gbs = 0.0;
  {
    const size_t bytes = size_t{1} << 30;
    Buffer a(bytes), b(bytes);
    CHECK_CUDA(cudaMemset(a.p, 1, bytes));
    const double ms = timer.MedianMs(
        [&] { CHECK_CUDA(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice)); }, false);
    copy_gbs = 2.0 * static_cast<double>(bytes) / (ms * 1e6);
    std::printf("copy bandwidth (D2D 1 GiB, bytes = 2 x size): %.1f GB/s\n\n", copy_gbs);
  }

  std::printf("decode (W4A16 NVFP4 vs cuBLAS bf16 GEMM, y = x W^T)\n");
  std::printf("%-14s %7s %7s %3s | %9s %9s %6s | %9s %9s | %7s\n", "layer", "n", "k", "m",
              "nvfp4 us", "GB/s", "%copy", "cublas us", "GB/s", "speedup");
  for (const LayerShape& s : DecodeShapes(quick)) {
    const size_t code_bytes = static_cast<size_t>(s.n * s.k / 2);
    const size_t scale_bytes = static_cast<size_t>(s.n * s.k / 16);
    Buffer codes(code_bytes), scales(scale_bytes);
    FillRandomBytes(codes.p, code_bytes, 1, 0xff, 0);
    FillRandomBytes(scales.p, scale_bytes, 2, 0x1f, 0x28);  // E4M3 in [2^-2, 2^2)
    Buffer wbf(static_cast<size_t>(s.n * s.k) * 2);
    FillRandomBytes(wbf.p, wbf.bytes, 3, 0x3f, 0x10);  // small finite bf16 patterns
    const int64_t max_m = 16;
    Buffer x(static_cast<size_t>(max_m * s.k) * 2), y(static_cast<size_t>(max_m * s.n) * 4);
    FillRandomBytes(x.p, x.bytes, 4, 0x3f, 0x10);
    for (int64_t m : {1, 4, 16}) {
      const fp4::GemmArgs a = BenchArgs(x, codes, scales, y, m, s.n, s.k);
      const double ms = timer.MedianMs([&] {
        const int e = fp4::LaunchGemm(*decode_variant, a, smem_limit, nullptr);
        if (e != 0) CHECK_CUDA(static_cast<cudaError_t>(e));
      });
      const double cublas_ms = timer.MedianMs([&] { CublasBf16(handle, wbf, x, y, m, s.n, s.k); });
      const double gbs = static_cast<double>(code_bytes + scale_bytes) / (ms * 1e6);
      const double cublas_gbs = static_cast<double>(wbf.bytes) / (cublas_ms * 1e6);
      std::printf("%-14s %7lld %7lld %3lld | %9.1f %9.1f %5.1f%% | %9.1f %9.1f | %6.2fx\n", s.name.c_str(),
                  static_cast<long long>(s.n), static_cast<long long>(s.k),
                  static_cast<long long>(m), ms * 1e3, gbs, 100.0 * gbs / copy_gbs,
                  cublas_ms * 1e3, cublas_gbs, cublas_ms / ms);
    }
  }

  std::printf("\nprefill (W4A16 NVFP4 %s vs cuBLAS bf16)\n",
              std::string(fp4::VariantName(*prefill_variant)).c_str());
  std::printf("%-14s %7s %7s %5s | %9s %8s | %9s %8s | %6s\n", "layer", "n", "k", "m", "nvfp4 ms",
              "TFLOP/s", "cublas ms", "TFLOP/s", "ratio");
  for (const LayerShape& s : DecodeShapes(true)) {
    Buffer codes(static_cast<size_t>(s.n * s.k / 2)), scales(static_cast<size_t>(s.n * s.k / 16));
    FillRandomBytes(codes.p, codes.bytes, 5, 0xff, 0);
    FillRandomBytes(scales.p, scales.bytes, 6, 0x1f, 0x28);
    Buffer wbf(static_cast<size_t>(s.n * s.k) * 2);
    FillRandomBytes(wbf.p, wbf.bytes, 7, 0x3f, 0x10);
    for (int64_t m : {512, 2048}) {
      Buffer x(static_cast<size_t>(m * s.k) * 2), y(static_cast<size_t>(m * s.n) * 2);
      FillRandomBytes(x.p, x.bytes, 8, 0x3f, 0x10);
      const fp4::GemmArgs a = BenchArgs(x, codes, scales, y, m, s.n, s.k);
      const double ms = timer.MedianMs([&] {
        const int e = fp4::LaunchGemm(*prefill_variant, a, smem_limit, nullptr);
        if (e != 0) CHECK_CUDA(static_cast<cudaError_t>(e));
      });
      const double cublas_ms = timer.MedianMs([&] { CublasBf16(handle, wbf, x, y, m, s.n, s.k); });
      const double flops = 2.0 * static_cast<double>(m) * s.n * s.k;
      std::printf("%-14s %7lld %7lld %5lld | %9.3f %8.1f | %9.3f %8.1f | %5.2fx\n", s.name.c_str(),
                  static_cast<long long>(s.n), static_cast<long long>(s.k),
                  static_cast<long long>(m), ms, flops / (ms * 1e9), cublas_ms,
                  flops / (cublas_ms * 1e9), cublas_ms / ms);
    }
  }
  cublasDestroy(handle);
  return 0;
}
