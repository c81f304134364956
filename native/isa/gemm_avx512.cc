// GEMM kernels for AVX-512 (F, with FMA). Compiled with -mavx512f ... (see binding.gyp); only called
// when weft::kernel_path() says the CPU has them.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "gemm.h"

#ifndef WEFT_GEMM512_MR
#define WEFT_GEMM512_MR 6
#endif
#ifndef WEFT_GEMM512_NV
#define WEFT_GEMM512_NV 4
#endif
// Register tile MR × (16·NV) and cache blocks, measured on Zen 4 (6×64 beat 14×32, 12×32 and 8×48).
#define WEFT_GEMM512_NR_(nv) WEFT_GEMM512_NR_##nv
#define WEFT_GEMM512_NR_1 16
#define WEFT_GEMM512_NR_2 32
#define WEFT_GEMM512_NR_3 48
#define WEFT_GEMM512_NR_4 64
#define WEFT_GEMM512_NR_X(nv) WEFT_GEMM512_NR_(nv)
#define WEFT_GEMM512_NR WEFT_GEMM512_NR_X(WEFT_GEMM512_NV)
#ifndef WEFT_GEMM512_MC
#define WEFT_GEMM512_MC 96
#endif
#ifndef WEFT_GEMM512_KC
#define WEFT_GEMM512_KC 384
#endif
#ifndef WEFT_GEMM512_NC
#define WEFT_GEMM512_NC 3072
#endif

namespace weft {
namespace {

#define WEFT_STR2(x) #x
#define WEFT_STR(x) WEFT_STR2(x)

// MR rows (broadcast from the packed A panel) × NV·16 columns (vectors from the packed B panel):
// MR·NV accumulators stay in zmm registers for the whole kc loop.
template <int MR, int NV>
void micro_kernel(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int rows, int cols,
                  float alpha, float beta) {
  constexpr int NR = 16 * NV;
  __m512 acc[MR][NV];
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();

  for (int64_t p = 0; p < kc; ++p) {
    __m512 bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_ps(bp + 16 * v);
    _mm_prefetch(reinterpret_cast<const char*>(ap + 8 * MR), _MM_HINT_T0);
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(ap[r]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
    ap += MR;
    bp += NR;
  }

  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vb = _mm512_set1_ps(beta);
  if (rows == MR && cols == NR) {
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r) {
      float* cr = c + r * ldc;
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        __m512 x = _mm512_mul_ps(va, acc[r][v]);
        if (beta != 0.0f) x = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr + 16 * v), x);
        _mm512_storeu_ps(cr + 16 * v, x);
      }
    }
    return;
  }
  // Edge tile: masked column stores; rows past `rows` are dropped (their packed A rows were zero).
  __mmask16 masks[NV];
  for (int v = 0; v < NV; ++v) {
    const int w = cols - 16 * v;
    masks[v] = w >= 16 ? static_cast<__mmask16>(0xFFFF) : w <= 0 ? 0 : static_cast<__mmask16>((1u << w) - 1u);
  }
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r) {
    if (r >= rows) break;
    float* cr = c + r * ldc;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      __m512 x = _mm512_mul_ps(va, acc[r][v]);
      if (beta != 0.0f) x = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(masks[v], cr + 16 * v), x);
      _mm512_mask_storeu_ps(cr + 16 * v, masks[v], x);
    }
  }
}

// Horizontal sum (GCC 12's _mm512_reduce_add_ps trips -Wuninitialized in its own header).
inline float hsum(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  const __m256 h = _mm256_add_ps(_mm256_load_ps(t), _mm256_load_ps(t + 8));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __mmask16 tail_mask(int64_t n) { return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u); }

// IB rows of A against JB rows of B, full dot products over k (B is n×k, k-contiguous).
template <int IB, int JB>
inline void dot_tile(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                     float alpha, float beta) {
  __m512 acc[IB][JB];
  for (int i = 0; i < IB; ++i)
    for (int j = 0; j < JB; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t p = 0;
  for (; p + 16 <= k; p += 16) {
    __m512 bv[JB];
    for (int j = 0; j < JB; ++j) bv[j] = _mm512_loadu_ps(b + j * ldb + p);
    for (int i = 0; i < IB; ++i) {
      const __m512 av = _mm512_loadu_ps(a + i * lda + p);
      for (int j = 0; j < JB; ++j) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  if (p < k) {
    const __mmask16 mk = tail_mask(k - p);
    __m512 bv[JB];
    for (int j = 0; j < JB; ++j) bv[j] = _mm512_maskz_loadu_ps(mk, b + j * ldb + p);
    for (int i = 0; i < IB; ++i) {
      const __m512 av = _mm512_maskz_loadu_ps(mk, a + i * lda + p);
      for (int j = 0; j < JB; ++j) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < IB; ++i)
    for (int j = 0; j < JB; ++j) {
      const float s = alpha * hsum(acc[i][j]);
      float* cij = c + i * ldc + j;
      *cij = beta == 0.0f ? s : s + beta * *cij;
    }
}

template <int JB>
inline void dot_rows(int m, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                     int64_t ldc, float alpha, float beta) {
  int i = 0;
  for (; i + 4 <= m; i += 4) dot_tile<4, JB>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, alpha, beta);
  switch (m - i) {
    case 3: dot_tile<3, JB>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, alpha, beta); break;
    case 2: dot_tile<2, JB>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, alpha, beta); break;
    case 1: dot_tile<1, JB>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, alpha, beta); break;
    default: break;
  }
}

