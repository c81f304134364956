// GEMM kernels for AVX2 + FMA. Compiled with -mavx2 -mfma (see binding.gyp); only called when
// weft::kernel_path() says the CPU has them.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "gemm.h"

namespace weft {
namespace {

#ifndef WEFT_GEMM256_MR
#define WEFT_GEMM256_MR 6
#endif
#ifndef WEFT_GEMM256_NV
#define WEFT_GEMM256_NV 2
#endif
#define WEFT_GEMM256_NR_(nv) WEFT_GEMM256_NR_##nv
#define WEFT_GEMM256_NR_1 8
#define WEFT_GEMM256_NR_2 16
#define WEFT_GEMM256_NR_3 24
#define WEFT_GEMM256_NR_X(nv) WEFT_GEMM256_NR_(nv)
#define WEFT_GEMM256_NR WEFT_GEMM256_NR_X(WEFT_GEMM256_NV)
#ifndef WEFT_GEMM256_MC
#define WEFT_GEMM256_MC 96
#endif
#ifndef WEFT_GEMM256_KC
#define WEFT_GEMM256_KC 384
#endif
#define WEFT_STR2(x) #x
#define WEFT_STR(x) WEFT_STR2(x)

// 6×16 by default: 12 ymm accumulators + 2 B vectors + 1 broadcast of the 16 registers.
constexpr int kMR = WEFT_GEMM256_MR;
constexpr int kNV = WEFT_GEMM256_NV;

void micro_kernel(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int rows, int cols,
                  float alpha, float beta) {
  constexpr int MR = kMR, NV = kNV, NR = 8 * NV;
  __m256 acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    __m256 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_load_ps(bp + 8 * v);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(ap + r);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
    }
    ap += MR;
    bp += NR;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  if (rows == MR && cols == NR) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      float* cr = c + r * ldc;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        __m256 x = _mm256_mul_ps(va, acc[r][v]);
        if (beta != 0.0f) x = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8 * v), x);
        _mm256_storeu_ps(cr + 8 * v, x);
      }
    }
    return;
  }
  alignas(32) float tile[MR][NR];
  // Fully unrolled so acc[][] stays in registers (a runtime index would force it to the stack).
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm256_store_ps(&tile[r][8 * v], _mm256_mul_ps(va, acc[r][v]));
  for (int r = 0; r < rows; ++r) {
    float* cr = c + r * ldc;
    for (int j = 0; j < cols; ++j) cr[j] = beta == 0.0f ? tile[r][j] : tile[r][j] + beta * cr[j];
  }
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Lane mask for the first n (< 8) lanes, for maskload of a k tail.
inline __m256i tail_mask(int64_t n) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lanes);
}

