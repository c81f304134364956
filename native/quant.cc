// Quantized matmul drivers: activation quantization, the scalar reference kernels (the test
// oracle, and the portable path), runtime dispatch (AVX-512 VNNI → AVX2 → portable) and threading
// (weight rows split across the pool: each thread streams its own share of W once).
#include "quant.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cpu.h"
#include "threadpool.h"

namespace weft {

int64_t qformat_block(QFormat f) {
  switch (f) {
    case QFormat::Q4_G128: return 128;
    case QFormat::TQ2: return 256;
    default: return 32;
  }
}

int64_t qformat_row_bytes(QFormat f, int64_t k) {
  switch (f) {
    case QFormat::Q8_0: return k / 32 * 34;
    case QFormat::Q4_0: return k / 32 * 18;
    case QFormat::Q4_1: return k / 32 * 20;
    case QFormat::Q4_G128: return k / 128 * 68;
    case QFormat::INT8: return k;
    case QFormat::TQ2: return k / 256 * 66;
  }
  return 0;
}

namespace {

// IEEE half → float (exact), for the scalar paths (no F16C in the baseline ISA).
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    int e = -14;
    while ((mant & 0x400) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (static_cast<uint32_t>(e + 127) << 23) | ((mant & 0x3ff) << 13);
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

float f16_at_scalar(const uint8_t* p) { return half_to_float(static_cast<uint16_t>(p[0] | (p[1] << 8))); }

int32_t dot32_signed(const int8_t* w, const int8_t* a) {
  int32_t s = 0;
  for (int j = 0; j < 32; ++j) s += static_cast<int32_t>(w[j]) * a[j];
  return s;
}

// Scalar references: dequantize each block's codes, take the exact integer dot with the Q8
// activation block, scale by d_w·d_x; the same integers the SIMD kernels compute.
float ref_row(QFormat f, const uint8_t* w, const int8_t* a, const float* ad, int64_t nb, float row_scale) {
  float acc = 0.0f;
  int8_t codes[32];
  switch (f) {
    case QFormat::Q8_0:
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = w + b * 34;
        acc += static_cast<float>(dot32_signed(reinterpret_cast<const int8_t*>(blk + 2), a + 32 * b)) *
               (f16_at_scalar(blk) * ad[b]);
      }
      return acc;
    case QFormat::Q4_0:
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = w + b * 18;
        for (int j = 0; j < 16; ++j) {
          codes[j] = static_cast<int8_t>((blk[2 + j] & 15) - 8);
          codes[j + 16] = static_cast<int8_t>((blk[2 + j] >> 4) - 8);
        }
        acc += static_cast<float>(dot32_signed(codes, a + 32 * b)) * (f16_at_scalar(blk) * ad[b]);
      }
      return acc;
    case QFormat::Q4_1: {
      float accm = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = w + b * 20;
        int32_t sa = 0;
        for (int j = 0; j < 16; ++j) {
          codes[j] = static_cast<int8_t>(blk[4 + j] & 15);
          codes[j + 16] = static_cast<int8_t>(blk[4 + j] >> 4);
        }
        for (int j = 0; j < 32; ++j) sa += a[32 * b + j];
        acc += static_cast<float>(dot32_signed(codes, a + 32 * b)) * (f16_at_scalar(blk) * ad[b]);
        accm += static_cast<float>(sa) * (f16_at_scalar(blk + 2) * ad[b]);
      }
      return acc + accm;
    }
    case QFormat::Q4_G128: {
      float accm = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = w + (b / 4) * 68;
        const int s = static_cast<int>(b % 4);  // elements 32s … 32s + 31 of the group
        int32_t sa = 0;
        for (int j = 0; j < 32; ++j) {
          const int e = 32 * s + j;
          const uint8_t byte = blk[4 + (e & 63)];
          codes[j] = static_cast<int8_t>(e < 64 ? (byte & 15) : (byte >> 4));
          sa += a[32 * b + j];
        }
        acc += static_cast<float>(dot32_signed(codes, a + 32 * b)) * (f16_at_scalar(blk) * ad[b]);
        accm += static_cast<float>(sa) * (f16_at_scalar(blk + 2) * ad[b]);
      }
      return acc + accm;
    }
    case QFormat::INT8:
      for (int64_t b = 0; b < nb; ++b) {
        acc += static_cast<float>(dot32_signed(reinterpret_cast<const int8_t*>(w) + 32 * b, a + 32 * b)) * ad[b];
      }
      return row_scale * acc;
    case QFormat::TQ2:
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = w + (b / 8) * 66;
        const int h = static_cast<int>((b % 8) / 4), n = static_cast<int>(b % 4);
        for (int j = 0; j < 32; ++j) codes[j] = static_cast<int8_t>(((blk[32 * h + j] >> (2 * n)) & 3) - 1);
        acc += static_cast<float>(dot32_signed(codes, a + 32 * b)) * (f16_at_scalar(blk + 64) * ad[b]);
      }
      return acc;
  }
  return acc;
}

