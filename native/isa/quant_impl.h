// Per-block quantized dot products, shared by the AVX2 and AVX-512 VNNI translation units: each
// includes this file after defining `dot_us(u, s)` — the 8 int32 lane sums of a 32-byte
// unsigned × signed product (AVX2: maddubs + madd; VNNI: vpdpbusd on ymm) — and `dot_acc(acc, u, s)`,
// the same added to acc.
// Every weight block is expanded to 32 int8 codes per activation block and dotted exactly; the
// integer sum is scaled by d_w · d_x in f32 (llama.cpp's ggml_vec_dot_q*_q8_0 scheme).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "quant.h"

namespace weft {
namespace {

inline float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Signed × signed through the unsigned × signed instruction: |w| · (a with w's sign). Codes never
// reach −128 (weights and activations are within ±127), so abs cannot overflow.
inline __m256i dot_ss(__m256i w, __m256i a) { return dot_us(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w)); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// A function, not a global: a namespace-scope vector would run AVX code at load time on any CPU.
inline __m256i low_nibbles() { return _mm256_set1_epi8(0x0f); }

// 16 bytes of nibbles → 32 codes: bytes' low nibbles first (elements 0–15), then high (16–31).
inline __m256i unpack_nibbles16(const uint8_t* p) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
  return _mm256_and_si256(both, low_nibbles());
}

float row_q8_0(const uint8_t* w, const int8_t* a, const float* ad, const float*, int64_t nb, float) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const uint8_t* b0 = w + b * 34;
    const uint8_t* b1 = b0 + 34;
    const __m256i p0 = dot_ss(load32(b0 + 2), load32(a + 32 * b));
    const __m256i p1 = dot_ss(load32(b1 + 2), load32(a + 32 * b + 32));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(f16_at(b0) * ad[b]), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(f16_at(b1) * ad[b + 1]), acc1);
  }
  for (; b < nb; ++b) {
    const uint8_t* b0 = w + b * 34;
    const __m256i p0 = dot_ss(load32(b0 + 2), load32(a + 32 * b));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(f16_at(b0) * ad[b]), acc0);
  }
  return hsum(_mm256_add_ps(acc0, acc1));
}

// Σ d·(q − 8)·d_x·a = d·(d_x·Σ q·a) − 8·d·(d_x·Σ a): unsigned nibbles go straight into the
// u8 × s8 product, and the offset costs one scalar multiply-add per block (s = d_x·Σ a, precomputed).
float row_q4_0(const uint8_t* w, const int8_t* a, const float* ad, const float* as, int64_t nb, float) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float corr = 0.0f;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const uint8_t* b0 = w + b * 18;
    const uint8_t* b1 = b0 + 18;
    const float d0 = f16_at(b0), d1 = f16_at(b1);
    const __m256i p0 = dot_us(unpack_nibbles16(b0 + 2), load32(a + 32 * b));
    const __m256i p1 = dot_us(unpack_nibbles16(b1 + 2), load32(a + 32 * b + 32));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(d0 * ad[b]), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(d1 * ad[b + 1]), acc1);
    corr += d0 * as[b] + d1 * as[b + 1];
  }
  for (; b < nb; ++b) {
    const uint8_t* b0 = w + b * 18;
    const float d0 = f16_at(b0);
    const __m256i p0 = dot_us(unpack_nibbles16(b0 + 2), load32(a + 32 * b));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(d0 * ad[b]), acc0);
    corr += d0 * as[b];
  }
  return hsum(_mm256_add_ps(acc0, acc1)) - 8.0f * corr;
}

// Σ_j (d·q_j + m)·d_x·a_j = d·d_x·Σ q_j a_j + m·(d_x·Σ a_j).
float row_q4_1(const uint8_t* w, const int8_t* a, const float* ad, const float* as, int64_t nb, float) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float accm = 0.0f;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const uint8_t* b0 = w + b * 20;
    const uint8_t* b1 = b0 + 20;
    const __m256i p0 = dot_us(unpack_nibbles16(b0 + 4), load32(a + 32 * b));
    const __m256i p1 = dot_us(unpack_nibbles16(b1 + 4), load32(a + 32 * b + 32));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(f16_at(b0) * ad[b]), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(f16_at(b1) * ad[b + 1]), acc1);
    accm += f16_at(b0 + 2) * as[b] + f16_at(b1 + 2) * as[b + 1];
  }
  for (; b < nb; ++b) {
    const uint8_t* b0 = w + b * 20;
    const __m256i p0 = dot_us(unpack_nibbles16(b0 + 4), load32(a + 32 * b));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(f16_at(b0) * ad[b]), acc0);
    accm += f16_at(b0 + 2) * as[b];
  }
  return hsum(_mm256_add_ps(acc0, acc1)) + accm;
}

