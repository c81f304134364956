// Declarations of every non-GEMM kernel: plain C++ on raw pointers and sizes. The N-API glue
// (glue_kernels.cc) checks buffer lengths and types, then calls these. Index-taking kernels
// bounds-check their indices and report the first bad one through an IndexError (thrown before
// anything is written) which the glue turns into a RangeError.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace weft {

// Thrown by kernels for out-of-range indices; the message names the kernel, index and range.
struct IndexError : std::runtime_error {
  explicit IndexError(const std::string& m) : std::runtime_error(m) {}
};

// Op codes shared with src/tensor/backend/native.ts (keep the orders in sync).
enum UnaryOp : int {
  U_NEG, U_EXP, U_LOG, U_SQRT, U_RSQRT, U_ABS, U_SIN, U_COS, U_TANH, U_SIGMOID, U_RELU,
  U_GELU, U_GELU_TANH, U_SILU, U_SQUARE, U_RECIPROCAL, U_SIGN, U_COUNT
};
enum BinaryOp : int {
  B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MAXIMUM, B_MINIMUM, B_EQ, B_NE, B_LT, B_LE, B_GT, B_GE, B_COUNT
};
enum ReduceOp : int { R_SUM, R_MAX, R_MIN, R_LOGSUMEXP, R_COUNT };
enum ArgReduceOp : int { A_ARGMAX, A_ARGMIN, A_COUNT };

constexpr int kMaxDims = 16;

// Simplifies an iteration over `shape` for `nops` strided operands (plus a dense output): drops
// size-1 dims and merges neighbours that are contiguous for every operand, so a broadcast like
// x[B,T,C] + b[C] becomes [B*T, C]. Writes the new shape and strides; returns the new ndim (0 when
// every dim had size 1).
inline int collapse_dims(int ndim, const int64_t* shape, int nops, const int64_t* const* strides,
                         int64_t* out_shape, int64_t (*out_strides)[kMaxDims]) {
  int nd = 0;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] == 1) continue;
    if (nd > 0) {
      bool mergeable = true;
      for (int o = 0; o < nops; ++o)
        if (out_strides[o][nd - 1] != strides[o][d] * shape[d]) mergeable = false;
      if (mergeable) {
        out_shape[nd - 1] *= shape[d];
        for (int o = 0; o < nops; ++o) out_strides[o][nd - 1] = strides[o][d];
        continue;
      }
    }
    out_shape[nd] = shape[d];
    for (int o = 0; o < nops; ++o) out_strides[o][nd] = strides[o][d];
    ++nd;
  }
  return nd;
}

// Element offset of row `r` (a flat index over shape[0..nd)) for an operand with `strides`.
inline int64_t row_offset(int64_t r, int nd, const int64_t* shape, const int64_t* strides) {
  int64_t off = 0;
  for (int d = nd - 1; d >= 0; --d) {
    int64_t i = r % shape[d];
    r /= shape[d];
    off += i * strides[d];
  }
  return off;
}

// A strided operand: base pointer at logical index 0 and one stride per dim of the iteration shape.
struct StridedF32 {
  const float* data;
  const int64_t* strides;
};

// ---- layout / dtype (index.cc, convert.cc)
void copy_strided(const void* src, int elem_size, int64_t offset, const int64_t* strides, const int64_t* shape,
                  int ndim, void* dst);
void fill_f32(float* out, int64_t n, float value);
void f32_to_bf16(const float* x, uint16_t* out, int64_t n);
void bf16_to_f32(const uint16_t* x, float* out, int64_t n);
void f32_to_f16(const float* x, uint16_t* out, int64_t n);
void f16_to_f32(const uint16_t* x, float* out, int64_t n);

// ---- elementwise (elementwise.cc)
void unary(int op, const float* x, float* out, int64_t n);
void unary_backward(int op, const float* x, const float* y, const float* gy, float* gx, int64_t n);
void binary(int op, StridedF32 a, StridedF32 b, const int64_t* shape, int ndim, float* out);
void affine(const float* x, float scale, float shift, float* out, int64_t n);
void clamp(const float* x, float lo, float hi, float* out, int64_t n);
void where(StridedF32 cond, StridedF32 a, StridedF32 b, const int64_t* shape, int ndim, float* out);

// ---- reductions (reduce.cc)
void reduce(int op, const float* x, int64_t outer, int64_t n, int64_t inner, float* out);
void arg_reduce(int op, const float* x, int64_t outer, int64_t n, int64_t inner, int32_t* out);