void dot_nt(int m, int64_t j0, int64_t j1, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
            float* c, int64_t ldc, float alpha, float beta) {
  int64_t j = j0;
  if (m == 1)
    for (; j + 8 <= j1; j += 8) dot_rows<8>(m, k, a, lda, b + j * ldb, ldb, c + j, ldc, alpha, beta);
  for (; j + 4 <= j1; j += 4) dot_rows<4>(m, k, a, lda, b + j * ldb, ldb, c + j, ldc, alpha, beta);
  for (; j < j1; ++j) dot_rows<1>(m, k, a, lda, b + j * ldb, ldb, c + j, ldc, alpha, beta);
}

// Skinny with B stored k×n: C rows are updated in place, 4 rows of B at a time, over column strips
// narrow enough that the m strip rows of C stay in L1. Each row of B is then read as one long
// contiguous run (what DRAM and the prefetchers like best) and, for m > 1, re-read from L1.
void axpy_nn(int m, int64_t j0, int64_t j1, int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
             int64_t ldb, float* c, int64_t ldc, float alpha, float beta) {
  const int64_t strip = std::max<int64_t>(64, (8192 / m) & ~int64_t{15});
  const __m512 vbeta = _mm512_set1_ps(beta);
  for (int64_t js = j0; js < j1; js += strip) {
    const int64_t je = std::min(j1, js + strip);
    const int64_t full = js + ((je - js) & ~int64_t{15});
    const __mmask16 tail = tail_mask(je - full);
    for (int i = 0; i < m; ++i) {  // C = beta·C first (beta = 0 writes zeros, never reads)
      float* cr = c + i * ldc;
      for (int64_t j = js; j < je; j += 16) {
        const __mmask16 mk = j < full ? static_cast<__mmask16>(0xFFFF) : tail;
        const __m512 x = beta == 0.0f ? _mm512_setzero_ps() : _mm512_mul_ps(vbeta, _mm512_maskz_loadu_ps(mk, cr + j));
        _mm512_mask_storeu_ps(cr + j, mk, x);
      }
    }
    int64_t p = 0;
    for (; p + 8 <= k; p += 8) {
      const float* bq = b + p * ldb;
      for (int i = 0; i < m; ++i) {
        const float* ai = a + i * a_rs + p * a_cs;
        __m512 av[8];
        for (int u = 0; u < 8; ++u) av[u] = _mm512_set1_ps(alpha * ai[u * a_cs]);
        float* cr = c + i * ldc;
        for (int64_t j = js; j < full; j += 16) {
          __m512 x = _mm512_fmadd_ps(av[0], _mm512_loadu_ps(bq + j), _mm512_loadu_ps(cr + j));
          __m512 y = _mm512_mul_ps(av[1], _mm512_loadu_ps(bq + ldb + j));
          x = _mm512_fmadd_ps(av[2], _mm512_loadu_ps(bq + 2 * ldb + j), x);
          y = _mm512_fmadd_ps(av[3], _mm512_loadu_ps(bq + 3 * ldb + j), y);
          x = _mm512_fmadd_ps(av[4], _mm512_loadu_ps(bq + 4 * ldb + j), x);
          y = _mm512_fmadd_ps(av[5], _mm512_loadu_ps(bq + 5 * ldb + j), y);
          x = _mm512_fmadd_ps(av[6], _mm512_loadu_ps(bq + 6 * ldb + j), x);
          y = _mm512_fmadd_ps(av[7], _mm512_loadu_ps(bq + 7 * ldb + j), y);
          _mm512_storeu_ps(cr + j, _mm512_add_ps(x, y));
        }
        if (full < je) {
          __m512 x = _mm512_maskz_loadu_ps(tail, cr + full);
          for (int u = 0; u < 8; ++u) x = _mm512_fmadd_ps(av[u], _mm512_maskz_loadu_ps(tail, bq + u * ldb + full), x);
          _mm512_mask_storeu_ps(cr + full, tail, x);
        }
      }
    }
    for (; p + 4 <= k; p += 4) {
      const float* b0 = b + p * ldb;
      const float* b1 = b0 + ldb;
      const float* b2 = b1 + ldb;
      const float* b3 = b2 + ldb;
      for (int i = 0; i < m; ++i) {
        const float* ai = a + i * a_rs + p * a_cs;
        const __m512 a0 = _mm512_set1_ps(alpha * ai[0]), a1 = _mm512_set1_ps(alpha * ai[a_cs]);
        const __m512 a2 = _mm512_set1_ps(alpha * ai[2 * a_cs]), a3 = _mm512_set1_ps(alpha * ai[3 * a_cs]);
        float* cr = c + i * ldc;
        int64_t j = js;
        for (; j < full; j += 16) {
          __m512 x = _mm512_fmadd_ps(a0, _mm512_loadu_ps(b0 + j), _mm512_loadu_ps(cr + j));
          __m512 y = _mm512_mul_ps(a1, _mm512_loadu_ps(b1 + j));
          x = _mm512_fmadd_ps(a2, _mm512_loadu_ps(b2 + j), x);
          y = _mm512_fmadd_ps(a3, _mm512_loadu_ps(b3 + j), y);
          _mm512_storeu_ps(cr + j, _mm512_add_ps(x, y));
        }
        if (j < je) {
          __m512 x = _mm512_fmadd_ps(a0, _mm512_maskz_loadu_ps(tail, b0 + j), _mm512_maskz_loadu_ps(tail, cr + j));
          x = _mm512_fmadd_ps(a1, _mm512_maskz_loadu_ps(tail, b1 + j), x);
          x = _mm512_fmadd_ps(a2, _mm512_maskz_loadu_ps(tail, b2 + j), x);
          x = _mm512_fmadd_ps(a3, _mm512_maskz_loadu_ps(tail, b3 + j), x);
          _mm512_mask_storeu_ps(cr + j, tail, x);
        }
      }
    }
    for (; p < k; ++p) {
      const float* b0 = b + p * ldb;
      for (int i = 0; i < m; ++i) {
        const __m512 a0 = _mm512_set1_ps(alpha * a[i * a_rs + p * a_cs]);
        float* cr = c + i * ldc;
        for (int64_t j = js; j < je; j += 16) {
          const __mmask16 mk = j < full ? static_cast<__mmask16>(0xFFFF) : tail;
          const __m512 x = _mm512_fmadd_ps(a0, _mm512_maskz_loadu_ps(mk, b0 + j), _mm512_maskz_loadu_ps(mk, cr + j));
          _mm512_mask_storeu_ps(cr + j, mk, x);
        }
      }
    }
  }
}