// 128-weight groups (68 B): byte j's low nibble is element j, its high nibble element j + 64, so
// the four activation blocks are: low(bytes 0–31), low(32–63), high(0–31), high(32–63).
float row_q4_g128(const uint8_t* w, const int8_t* a, const float* ad, const float* as, int64_t nb, float) {
  const __m256i lo = low_nibbles();
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float accm = 0.0f;
  const int64_t groups = nb / 4;
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* b0 = w + g * 68;
    const float d = f16_at(b0), m = f16_at(b0 + 2);
    const int8_t* ag = a + 128 * g;
    const float* adg = ad + 4 * g;
    const __m256i r0 = load32(b0 + 4), r1 = load32(b0 + 36);
    const __m256i p0 = dot_us(_mm256_and_si256(r0, lo), load32(ag));
    const __m256i p1 = dot_us(_mm256_and_si256(r1, lo), load32(ag + 32));
    const __m256i p2 = dot_us(_mm256_and_si256(_mm256_srli_epi16(r0, 4), lo), load32(ag + 64));
    const __m256i p3 = dot_us(_mm256_and_si256(_mm256_srli_epi16(r1, 4), lo), load32(ag + 96));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(d * adg[0]), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(d * adg[1]), acc1);
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p2), _mm256_set1_ps(d * adg[2]), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p3), _mm256_set1_ps(d * adg[3]), acc1);
    accm += m * ((as[4 * g] + as[4 * g + 1]) + (as[4 * g + 2] + as[4 * g + 3]));
  }
  return hsum(_mm256_add_ps(acc0, acc1)) + accm;
}

float row_int8(const uint8_t* w, const int8_t* a, const float* ad, const float*, int64_t nb, float row_scale) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m256i p0 = dot_ss(load32(w + 32 * b), load32(a + 32 * b));
    const __m256i p1 = dot_ss(load32(w + 32 * b + 32), load32(a + 32 * b + 32));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(ad[b]), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(ad[b + 1]), acc1);
  }
  for (; b < nb; ++b) {
    const __m256i p0 = dot_ss(load32(w + 32 * b), load32(a + 32 * b));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(ad[b]), acc0);
  }
  return row_scale * hsum(_mm256_add_ps(acc0, acc1));
}

// TQ2_0 blocks (66 B / 256): in half h, bit pair n of byte m is element 128h + 32n + m, so the
// shifted 32-byte halves give whole activation blocks; weight = d·(code − 1) with code 0/1/2, so
// Σ = d·(d_x·Σ code·a − d_x·Σ a).
float row_tq2(const uint8_t* w, const int8_t* a, const float* ad, const float* as, int64_t nb, float) {
  const __m256i three = _mm256_set1_epi8(3);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float corr = 0.0f;
  const int64_t groups = nb / 8;
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* b0 = w + g * 66;
    const float d = f16_at(b0 + 64);
    const int8_t* ag = a + 256 * g;
    const float* adg = ad + 8 * g;
    const __m256i r0 = load32(b0), r1 = load32(b0 + 32);
#pragma GCC unroll 4
    for (int n = 0; n < 4; ++n) {
      const __m256i c0 = _mm256_and_si256(_mm256_srli_epi16(r0, 2 * n), three);
      const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(r1, 2 * n), three);
      acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_us(c0, load32(ag + 32 * n))), _mm256_set1_ps(d * adg[n]), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_us(c1, load32(ag + 128 + 32 * n))), _mm256_set1_ps(d * adg[4 + n]), acc1);
    }
    const float* asg = as + 8 * g;
    corr += d * (((asg[0] + asg[1]) + (asg[2] + asg[3])) + ((asg[4] + asg[5]) + (asg[6] + asg[7])));
  }
  return hsum(_mm256_add_ps(acc0, acc1)) - corr;
}

