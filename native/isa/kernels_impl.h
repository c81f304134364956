// The per-ISA row kernels, written once with GCC vector extensions and compiled three times
// (kernels_portable.cc: SSE2 baseline, 4 lanes; kernels_avx2.cc: 8 lanes + FMA; kernels_avx512.cc:
// 16 lanes) with each unit's own -m flags. The includer defines WEFT_ISA_NS (the namespace) and
// WEFT_VW (lanes). Everything here has internal linkage or lives in that namespace, so the linker
// never merges an AVX-512 copy into the portable path.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "../kernels.h"

#ifndef WEFT_ISA_NS
#error "define WEFT_ISA_NS and WEFT_VW before including kernels_impl.h"
#endif

namespace weft {
namespace WEFT_ISA_NS {
namespace {

constexpr int W = WEFT_VW;
typedef float vf __attribute__((vector_size(W * 4)));
typedef int32_t vi __attribute__((vector_size(W * 4)));

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
inline vf splat(float x) { return vf{} + x; }
inline vf vmax(vf a, vf b) { return a > b ? a : b; }
inline vf vmin(vf a, vf b) { return a < b ? a : b; }
inline vf vabs(vf x) { return (vf)((vi)x & 0x7fffffff); }
inline float hsum(vf v) {
  float s = 0;
  for (int i = 0; i < W; ++i) s += v[i];
  return s;
}
inline float hmax(vf v) {
  float m = v[0];
  for (int i = 1; i < W; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

// floor for |x| < 2^31.
inline vf vfloor(vf x) {
  vi n = __builtin_convertvector(x, vi);
  vf f = __builtin_convertvector(n, vf);
  return f > x ? f - 1.0f : f;
}

// Cephes expf (≈1 ulp). 2^n is applied in two halves so the whole range from the overflow
// threshold down to gradual underflow is exact: exp(-inf) = 0, exp(+inf) = inf, NaN stays NaN.
inline vf vexp(vf x) {
  vf xc = x < -104.0f ? splat(-104.0f) : x;
  xc = xc > 88.8f ? splat(88.8f) : xc;
  vf fx = vfloor(xc * 1.44269504088896341f + 0.5f);
  vf r = xc - fx * 0.693359375f;
  r = r - fx * -2.12194440e-4f;
  vf z = r * r;
  vf y = splat(1.9875691500E-4f);
  y = y * r + 1.3981999507E-3f;
  y = y * r + 8.3334519073E-3f;
  y = y * r + 4.1665795894E-2f;
  y = y * r + 1.6666665459E-1f;
  y = y * r + 5.0000001201E-1f;
  y = y * z + r + 1.0f;
  vi n = __builtin_convertvector(fx, vi);
  vi n1 = n >> 1;
  vi n2 = n - n1;
  vf p1 = (vf)((n1 + 127) << 23);
  vf p2 = (vf)((n2 + 127) << 23);
  return y * p1 * p2;
}

inline float sexp(float x) {
  vf v = splat(x);
  return vexp(v)[0];
}

// Cephes tanhf: odd polynomial near 0 (keeps relative accuracy), 1 - 2/(e^{2|x|}+1) elsewhere.
inline vf vtanh(vf x) {
  vf ax = vabs(x);
  vf z = x * x;
  vf p = splat(-5.70498872745E-3f);
  p = p * z + 2.06390887954E-2f;
  p = p * z - 5.37397155531E-2f;
  p = p * z + 1.33314422036E-1f;
  p = p * z - 3.33332819422E-1f;
  vf small = p * z * x + x;
  vf e = vexp(ax + ax);
  vf big = 1.0f - 2.0f / (e + 1.0f);
  big = (vf)(((vi)big) | ((vi)x & (int32_t)0x80000000));
  return ax < 0.625f ? small : big;
}

inline vf vsigmoid(vf x) { return 1.0f / (1.0f + vexp(-x)); }

// erf as a rational function of x on [-4, 4] (Eigen's generic_fast_erf_float; a few ulp).
inline vf verf(vf x) {
  vf xc = vmin(vmax(x, splat(-4.0f)), splat(4.0f));
  vf x2 = xc * xc;
  vf p = splat(-2.72614225801306e-10f);
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 + -2.10102402082508e-06f;
  p = p * x2 + -5.69250639462346e-05f;
  p = p * x2 + -7.34990630326855e-04f;
  p = p * x2 + -2.95459980854025e-03f;
  p = p * x2 + -1.60960333262415e-02f;
  p = p * xc;
  vf q = splat(-1.45660718464996e-05f);
  q = q * x2 + -2.13374055278905e-04f;
  q = q * x2 + -1.68282697438203e-03f;
  q = q * x2 + -7.37332916720468e-03f;
  q = q * x2 + -1.42647390514189e-02f;
  vf r = p / q;
  return x != x ? x : r;
}

constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;
constexpr float kSqrt2OverPi = 0.79788456080286535588f;

inline vf unary_vec(int op, vf x) {
  switch (op) {
    case U_NEG: return -x;
    case U_EXP: return vexp(x);
    case U_ABS: return vabs(x);
    case U_TANH: return vtanh(x);
    case U_SIGMOID: return vsigmoid(x);
    case U_RELU: return x > 0.0f ? x : (x != x ? x : splat(0.0f));
    case U_GELU: return x * 0.5f * (1.0f + verf(x * kInvSqrt2));
    case U_GELU_TANH: return 0.5f * x * (1.0f + vtanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
    case U_SILU: return x * vsigmoid(x);
    case U_SQUARE: return x * x;
    case U_RECIPROCAL: return 1.0f / x;
    case U_SIGN: return x > 0.0f ? splat(1.0f) : (x < 0.0f ? splat(-1.0f) : x);  // keeps ±0 and NaN
    default: {
      vf r;
      for (int i = 0; i < W; ++i) {
        float v = x[i];
        switch (op) {
          case U_LOG: r[i] = std::log(v); break;
          case U_SQRT: r[i] = std::sqrt(v); break;
          case U_RSQRT: r[i] = 1.0f / std::sqrt(v); break;
          case U_SIN: r[i] = std::sin(v); break;
          default: r[i] = std::cos(v); break;
        }
      }
      return r;
    }
  }
}

inline vf unary_backward_vec(int op, vf x, vf y, vf g) {
  switch (op) {
    case U_NEG: return -g;
    case U_EXP: return g * y;
    case U_LOG: return g / x;
    case U_SQRT: return g * 0.5f / y;
    case U_RSQRT: return g * -0.5f * y * y * y;
    case U_ABS: return g * (x > 0.0f ? splat(1.0f) : (x < 0.0f ? splat(-1.0f) : x * 0.0f));  // NaN x → NaN
    case U_TANH: return g * (1.0f - y * y);
    case U_SIGMOID: return g * y * (1.0f - y);
    case U_RELU: return g * (x > 0.0f ? splat(1.0f) : splat(0.0f));
    case U_GELU: {
      vf cdf = 0.5f * (1.0f + verf(x * kInvSqrt2));
      vf pdf = vexp(-0.5f * x * x) * kInvSqrt2Pi;
      return g * (cdf + x * pdf);
    }
    case U_GELU_TANH: {
      vf x2 = x * x;
      vf t = vtanh(kSqrt2OverPi * (x + 0.044715f * x2 * x));
      vf du = kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x2);
      return g * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
    }
    case U_SILU: {
      vf s = vsigmoid(x);
      return g * s * (1.0f + x * (1.0f - s));
    }
    case U_SQUARE: return g * 2.0f * x;
    case U_RECIPROCAL: return -g * y * y;
    case U_SIGN: return splat(0.0f);
    default: {
      vf r;
      for (int i = 0; i < W; ++i) r[i] = op == U_SIN ? g[i] * std::cos(x[i]) : -g[i] * std::sin(x[i]);
      return r;
    }
  }
}

// Loads n < W floats (zero-filled) / stores the first n lanes: tails reuse the vector code.
inline vf load_part(const float* p, int64_t n) {
  vf v = splat(0.0f);
  for (int64_t i = 0; i < n; ++i) v[i] = p[i];
  return v;
}
inline void store_part(float* p, vf v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) p[i] = v[i];
}

inline void axpy(float* y, float a, const float* x, int64_t n) {
  int64_t i = 0;
  vf va = splat(a);
  for (; i + W <= n; i += W) store(y + i, load(y + i) + va * load(x + i));
  for (; i < n; ++i) y[i] += a * x[i];
}

inline float dot(const float* a, const float* b, int64_t n) {
  vf acc0 = splat(0.0f), acc1 = splat(0.0f);
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    acc0 += load(a + i) * load(b + i);
    acc1 += load(a + i + W) * load(b + i + W);
  }
  for (; i + W <= n; i += W) acc0 += load(a + i) * load(b + i);
  float s = hsum(acc0 + acc1);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline float max_of(const float* x, int64_t n) {
  // NaN-propagating max (as PyTorch's max reduction).
  float m = -std::numeric_limits<float>::infinity();
  int64_t i = 0;
  if (n >= W) {
    vf vm = splat(m);
    vi nan = vi{} + 0;
    for (; i + W <= n; i += W) {
      vf v = load(x + i);
      nan |= (v != v);
      vm = vmax(vm, v);
    }
    for (int l = 0; l < W; ++l)
      if (nan[l]) return std::numeric_limits<float>::quiet_NaN();
    m = hmax(vm);
  }
  for (; i < n; ++i) {
    if (x[i] != x[i]) return x[i];
    m = x[i] > m ? x[i] : m;
  }
  return m;
}

inline float min_of(const float* x, int64_t n) {
  float m = std::numeric_limits<float>::infinity();
  int64_t i = 0;
  if (n >= W) {
    vf vm = splat(m);
    vi nan = vi{} + 0;
    for (; i + W <= n; i += W) {
      vf v = load(x + i);
      nan |= (v != v);
      vm = vmin(vm, v);
    }
    for (int l = 0; l < W; ++l)
      if (nan[l]) return std::numeric_limits<float>::quiet_NaN();
    for (int l = 0; l < W; ++l) m = vm[l] < m ? vm[l] : m;
  }
  for (; i < n; ++i) {
    if (x[i] != x[i]) return x[i];
    m = x[i] < m ? x[i] : m;
  }
  return m;
}

// Σ exp(x - m), f32 lanes per block of 1024, blocks summed in double.
inline double sum_exp(const float* x, int64_t n, float m) {
  double total = 0;
  vf vm = splat(m);
  for (int64_t b0 = 0; b0 < n; b0 += 1024) {
    int64_t b1 = b0 + 1024 < n ? b0 + 1024 : n;
    vf acc = splat(0.0f);
    int64_t i = b0;
    for (; i + W <= b1; i += W) acc += vexp(load(x + i) - vm);
    if (i < b1) {
      vf e = vexp(load_part(x + i, b1 - i) - vm);
      for (int64_t l = 0; l < b1 - i; ++l) acc[l] += e[l];
    }
    total += hsum(acc);
  }
  return total;
}

inline double sum_of(const float* x, int64_t n) {
  double total = 0;
  for (int64_t b0 = 0; b0 < n; b0 += 1024) {
    int64_t b1 = b0 + 1024 < n ? b0 + 1024 : n;
    vf acc0 = splat(0.0f), acc1 = splat(0.0f);
    int64_t i = b0;
    for (; i + 2 * W <= b1; i += 2 * W) {
      acc0 += load(x + i);
      acc1 += load(x + i + W);
    }
    for (; i + W <= b1; i += W) acc0 += load(x + i);
    float s = hsum(acc0 + acc1);
    for (; i < b1; ++i) s += x[i];
    total += s;
  }
  return total;
}

template <typename F>
inline void binary_loop(const float* a, int sa, const float* b, int sb, float* out, int64_t n, F f) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
  } else if (sa == 1) {
    const float bv = b[0];
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], bv);
  } else if (sb == 1) {
    const float av = a[0];
    for (int64_t i = 0; i < n; ++i) out[i] = f(av, b[i]);
  } else {
    const float v = f(a[0], b[0]);
    for (int64_t i = 0; i < n; ++i) out[i] = v;
  }
}

