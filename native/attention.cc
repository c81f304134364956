// Flash-style attention: the per-ISA kernels tile over keys with an online softmax, so memory per
// query row is O(tile), never O(tk). Forward work items are (batch·head, query block); the backward
// runs one (batch, head) per item so the key/value gradients of a head have a single writer.
#include <vector>

#include "kernels.h"
#include "threadpool.h"

namespace weft {

void attention(const float* q, const float* k, const float* v, const AttnParams& p, float* out, float* lse) {
  const int64_t heads = p.batch * p.heads;
  if (heads == 0 || p.tq == 0) return;
  // Query blocks small enough to give every thread work, large enough to amortise packing K.
  const int nt = num_threads();
  int64_t qblock = 64;
  while (qblock > 16 && heads * ((p.tq + qblock - 1) / qblock) < 4 * nt) qblock /= 2;
  const int64_t nqb = (p.tq + qblock - 1) / qblock;
  const int64_t items = heads * nqb;
  const int64_t scratch_floats = attention_scratch_floats(p.tk, p.dim);
  const double work = static_cast<double>(heads) * p.tq * p.tk * p.dim;
  parallel_run(
      [&](int tid, int nthreads) {
        std::vector<float> scratch(scratch_floats);
        // Interleaved assignment balances causal blocks (late query blocks see more keys).
        for (int64_t it = tid; it < items; it += nthreads) {
          const int64_t hb = it / nqb, qb = it % nqb;
          const int64_t q0 = qb * qblock, q1 = q0 + qblock < p.tq ? q0 + qblock : p.tq;
          WEFT_ISA_CALL(attention_task, q, k, v, p, hb / p.heads, hb % p.heads, q0, q1, out, lse, scratch.data());
        }
      },
      work < 1e5 ? 1 : 0);
}

void attention_backward(const float* q, const float* k, const float* v, const float* out, const float* lse,
                        const float* gout, const AttnParams& p, float* gq, float* gk, float* gv) {
  const int64_t heads = p.batch * p.heads;
  if (heads == 0) return;
  const int64_t scratch_floats = attention_scratch_floats(p.tk, p.dim) + p.tq;
  const double work = static_cast<double>(heads) * p.tq * p.tk * p.dim;
  parallel_run(
      [&](int tid, int nthreads) {
        std::vector<float> scratch(scratch_floats);
        for (int64_t hb = tid; hb < heads; hb += nthreads)
          WEFT_ISA_CALL(attention_backward_task, q, k, v, out, lse, gout, p, hb / p.heads, hb % p.heads, gq, gk, gv,
                        scratch.data());
      },
      work < 1e5 ? 1 : 0);
}

}  // namespace weft
