// Paged attention over fixed-size KV blocks (the inference engine's KV cache; glue in glue_paged.cc).
//
// The cache of one layer is a pool of blocks, K and V each [num_blocks, kv_heads, block, dim]. A
// step's queries are a flat batch of tokens from many sequences, [tokens, heads, dim] (the q
// projection's output as is). Sequence s owns query rows [q_off[s], q_off[s+1]) at positions
// start[s] + i and reads its keys through its block table, table[t_off[s] ...]. Each query row
// attends causally to positions 0 … its own, key block by key block, with an online softmax, so
// memory per row is O(dim) and a row's result does not depend on how the batch was formed.
//
// Work items are (sequence, query head, up to kRowsPerItem query rows), handed out dynamically over
// the shared thread pool. The inner loops are written once and compiled for three targets (function
// attributes; no per-ISA files needed): the kernel path chosen at load time (cpu.h) picks one.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu.h"
#include "kernels.h"
#include "threadpool.h"

namespace weft {

struct PagedAttnArgs {
  const float* q;
  const float* k_cache;
  const float* v_cache;
  const int32_t* tables;    // concatenated block tables
  const int32_t* t_off;     // [seqs + 1] offsets into tables
  const int32_t* q_off;     // [seqs + 1] query row offsets
  const int32_t* start;     // [seqs] position of each sequence's first query row
  int64_t seqs, heads, kv_heads, dim, block;
  float scale;
  float* out;               // [tokens, heads, dim]
};

namespace {

constexpr int64_t kRowsPerItem = 16;

// dot(a, b) over n floats with 8 independent partial sums (vectorisable without -ffast-math).
#define WEFT_PAGED_BODY                                                                                  \
  const int64_t D = a.dim, B = a.block, KV = a.kv_heads, H = a.heads;                                    \
  const int64_t group = H / KV;                                                                          \
  const int64_t g = h / group;                                                                           \
  const int32_t* table = a.tables + a.t_off[s];                                                          \
  const int64_t row0 = a.q_off[s];                                                                       \
  for (int64_t i = i0; i < i1; ++i) {                                                                    \
    const float* q = a.q + ((row0 + i) * H + h) * D;                                                     \
    float* acc = a.out + ((row0 + i) * H + h) * D;                                                       \
    for (int64_t d = 0; d < D; ++d) acc[d] = 0.f;                                                        \
    const int64_t nkeys = a.start[s] + i + 1;                                                            \
    float m = -std::numeric_limits<float>::infinity();                                                   \
    float l = 0.f;                                                                                       \
    float scores[256];                                                                                   \
    for (int64_t j0 = 0; j0 < nkeys; j0 += B) {                                                          \
      const int64_t blk = table[j0 / B];                                                                 \
      const int64_t nb = std::min(B, nkeys - j0);                                                        \
      const float* kb0 = a.k_cache + (blk * KV + g) * B * D;                                             \
      const float* vb0 = a.v_cache + (blk * KV + g) * B * D;                                             \
      /* keys in runs of at most 256 (the scores buffer); online softmax joins them */                   \
      for (int64_t c0 = 0; c0 < nb; c0 += 256) {                                                         \
      const int64_t n = std::min<int64_t>(256, nb - c0);                                                 \
      const float* kb = kb0 + c0 * D;                                                                    \
      const float* vb = vb0 + c0 * D;                                                                    \
      float bmax = -std::numeric_limits<float>::infinity();                                              \
      for (int64_t j = 0; j < n; ++j) {                                                                  \
        const float* kr = kb + j * D;                                                                    \
        float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                           \
        int64_t d = 0;                                                                                   \
        for (; d + 8 <= D; d += 8)                                                                       \
          for (int u = 0; u < 8; ++u) p[u] += q[d + u] * kr[d + u];                                      \
        float sc = ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]));                     \
        for (; d < D; ++d) sc += q[d] * kr[d];                                                           \
        sc *= a.scale;                                                                                   \
        scores[j] = sc;                                                                                  \
        bmax = sc > bmax ? sc : bmax;                                                                    \
      }                                                                                                  \
      const float mnew = bmax > m ? bmax : m;                                                            \
      const float corr = std::exp(m - mnew);                                                             \
      if (corr != 1.f) {                                                                                 \
        l *= corr;                                                                                       \
        for (int64_t d = 0; d < D; ++d) acc[d] *= corr;                                                  \
      }                                                                                                  \
      m = mnew;                                                                                          \
      for (int64_t j = 0; j < n; ++j) {                                                                  \
        const float pj = std::exp(scores[j] - m);                                                        \
        l += pj;                                                                                         \
        const float* vr = vb + j * D;                                                                    \
        for (int64_t d = 0; d < D; ++d) acc[d] += pj * vr[d];                                            \
      }                                                                                                  \
      }                                                                                                  \
    }                                                                                                    \
    const float inv = 1.f / l;                                                                           \
    for (int64_t d = 0; d < D; ++d) acc[d] *= inv;                                                       \
  }