constexpr int64_t BK = kAttnTile;  // keys per attention tile
constexpr int64_t BQ = kAttnTile;  // query rows per attention tile

inline int64_t round_up_w(int64_t n) { return (n + W - 1) / W * W; }

// Register blocking of the attention micro-kernel: MR rows × NVMAX vectors of accumulators
// (AVX-512 has 32 registers, the others 16).
#if WEFT_VW == 16
constexpr int MR = 6, NVMAX = 4;
#else
constexpr int MR = 4, NVMAX = 2;
#endif

// C[r][v·W..] (+)= Σ_{k<kn} A[r·sam + k·sak] · B[k·ldb + v·W..] for r < R, v < NV, all in registers.
// A is read as broadcast scalars, so any strides work (Aᵀ included); B rows are contiguous.
template <int R, int NV, bool ACC>
inline void attn_micro(const float* a, int64_t sam, int64_t sak, const float* b, int64_t ldb, float* c, int64_t ldc,
                       int64_t kn) {
  vf acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = ACC ? load(c + r * ldc + v * W) : splat(0.0f);
  for (int64_t k = 0; k < kn; ++k) {
    vf bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = load(b + k * ldb + v * W);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const vf av = splat(a[r * sam + k * sak]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] += av * bv[v];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) store(c + r * ldc + v * W, acc[r][v]);
}