template <int IB, int JB>
inline void dot_tile(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                     float alpha, float beta) {
  __m256 acc[IB][JB];
  for (int i = 0; i < IB; ++i)
    for (int j = 0; j < JB; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    __m256 bv[JB];
    for (int j = 0; j < JB; ++j) bv[j] = _mm256_loadu_ps(b + j * ldb + p);
    for (int i = 0; i < IB; ++i) {
      const __m256 av = _mm256_loadu_ps(a + i * lda + p);
      for (int j = 0; j < JB; ++j) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  if (p < k) {
    const __m256i mk = tail_mask(k - p);
    __m256 bv[JB];
    for (int j = 0; j < JB; ++j) bv[j] = _mm256_maskload_ps(b + j * ldb + p, mk);
    for (int i = 0; i < IB; ++i) {
      const __m256 av = _mm256_maskload_ps(a + i * lda + p, mk);
      for (int j = 0; j < JB; ++j) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
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
  for (; i + 3 <= m; i += 3) dot_tile<3, JB>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, alpha, beta);
  switch (m - i) {
    case 2: dot_tile<2, JB>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, alpha, beta); break;
    case 1: dot_tile<1, JB>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, alpha, beta); break;
    default: break;
  }
}

void dot_nt(int m, int64_t j0, int64_t j1, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
            float* c, int64_t ldc, float alpha, float beta) {
  int64_t j = j0;
  for (; j + 4 <= j1; j += 4) dot_rows<4>(m, k, a, lda, b + j * ldb, ldb, c + j, ldc, alpha, beta);
  for (; j < j1; ++j) dot_rows<1>(m, k, a, lda, b + j * ldb, ldb, c + j, ldc, alpha, beta);
}

// Skinny with B stored k×n: C rows are updated in place, 4 rows of B at a time, over column strips
// narrow enough that the m strip rows of C stay in L1, so each row of B streams contiguously.
void axpy_nn(int m, int64_t j0, int64_t j1, int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
             int64_t ldb, float* c, int64_t ldc, float alpha, float beta) {
  const int64_t strip = std::max<int64_t>(64, (8192 / m) & ~int64_t{7});
  for (int64_t js = j0; js < j1; js += strip) {
    const int64_t je = std::min(j1, js + strip);
    const int64_t full = js + ((je - js) & ~int64_t{7});
    for (int i = 0; i < m; ++i) {  // C = beta·C first (beta = 0 writes zeros, never reads)
      float* cr = c + i * ldc;
      for (int64_t j = js; j < je; ++j) cr[j] = beta == 0.0f ? 0.0f : beta * cr[j];
    }
    int64_t p = 0;
    for (; p + 4 <= k; p += 4) {
      const float* b0 = b + p * ldb;
      const float* b1 = b0 + ldb;
      const float* b2 = b1 + ldb;
      const float* b3 = b2 + ldb;
      for (int i = 0; i < m; ++i) {
        const float* ai = a + i * a_rs + p * a_cs;
        const float s0 = alpha * ai[0], s1 = alpha * ai[a_cs], s2 = alpha * ai[2 * a_cs], s3 = alpha * ai[3 * a_cs];
        const __m256 a0 = _mm256_set1_ps(s0), a1 = _mm256_set1_ps(s1), a2 = _mm256_set1_ps(s2), a3 = _mm256_set1_ps(s3);
        float* cr = c + i * ldc;
        int64_t j = js;
        for (; j < full; j += 8) {
          __m256 x = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b0 + j), _mm256_loadu_ps(cr + j));
          __m256 y = _mm256_mul_ps(a1, _mm256_loadu_ps(b1 + j));
          x = _mm256_fmadd_ps(a2, _mm256_loadu_ps(b2 + j), x);
          y = _mm256_fmadd_ps(a3, _mm256_loadu_ps(b3 + j), y);
          _mm256_storeu_ps(cr + j, _mm256_add_ps(x, y));
        }
        for (; j < je; ++j) cr[j] += s0 * b0[j] + s1 * b1[j] + s2 * b2[j] + s3 * b3[j];
      }
    }
    for (; p < k; ++p) {
      const float* b0 = b + p * ldb;
      for (int i = 0; i < m; ++i) {
        const float s0 = alpha * a[i * a_rs + p * a_cs];
        const __m256 a0 = _mm256_set1_ps(s0);
        float* cr = c + i * ldc;
        int64_t j = js;
        for (; j < full; j += 8) _mm256_storeu_ps(cr + j, _mm256_fmadd_ps(a0, _mm256_loadu_ps(b0 + j), _mm256_loadu_ps(cr + j)));
        for (; j < je; ++j) cr[j] += s0 * b0[j];
      }
    }
  }
}

const GemmKernel kKernel = {"avx2 " WEFT_STR(WEFT_GEMM256_MR) "x" WEFT_STR(WEFT_GEMM256_NR), kMR, 8 * kNV, WEFT_GEMM256_MC,
                            WEFT_GEMM256_KC, 2048, micro_kernel, dot_nt, axpy_nn, nullptr};

}  // namespace

const GemmKernel* gemm_kernel_avx2() { return &kKernel; }

}  // namespace weft