void item_portable(const PagedAttnArgs& a, int64_t s, int64_t h, int64_t i0, int64_t i1) { WEFT_PAGED_BODY }

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) void item_avx2(const PagedAttnArgs& a, int64_t s, int64_t h, int64_t i0,
                                                   int64_t i1) {
  WEFT_PAGED_BODY
}
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))) void item_avx512(const PagedAttnArgs& a,
                                                                                       int64_t s, int64_t h,
                                                                                       int64_t i0, int64_t i1) {
  WEFT_PAGED_BODY
}
#endif

void run_item(const PagedAttnArgs& a, int64_t s, int64_t h, int64_t i0, int64_t i1) {
#if defined(__x86_64__) || defined(__i386__)
  switch (kernel_path()) {
    case KernelPath::Avx512: return item_avx512(a, s, h, i0, i1);
    case KernelPath::Avx2: return item_avx2(a, s, h, i0, i1);
    default: return item_portable(a, s, h, i0, i1);
  }
#else
  item_portable(a, s, h, i0, i1);
#endif
}

// Below this many multiply-adds (of q·k; as many again for p·v) one thread is faster: a decode step
// of a few dozen sequences is well under a millisecond of work, and waking the pool (worse on a
// loaded machine) can cost more than that.
constexpr double kSerialWork = 1e6;

}  // namespace

// The glue checks every index first.
void paged_attention(const PagedAttnArgs& a) {
  struct Item {
    int32_t s, h;
    int64_t i0, i1;
  };
  std::vector<Item> items;
  double work = 0;
  for (int64_t s = 0; s < a.seqs; ++s) {
    const int64_t rows = a.q_off[s + 1] - a.q_off[s];
    work += static_cast<double>(rows) * (a.start[s] + rows) * a.heads * a.dim;
    // Last rows first: under the causal mask they see the most keys.
    for (int64_t i0 = (rows - 1) / kRowsPerItem * kRowsPerItem; i0 >= 0; i0 -= kRowsPerItem)
      for (int64_t h = 0; h < a.heads; ++h)
        items.push_back({static_cast<int32_t>(s), static_cast<int32_t>(h), i0, std::min(rows, i0 + kRowsPerItem)});
  }
  const int64_t n = static_cast<int64_t>(items.size());
  if (n == 0) return;
  std::atomic<int64_t> next{0};
  parallel_run(
      [&](int, int) {
        for (int64_t it = next.fetch_add(1); it < n; it = next.fetch_add(1)) {
          const Item& w = items[static_cast<size_t>(it)];
          run_item(a, w.s, w.h, w.i0, w.i1);
        }
      },
      work < kSerialWork ? 1 : 0);
}

// Scatters new keys and values [tokens, kv_heads, dim] into their cache slots (slot = block·B + offset).
void paged_write_kv(const float* k, const float* v, const int32_t* slots, int64_t tokens, int64_t kv_heads,
                    int64_t dim, int64_t block, float* k_cache, float* v_cache) {
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t blk = slots[t] / block, off = slots[t] % block;
    for (int64_t g = 0; g < kv_heads; ++g) {
      const int64_t dst = ((blk * kv_heads + g) * block + off) * dim;
      std::memcpy(k_cache + dst, k + (t * kv_heads + g) * dim, static_cast<size_t>(dim) * sizeof(float));
      std::memcpy(v_cache + dst, v + (t * kv_heads + g) * dim, static_cast<size_t>(dim) * sizeof(float));
    }
  }
}

// Rotate-half rotary embedding in place on x [tokens, heads, dim]: token t uses row positions[t] of
// the cos/sin tables [rows, dim/2] (feature j pairs with j + dim/2, HF's convention).
void rope_rotate_half(float* x, int64_t tokens, int64_t heads, int64_t dim, const float* cos_t, const float* sin_t,
                      const int32_t* positions) {
  const int64_t half = dim / 2;
  for (int64_t t = 0; t < tokens; ++t) {
    const float* c = cos_t + static_cast<int64_t>(positions[t]) * half;
    const float* sn = sin_t + static_cast<int64_t>(positions[t]) * half;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + (t * heads + h) * dim;
      for (int64_t j = 0; j < half; ++j) {
        // In double, rounded once: the same numbers as the JS path (Float32Array stores of JS doubles).
        const double x1 = v[j], x2 = v[j + half];
        v[j] = static_cast<float>(x1 * c[j] - x2 * sn[j]);
        v[j + half] = static_cast<float>(x2 * c[j] + x1 * sn[j]);
      }
    }
  }
}

}  // namespace weft