void ref_dot(QFormat f, const uint8_t* w, const float* row_scales, const QActView& a, int m, int64_t j0, int64_t j1,
             float* y, int64_t ldy) {
  const int64_t nb = a.k / 32, rb = qformat_row_bytes(f, a.k);
  for (int i = 0; i < m; ++i) {
    for (int64_t j = j0; j < j1; ++j) {
      y[i * ldy + j] = ref_row(f, w + j * rb, a.q + i * a.k, a.d + i * nb, nb, row_scales != nullptr ? row_scales[j] : 1.0f);
    }
  }
}

void ref_int8_gemm(const int8_t* xq, const float* xs, int64_t m, const int8_t* w, const float* ws, int64_t k,
                   int64_t j0, int64_t j1, float* y, int64_t ldy) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = j0; j < j1; ++j) {
      int32_t s = 0;
      for (int64_t p = 0; p < k; ++p) s += static_cast<int32_t>(xq[i * k + p]) * w[j * k + p];
      y[i * ldy + j] = static_cast<float>(s) * ws[j] * xs[i];
    }
  }
}

const QuantKernels* active_kernels() {
  const KernelPath p = kernel_path();
  if (p == KernelPath::Avx512 && cpu_features().avx512vnni) return quant_kernels_avx512vnni();
  if (p == KernelPath::Avx512 || p == KernelPath::Avx2) return quant_kernels_avx2();
  return nullptr;  // portable: the scalar reference
}

// Below this many multiply-adds a product stays on the calling thread.
constexpr int64_t kParallelMinMacs = int64_t{1} << 18;

template <class Fn>
void split_rows(int64_t n, int64_t macs, int64_t align, const Fn& fn) {
  int nt = 1;
  if (macs >= kParallelMinMacs) nt = static_cast<int>(std::min<int64_t>(num_threads(), macs / kParallelMinMacs));
  nt = static_cast<int>(std::min<int64_t>(nt, (n + align - 1) / align));
  if (nt <= 1) {
    fn(int64_t{0}, n);
    return;
  }
  parallel_run(
      [&](int tid, int t) {
        const int64_t units = (n + align - 1) / align;
        const int64_t b = std::min(n, units * tid / t * align), e = std::min(n, units * (tid + 1) / t * align);
        if (b < e) fn(b, e);
      },
      nt);
}

void add_bias(float* y, const float* bias, int64_t m, int64_t n) {
  if (bias == nullptr) return;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) y[i * n + j] += bias[j];
}

}  // namespace

namespace {
// C's roundf (halves away from zero) without a libm call: for a float v, (double)v ± 0.5 is exact,
// so truncating it rounds exactly as roundf does. |v| ≤ 127.5 here.
inline int8_t round_to_i8(float v) {
  const double r = static_cast<double>(v) + (v < 0.0f ? -0.5 : 0.5);
  return static_cast<int8_t>(static_cast<int>(r));
}

template <class Fn>
void rows_parallel(int64_t m, int64_t k, const Fn& fn) {
  if (m * k < (int64_t{1} << 16) || m < 2) {
    fn(int64_t{0}, m);
    return;
  }
  parallel_for(m, 1, fn);
}
}  // namespace

