// GEMM kernels for AVX2 + FMA. Compiled with -mavx2 -mfma (see binding.gyp); only called when
// weft::kernel_path() says the CPU has them.
#include <immintrin.h>

#include <cstdint>

#include "gemm.h"

namespace weft {
namespace {

constexpr int kMR = 6;
constexpr int kNV = 2;  // 2 ymm = 16 columns: 12 accumulators + 2 B vectors + 1 broadcast of 16 registers

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
  for (int r = 0; r < MR; ++r)
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

// IB rows × 16 full columns.
template <int IB>
inline void axpy_tile(int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b, int64_t ldb,
                      float* c, int64_t ldc, float alpha, float beta) {
  __m256 acc[IB][2];
  for (int i = 0; i < IB; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    const float* bp = b + p * ldb;
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
    for (int i = 0; i < IB; ++i) {
      const __m256 av = _mm256_set1_ps(a[i * a_rs + p * a_cs]);
      acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  for (int i = 0; i < IB; ++i)
    for (int v = 0; v < 2; ++v) {
      float* cp = c + i * ldc + 8 * v;
      __m256 x = _mm256_mul_ps(va, acc[i][v]);
      if (beta != 0.0f) x = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cp), x);
      _mm256_storeu_ps(cp, x);
    }
}

void axpy_nn(int m, int64_t j0, int64_t j1, int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
             int64_t ldb, float* c, int64_t ldc, float alpha, float beta) {
  int64_t j = j0;
  for (; j + 16 <= j1; j += 16) {
    int i = 0;
    for (; i + 4 <= m; i += 4) axpy_tile<4>(k, a + i * a_rs, a_rs, a_cs, b + j, ldb, c + i * ldc + j, ldc, alpha, beta);
    const float* ai = a + i * a_rs;
    float* ci = c + i * ldc + j;
    switch (m - i) {
      case 3: axpy_tile<3>(k, ai, a_rs, a_cs, b + j, ldb, ci, ldc, alpha, beta); break;
      case 2: axpy_tile<2>(k, ai, a_rs, a_cs, b + j, ldb, ci, ldc, alpha, beta); break;
      case 1: axpy_tile<1>(k, ai, a_rs, a_cs, b + j, ldb, ci, ldc, alpha, beta); break;
      default: break;
    }
  }
  // Fewer than 16 columns left: scalar.
  for (int i = 0; i < m && j < j1; ++i)
    for (int64_t jj = j; jj < j1; ++jj) {
      float s = 0.0f;
      for (int64_t p = 0; p < k; ++p) s += a[i * a_rs + p * a_cs] * b[p * ldb + jj];
      float* cp = c + i * ldc + jj;
      *cp = beta == 0.0f ? alpha * s : alpha * s + beta * *cp;
    }
}

const GemmKernel kKernel = {"avx2 6x16", kMR, 8 * kNV, 144, 256, 2048, micro_kernel, dot_nt, axpy_nn};

}  // namespace

const GemmKernel* gemm_kernel_avx2() { return &kKernel; }

}  // namespace weft
