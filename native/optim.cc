// Fused AdamW over flat buffers (one pass over param, grad, m and v), split across the pool.
#include <cmath>

#include "kernels.h"
#include "threadpool.h"

namespace weft {

void adamw(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWArgs& a) {
  const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(a.beta1), a.step));
  const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(a.beta2), a.step));
  parallel_for(n, 65536, [&](int64_t b, int64_t e) {
    WEFT_ISA_CALL(adamw_range, param + b, grad + b, m + b, v + b, e - b, a.lr, a.beta1, a.beta2, a.eps, a.weight_decay,
                  bc1, bc2);
  });
}

}  // namespace weft