template <int R, bool ACC>
inline void attn_micro_nv(int nv, const float* a, int64_t sam, int64_t sak, const float* b, int64_t ldb, float* c,
                          int64_t ldc, int64_t kn) {
  switch (nv) {
    case 1: attn_micro<R, 1, ACC>(a, sam, sak, b, ldb, c, ldc, kn); break;
    case 2:
      if constexpr (NVMAX >= 2) attn_micro<R, 2, ACC>(a, sam, sak, b, ldb, c, ldc, kn);
      break;
    case 3:
      if constexpr (NVMAX >= 3) attn_micro<R, 3, ACC>(a, sam, sak, b, ldb, c, ldc, kn);
      break;
    default:
      if constexpr (NVMAX >= 4) attn_micro<R, 4, ACC>(a, sam, sak, b, ldb, c, ldc, kn);
      break;
  }
}

template <bool ACC>
inline void attn_micro_any(int rows, int nv, const float* a, int64_t sam, int64_t sak, const float* b, int64_t ldb,
                           float* c, int64_t ldc, int64_t kn) {
  switch (rows) {
    case 1: attn_micro_nv<1, ACC>(nv, a, sam, sak, b, ldb, c, ldc, kn); break;
    case 2: attn_micro_nv<2, ACC>(nv, a, sam, sak, b, ldb, c, ldc, kn); break;
    case 3: attn_micro_nv<3, ACC>(nv, a, sam, sak, b, ldb, c, ldc, kn); break;
    case 4: attn_micro_nv<4, ACC>(nv, a, sam, sak, b, ldb, c, ldc, kn); break;
    case 5:
      if constexpr (MR >= 5) attn_micro_nv<5, ACC>(nv, a, sam, sak, b, ldb, c, ldc, kn);
      break;
    default:
      if constexpr (MR >= 6) attn_micro_nv<6, ACC>(nv, a, sam, sak, b, ldb, c, ldc, kn);
      break;
  }
}

// Small GEMM over rows [0, m) of C: C[i][0..n) (+)= Σ_{k∈[k0,k1)} A[i·sam + k·sak] · B[k·ldb + ..].
// range(r0, rows, n, k0, k1) gives, per block of rows, the column count n (a multiple of W) and the
// k range, so causal blocks skip the keys (or queries) they cannot see.
template <bool ACC, typename Range>
inline void attn_gemm(int64_t m, const float* a, int64_t sam, int64_t sak, const float* b, int64_t ldb, float* c,
                      int64_t ldc, Range range) {
  for (int64_t r0 = 0; r0 < m; r0 += MR) {
    const int rows = m - r0 < MR ? static_cast<int>(m - r0) : MR;
    int64_t n = 0, k0 = 0, k1 = 0;
    range(r0, rows, n, k0, k1);
    if (k1 < k0) k1 = k0;
    if (ACC && k1 == k0) continue;
    for (int64_t c0 = 0; c0 < n; c0 += NVMAX * W) {
      const int nv = (n - c0) / W < NVMAX ? static_cast<int>((n - c0) / W) : NVMAX;
      attn_micro_any<ACC>(rows, nv, a + r0 * sam + k0 * sak, sam, sak, b + k0 * ldb + c0, ldb, c + r0 * ldc + c0, ldc,
                          k1 - k0);
    }
  }
}

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

// Kt[d][j] = k[j][d] for j < nk, zero for nk <= j < BK. 4×4 blocks through registers: the plain
// strided copy costs several cycles an element.
inline void pack_transposed(const float* k, int64_t nk, int64_t dim, float* kt) {
  int64_t j = 0;
  for (; j + 4 <= nk; j += 4) {
    const float* r0 = k + j * dim;
    int64_t d = 0;
    for (; d + 4 <= dim; d += 4) {
      v4f a, b, c, e;
      std::memcpy(&a, r0 + d, 16);
      std::memcpy(&b, r0 + dim + d, 16);
      std::memcpy(&c, r0 + 2 * dim + d, 16);
      std::memcpy(&e, r0 + 3 * dim + d, 16);
      const v4f t0 = __builtin_shuffle(a, b, v4i{0, 4, 1, 5}), t1 = __builtin_shuffle(a, b, v4i{2, 6, 3, 7});
      const v4f t2 = __builtin_shuffle(c, e, v4i{0, 4, 1, 5}), t3 = __builtin_shuffle(c, e, v4i{2, 6, 3, 7});
      const v4f c0 = __builtin_shuffle(t0, t2, v4i{0, 1, 4, 5}), c1 = __builtin_shuffle(t0, t2, v4i{2, 3, 6, 7});
      const v4f c2 = __builtin_shuffle(t1, t3, v4i{0, 1, 4, 5}), c3 = __builtin_shuffle(t1, t3, v4i{2, 3, 6, 7});
      std::memcpy(kt + d * BK + j, &c0, 16);
      std::memcpy(kt + (d + 1) * BK + j, &c1, 16);
      std::memcpy(kt + (d + 2) * BK + j, &c2, 16);
      std::memcpy(kt + (d + 3) * BK + j, &c3, 16);
    }
    for (; d < dim; ++d)
      for (int r = 0; r < 4; ++r) kt[d * BK + j + r] = r0[r * dim + d];
  }
  for (; j < nk; ++j)
    for (int64_t d = 0; d < dim; ++d) kt[d * BK + j] = k[j * dim + d];
  if (nk < BK)
    for (int64_t d = 0; d < dim; ++d) std::memset(kt + d * BK + nk, 0, sizeof(float) * (BK - nk));
}

// Horizontal sum / max by halving (the row kernels' in-order hsum is kept for their exactness
// elsewhere; attention only needs a fast, deterministic reduction).
template <int S>
inline vf rotate_lanes(vf v) {
  vi m;
  for (int i = 0; i < W; ++i) m[i] = (i + S) % W;
  return __builtin_shuffle(v, m);
}
inline float hsum_tree(vf v) {
  if constexpr (W >= 16) v += rotate_lanes<8>(v);
  if constexpr (W >= 8) v += rotate_lanes<4>(v);
  v += rotate_lanes<2>(v);
  v += rotate_lanes<1>(v);
  return v[0];
}
inline float hmax_tree(vf v) {
  if constexpr (W >= 16) v = vmax(v, rotate_lanes<8>(v));
  if constexpr (W >= 8) v = vmax(v, rotate_lanes<4>(v));
  v = vmax(v, rotate_lanes<2>(v));
  v = vmax(v, rotate_lanes<1>(v));
  return v[0];
}

