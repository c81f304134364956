// Elementwise kernels: contiguous fast paths go to the per-ISA row kernels; broadcasting binary
// ops are collapsed to rows whose inner stride is 0 or 1 (the common bias / scalar cases) and
// anything else gathers each row into a small buffer first.
#include <cstring>
#include <vector>

#include "kernels.h"
#include "threadpool.h"

namespace weft {
namespace {

// Elements per thread chunk: below ~2 chunks' worth, threading costs more than it saves.
constexpr int64_t kGrain = 32768;

}  // namespace

void fill_f32(float* out, int64_t n, float value) {
  parallel_for(n, 1 << 18, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = value;
  });
}

void unary(int op, const float* x, float* out, int64_t n) {
  parallel_for(n, kGrain / 2, [&](int64_t b, int64_t e) { WEFT_ISA_CALL(unary_contig, op, x + b, out + b, e - b); });
}

void unary_backward(int op, const float* x, const float* y, const float* gy, float* gx, int64_t n) {
  parallel_for(n, kGrain / 2, [&](int64_t b, int64_t e) {
    WEFT_ISA_CALL(unary_backward_contig, op, x + b, y + b, gy + b, gx + b, e - b);
  });
}

void binary(int op, StridedF32 a, StridedF32 b, const int64_t* shape, int ndim, float* out) {
  int64_t total = 1;
  for (int d = 0; d < ndim; ++d) total *= shape[d];
  if (total == 0) return;
  const int64_t* strides[2] = {a.strides, b.strides};
  int64_t sh[kMaxDims];
  int64_t st[2][kMaxDims];
  int nd = collapse_dims(ndim, shape, 2, strides, sh, st);
  if (nd == 0) {
    WEFT_ISA_CALL(binary_row, op, a.data, 1, b.data, 1, out, 1);
    return;
  }
  const int64_t inner = sh[nd - 1], ia = st[0][nd - 1], ib = st[1][nd - 1];
  const int64_t rows = total / inner;
  const bool direct = (ia == 0 || ia == 1) && (ib == 0 || ib == 1);
  parallel_for(rows, (kGrain + inner - 1) / inner, [&](int64_t r0, int64_t r1) {
    std::vector<float> ta, tb;
    if (!direct) {
      if (ia > 1 || ia < 0) ta.resize(inner);
      if (ib > 1 || ib < 0) tb.resize(inner);
    }
    for (int64_t r = r0; r < r1; ++r) {
      const float* pa = a.data + row_offset(r, nd - 1, sh, st[0]);
      const float* pb = b.data + row_offset(r, nd - 1, sh, st[1]);
      int sa = static_cast<int>(ia), sb = static_cast<int>(ib);
      if (!ta.empty()) {
        for (int64_t i = 0; i < inner; ++i) ta[i] = pa[i * ia];
        pa = ta.data();
        sa = 1;
      }
      if (!tb.empty()) {
        for (int64_t i = 0; i < inner; ++i) tb[i] = pb[i * ib];
        pb = tb.data();
        sb = 1;
      }
      WEFT_ISA_CALL(binary_row, op, pa, sa, pb, sb, out + r * inner, inner);
    }
  });
}

void affine(const float* x, float scale, float shift, float* out, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = x[i] * scale + shift;
  });
}

void clamp(const float* x, float lo, float hi, float* out, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float v = x[i];
      v = v < lo ? lo : v;  // NaN compares false both times and stays NaN
      out[i] = v > hi ? hi : v;
    }
  });
}

void where(StridedF32 cond, StridedF32 a, StridedF32 b, const int64_t* shape, int ndim, float* out) {
  int64_t total = 1;
  for (int d = 0; d < ndim; ++d) total *= shape[d];
  if (total == 0) return;
  const int64_t* strides[3] = {cond.strides, a.strides, b.strides};
  int64_t sh[kMaxDims];
  int64_t st[3][kMaxDims];
  int nd = collapse_dims(ndim, shape, 3, strides, sh, st);
  if (nd == 0) {
    out[0] = cond.data[0] != 0.0f ? a.data[0] : b.data[0];
    return;
  }
  const int64_t inner = sh[nd - 1];
  const int64_t sc = st[0][nd - 1], sa = st[1][nd - 1], sb = st[2][nd - 1];
  const int64_t rows = total / inner;
  parallel_for(rows, (kGrain + inner - 1) / inner, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* pc = cond.data + row_offset(r, nd - 1, sh, st[0]);
      const float* pa = a.data + row_offset(r, nd - 1, sh, st[1]);
      const float* pb = b.data + row_offset(r, nd - 1, sh, st[2]);
      float* o = out + r * inner;
      for (int64_t i = 0; i < inner; ++i) o[i] = pc[i * sc] != 0.0f ? pa[i * sa] : pb[i * sb];
    }
  });
}

}  // namespace weft