// C's roundf (halves away from zero) on 8 floats, exactly: truncate, then step away from zero when
// the (exact) remainder is at least one half. Returns the int32 results.
inline __m256i roundf_epi32(__m256 v) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
  const __m256 step = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
  const __m256 ge = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  return _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(ge, step)));
}

inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 32 scaled floats → 32 int8 in order (the packs interleave 128-bit lanes; the permute undoes it).
inline void store_q32(const float* x, float id, int8_t* q) {
  const __m256 vid = _mm256_set1_ps(id);
  const __m256i i0 = roundf_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), vid));
  const __m256i i1 = roundf_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), vid));
  const __m256i i2 = roundf_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), vid));
  const __m256i i3 = roundf_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), vid));
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

inline __m256 abs_max32(const float* x, __m256 acc) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int u = 0; u < 32; u += 8) acc = _mm256_max_ps(acc, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + u)));
  return acc;
}

// One row into Q8 blocks of 32 (same float operations as the scalar quantize_act_q8).
[[maybe_unused]] void quantize_row_q8(const float* x, int64_t k, int8_t* q, float* d) {
  for (int64_t b = 0; b < k / 32; ++b) {
    const float amax = hmax(abs_max32(x + 32 * b, _mm256_setzero_ps()));
    const float db = amax / 127.0f;
    d[b] = db;
    store_q32(x + 32 * b, db != 0.0f ? 1.0f / db : 0.0f, q + 32 * b);
  }
}

// One row per token (one scale): returns the scale. The tail past the last 32 is scalar.
[[maybe_unused]] float quantize_row_per_token(const float* x, int64_t k, int8_t* q) {
  const int64_t k32 = k / 32 * 32;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t p = 0; p < k32; p += 32) acc = abs_max32(x + p, acc);
  float amax = hmax(acc);
  for (int64_t p = k32; p < k; ++p) amax = amax > __builtin_fabsf(x[p]) ? amax : __builtin_fabsf(x[p]);
  const float s = amax / 127.0f;
  const float id = s != 0.0f ? 1.0f / s : 0.0f;
  for (int64_t p = 0; p < k32; p += 32) store_q32(x + p, id, q + p);
  for (int64_t p = k32; p < k; ++p) {
    const float v = x[p] * id;
    q[p] = static_cast<int8_t>(static_cast<int>(static_cast<double>(v) + (v < 0.0f ? -0.5 : 0.5)));
  }
  return s;
}

using RowFn = float (*)(const uint8_t*, const int8_t*, const float*, const float*, int64_t, float);

// Weight rows in chunks of 16 against every activation row: the chunk stays in L1/L2 while the
// activation rows stream past it (m > 1), and m = 1 degenerates to one pass over W.
template <RowFn ROW, QFormat F>
void dot_rows(const uint8_t* w, const float* row_scales, const QActView& a, int m, int64_t j0, int64_t j1, float* y,
              int64_t ldy) {
  const int64_t k = a.k, nb = k / 32;
  const int64_t rb = qformat_row_bytes(F, k);
  constexpr int64_t kChunk = 16;
  for (int64_t jc = j0; jc < j1; jc += kChunk) {
    const int64_t je = jc + kChunk < j1 ? jc + kChunk : j1;
    for (int i = 0; i < m; ++i) {
      const int8_t* aq = a.q + static_cast<int64_t>(i) * k;
      const float* ad = a.d + static_cast<int64_t>(i) * nb;
      const float* as = a.s + static_cast<int64_t>(i) * nb;
      float* yi = y + static_cast<int64_t>(i) * ldy;
      for (int64_t j = jc; j < je; ++j) yi[j] = ROW(w + j * rb, aq, ad, as, nb, row_scales != nullptr ? row_scales[j] : 1.0f);
    }
  }
}

