#include "kernels/cpu/mla_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/dense_linear.h"
#include "kernels/cpu/parallel_columns.h"

namespace sparkstack::kernels {
namespace {

// The sequence and position of every query token.
struct TokenPlace {
  int64_t seq;
  int64_t position;
};

std::vector<TokenPlace> PlaceTokens(const PagedBatch& batch, int64_t tokens) {
  std::vector<TokenPlace> places(tokens, TokenPlace{0, 0});
  for (int64_t b = 0; b < batch.num_seqs; ++b) {
    const int64_t begin = batch.query_start[b];
    const int64_t end = batch.query_start[b + 1];
    for (int64_t t = begin; t < end && t < tokens; ++t) {
      places[t] = {b, batch.seq_lens[b] - (end - begin) + (t - begin)};
    }
  }
  return places;
}

const float* Row(const LatentPool& pool, const PagedBatch& batch, int64_t seq, int64_t position) {
  const int64_t block = batch.block_table[seq * batch.max_blocks + position / pool.block_size];
  return pool.rows + (block * pool.block_size + position % pool.block_size) * pool.width;
}

}  // namespace

void PagedLatentAttentionF32(const float* q, int64_t tokens, int64_t heads, const LatentPool& pool,
                             const PagedBatch& batch, float scale, float* out, int threads) {
  const std::vector<TokenPlace> places = PlaceTokens(batch, tokens);
  int64_t work = 0;
  for (const TokenPlace& p : places) work += (p.position + 1) * heads * pool.width * 2;
  ForEachColumnRange(tokens, work, threads, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t t = begin; t < end; ++t) {
      const int64_t length = places[t].position + 1;
      scores.resize(heads * length);
      // Positions outer, heads inner: each latent row is read once for all heads.
      for (int64_t s = 0; s < length; ++s) {
        const float* row = Row(pool, batch, places[t].seq, s);
        for (int64_t h = 0; h < heads; ++h) {
          scores[h * length + s] =
              scale * DotF32(q + (t * heads + h) * pool.width, row, pool.width);
        }
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* sc = scores.data() + h * length;
        const float max = *std::max_element(sc, sc + length);
        float sum = 0.0f;
        for (int64_t s = 0; s < length; ++s) {
          sc[s] = std::exp(sc[s] - max);
          sum += sc[s];
        }
        const float inv = 1.0f / sum;
        for (int64_t s = 0; s < length; ++s) sc[s] *= inv;
      }
      float* o = out + t * heads * pool.value_width;
      std::fill(o, o + heads * pool.value_width, 0.0f);
      for (int64_t s = 0; s < length; ++s) {
        const float* value = Row(pool, batch, places[t].seq, s) + pool.value_offset;
        for (int64_t h = 0; h < heads; ++h) {
          const float p = scores[h * length + s];
          float* oh = o + h * pool.value_width;
          for (int64_t i = 0; i < pool.value_width; ++i) oh[i] += p * value[i];
        }
      }
    }
  });
}

void PagedLatentAttentionReference(const float* q, int64_t tokens, int64_t heads,
                                   const LatentPool& pool, const PagedBatch& batch, double scale,
                                   double* out) {
  const std::vector<TokenPlace> places = PlaceTokens(batch, tokens);
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t length = places[t].position + 1;
    for (int64_t h = 0; h < heads; ++h) {
      const float* qh = q + (t * heads + h) * pool.width;
      std::vector<double> score(length);
      double max = -std::numeric_limits<double>::infinity();
      for (int64_t s = 0; s < length; ++s) {
        const float* row = Row(pool, batch, places[t].seq, s);
        double dot = 0.0;
        for (int64_t i = 0; i < pool.width; ++i) dot += double{qh[i]} * row[i];
        score[s] = dot * scale;
        max = std::max(max, score[s]);
      }
      double sum = 0.0;
      for (double& v : score) sum += (v = std::exp(v - max));
      double* o = out + (t * heads + h) * pool.value_width;
      for (int64_t i = 0; i < pool.value_width; ++i) {
        double acc = 0.0;
        for (int64_t s = 0; s < length; ++s) {
          acc += score[s] / sum * Row(pool, batch, places[t].seq, s)[pool.value_offset + i];
        }
        o[i] = acc;
      }
    }
  }
}

}  // namespace sparkstack::kernels
