// Flash-style attention: the per-ISA kernels tile queries and keys by 64 with an online softmax,
// so memory per query row is O(tile), never O(tk). Forward work items are (batch·head, query
// range): one range per head when there are enough heads to share out (K is then packed once per
// head), finer ranges otherwise. The backward runs one (batch, head) per item so the key/value
// gradients of a head have a single writer.
#include <atomic>
#include <cstdint>
#include <vector>

#include "kernels.h"
#include "threadpool.h"

namespace weft {
namespace {

// Per-thread scratch aligned to 64 bytes (the kernels' rows are multiples of 16 floats).
struct AlignedScratch {
  explicit AlignedScratch(int64_t floats) : buf(static_cast<size_t>(floats) + 16) {}
  float* data() {
    auto addr = reinterpret_cast<uintptr_t>(buf.data());
    return buf.data() + ((64 - addr % 64) % 64) / sizeof(float);
  }
  std::vector<float> buf;
};

// Below this many multiply-adds in all (heads·tq·tk·dim) the pool's wake-up costs more than it saves.
constexpr double kSerialWork = 1e5;

}  // namespace

void attention(const float* q, const float* k, const float* v, const AttnParams& p, float* out, float* lse) {
  const int64_t heads = p.batch * p.heads;
  if (heads == 0 || p.tq == 0) return;
  const int nt = num_threads();
  const double work = static_cast<double>(heads) * p.tq * p.tk * p.dim;
  const int threads = work < kSerialWork ? 1 : nt;
  // Split each head's queries only as far as needed to give every thread several items; ranges
  // are multiples of 16 rows.
  int64_t groups = 1;
  const int64_t max_groups = (p.tq + 15) / 16;
  while (heads * groups < 4 * threads && groups < max_groups) groups *= 2;
  if (groups > max_groups) groups = max_groups;
  const int64_t rows = ((p.tq + groups - 1) / groups + 15) / 16 * 16;
  groups = (p.tq + rows - 1) / rows;
  const int64_t items = heads * groups;
  const int64_t scratch_floats = attention_forward_scratch(p.tk, p.dim);
  std::atomic<int64_t> next{0};
  parallel_run(
      [&](int, int) {
        AlignedScratch scratch(scratch_floats);
        // Dynamic hand-out, last query ranges first: with a causal mask they are the costliest.
        for (int64_t it = next.fetch_add(1); it < items; it = next.fetch_add(1)) {
          const int64_t hb = it % heads, g = groups - 1 - it / heads;
          const int64_t q0 = g * rows, q1 = q0 + rows < p.tq ? q0 + rows : p.tq;
          WEFT_ISA_CALL(attention_task, q, k, v, p, hb / p.heads, hb % p.heads, q0, q1, out, lse, scratch.data());
        }
      },
      threads);
}

void attention_backward(const float* q, const float* k, const float* v, const float* out, const float* lse,
                        const float* gout, const AttnParams& p, float* gq, float* gk, float* gv) {
  const int64_t heads = p.batch * p.heads;
  if (heads == 0) return;
  const int64_t scratch_floats = attention_backward_scratch(p.tq, p.tk, p.dim);
  const double work = static_cast<double>(heads) * p.tq * p.tk * p.dim;
  std::atomic<int64_t> next{0};
  parallel_run(
      [&](int, int) {
        AlignedScratch scratch(scratch_floats);
        for (int64_t hb = next.fetch_add(1); hb < heads; hb = next.fetch_add(1))
          WEFT_ISA_CALL(attention_backward_task, q, k, v, out, lse, gout, p, hb / p.heads, hb % p.heads, gq, gk, gv,
                        scratch.data());
      },
      work < kSerialWork ? 1 : 0);
}

}  // namespace weft
