// Fused row kernels: softmax / log-softmax, LayerNorm, RMSNorm and their backwards. Rows are split
// across the pool; weight/bias gradients (which sum over rows) are accumulated per thread into
// private buffers and added up at the end, so no two threads write the same element.
#include <vector>

#include "kernels.h"
#include "threadpool.h"

namespace weft {
namespace {

// Rows per chunk so each chunk touches at least ~16K elements.
int64_t row_grain(int64_t cols) { return cols >= 16384 ? 1 : (16384 + cols - 1) / cols; }

// Runs fn(row_begin, row_end, gw_partial, gb_partial) over row chunks, where the partials are
// per-thread zeroed buffers (or null when the gradient isn't wanted), then adds them into gw / gb.
template <typename F>
void rows_with_partials(int64_t rows, int64_t cols, float* gw, float* gb, F fn) {
  const int64_t grain = row_grain(cols);
  int64_t max_chunks = (rows + grain - 1) / grain;
  int nt = num_threads();
  if (max_chunks < nt) nt = static_cast<int>(max_chunks);
  if (nt <= 1) {
    fn(0, rows, gw, gb);
    return;
  }
  std::vector<float> pw(gw != nullptr ? static_cast<size_t>(nt * cols) : 0, 0.0f);
  std::vector<float> pb(gb != nullptr ? static_cast<size_t>(nt * cols) : 0, 0.0f);
  parallel_run(
      [&](int tid, int nthreads) {
        int64_t b = rows * tid / nthreads, e = rows * (tid + 1) / nthreads;
        if (b < e)
          fn(b, e, gw != nullptr ? pw.data() + tid * cols : nullptr, gb != nullptr ? pb.data() + tid * cols : nullptr);
      },
      nt);
  for (int t = 0; t < nt; ++t) {
    if (gw != nullptr)
      for (int64_t c = 0; c < cols; ++c) gw[c] += pw[t * cols + c];
    if (gb != nullptr)
      for (int64_t c = 0; c < cols; ++c) gb[c] += pb[t * cols + c];
  }
}

}  // namespace

void softmax(const float* x, int64_t rows, int64_t cols, bool log, float* out) {
  parallel_for(rows, row_grain(cols), [&](int64_t b, int64_t e) {
    WEFT_ISA_CALL(softmax_rows, x + b * cols, e - b, cols, log, out + b * cols);
  });
}

void softmax_backward(const float* y, const float* gy, int64_t rows, int64_t cols, bool log, float* gx) {
  parallel_for(rows, row_grain(cols), [&](int64_t b, int64_t e) {
    WEFT_ISA_CALL(softmax_backward_rows, y + b * cols, gy + b * cols, e - b, cols, log, gx + b * cols);
  });
}

void layer_norm(const float* x, const float* w, const float* b, int64_t rows, int64_t cols, float eps, float* out,
                float* mean, float* rstd) {
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
    WEFT_ISA_CALL(layer_norm_rows, x + r0 * cols, w, b, r1 - r0, cols, eps, out + r0 * cols, mean + r0, rstd + r0);
  });
}

void layer_norm_backward(const float* x, const float* w, const float* mean, const float* rstd, const float* gy,
                         int64_t rows, int64_t cols, float* gx, float* gw, float* gb) {
  rows_with_partials(rows, cols, gw, gb, [&](int64_t r0, int64_t r1, float* pw, float* pb) {
    WEFT_ISA_CALL(layer_norm_backward_rows, x + r0 * cols, w, mean + r0, rstd + r0, gy + r0 * cols, r1 - r0, cols,
                  gx + r0 * cols, pw, pb);
  });
}

void rms_norm(const float* x, const float* w, int64_t rows, int64_t cols, float eps, float* out, float* rstd) {
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
    WEFT_ISA_CALL(rms_norm_rows, x + r0 * cols, w, r1 - r0, cols, eps, out + r0 * cols, rstd + r0);
  });
}

void rms_norm_backward(const float* x, const float* w, const float* rstd, const float* gy, int64_t rows, int64_t cols,
                       float* gx, float* gw) {
  rows_with_partials(rows, cols, gw, nullptr, [&](int64_t r0, int64_t r1, float* pw, float*) {
    WEFT_ISA_CALL(rms_norm_backward_rows, x + r0 * cols, w, rstd + r0, gy + r0 * cols, r1 - r0, cols, gx + r0 * cols,
                  pw);
  });
}

}  // namespace weft