// llama.cpp's quantize_row_q8_0: d = amax/127, q = round(x·(1/d)) (roundf: halves away from zero).
void quantize_act_q8(const float* x, int64_t m, int64_t k, int8_t* q, float* d, bool scalar) {
  const int64_t nb = k / 32;
  const QuantKernels* K = scalar ? nullptr : active_kernels();
  if (K != nullptr) {
    rows_parallel(m, k, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) K->quantize_row_q8(x + i * k, k, q + i * k, d + i * nb);
    });
    return;
  }
  rows_parallel(m, k, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      for (int64_t b = 0; b < nb; ++b) {
        const float* xb = x + i * k + 32 * b;
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float db = amax / 127.0f;
        const float id = db != 0.0f ? 1.0f / db : 0.0f;
        d[i * nb + b] = db;
        int8_t* qb = q + i * k + 32 * b;
        for (int j = 0; j < 32; ++j) qb[j] = round_to_i8(xb[j] * id);
      }
    }
  });
}

// Per-token (per row) symmetric: s = amax/127 over the whole row.
void quantize_act_per_token(const float* x, int64_t m, int64_t k, int8_t* q, float* s, bool scalar) {
  const QuantKernels* K = scalar ? nullptr : active_kernels();
  if (K != nullptr) {
    rows_parallel(m, k, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) s[i] = K->quantize_row_per_token(x + i * k, k, q + i * k);
    });
    return;
  }
  rows_parallel(m, k, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* xr = x + i * k;
      float amax = 0.0f;
      for (int64_t p = 0; p < k; ++p) amax = std::max(amax, std::fabs(xr[p]));
      const float si = amax / 127.0f;
      const float id = si != 0.0f ? 1.0f / si : 0.0f;
      s[i] = si;
      int8_t* qr = q + i * k;
      for (int64_t p = 0; p < k; ++p) qr[p] = round_to_i8(xr[p] * id);
    }
  });
}

int64_t q4_0x8_bytes(int64_t n, int64_t k) { return n / 8 * (k / 32) * 144; }

void repack_q4_0x8(const uint8_t* w, int64_t n, int64_t k, uint8_t* out) {
  const int64_t nb = k / 32, rb = nb * 18;
  for (int64_t g = 0; g < n / 8; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* gs = out + (g * nb + b) * 144;
      uint8_t* gq = gs + 16;
      for (int r = 0; r < 8; ++r) {
        const uint8_t* blk = w + (8 * g + r) * rb + b * 18;
        gs[2 * r] = blk[0];
        gs[2 * r + 1] = blk[1];
        for (int u = 0; u < 4; ++u)
          for (int e = 0; e < 4; ++e) gq[32 * u + 4 * r + e] = blk[2 + 4 * u + e];
      }
    }
  }
}