// dst rows of length ld (>= dim, tail zeroed) from n dense rows of length dim.
inline void copy_padded(const float* src, int64_t n, int64_t dim, int64_t ld, float* dst) {
  for (int64_t r = 0; r < n; ++r) {
    std::memcpy(dst + r * ld, src + r * dim, sizeof(float) * dim);
    for (int64_t d = dim; d < ld; ++d) dst[r * ld + d] = 0.0f;
  }
}

// Keys of the tile at j0 (nk of them) that query row qi may see before the additive mask.
inline int64_t attn_row_limit(const AttnParams& p, int64_t qi, int64_t j0, int64_t nk) {
  if (!p.causal) return nk;
  const int64_t lim = qi + (p.tk - p.tq) + 1 - j0;
  return lim < 0 ? 0 : (lim > nk ? nk : lim);
}

// Scales row[0..nc) of raw scores, adds the mask for keys < lim and sets [lim, nc) to −inf
// (nc = lim rounded up to W, so only the last vector has masked lanes).
inline void attn_scale_mask_row(float* row, int64_t lim, int64_t nc, const AttnParams& p, int64_t b, int64_t h,
                                int64_t qi, int64_t j0) {
  const vf vs = splat(p.scale);
  for (int64_t c = 0; c + W < nc; c += W) store(row + c, load(row + c) * vs);
  if (nc > 0) {
    vf lane;
    for (int i = 0; i < W; ++i) lane[i] = static_cast<float>(i);
    const vf last = load(row + nc - W) * vs;
    const vf ninf = splat(-std::numeric_limits<float>::infinity());
    store(row + nc - W, lane >= static_cast<float>(lim - (nc - W)) ? ninf : last);
  }
  if (p.mask != nullptr) {
    const float* mrow =
        p.mask + b * p.mask_strides[0] + h * p.mask_strides[1] + qi * p.mask_strides[2] + j0 * p.mask_strides[3];
    const int64_t ms = p.mask_strides[3];
    for (int64_t j = 0; j < lim; ++j) row[j] += mrow[j * ms];
  }
}

}  // namespace

// ------------------------------------------------------------------ elementwise

// GELU (erf form) gets its own loops: the op switch hoisted out, two vectors in flight, and the
// backward never loads y (it does not need it).
inline vf gelu_vec(vf x) { return x * 0.5f * (1.0f + verf(x * kInvSqrt2)); }
// exp for arguments <= 0 only (−x²/2 here): one rounding and one exponent add instead of vexp's
// floor and split 2^n. Arguments below −87 give 0 (exp(−87) ≈ 1.6e-38), so ±inf·pdf is NaN as in
// the reference formula.
inline vf vexp_nonpositive(vf x) {
  const vf xc = vmax(x, splat(-87.0f));
  const vf magic = splat(12582912.0f);  // 1.5·2^23: adding it rounds to an integer
  const vf fx = (xc * 1.44269504088896341f + magic) - magic;
  vf r = xc - fx * 0.693359375f;
  r = r - fx * -2.12194440e-4f;
  const vf z = r * r;
  vf y = splat(1.9875691500E-4f);
  y = y * r + 1.3981999507E-3f;
  y = y * r + 8.3334519073E-3f;
  y = y * r + 4.1665795894E-2f;
  y = y * r + 1.6666665459E-1f;
  y = y * r + 5.0000001201E-1f;
  y = y * z + r + 1.0f;
  const vi n = __builtin_convertvector(fx, vi);
  const vf e = y * (vf)((n + 127) << 23);
  return x < -87.0f ? splat(0.0f) : e;
}
inline vf gelu_backward_vec(vf x, vf g) {
  const vf cdf = 0.5f * (1.0f + verf(x * kInvSqrt2));
  const vf pdf = vexp_nonpositive(-0.5f * x * x) * kInvSqrt2Pi;
  return g * (cdf + x * pdf);
}

void unary_contig(int op, const float* x, float* out, int64_t n) {
  int64_t i = 0;
  if (op == U_GELU) {
    for (; i + 2 * W <= n; i += 2 * W) {
      const vf a = gelu_vec(load(x + i)), b = gelu_vec(load(x + i + W));
      store(out + i, a);
      store(out + i + W, b);
    }
    for (; i + W <= n; i += W) store(out + i, gelu_vec(load(x + i)));
    if (i < n) store_part(out + i, gelu_vec(load_part(x + i, n - i)), n - i);
    return;
  }
  for (; i + W <= n; i += W) store(out + i, unary_vec(op, load(x + i)));
  if (i < n) store_part(out + i, unary_vec(op, load_part(x + i, n - i)), n - i);
}

void unary_backward_contig(int op, const float* x, const float* y, const float* gy, float* gx, int64_t n) {
  int64_t i = 0;
  if (op == U_GELU) {
    for (; i + 2 * W <= n; i += 2 * W) {
      const vf a = gelu_backward_vec(load(x + i), load(gy + i));
      const vf b = gelu_backward_vec(load(x + i + W), load(gy + i + W));
      store(gx + i, a);
      store(gx + i + W, b);
    }
    for (; i + W <= n; i += W) store(gx + i, gelu_backward_vec(load(x + i), load(gy + i)));
    if (i < n) store_part(gx + i, gelu_backward_vec(load_part(x + i, n - i), load_part(gy + i, n - i)), n - i);
    return;
  }
  for (; i + W <= n; i += W) store(gx + i, unary_backward_vec(op, load(x + i), load(y + i), load(gy + i)));
  if (i < n) {
    int64_t r = n - i;
    store_part(gx + i, unary_backward_vec(op, load_part(x + i, r), load_part(y + i, r), load_part(gy + i, r)), r);
  }
}

