// Cross-entropy with ignore index and label smoothing: targets are checked first (nothing is
// written on a bad one), then rows are split across the pool for the per-ISA row kernels.
#include <string>

#include "kernels.h"
#include "threadpool.h"

namespace weft {
namespace {

void check_targets(const char* kernel, const int32_t* targets, int64_t rows, int64_t cols, int32_t ignore_index) {
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t t = targets[r];
    if (t != ignore_index && (t < 0 || t >= cols)) {
      throw IndexError(std::string(kernel) + ": target " + std::to_string(t) + " at row " + std::to_string(r) +
                       " out of range [0, " + std::to_string(cols) + ") (ignoreIndex " +
                       std::to_string(ignore_index) + ")");
    }
  }
}

int64_t row_grain(int64_t cols) { return cols >= 8192 ? 1 : (8192 + cols - 1) / cols; }

}  // namespace

void cross_entropy(const float* logits, const int32_t* targets, int64_t rows, int64_t cols, int32_t ignore_index,
                   float smoothing, float* loss, float* lse) {
  check_targets("crossEntropy", targets, rows, cols, ignore_index);
  parallel_for(rows, row_grain(cols), [&](int64_t b, int64_t e) {
    WEFT_ISA_CALL(cross_entropy_rows, logits + b * cols, targets + b, e - b, cols, ignore_index, smoothing, loss + b,
                  lse + b);
  });
}

void cross_entropy_backward(const float* logits, const float* lse, const int32_t* targets, const float* gloss,
                            int64_t rows, int64_t cols, int32_t ignore_index, float smoothing, float* glogits) {
  check_targets("crossEntropyBackward", targets, rows, cols, ignore_index);
  parallel_for(rows, row_grain(cols), [&](int64_t b, int64_t e) {
    WEFT_ISA_CALL(cross_entropy_backward_rows, logits + b * cols, lse + b, targets + b, gloss + b, e - b, cols,
                  ignore_index, smoothing, glogits + b * cols);
  });
}

}  // namespace weft