void quant_matmul(QFormat f, const uint8_t* w, const float* row_scales, const float* x, const float* bias, float* y,
                  int64_t m, int64_t n, int64_t k, bool ref, const uint8_t* packed) {
  if (m <= 0 || n <= 0) return;
  // Small products (decode: ~70 calls a token with the same few sizes) reuse per-thread buffers;
  // large ones (prefill) get their own, so no thread keeps a prefill's worth of memory.
  struct ActBuffers {
    std::vector<int8_t> q;
    std::vector<float> d, s;
    std::vector<int32_t> si;
  };
  thread_local ActBuffers reused;
  ActBuffers own;
  const int64_t nb = k / 32;
  ActBuffers& buf = m * k <= (int64_t{1} << 20) ? reused : own;
  if (buf.q.size() < static_cast<size_t>(m * k)) buf.q.resize(static_cast<size_t>(m * k));
  if (buf.d.size() < static_cast<size_t>(m * nb)) {
    buf.d.resize(static_cast<size_t>(m * nb));
    buf.s.resize(static_cast<size_t>(m * nb));
    buf.si.resize(static_cast<size_t>(m * nb));
  }
  std::vector<int8_t>& q = buf.q;
  std::vector<float>& d = buf.d;
  std::vector<float>& s = buf.s;
  std::vector<int32_t>& si = buf.si;
  quantize_act_q8(x, m, k, q.data(), d.data(), ref);
  for (int64_t b = 0; b < m * nb; ++b) {
    int32_t sum = 0;
    for (int j = 0; j < 32; ++j) sum += q[static_cast<size_t>(32 * b + j)];
    si[static_cast<size_t>(b)] = sum;
    s[static_cast<size_t>(b)] = d[static_cast<size_t>(b)] * static_cast<float>(sum);
  }
  const QActView a{q.data(), d.data(), s.data(), k, si.data()};
  const float* rs = f == QFormat::INT8 ? row_scales : nullptr;
  const QuantKernels* K = ref ? nullptr : active_kernels();
  if (K == nullptr) {
    if (ref) ref_dot(f, w, rs, a, static_cast<int>(m), 0, n, y, n);
    else split_rows(n, m * n * k, 4, [&](int64_t j0, int64_t j1) { ref_dot(f, w, rs, a, static_cast<int>(m), j0, j1, y, n); });
  } else {
    // Whole groups of 8 rows through the repacked kernel when there is one; shares are split at
    // multiples of 8 so every row takes the same path whatever the thread count.
    const bool use_packed = packed != nullptr && f == QFormat::Q4_0 && K->dot_q4_0x8 != nullptr;
    const int64_t n8 = use_packed ? n / 8 * 8 : 0;
    // m rows at a time through the kernels (int); large m is chunked so the count stays small.
    constexpr int64_t kRowsPerCall = 1 << 20;
    for (int64_t i0 = 0; i0 < m; i0 += kRowsPerCall) {
      const int mi = static_cast<int>(std::min(kRowsPerCall, m - i0));
      const QActView ai{a.q + i0 * k, a.d + i0 * nb, a.s + i0 * nb, k, a.si + i0 * nb};
      split_rows(n, mi * n * k, use_packed ? 8 : 4, [&](int64_t j0, int64_t j1) {
        const int64_t p1 = std::min(j1, n8);
        if (j0 < p1) K->dot_q4_0x8(packed, ai, mi, j0 / 8, p1 / 8, y + i0 * n, n);
        const int64_t r0 = std::max(j0, n8);
        if (r0 < j1) K->dot[static_cast<int>(f)](w, rs, ai, mi, r0, j1, y + i0 * n, n);
      });
    }
  }
  add_bias(y, bias, m, n);
}

void int8_gemm(const int8_t* w, const float* ws, const float* x, const float* bias, float* y, int64_t m, int64_t n,
               int64_t k, bool ref) {
  if (m <= 0 || n <= 0) return;
  std::vector<int8_t> q(static_cast<size_t>(m * k));
  std::vector<float> s(static_cast<size_t>(m));
  quantize_act_per_token(x, m, k, q.data(), s.data(), ref);
  const QuantKernels* K = ref ? nullptr : active_kernels();
  if (K == nullptr) {
    if (ref) ref_int8_gemm(q.data(), s.data(), m, w, ws, k, 0, n, y, n);
    else split_rows(n, m * n * k, 4, [&](int64_t j0, int64_t j1) { ref_int8_gemm(q.data(), s.data(), m, w, ws, k, j0, j1, y, n); });
  } else {
    // Panels of 64 columns for the blocked kernel.
    split_rows(n, m * n * k, 64, [&](int64_t j0, int64_t j1) { K->int8_gemm(q.data(), s.data(), m, w, ws, k, j0, j1, y, n); });
  }
  add_bias(y, bias, m, n);
}

const char* quant_kernel_name() {
  const QuantKernels* K = active_kernels();
  return K == nullptr ? "portable scalar" : K->name;
}

}  // namespace weft
