// Indexing kernels. Every index is checked in a first pass, before anything is written, so a bad
// index leaves all outputs untouched and never touches memory outside a buffer.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kernels.h"
#include "threadpool.h"

namespace weft {
namespace {

void check_indices(const char* kernel, const int32_t* idx, int64_t n, int64_t limit) {
  for (int64_t i = 0; i < n; ++i) {
    if (idx[i] < 0 || idx[i] >= limit) {
      throw IndexError(std::string(kernel) + ": index " + std::to_string(idx[i]) + " out of range [0, " +
                       std::to_string(limit) + ")");
    }
  }
}

}  // namespace

void copy_strided(const void* src, int elem_size, int64_t offset, const int64_t* strides, const int64_t* shape,
                  int ndim, void* dst) {
  int64_t total = 1;
  for (int d = 0; d < ndim; ++d) total *= shape[d];
  if (total == 0) return;
  const char* s = static_cast<const char*>(src) + offset * elem_size;
  char* o = static_cast<char*>(dst);
  const int64_t* strs[1] = {strides};
  int64_t sh[kMaxDims];
  int64_t st[1][kMaxDims];
  int nd = collapse_dims(ndim, shape, 1, strs, sh, st);
  if (nd == 0) {
    std::memcpy(o, s, elem_size);
    return;
  }
  const int64_t inner = sh[nd - 1], is = st[0][nd - 1];
  const int64_t rows = total / inner;
  parallel_for(rows, (65536 + inner - 1) / inner, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const char* p = s + row_offset(r, nd - 1, sh, st[0]) * elem_size;
      char* q = o + r * inner * elem_size;
      if (is == 1) {
        std::memcpy(q, p, inner * elem_size);
      } else if (elem_size == 4) {
        const uint32_t* p4 = reinterpret_cast<const uint32_t*>(p);
        uint32_t* q4 = reinterpret_cast<uint32_t*>(q);
        for (int64_t i = 0; i < inner; ++i) q4[i] = p4[i * is];
      } else {
        const uint16_t* p2 = reinterpret_cast<const uint16_t*>(p);
        uint16_t* q2 = reinterpret_cast<uint16_t*>(q);
        for (int64_t i = 0; i < inner; ++i) q2[i] = p2[i * is];
      }
    }
  });
}

void gather_rows(const float* table, int64_t num_rows, int64_t cols, const int32_t* idx, int64_t n, float* out) {
  check_indices("gatherRows", idx, n, num_rows);
  parallel_for(n, (16384 + cols - 1) / (cols > 0 ? cols : 1), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) std::memcpy(out + i * cols, table + idx[i] * cols, sizeof(float) * cols);
  });
}

void scatter_add_rows(const float* g, const int32_t* idx, int64_t n, int64_t cols, float* gtable, int64_t num_rows) {
  check_indices("scatterAddRows", idx, n, num_rows);
  // Threads own disjoint column ranges, so repeated indices never race.
  parallel_for(cols, n * cols >= 65536 ? 64 : cols, [&](int64_t c0, int64_t c1) {
    for (int64_t i = 0; i < n; ++i) {
      const float* src = g + i * cols;
      float* dst = gtable + static_cast<int64_t>(idx[i]) * cols;
      for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  });
}

void gather(const float* x, int64_t outer, int64_t n, int64_t inner, const int32_t* idx, int64_t m, float* out) {
  check_indices("gather", idx, outer * m * inner, n);
  parallel_for(outer * m, (16384 + inner - 1) / (inner > 0 ? inner : 1), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / m;
      const int32_t* ir = idx + t * inner;
      float* orow = out + t * inner;
      const float* xs = x + o * n * inner;
      for (int64_t i = 0; i < inner; ++i) orow[i] = xs[static_cast<int64_t>(ir[i]) * inner + i];
    }
  });
}

void scatter_add(float* out, int64_t outer, int64_t n, int64_t inner, const int32_t* idx, int64_t m, const float* src) {
  check_indices("scatterAdd", idx, outer * m * inner, n);
  // Different `outer` slabs never collide; within a slab, order is kept (serial over j).
  parallel_for(outer, (16384 + m * inner - 1) / (m * inner > 0 ? m * inner : 1), [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      float* os = out + o * n * inner;
      for (int64_t j = 0; j < m; ++j) {
        const int32_t* ir = idx + (o * m + j) * inner;
        const float* sr = src + (o * m + j) * inner;
        for (int64_t i = 0; i < inner; ++i) os[static_cast<int64_t>(ir[i]) * inner + i] += sr[i];
      }
    }
  });
}

void topk(const float* x, int64_t rows, int64_t cols, int64_t k, bool largest, float* values, int32_t* indices) {
  parallel_for(rows, (4096 + cols - 1) / (cols > 0 ? cols : 1), [&](int64_t b, int64_t e) {
    std::vector<int32_t> order(cols);
    for (int64_t r = b; r < e; ++r) {
      const float* row = x + r * cols;
      for (int64_t c = 0; c < cols; ++c) order[c] = static_cast<int32_t>(c);
      // NaN ranks above every number (PyTorch); ties keep the lower index first.
      auto before = [&](int32_t i, int32_t j) {
        const float a = row[i], bb = row[j];
        const bool an = a != a, bn = bb != bb;
        if (largest) {
          if (an != bn) return an;
          if (!an && a != bb) return a > bb;
        } else {
          if (an != bn) return bn;
          if (!an && a != bb) return a < bb;
        }
        return i < j;
      };
      std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
      for (int64_t j = 0; j < k; ++j) {
        values[r * k + j] = row[order[j]];
        indices[r * k + j] = order[j];
      }
    }
  });
}

}  // namespace weft