// ---- fused NN (nn.cc)
void softmax(const float* x, int64_t rows, int64_t cols, bool log, float* out);
void softmax_backward(const float* y, const float* gy, int64_t rows, int64_t cols, bool log, float* gx);
void layer_norm(const float* x, const float* w, const float* b, int64_t rows, int64_t cols, float eps, float* out,
                float* mean, float* rstd);
void layer_norm_backward(const float* x, const float* w, const float* mean, const float* rstd, const float* gy,
                         int64_t rows, int64_t cols, float* gx, float* gw, float* gb);
void rms_norm(const float* x, const float* w, int64_t rows, int64_t cols, float eps, float* out, float* rstd);
void rms_norm_backward(const float* x, const float* w, const float* rstd, const float* gy, int64_t rows, int64_t cols,
                       float* gx, float* gw);

// ---- indexing (index.cc)
void gather_rows(const float* table, int64_t num_rows, int64_t cols, const int32_t* idx, int64_t n, float* out);
void scatter_add_rows(const float* g, const int32_t* idx, int64_t n, int64_t cols, float* gtable, int64_t num_rows);
void gather(const float* x, int64_t outer, int64_t n, int64_t inner, const int32_t* idx, int64_t m, float* out);
void scatter_add(float* out, int64_t outer, int64_t n, int64_t inner, const int32_t* idx, int64_t m, const float* src);
void topk(const float* x, int64_t rows, int64_t cols, int64_t k, bool largest, float* values, int32_t* indices);

// ---- losses (loss.cc)
void cross_entropy(const float* logits, const int32_t* targets, int64_t rows, int64_t cols, int32_t ignore_index,
                   float smoothing, float* loss, float* lse);
void cross_entropy_backward(const float* logits, const float* lse, const int32_t* targets, const float* gloss,
                            int64_t rows, int64_t cols, int32_t ignore_index, float smoothing, float* glogits);

// ---- attention (attention.cc)
struct AttnParams {
  int64_t batch, heads, tq, tk, dim;
  float scale;
  bool causal;
  const float* mask;       // null when absent; points at logical [0,0,0,0]
  int64_t mask_strides[4];
};
void attention(const float* q, const float* k, const float* v, const AttnParams& p, float* out, float* lse);
void attention_backward(const float* q, const float* k, const float* v, const float* out, const float* lse,
                        const float* gout, const AttnParams& p, float* gq, float* gk, float* gv);

// ---- optimizer (optim.cc)
struct AdamWArgs {
  float lr, beta1, beta2, eps, weight_decay;
  double step;
};
void adamw(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWArgs& a);

// ---- per-ISA row kernels (native/isa/kernels_impl.h, compiled once per ISA with its own flags).
// Each function processes a contiguous range; threading and dispatch live in the family files.
#define WEFT_ISA_KERNEL_DECLS                                                                                     \
  void unary_contig(int op, const float* x, float* out, int64_t n);                                               \
  void unary_backward_contig(int op, const float* x, const float* y, const float* gy, float* gx, int64_t n);     \
  /* sa, sb are the inner strides of a and b: 0 (broadcast) or 1. */                                              \
  void binary_row(int op, const float* a, int sa, const float* b, int sb, float* out, int64_t n);                 \
  void softmax_rows(const float* x, int64_t rows, int64_t cols, bool log, float* out);                           \
  void softmax_backward_rows(const float* y, const float* gy, int64_t rows, int64_t cols, bool log, float* gx);  \
  void layer_norm_rows(const float* x, const float* w, const float* b, int64_t rows, int64_t cols, float eps,     \
                       float* out, float* mean, float* rstd);                                                     \
  /* gw/gb accumulate (may be null). */                                                                           \
  void layer_norm_backward_rows(const float* x, const float* w, const float* mean, const float* rstd,            \
                                const float* gy, int64_t rows, int64_t cols, float* gx, float* gw, float* gb);   \
  void rms_norm_rows(const float* x, const float* w, int64_t rows, int64_t cols, float eps, float* out,          \
                     float* rstd);                                                                                \
  void rms_norm_backward_rows(const float* x, const float* w, const float* rstd, const float* gy, int64_t rows,  \
                              int64_t cols, float* gx, float* gw);                                                \
  /* Row reductions over contiguous n. */                                                                         \
  double row_sum(const float* x, int64_t n);                                                                      \
  float row_max(const float* x, int64_t n);                                                                       \
  float row_min(const float* x, int64_t n);                                                                       \
  /* sum_j exp(x[j] - m) */                                                                                       \
  double row_sum_exp(const float* x, int64_t n, float m);                                                         \
  /* acc[i] op= x[i] for i < n (op: R_SUM adds into double acc, R_MAX/R_MIN into float acc). */                   \
  void accumulate_sum(double* acc, const float* x, int64_t n);                                                    \
  void accumulate_max(float* acc, const float* x, int64_t n);                                                     \
  void accumulate_min(float* acc, const float* x, int64_t n);                                                     \
  void accumulate_sum_exp(double* acc, const float* x, const float* m, int64_t n);                                \
  void cross_entropy_rows(const float* logits, const int32_t* targets, int64_t rows, int64_t cols,               \
                          int32_t ignore_index, float smoothing, float* loss, float* lse);                        \
  void cross_entropy_backward_rows(const float* logits, const float* lse, const int32_t* targets,                \
                                   const float* gloss, int64_t rows, int64_t cols, int32_t ignore_index,          \
                                   float smoothing, float* glogits);                                              \
  /* Attention for one (batch, head) and query rows [q0, q1); scratch sized by attention_forward_scratch. */     \
  void attention_task(const float* q, const float* k, const float* v, const AttnParams& p, int64_t b, int64_t h, \
                      int64_t q0, int64_t q1, float* out, float* lse, float* scratch);                            \
  /* Backward for one (batch, head), all query rows; writes gq, gk, gv of that head. Scratch sized by          \
     attention_backward_scratch. */                                                                               \
  void attention_backward_task(const float* q, const float* k, const float* v, const float* out,                \
                               const float* lse, const float* gout, const AttnParams& p, int64_t b, int64_t h,   \
                               float* gq, float* gk, float* gv, float* scratch);                                  \
  void adamw_range(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,        \
                   float beta2, float eps, float weight_decay, float bc1, float bc2);