// In-register 16×16 transpose: r[i] holds row i on entry, column i on exit.
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xdd);
  }
}

// Packs a kc×nc block of op(B) = Bᵀ (B stored n×k, row stride ldb) into NR-wide micro-panels with
// 16×16 register transposes: the scalar gather it replaces dominated small-m Linear products.
void pack_b_trans(const float* b, int64_t ldb, int64_t kc, int64_t nc, float* dst) {
  constexpr int NR = 16 * WEFT_GEMM512_NV;
  for (int64_t j0 = 0; j0 < nc; j0 += NR) {
    for (int64_t p0 = 0; p0 < kc; p0 += 16) {
      const int pw = static_cast<int>(std::min<int64_t>(16, kc - p0));
      const __mmask16 pm = tail_mask(pw);
      for (int cb = 0; cb < NR / 16; ++cb) {
        __m512 r[16];
        for (int q = 0; q < 16; ++q) {
          const int64_t j = j0 + cb * 16 + q;
          r[q] = j < nc ? _mm512_maskz_loadu_ps(pm, b + j * ldb + p0) : _mm512_setzero_ps();
        }
        transpose16(r);
        for (int q = 0; q < pw; ++q) _mm512_store_ps(dst + (p0 + q) * NR + cb * 16, r[q]);
      }
    }
    dst += NR * kc;
  }
}

const GemmKernel kKernel = {
    "avx512 " WEFT_STR(WEFT_GEMM512_MR) "x" WEFT_STR(WEFT_GEMM512_NR),
    WEFT_GEMM512_MR,
    16 * WEFT_GEMM512_NV,
    WEFT_GEMM512_MC,
    WEFT_GEMM512_KC,
    WEFT_GEMM512_NC,
    micro_kernel<WEFT_GEMM512_MR, WEFT_GEMM512_NV>,
    dot_nt,
    axpy_nn,
    pack_b_trans,
};

}  // namespace

const GemmKernel* gemm_kernel_avx512() { return &kKernel; }

}  // namespace weft
