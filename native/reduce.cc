// Reductions over the middle axis of x viewed as [outer, n, inner]. inner == 1 reduces contiguous
// rows (per-ISA vector kernels); inner > 1 streams the n rows of each slab and accumulates across
// them, vectorised over inner. Sums accumulate in double beyond short f32 blocks so long
// reductions stay within f32 rounding of the exact result.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels.h"
#include "threadpool.h"

namespace weft {

void reduce(int op, const float* x, int64_t outer, int64_t n, int64_t inner, float* out) {
  const int64_t count = outer * inner;
  if (count == 0) return;
  if (n == 0) {  // only sum reaches here (the glue rejects the others)
    for (int64_t i = 0; i < count; ++i) out[i] = 0.0f;
    return;
  }
  if (inner == 1) {
    parallel_for(outer, (32768 + n - 1) / n, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const float* row = x + o * n;
        switch (op) {
          case R_SUM: out[o] = static_cast<float>(WEFT_ISA_CALL(row_sum, row, n)); break;
          case R_MAX: out[o] = WEFT_ISA_CALL(row_max, row, n); break;
          case R_MIN: out[o] = WEFT_ISA_CALL(row_min, row, n); break;
          default: {
            const float m = WEFT_ISA_CALL(row_max, row, n);
            // ±inf or NaN max: the answer is the max itself (avoids inf − inf).
            if (!std::isfinite(m)) out[o] = m;
            else out[o] = m + static_cast<float>(std::log(WEFT_ISA_CALL(row_sum_exp, row, n, m)));
          }
        }
      }
    });
    return;
  }
  // Split (outer, inner-chunk) pairs across threads.
  constexpr int64_t kChunk = 1024;
  const int64_t chunks = (inner + kChunk - 1) / kChunk;
  parallel_for(outer * chunks, (32768 + n * kChunk - 1) / (n * kChunk), [&](int64_t t0, int64_t t1) {
    std::vector<double> dacc;
    std::vector<float> facc;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t / chunks, c0 = (t % chunks) * kChunk;
      const int64_t len = inner - c0 < kChunk ? inner - c0 : kChunk;
      const float* base = x + o * n * inner + c0;
      float* dst = out + o * inner + c0;
      if (op == R_SUM) {
        dacc.assign(len, 0.0);
        for (int64_t j = 0; j < n; ++j) WEFT_ISA_CALL(accumulate_sum, dacc.data(), base + j * inner, len);
        for (int64_t i = 0; i < len; ++i) dst[i] = static_cast<float>(dacc[i]);
      } else if (op == R_MAX || op == R_MIN) {
        facc.assign(base, base + len);
        for (int64_t j = 1; j < n; ++j) {
          if (op == R_MAX) WEFT_ISA_CALL(accumulate_max, facc.data(), base + j * inner, len);
          else WEFT_ISA_CALL(accumulate_min, facc.data(), base + j * inner, len);
        }
        for (int64_t i = 0; i < len; ++i) dst[i] = facc[i];
      } else {
        facc.assign(base, base + len);
        for (int64_t j = 1; j < n; ++j) WEFT_ISA_CALL(accumulate_max, facc.data(), base + j * inner, len);
        // Non-finite maxima are their own answer; substitute 0 so exp(x − m) stays defined there.
        std::vector<float> m(facc);
        for (int64_t i = 0; i < len; ++i)
          if (!std::isfinite(m[i])) m[i] = 0.0f;
        dacc.assign(len, 0.0);
        for (int64_t j = 0; j < n; ++j) WEFT_ISA_CALL(accumulate_sum_exp, dacc.data(), base + j * inner, m.data(), len);
        for (int64_t i = 0; i < len; ++i)
          dst[i] = std::isfinite(facc[i]) ? m[i] + static_cast<float>(std::log(dacc[i])) : facc[i];
      }
    }
  });
}

void arg_reduce(int op, const float* x, int64_t outer, int64_t n, int64_t inner, int32_t* out) {
  const bool is_max = op == A_ARGMAX;
  // The first NaN wins for both argmax and argmin (PyTorch); otherwise the first extreme value.
  parallel_for(outer * inner, (16384 + n - 1) / n, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t / inner, i = t % inner;
      const float* p = x + o * n * inner + i;
      int32_t best = 0;
      float bv = p[0];
      if (bv == bv) {
        for (int64_t j = 1; j < n; ++j) {
          const float v = p[j * inner];
          if (v != v) {
            best = static_cast<int32_t>(j);
            break;
          }
          if (is_max ? v > bv : v < bv) {
            bv = v;
            best = static_cast<int32_t>(j);
          }
        }
      }
      out[t] = best;
    }
  });
}

}  // namespace weft
