// Quantized matmul kernels: y[m, n] = x[m, k] · Wᵀ (+ bias) with W [n, k] stored in one of the block
// formats of src/compress/quant/formats.ts (q8_0 / q4_0 / q4_1 = GGUF's blocks). Weights are
// dequantized inside the dot product, never materialised:
//  * weight-only formats: each activation row is quantized once per matmul into Q8 blocks of 32
//    (d = amax/127, q = round(x/d), llama.cpp's quantize_row_q8_0) and every block dot product is an
//    exact integer sum, scaled by d_w·d_x and accumulated in f32;
//  * W8A8 (int8 weights, one scale per output row): activations quantized per token (one scale per
//    row of x), an INT8 GEMM (VNNI vpdpbusd where present) accumulates exact int32 sums over all of k.
// Each kernel has a scalar `_ref` version (the test oracle), computing the same integers.
#pragma once
#include <cstdint>

namespace weft {

enum class QFormat { Q8_0 = 0, Q4_0 = 1, Q4_1 = 2, Q4_G128 = 3, INT8 = 4, TQ2 = 5 };

// Weights per block (int8: 32, the activation block its kernel walks in) and bytes of one weight row.
int64_t qformat_block(QFormat f);
int64_t qformat_row_bytes(QFormat f, int64_t k);

// One activation matrix quantized into Q8 blocks of 32: q [m][k], d [m][k/32], and s [m][k/32] =
// d·Σq per block (lets unsigned-code formats fold their offset or minimum in once per block).
struct QActView {
  const int8_t* q;
  const float* d;
  const float* s;
  int64_t k;
  const int32_t* si;  // Σq per block as an integer [m][k/32] (exact offsets for the repacked kernels)
};

// Q4_0 repacked eight rows at a time ("q4_0x8", llama.cpp's block_q4_0x8 idea, our own byte order):
// the dot product of eight rows with one activation block is eight vpdpbusd / maddubs on whole
// registers (lane r = row r) with no horizontal sums, and the eight scales convert in one vcvtph2ps.
// Per group of 8 rows, per block b, 144 bytes: the 8 rows' f16 scales, then 128 bytes of nibbles:
// chunk u (0–3), byte 4r + e = row r's GGUF byte 4u + e (low nibble: element 4u + e, high: 16 + 4u
// + e). One sequential stream per group (scales kept apart from the nibbles made two streams, and
// k = 2048 rows ran at half the bandwidth). Rows past the last whole group stay in the GGUF layout.
int64_t q4_0x8_bytes(int64_t n, int64_t k);
void repack_q4_0x8(const uint8_t* w, int64_t n, int64_t k, uint8_t* out);
// Groups [g0, g1) of a q4_0x8 matrix against activation rows [0, m): y[i·ldy + 8g + r].
using QDotPackedFn = void (*)(const uint8_t* packed, const QActView& a, int m, int64_t g0, int64_t g1, float* y,
                              int64_t ldy);

// Dot products of weight rows [j0, j1) with activation rows [0, m): y[i·ldy + j] = dot(W_j, X_i).
// w points at row 0; row_scales is used by INT8 only.
using QDotFn = void (*)(const uint8_t* w, const float* row_scales, const QActView& a, int m, int64_t j0, int64_t j1,
                        float* y, int64_t ldy);

struct QuantKernels {
  const char* name;
  QDotFn dot[6];  // indexed by QFormat
  // W8A8 block of the INT8 GEMM: xq rows are per-token-quantized activations (int8, row stride k),
  // w int8 [n][k]. y[i][j] = xs[i]·ws[j]·Σ_p xq[i][p]·w[j][p] for i < m, j in [j0, j1). Null: use the
  // generic row-dot version.
  void (*int8_gemm)(const int8_t* xq, const float* xs, int64_t m, const int8_t* w, const float* ws, int64_t k,
                    int64_t j0, int64_t j1, float* y, int64_t ldy);
  // Activation quantization of one row, bit-identical to the scalar versions in quant.cc.
  void (*quantize_row_q8)(const float* x, int64_t k, int8_t* q, float* d);
  float (*quantize_row_per_token)(const float* x, int64_t k, int8_t* q);
  QDotPackedFn dot_q4_0x8;
};

const QuantKernels* quant_kernels_avx2();
const QuantKernels* quant_kernels_avx512vnni();

// y = x·Wᵀ + bias (bias may be null). ref = true runs the scalar oracle on one thread. packed (q4_0
// only, may be null): repack_q4_0x8 of w, used for the whole groups of 8 rows by the SIMD paths.
void quant_matmul(QFormat f, const uint8_t* w, const float* row_scales, const float* x, const float* bias, float* y,
                  int64_t m, int64_t n, int64_t k, bool ref, const uint8_t* packed = nullptr);
// W8A8: per-token dynamic activation quantization + INT8 GEMM. w: int8 [n][k], ws: per-row scales.
void int8_gemm(const int8_t* w, const float* ws, const float* x, const float* bias, float* y, int64_t m, int64_t n,
               int64_t k, bool ref);
// Which kernels quant_matmul / int8_gemm run on this CPU and kernel path.
const char* quant_kernel_name();

// Activation quantization shared by every path (so fast and ref kernels see the same integers).
// scalar = true forces the plain C++ loops (the reference path); SIMD versions are bit-identical.
void quantize_act_q8(const float* x, int64_t m, int64_t k, int8_t* q, float* d, bool scalar = false);
void quantize_act_per_token(const float* x, int64_t m, int64_t k, int8_t* q, float* s, bool scalar = false);

}  // namespace weft