namespace isa_portable { WEFT_ISA_KERNEL_DECLS }
namespace isa_avx2 { WEFT_ISA_KERNEL_DECLS }
namespace isa_avx512 { WEFT_ISA_KERNEL_DECLS }

// Attention scratch. The per-ISA kernels carve these regions in this order; sizes assume the widest
// vector (16 lanes), so every ISA fits. kAttnTile is both the key tile and the query tile.
constexpr int64_t kAttnTile = 64;
// The head dimension rounded up to 16: rows of V (and of Q, K, dO in the backward) are copied
// into rows this long when dim is not a multiple of the vector width, so full-vector loads never
// leave the caller's buffers.
inline int64_t attn_dim_padded(int64_t dim) { return (dim + 15) / 16 * 16; }
inline bool attn_needs_padding(int64_t dim) { return dim % 16 != 0; }
// Forward: K is packed transposed once per task when that takes at most 4 MiB, else tile by tile.
inline int64_t attn_packed_keys_floats(int64_t tk, int64_t dim) {
  const int64_t all = (tk + kAttnTile - 1) / kAttnTile * kAttnTile * dim;
  return all <= (int64_t{1} << 20) ? all : kAttnTile * dim;
}
// kt | vp (padded V) | s [tile²] | o [tile·dimp] | m, l [tile each]
inline int64_t attention_forward_scratch(int64_t tk, int64_t dim) {
  const int64_t dp = attn_dim_padded(dim);
  return attn_packed_keys_floats(tk, dim) + (attn_needs_padding(dim) ? tk * dp : 0) + kAttnTile * kAttnTile +
         kAttnTile * dp + 2 * kAttnTile;
}
// kt, vt [dim·tile] | s, ds [tile²] | dkt, dvt [tile·dimp] | (padded: qp, dop, dqp [tq·dimp], kp [tk·dimp]) | delta [tq]
inline int64_t attention_backward_scratch(int64_t tq, int64_t tk, int64_t dim) {
  const int64_t dp = attn_dim_padded(dim);
  return 2 * kAttnTile * dim + 2 * kAttnTile * kAttnTile + 2 * kAttnTile * dp +
         (attn_needs_padding(dim) ? (3 * tq + tk) * dp : 0) + tq;
}

}  // namespace weft

#include "cpu.h"

// Calls the current kernel path's version of a per-ISA kernel.
#define WEFT_ISA_CALL(fn, ...)                                               \
  ([&]() {                                                                   \
    switch (::weft::kernel_path()) {                                         \
      case ::weft::KernelPath::Avx512: return ::weft::isa_avx512::fn(__VA_ARGS__); \
      case ::weft::KernelPath::Avx2: return ::weft::isa_avx2::fn(__VA_ARGS__);     \
      default: return ::weft::isa_portable::fn(__VA_ARGS__);                 \
    }                                                                        \
  }())