void binary_row(int op, const float* a, int sa, const float* b, int sb, float* out, int64_t n) {
  switch (op) {
    case B_ADD: binary_loop(a, sa, b, sb, out, n, [](float x, float y) { return x + y; }); break;
    case B_SUB: binary_loop(a, sa, b, sb, out, n, [](float x, float y) { return x - y; }); break;
    case B_MUL: binary_loop(a, sa, b, sb, out, n, [](float x, float y) { return x * y; }); break;
    case B_DIV: binary_loop(a, sa, b, sb, out, n, [](float x, float y) { return x / y; }); break;
    case B_POW: binary_loop(a, sa, b, sb, out, n, [](float x, float y) { return std::pow(x, y); }); break;
    case B_MAXIMUM:
      binary_loop(a, sa, b, sb, out, n, [](float x, float y) { return x != x ? x : (y != y ? y : (x > y ? x : y)); });
      break;
    case B_MINIMUM:
      binary_loop(a, sa, b, sb, out, n, [](float x, float y) { return x != x ? x : (y != y ? y : (x < y ? x : y)); });
      break;
    case B_EQ: binary_loop(a, sa, b, sb, out, n, [](float x, float y) { return x == y ? 1.0f : 0.0f; }); break;
    case B_NE: binary_loop(a, sa, b, sb, out, n, [](float x, float y) { return x != y ? 1.0f : 0.0f; }); break;
    case B_LT: binary_loop(a, sa, b, sb, out, n, [](float x, float y) { return x < y ? 1.0f : 0.0f; }); break;
    case B_LE: binary_loop(a, sa, b, sb, out, n, [](float x, float y) { return x <= y ? 1.0f : 0.0f; }); break;
    case B_GT: binary_loop(a, sa, b, sb, out, n, [](float x, float y) { return x > y ? 1.0f : 0.0f; }); break;
    default: binary_loop(a, sa, b, sb, out, n, [](float x, float y) { return x >= y ? 1.0f : 0.0f; }); break;
  }
}

// ------------------------------------------------------------------ softmax / norms

void softmax_rows(const float* x, int64_t rows, int64_t cols, bool log, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* o = out + r * cols;
    const float m = max_of(xr, cols);
    const vf vm = splat(m);
    if (log) {
      const float sub = m + static_cast<float>(std::log(sum_exp(xr, cols, m)));
      const vf vs = splat(sub);
      int64_t i = 0;
      for (; i + W <= cols; i += W) store(o + i, load(xr + i) - vs);
      for (; i < cols; ++i) o[i] = xr[i] - sub;
      continue;
    }
    // exp once, stored, then scaled: two passes over memory instead of three exps.
    vf acc = splat(0.0f);
    int64_t i = 0;
    for (; i + W <= cols; i += W) {
      vf e = vexp(load(xr + i) - vm);
      acc += e;
      store(o + i, e);
    }
    float s = hsum(acc);
    if (i < cols) {
      vf e = vexp(load_part(xr + i, cols - i) - vm);
      for (int64_t l = 0; l < cols - i; ++l) s += e[l];
      store_part(o + i, e, cols - i);
    }
    const vf inv = splat(1.0f / s);
    for (i = 0; i + W <= cols; i += W) store(o + i, load(o + i) * inv);
    for (; i < cols; ++i) o[i] *= inv[0];
  }
}

void softmax_backward_rows(const float* y, const float* gy, int64_t rows, int64_t cols, bool log, float* gx) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* yr = y + r * cols;
    const float* gr = gy + r * cols;
    float* o = gx + r * cols;
    int64_t i = 0;
    if (log) {
      const vf vs = splat(static_cast<float>(sum_of(gr, cols)));
      for (; i + W <= cols; i += W) store(o + i, load(gr + i) - vexp(load(yr + i)) * vs);
      if (i < cols) {
        int64_t n = cols - i;
        store_part(o + i, load_part(gr + i, n) - vexp(load_part(yr + i, n)) * vs, n);
      }
    } else {
      const vf vs = splat(dot(gr, yr, cols));
      for (; i + W <= cols; i += W) {
        vf yv = load(yr + i);
        store(o + i, yv * (load(gr + i) - vs));
      }
      for (; i < cols; ++i) o[i] = yr[i] * (gr[i] - vs[0]);
    }
  }
}

void layer_norm_rows(const float* x, const float* w, const float* b, int64_t rows, int64_t cols, float eps,
                     float* out, float* mean, float* rstd) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* o = out + r * cols;
    // Sum deviations from the first element: f32 lanes then only round quantities of the row's
    // spread, not of its (possibly large) common offset.
    const float shift = xr[0];
    const vf vshift = splat(shift);
    vf sacc = splat(0.0f);
    int64_t i = 0;
    for (; i + W <= cols; i += W) sacc += load(xr + i) - vshift;
    double dev = hsum(sacc);
    for (; i < cols; ++i) dev += xr[i] - shift;
    const double mu = shift + dev / static_cast<double>(cols);
    // The mean as hi + lo floats: (x − hi) is exact for x near the mean, so deviations keep full
    // precision even when |mean| ≫ std (an f32 mean alone would cost ~ulp(mean) in every x − μ).
    const float mu_hi = static_cast<float>(mu);
    const float mu_lo = static_cast<float>(mu - mu_hi);
    const vf vhi = splat(mu_hi), vlo = splat(mu_lo);
    vf acc = splat(0.0f);
    for (i = 0; i + W <= cols; i += W) {
      vf d = (load(xr + i) - vhi) - vlo;
      acc += d * d;
    }
    double var = hsum(acc);
    for (; i < cols; ++i) {
      float d = (xr[i] - mu_hi) - mu_lo;
      var += static_cast<double>(d) * d;
    }
    const float rs = static_cast<float>(1.0 / std::sqrt(var / static_cast<double>(cols) + eps));
    mean[r] = mu_hi;
    rstd[r] = rs;
    const vf vrs = splat(rs);
    for (i = 0; i + W <= cols; i += W) {
      vf v = ((load(xr + i) - vhi) - vlo) * vrs;
      if (w != nullptr) v *= load(w + i);
      if (b != nullptr) v += load(b + i);
      store(o + i, v);
    }
    for (; i < cols; ++i) {
      float v = ((xr[i] - mu_hi) - mu_lo) * rs;
      if (w != nullptr) v *= w[i];
      if (b != nullptr) v += b[i];
      o[i] = v;
    }
  }
}