// q4_0x8 (see quant.h): per activation block, eight 32-byte code vectors C_t (lane r: row r's
// elements 4t … 4t + 3) meet the broadcast activation word a[4t … 4t + 3]; the int32 lanes are the
// exact Σ q·a of eight rows, minus 8·Σa (the offset) in integers, then scaled by d_w·d_x per lane.
// Four independent accumulation chains per block and two float accumulators (even / odd blocks)
// keep the multiply-add latencies overlapped.
inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

void dot_q4_0x8(const uint8_t* packed, const QActView& a, int m, int64_t g0, int64_t g1, float* y, int64_t ldy) {
  const int64_t k = a.k, nb = k / 32;
  const __m256i lo = low_nibbles();
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t g = g0; g < g1; ++g) {
    const uint8_t* gp = packed + g * nb * 144;
    for (int i = 0; i < m; ++i) {
      const int8_t* aq = a.q + static_cast<int64_t>(i) * k;
      const float* ad = a.d + static_cast<int64_t>(i) * nb;
      const int32_t* ai = a.si + static_cast<int64_t>(i) * nb;
      __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
#pragma GCC unroll 2
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* q = gp + b * 144 + 16;
        const int8_t* ab = aq + 32 * b;
        const __m256i r0 = load32(q), r1 = load32(q + 32), r2 = load32(q + 64), r3 = load32(q + 96);
        __m256i s0 = dot_acc(zero, _mm256_and_si256(r0, lo), bcast4(ab));
        __m256i s1 = dot_acc(zero, _mm256_and_si256(r1, lo), bcast4(ab + 4));
        __m256i s2 = dot_acc(zero, _mm256_and_si256(r2, lo), bcast4(ab + 8));
        __m256i s3 = dot_acc(zero, _mm256_and_si256(r3, lo), bcast4(ab + 12));
        s0 = dot_acc(s0, _mm256_and_si256(_mm256_srli_epi16(r0, 4), lo), bcast4(ab + 16));
        s1 = dot_acc(s1, _mm256_and_si256(_mm256_srli_epi16(r1, 4), lo), bcast4(ab + 20));
        s2 = dot_acc(s2, _mm256_and_si256(_mm256_srli_epi16(r2, 4), lo), bcast4(ab + 24));
        s3 = dot_acc(s3, _mm256_and_si256(_mm256_srli_epi16(r3, 4), lo), bcast4(ab + 28));
        const __m256i isum = _mm256_sub_epi32(_mm256_add_epi32(_mm256_add_epi32(s0, s1), _mm256_add_epi32(s2, s3)),
                                              _mm256_set1_epi32(8 * ai[b]));
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gp + b * 144)));
        acc[b & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, _mm256_set1_ps(ad[b])), acc[b & 1]);
      }
      _mm256_storeu_ps(y + static_cast<int64_t>(i) * ldy + 8 * g, _mm256_add_ps(acc[0], acc[1]));
    }
  }
}

}  // namespace
}  // namespace weft

namespace weft {
namespace {

// W8A8 without a blocked kernel: per (i, j) an exact int32 dot over all of k (32-byte steps, then
// a scalar tail), scaled as the reference does: float(sum) · ws[j] · xs[i].
[[maybe_unused]] void int8_gemm_rows(const int8_t* xq, const float* xs, int64_t m, const int8_t* w, const float* ws,
                                     int64_t k, int64_t j0, int64_t j1, float* y, int64_t ldy) {
  const int64_t k32 = k / 32 * 32;
  constexpr int64_t kChunk = 16;
  for (int64_t jc = j0; jc < j1; jc += kChunk) {
    const int64_t je = jc + kChunk < j1 ? jc + kChunk : j1;
    for (int64_t i = 0; i < m; ++i) {
      const int8_t* a = xq + i * k;
      for (int64_t j = jc; j < je; ++j) {
        const int8_t* wj = w + j * k;
        __m256i acc = _mm256_setzero_si256();
        for (int64_t p = 0; p < k32; p += 32) acc = _mm256_add_epi32(acc, dot_ss(load32(wj + p), load32(a + p)));
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
        int32_t total = _mm_cvtsi128_si32(s);
        for (int64_t p = k32; p < k; ++p) total += static_cast<int32_t>(a[p]) * wj[p];
        y[i * ldy + j] = static_cast<float>(total) * ws[j] * xs[i];
      }
    }
  }
}

}  // namespace
}  // namespace weft
