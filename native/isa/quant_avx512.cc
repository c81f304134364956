// Quantized kernels for AVX-512 with VNNI (compiled with -mavx512vnni; chosen only when cpuid reports
// it): the per-block dot products use vpdpbusd on ymm (one instruction per 32-byte block instead of
// vpmaddubsw + vpmaddwd), and the W8A8 GEMM is a register-tiled zmm kernel over packed weights.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <new>

namespace weft {
namespace {
inline __m256i dot_us(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
inline __m256i dot_acc(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
}  // namespace
}  // namespace weft

#include "quant_impl.h"

namespace weft {
namespace {

struct ByteBuffer {
  uint8_t* data = nullptr;
  size_t capacity = 0;
  uint8_t* get(size_t n) {
    if (n > capacity) {
      std::free(data);
      const size_t bytes = (n + 63) / 64 * 64;
      data = static_cast<uint8_t*>(std::aligned_alloc(64, bytes));
      if (data == nullptr) throw std::bad_alloc();
      capacity = bytes;
    }
    return data;
  }
  ~ByteBuffer() { std::free(data); }
};
thread_local ByteBuffer tl_act;
thread_local ByteBuffer tl_panel;
thread_local ByteBuffer tl_tiles;

constexpr int kMR = 6;   // activation rows per register tile
constexpr int kNV = 4;   // zmm vectors of 16 output columns per tile
constexpr int kNR = 16 * kNV;
constexpr int64_t kKC4 = 64;  // k words (4 bytes) per L1-resident slice of a weight panel

// W8A8 INT8 GEMM. vpdpbusd multiplies unsigned by signed bytes, so activations are offset by 128
// (u = q + 128) and 128·Σ_p w[j][p] is subtracted from each column's int32 sum: exact integers, so
// the result equals the reference's float(Σ q·w)·ws[j]·xs[i] bit for bit. Weights are packed per
// 64-column panel as k/4 rows of 64 int32 words (4 consecutive k bytes of one column each): one
// broadcast activation word times four zmm weight vectors is 4 vpdpbusd on a 6×64 int32 tile.
void int8_gemm_vnni(const int8_t* xq, const float* xs, int64_t m, const int8_t* w, const float* ws, int64_t k,
                    int64_t j0, int64_t j1, float* y, int64_t ldy) {
  const int64_t kp = (k + 3) / 4 * 4, k4 = kp / 4;
  // Offset activations; the zero padding past k becomes 128, which meets zero weight bytes.
  uint8_t* ua = tl_act.get(static_cast<size_t>(m * kp));
  for (int64_t i = 0; i < m; ++i) {
    const int8_t* src = xq + i * k;
    uint8_t* dst = ua + i * kp;
    for (int64_t p = 0; p < k; ++p) dst[p] = static_cast<uint8_t>(src[p] + 128);
    for (int64_t p = k; p < kp; ++p) dst[p] = 128;
  }
  int32_t* panel = reinterpret_cast<int32_t*>(tl_panel.get(static_cast<size_t>(k4 * kNR * 4 + kNR * 4)));
  int32_t* corr = panel + k4 * kNR;
  int32_t* cbuf = reinterpret_cast<int32_t*>(tl_tiles.get(static_cast<size_t>((m + kMR) * kNR * 4)));
  for (int64_t jp = j0; jp < j1; jp += kNR) {
    const int cols = static_cast<int>(std::min<int64_t>(kNR, j1 - jp));
    for (int c = 0; c < kNR; ++c) {
      if (c >= cols) {
        for (int64_t q = 0; q < k4; ++q) panel[q * kNR + c] = 0;
        corr[c] = 0;
        continue;
      }
      const int8_t* wj = w + (jp + c) * k;
      int32_t sum = 0;
      for (int64_t q = 0; q < k4; ++q) {
        int32_t word = 0;
        const int64_t p = 4 * q;
        if (p + 4 <= k) {
          std::memcpy(&word, wj + p, 4);
        } else {
          uint8_t tail[4] = {0, 0, 0, 0};
          for (int64_t t = p; t < k; ++t) tail[t - p] = static_cast<uint8_t>(wj[t]);
          std::memcpy(&word, tail, 4);
        }
        panel[q * kNR + c] = word;
      }
      for (int64_t p = 0; p < k; ++p) sum += wj[p];
      corr[c] = 128 * sum;
    }
    const __mmask16 last_mask =
        static_cast<__mmask16>(cols % 16 == 0 ? 0xffff : (1u << (cols % 16)) - 1u);
    // k in blocks of kKC4 words: the 16 KB slice of the panel stays in L1 while every activation
    // row block passes over it; partial int32 tiles wait in cbuf (L2) between slices.
    for (int64_t kb = 0; kb < k4; kb += kKC4) {
      const int64_t qe = std::min(k4, kb + kKC4);
      const bool first = kb == 0, last = qe == k4;
      for (int64_t i0 = 0; i0 < m; i0 += kMR) {
        const int rows = static_cast<int>(std::min<int64_t>(kMR, m - i0));
        const uint8_t* ar[kMR];
        for (int r = 0; r < kMR; ++r) ar[r] = ua + std::min<int64_t>(i0 + r, m - 1) * kp;
        int32_t* ct = cbuf + i0 * kNR;
        __m512i acc[kMR][kNV];
#pragma GCC unroll 8
        for (int r = 0; r < kMR; ++r)
#pragma GCC unroll 4
          for (int v = 0; v < kNV; ++v)
            acc[r][v] = first ? _mm512_setzero_si512() : _mm512_load_si512(ct + r * kNR + 16 * v);
        const int32_t* bp = panel + kb * kNR;
        for (int64_t q = kb; q < qe; ++q) {
          __m512i bv[kNV];
#pragma GCC unroll 4
          for (int v = 0; v < kNV; ++v) bv[v] = _mm512_load_si512(bp + 16 * v);
#pragma GCC unroll 8
          for (int r = 0; r < kMR; ++r) {
            int32_t word;
            std::memcpy(&word, ar[r] + 4 * q, 4);
            const __m512i av = _mm512_set1_epi32(word);
#pragma GCC unroll 4
            for (int v = 0; v < kNV; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], av, bv[v]);
          }
          bp += kNR;
        }
        // Every tile row goes back to cbuf (rows past m land in its spare rows): with no
        // data-dependent indexing of acc, the compiler keeps all 24 accumulators in registers.
#pragma GCC unroll 8
        for (int r = 0; r < kMR; ++r)
#pragma GCC unroll 4
          for (int v = 0; v < kNV; ++v) _mm512_store_si512(ct + r * kNR + 16 * v, acc[r][v]);
        if (!last) continue;
        for (int r = 0; r < rows; ++r) {
          float* yr = y + (i0 + r) * ldy + jp;
          const __m512 xsv = _mm512_set1_ps(xs[i0 + r]);
          for (int v = 0; v < kNV; ++v) {
            const int c0 = 16 * v;
            if (c0 >= cols) break;
            const __m512i exact = _mm512_sub_epi32(_mm512_load_si512(ct + r * kNR + c0), _mm512_loadu_si512(corr + c0));
            const __mmask16 mask = c0 + 16 <= cols ? static_cast<__mmask16>(0xffff) : last_mask;
            const __m512 wsv = _mm512_maskz_loadu_ps(mask, ws + jp + c0);
            const __m512 out = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(exact), wsv), xsv);
            _mm512_mask_storeu_ps(yr + c0, mask, out);
          }
        }
      }
    }
  }
}

const QuantKernels kAvx512Vnni = {
    "avx512 vnni",
    {dot_rows<row_q8_0, QFormat::Q8_0>, dot_rows<row_q4_0, QFormat::Q4_0>, dot_rows<row_q4_1, QFormat::Q4_1>,
     dot_rows<row_q4_g128, QFormat::Q4_G128>, dot_rows<row_int8, QFormat::INT8>, dot_rows<row_tq2, QFormat::TQ2>},
    int8_gemm_vnni,
    quantize_row_q8,
    quantize_row_per_token,
    dot_q4_0x8,
};

}  // namespace

const QuantKernels* quant_kernels_avx512vnni() { return &kAvx512Vnni; }

}  // namespace weft