// No FMA contraction in the norm backwards: g = gy·w is summed in one pass and used again in the
// next, and both must round the same way (with cols = 1, g − mean(g) must be exactly 0).
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
void layer_norm_backward_rows(const float* x, const float* w, const float* mean, const float* rstd, const float* gy,
                              int64_t rows, int64_t cols, float* gx, float* gw, float* gb) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    const float* gr = gy + r * cols;
    float* o = gx + r * cols;
    const vf vmu = splat(mean[r]), vrs = splat(rstd[r]);
    // Σ g and Σ g·x̂ with g = gy·w.
    vf sg = splat(0.0f), sgx = splat(0.0f);
    int64_t i = 0;
    for (; i + W <= cols; i += W) {
      vf xh = (load(xr + i) - vmu) * vrs;
      vf gv = load(gr + i);
      if (gw != nullptr) store(gw + i, load(gw + i) + gv * xh);
      if (gb != nullptr) store(gb + i, load(gb + i) + gv);
      if (w != nullptr) gv *= load(w + i);
      sg += gv;
      sgx += gv * xh;
    }
    float s1 = hsum(sg), s2 = hsum(sgx);
    for (; i < cols; ++i) {
      float xh = (xr[i] - vmu[0]) * vrs[0];
      float gv = gr[i];
      if (gw != nullptr) gw[i] += gv * xh;
      if (gb != nullptr) gb[i] += gv;
      if (w != nullptr) gv *= w[i];
      s1 += gv;
      s2 += gv * xh;
    }
    const vf m1 = splat(s1 / static_cast<float>(cols)), m2 = splat(s2 / static_cast<float>(cols));
    for (i = 0; i + W <= cols; i += W) {
      vf xh = (load(xr + i) - vmu) * vrs;
      vf gv = load(gr + i);
      if (w != nullptr) gv *= load(w + i);
      store(o + i, vrs * (gv - m1 - xh * m2));
    }
    for (; i < cols; ++i) {
      float xh = (xr[i] - vmu[0]) * vrs[0];
      float gv = gr[i];
      if (w != nullptr) gv *= w[i];
      o[i] = vrs[0] * (gv - m1[0] - xh * m2[0]);
    }
  }
}

void rms_norm_rows(const float* x, const float* w, int64_t rows, int64_t cols, float eps, float* out, float* rstd) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* o = out + r * cols;
    const double ss = dot(xr, xr, cols);
    const float rs = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(cols) + eps));
    rstd[r] = rs;
    const vf vrs = splat(rs);
    int64_t i = 0;
    for (; i + W <= cols; i += W) {
      vf v = load(xr + i) * vrs;
      if (w != nullptr) v *= load(w + i);
      store(o + i, v);
    }
    for (; i < cols; ++i) o[i] = w != nullptr ? xr[i] * rs * w[i] : xr[i] * rs;
  }
}

void rms_norm_backward_rows(const float* x, const float* w, const float* rstd, const float* gy, int64_t rows,
                            int64_t cols, float* gx, float* gw) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    const float* gr = gy + r * cols;
    float* o = gx + r * cols;
    const float rs = rstd[r];
    const vf vrs = splat(rs);
    vf acc = splat(0.0f);
    int64_t i = 0;
    for (; i + W <= cols; i += W) {
      vf xv = load(xr + i), gv = load(gr + i);
      if (gw != nullptr) store(gw + i, load(gw + i) + gv * xv * vrs);
      if (w != nullptr) gv *= load(w + i);
      acc += gv * xv;
    }
    float s = hsum(acc);
    for (; i < cols; ++i) {
      float gv = gr[i];
      if (gw != nullptr) gw[i] += gv * xr[i] * rs;
      if (w != nullptr) gv *= w[i];
      s += gv * xr[i];
    }
    const vf c = splat(rs * rs * s / static_cast<float>(cols));
    for (i = 0; i + W <= cols; i += W) {
      vf gv = load(gr + i);
      if (w != nullptr) gv *= load(w + i);
      store(o + i, vrs * (gv - load(xr + i) * c));
    }
    for (; i < cols; ++i) {
      float gv = w != nullptr ? gr[i] * w[i] : gr[i];
      o[i] = rs * (gv - xr[i] * c[0]);
    }
  }
}

#pragma GCC pop_options

// ------------------------------------------------------------------ reductions

double row_sum(const float* x, int64_t n) { return sum_of(x, n); }
float row_max(const float* x, int64_t n) { return max_of(x, n); }
float row_min(const float* x, int64_t n) { return min_of(x, n); }
double row_sum_exp(const float* x, int64_t n, float m) { return sum_exp(x, n, m); }

void accumulate_sum(double* acc, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += x[i];
}
void accumulate_max(float* acc, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] = (x[i] > acc[i] || x[i] != x[i]) ? x[i] : acc[i];
}
void accumulate_min(float* acc, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] = (x[i] < acc[i] || x[i] != x[i]) ? x[i] : acc[i];
}
void accumulate_sum_exp(double* acc, const float* x, const float* m, int64_t n) {
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    vf e = vexp(load(x + i) - load(m + i));
    for (int l = 0; l < W; ++l) acc[i + l] += e[l];
  }
  for (; i < n; ++i) acc[i] += sexp(x[i] - m[i]);
}

// ------------------------------------------------------------------ cross-entropy

void cross_entropy_rows(const float* logits, const int32_t* targets, int64_t rows, int64_t cols,
                        int32_t ignore_index, float smoothing, float* loss, float* lse) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = logits + r * cols;
    const float m = max_of(x, cols);
    // A non-finite max is the answer itself (all −inf → −inf; +inf → +inf; NaN → NaN).
    const float l = std::isfinite(m) ? m + static_cast<float>(std::log(sum_exp(x, cols, m))) : m;
    lse[r] = l;
    const int32_t t = targets[r];
    if (t == ignore_index) {
      loss[r] = 0.0f;
      continue;
    }
    // −Σ q_c (x_c − lse) = lse − (1−ε)·x_t − (ε/C)·Σ x_c, since Σ q = 1.
    double v = static_cast<double>(l) - (1.0 - smoothing) * x[t];
    if (smoothing != 0.0f) v -= smoothing * sum_of(x, cols) / static_cast<double>(cols);
    loss[r] = static_cast<float>(v);
  }
}

void cross_entropy_backward_rows(const float* logits, const float* lse, const int32_t* targets, const float* gloss,
                                 int64_t rows, int64_t cols, int32_t ignore_index, float smoothing, float* glogits) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = logits + r * cols;
    float* o = glogits + r * cols;
    const int32_t t = targets[r];
    if (t == ignore_index) {
      std::memset(o, 0, sizeof(float) * cols);
      continue;
    }
    const float g = gloss[r];
    const vf vl = splat(lse[r]), vg = splat(g), vq = splat(smoothing / static_cast<float>(cols));
    int64_t i = 0;
    for (; i + W <= cols; i += W) store(o + i, vg * (vexp(load(x + i) - vl) - vq));
    if (i < cols) store_part(o + i, vg * (vexp(load_part(x + i, cols - i) - vl) - vq), cols - i);
    o[t] -= g * (1.0f - smoothing);
  }
}

// ------------------------------------------------------------------ attention

