// Quantized dot products for AVX2 (+FMA, F16C): vpmaddubsw + vpmaddwd per 32-byte block. Operands
// stay within ±127 (unsigned side ≤ 127 after the sign trick, or ≤ 15 for nibbles), so the int16
// pair sums of vpmaddubsw (≤ 2·127·127 = 32258) never saturate.
#include <immintrin.h>

namespace weft {
namespace {
inline __m256i dot_us(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
inline __m256i dot_acc(__m256i acc, __m256i u, __m256i s) { return _mm256_add_epi32(acc, dot_us(u, s)); }
}  // namespace
}  // namespace weft

#include "quant_impl.h"

namespace weft {
namespace {
const QuantKernels kAvx2 = {
    "avx2 maddubs",
    {dot_rows<row_q8_0, QFormat::Q8_0>, dot_rows<row_q4_0, QFormat::Q4_0>, dot_rows<row_q4_1, QFormat::Q4_1>,
     dot_rows<row_q4_g128, QFormat::Q4_G128>, dot_rows<row_int8, QFormat::INT8>, dot_rows<row_tq2, QFormat::TQ2>},
    int8_gemm_rows,
    quantize_row_q8,
    quantize_row_per_token,
    dot_q4_0x8,
};
}  // namespace

const QuantKernels* quant_kernels_avx2() { return &kAvx2; }

}  // namespace weft