// Forward for query rows [q0, q1) of one head: per 64-row query tile, an online softmax over
// 64-key tiles; scores and P·V run through the register-blocked micro-kernel, and causal tiles
// only compute the columns (keys) their rows can see, rounded up to a vector.
void attention_task(const float* q, const float* k, const float* v, const AttnParams& p, int64_t b, int64_t h,
                    int64_t q0, int64_t q1, float* out, float* lse, float* scratch) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const int64_t dim = p.dim, dimp = round_up_w(dim), head = b * p.heads + h;
  const bool padded = dimp != dim;
  const float* qh = q + head * p.tq * dim;
  const float* kh = k + head * p.tk * dim;
  const float* vh = v + head * p.tk * dim;
  const int64_t dp16 = attn_dim_padded(dim);
  const int64_t kt_floats = attn_packed_keys_floats(p.tk, dim);
  const bool pack_all = kt_floats > BK * dim || p.tk <= BK;
  float* kt = scratch;
  float* vp = kt + kt_floats;
  float* s = vp + (attn_needs_padding(dim) ? p.tk * dp16 : 0);
  float* o = s + BQ * BK;
  float* mrow = o + BQ * dp16;
  float* lrow = mrow + BQ;
  const int64_t shift = p.tk - p.tq;
  int64_t kend = p.tk;  // keys any row of this task may see
  if (p.causal) kend = q1 + shift < 0 ? 0 : (q1 + shift < kend ? q1 + shift : kend);
  const float* vb = vh;
  int64_t ldv = dim;
  if (padded) {
    copy_padded(vh, kend, dim, dimp, vp);
    vb = vp;
    ldv = dimp;
  }
  if (pack_all)
    for (int64_t j0 = 0; j0 < kend; j0 += BK)
      pack_transposed(kh + j0 * dim, p.tk - j0 < BK ? p.tk - j0 : BK, dim, kt + (j0 / BK) * dim * BK);
  for (int64_t i0 = q0; i0 < q1; i0 += BQ) {
    const int64_t nq = (q1 - i0) < BQ ? (q1 - i0) : BQ;
    for (int64_t i = 0; i < nq; ++i) {
      mrow[i] = ninf;
      lrow[i] = 0.0f;
    }
    std::memset(o, 0, sizeof(float) * nq * dimp);
    int64_t tend = p.tk;
    if (p.causal) tend = i0 + nq + shift < 0 ? 0 : (i0 + nq + shift < tend ? i0 + nq + shift : tend);
    for (int64_t j0 = 0; j0 < tend; j0 += BK) {
      const int64_t nk = (p.tk - j0) < BK ? (p.tk - j0) : BK;
      const float* ktile = kt + (j0 / BK) * dim * BK;
      if (!pack_all) {
        ktile = kt;
        pack_transposed(kh + j0 * dim, nk, dim, kt);
      }
      auto lim = [&](int64_t i) { return attn_row_limit(p, i0 + i, j0, nk); };
      const int64_t ncv_tile = round_up_w(lim(nq - 1));
      attn_gemm<false>(nq, qh + i0 * dim, dim, 1, ktile, BK, s, BK,
                       [&](int64_t r0, int rows, int64_t& n, int64_t& k0, int64_t& k1) {
                         n = round_up_w(lim(r0 + rows - 1));
                         k0 = 0;
                         k1 = dim;
                       });
      for (int64_t i = 0; i < nq; ++i) {
        float* row = s + i * BK;
        const int64_t li = lim(i), nc = round_up_w(li);
        if (li == 0) {
          std::memset(row, 0, sizeof(float) * ncv_tile);
          continue;
        }
        attn_scale_mask_row(row, li, nc, p, b, h, i0 + i, j0);
        vf vmx = load(row);
        for (int64_t c = W; c < nc; c += W) vmx = vmax(vmx, load(row + c));
        const float bm = hmax_tree(vmx);
        const float mnew = bm > mrow[i] ? bm : mrow[i];
        if (mnew == ninf) {  // everything so far masked: nothing to add
          std::memset(row, 0, sizeof(float) * ncv_tile);
          continue;
        }
        const float alpha = mrow[i] == ninf ? 0.0f : sexp(mrow[i] - mnew);
        const vf vm = splat(mnew);
        vf acc = splat(0.0f);
        for (int64_t c = 0; c < nc; c += W) {
          vf e = vexp(load(row + c) - vm);
          acc += e;
          store(row + c, e);
        }
        for (int64_t c = nc; c < ncv_tile; c += W) store(row + c, splat(0.0f));
        lrow[i] = lrow[i] * alpha + hsum_tree(acc);
        if (mrow[i] != ninf && alpha != 1.0f) {
          float* orow = o + i * dimp;
          const vf va = splat(alpha);
          for (int64_t d = 0; d < dimp; d += W) store(orow + d, load(orow + d) * va);
        }
        mrow[i] = mnew;
      }
      attn_gemm<true>(nq, s, BK, 1, vb + j0 * ldv, ldv, o, dimp,
                      [&](int64_t r0, int rows, int64_t& n, int64_t& k0, int64_t& k1) {
                        n = dimp;
                        k0 = 0;
                        k1 = lim(r0 + rows - 1);
                      });
    }
    for (int64_t i = 0; i < nq; ++i) {
      float* dst = out + (head * p.tq + i0 + i) * dim;
      if (lrow[i] == 0.0f) {
        std::memset(dst, 0, sizeof(float) * dim);
        lse[head * p.tq + i0 + i] = ninf;
        continue;
      }
      const float inv = 1.0f / lrow[i];
      const float* orow = o + i * dimp;
      for (int64_t d = 0; d < dim; ++d) dst[d] = orow[d] * inv;
      lse[head * p.tq + i0 + i] = mrow[i] + std::log(lrow[i]);
    }
  }
}

// Backward for one head. Key tiles outer (their dK, dV stay in scratch), query tiles inner:
// P is recomputed from lse, then dV += Pᵀ·dO, dS = P∘(dP − rowsum(dO∘O))·scale with dP = dO·Vᵀ,
// dK += dSᵀ·Q and dQ += dS·K, all on the micro-kernel with causal ranges.
void attention_backward_task(const float* q, const float* k, const float* v, const float* out, const float* lse,
                             const float* gout, const AttnParams& p, int64_t b, int64_t h, float* gq, float* gk,
                             float* gv, float* scratch) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const int64_t dim = p.dim, dimp = round_up_w(dim), head = b * p.heads + h;
  const bool padded = dimp != dim;
  const int64_t qoff = head * p.tq * dim, koff = head * p.tk * dim;
  const float *qh = q + qoff, *kh = k + koff, *vh = v + koff, *oh = out + qoff, *goh = gout + qoff;
  const float* lh = lse + head * p.tq;
  float *gqh = gq + qoff, *gkh = gk + koff, *gvh = gv + koff;
  const int64_t dp16 = attn_dim_padded(dim);
  float* kt = scratch;
  float* vt = kt + dim * BK;
  float* s = vt + dim * BK;
  float* ds = s + BQ * BK;
  float* dkt = ds + BQ * BK;
  float* dvt = dkt + BK * dp16;
  float* extra = dvt + BK * dp16;
  float* delta = extra + (attn_needs_padding(dim) ? (3 * p.tq + p.tk) * dp16 : 0);
  // Row-major operands with rows dimp long (the caller's buffers when dim is a multiple of W).
  const float *qb = qh, *kb = kh, *dob = goh;
  float* dq = gqh;
  if (padded) {
    float* qp = extra;
    float* dop = qp + p.tq * dimp;
    dq = dop + p.tq * dimp;
    float* kp = dq + p.tq * dimp;
    copy_padded(qh, p.tq, dim, dimp, qp);
    copy_padded(goh, p.tq, dim, dimp, dop);
    copy_padded(kh, p.tk, dim, dimp, kp);
    qb = qp;
    dob = dop;
    kb = kp;
  }
  std::memset(dq, 0, sizeof(float) * p.tq * dimp);
  for (int64_t i = 0; i < p.tq; ++i) delta[i] = dot(goh + i * dim, oh + i * dim, dim);
  const int64_t shift = p.tk - p.tq;
  const vf vscale = splat(p.scale);
  for (int64_t j0 = 0; j0 < p.tk; j0 += BK) {
    const int64_t nk = (p.tk - j0) < BK ? (p.tk - j0) : BK;
    std::memset(dkt, 0, sizeof(float) * nk * dimp);
    std::memset(dvt, 0, sizeof(float) * nk * dimp);
    // Causal: the first query row that sees key j0 is j0 - shift.
    int64_t istart = 0;
    if (p.causal) istart = j0 - shift > 0 ? j0 - shift : 0;
    if (istart < p.tq) {
      pack_transposed(kh + j0 * dim, nk, dim, kt);
      pack_transposed(vh + j0 * dim, nk, dim, vt);
    }
    for (int64_t i0 = istart; i0 < p.tq; i0 += BQ) {
      const int64_t nq = (p.tq - i0) < BQ ? (p.tq - i0) : BQ;
      auto lim = [&](int64_t i) { return attn_row_limit(p, i0 + i, j0, nk); };
      const int64_t lim_last = lim(nq - 1);
      const int64_t ncv_tile = round_up_w(lim_last);
      auto score_range = [&](int64_t r0, int rows, int64_t& n, int64_t& k0, int64_t& k1) {
        n = round_up_w(lim(r0 + rows - 1));
        k0 = 0;
        k1 = dim;
      };
      attn_gemm<false>(nq, qb + i0 * dimp, dimp, 1, kt, BK, s, BK, score_range);
      attn_gemm<false>(nq, dob + i0 * dimp, dimp, 1, vt, BK, ds, BK, score_range);
      for (int64_t i = 0; i < nq; ++i) {
        float* row = s + i * BK;
        float* dsrow = ds + i * BK;
        const int64_t li = lim(i), nc = round_up_w(li);
        const float l = lh[i0 + i];
        if (li == 0 || l == ninf) {
          std::memset(row, 0, sizeof(float) * ncv_tile);
          std::memset(dsrow, 0, sizeof(float) * ncv_tile);
          continue;
        }
        attn_scale_mask_row(row, li, nc, p, b, h, i0 + i, j0);
        const vf vl = splat(l), vd = splat(delta[i0 + i]);
        for (int64_t c = 0; c < nc; c += W) {
          vf pr = vexp(load(row + c) - vl);
          store(row + c, pr);
          // dS · scale; exactly 0 where p is 0 so a NaN in v of a dropped key cannot leak in.
          vf dsv = pr * (load(dsrow + c) - vd) * vscale;
          store(dsrow + c, pr == 0.0f ? splat(0.0f) : dsv);
        }
        for (int64_t c = nc; c < ncv_tile; c += W) {
          store(row + c, splat(0.0f));
          store(dsrow + c, splat(0.0f));
        }
      }
      // Keys of this tile that some row of the query tile sees; per block of keys, the first row.
      const int64_t mk = nk < lim_last ? nk : lim_last;
      auto key_range = [&](int64_t r0, int, int64_t& n, int64_t& k0, int64_t& k1) {
        n = dimp;
        k0 = 0;
        if (p.causal) {
          const int64_t first = j0 + r0 - shift - i0;
          k0 = first < 0 ? 0 : (first > nq ? nq : first);
        }
        k1 = nq;
      };
      attn_gemm<true>(mk, s, 1, BK, dob + i0 * dimp, dimp, dvt, dimp, key_range);
      attn_gemm<true>(mk, ds, 1, BK, qb + i0 * dimp, dimp, dkt, dimp, key_range);
      attn_gemm<true>(nq, ds, BK, 1, kb + j0 * dimp, dimp, dq + i0 * dimp, dimp,
                      [&](int64_t r0, int rows, int64_t& n, int64_t& k0, int64_t& k1) {
                        n = dimp;
                        k0 = 0;
                        k1 = lim(r0 + rows - 1);
                      });
    }
    for (int64_t j = 0; j < nk; ++j) {
      std::memcpy(gkh + (j0 + j) * dim, dkt + j * dimp, sizeof(float) * dim);
      std::memcpy(gvh + (j0 + j) * dim, dvt + j * dimp, sizeof(float) * dim);
    }
  }
  if (padded)
    for (int64_t i = 0; i < p.tq; ++i) std::memcpy(gqh + i * dim, dq + i * dimp, sizeof(float) * dim);
}

// ------------------------------------------------------------------ AdamW

void adamw_range(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                 float eps, float weight_decay, float bc1, float bc2) {
  // PyTorch's formulation: p *= 1 − lr·wd; p −= (lr/bc1) · m / (sqrt(v)/sqrt(bc2) + eps).
  const float decay = 1.0f - lr * weight_decay;
  const float step = lr / bc1;
  const float inv_sqrt_bc2 = 1.0f / std::sqrt(bc2);
  const float c1 = 1.0f - beta1, c2 = 1.0f - beta2;
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float mi = beta1 * m[i] + c1 * g;
    const float vi_ = beta2 * v[i] + c2 * g * g;
    m[i] = mi;
    v[i] = vi_;
    param[i] = param[i] * decay - step * mi / (std::sqrt(vi_) * inv_sqrt_bc2 + eps);
  }
}

}  // namespace WEFT_ISA_NS
}  // namespace weft
