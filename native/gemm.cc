// f32 GEMM driver, the BLIS scheme: JC (n by NC) → PC (k by KC: pack a KC×NC panel of op(B) into
// NR-wide micro-panels) → IC (m by MC: pack an MC×KC block of op(A) into MR-wide micro-panels) →
// JR → IR → register-tiled micro-kernel. Transposes are absorbed by the packing (no extra copies).
// Threads split C into disjoint blocks (along n, or m when n is narrow), each with its own packed
// panels, so no thread ever waits on another and k is never split (no reductions across threads).
// Skinny products (m <= 16, decode time) skip packing and stream B once (bandwidth-bound).
#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "cpu.h"
#include "threadpool.h"

namespace weft {

// ---------------------------------------------------------------------------------------------
// Portable kernels (plain C++; the compiler vectorises them with the baseline ISA).
namespace {

constexpr int kPortableMR = 4;
constexpr int kPortableNR = 8;

void portable_micro(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int rows, int cols,
                    float alpha, float beta) {
  constexpr int MR = kPortableMR, NR = kPortableNR;
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int r = 0; r < MR; ++r) {
      const float av = ap[r];
      for (int j = 0; j < NR; ++j) acc[r][j] += av * bp[j];
    }
    ap += MR;
    bp += NR;
  }
  for (int r = 0; r < rows; ++r) {
    float* cr = c + r * ldc;
    for (int j = 0; j < cols; ++j) cr[j] = beta == 0.0f ? alpha * acc[r][j] : alpha * acc[r][j] + beta * cr[j];
  }
}

void portable_dot_nt(int m, int64_t j0, int64_t j1, int64_t k, const float* a, int64_t lda, const float* b,
                     int64_t ldb, float* c, int64_t ldc, float alpha, float beta) {
  for (int64_t j = j0; j < j1; ++j) {
    const float* bj = b + j * ldb;
    for (int i = 0; i < m; ++i) {
      const float* ai = a + i * lda;
      // Eight partial sums: lets the compiler vectorise without reassociation flags.
      float s[8] = {};
      int64_t p = 0;
      for (; p + 8 <= k; p += 8)
        for (int u = 0; u < 8; ++u) s[u] += ai[p + u] * bj[p + u];
      float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
      for (; p < k; ++p) t += ai[p] * bj[p];
      float* cij = c + i * ldc + j;
      *cij = beta == 0.0f ? alpha * t : alpha * t + beta * *cij;
    }
  }
}

void portable_axpy_nn(int m, int64_t j0, int64_t j1, int64_t k, const float* a, int64_t a_rs, int64_t a_cs,
                      const float* b, int64_t ldb, float* c, int64_t ldc, float alpha, float beta) {
  // C rows updated in place over L1-sized column strips, so B rows stream contiguously.
  const int64_t strip = std::max<int64_t>(64, 8192 / m);
  for (int64_t js = j0; js < j1; js += strip) {
    const int64_t je = std::min(j1, js + strip);
    for (int i = 0; i < m; ++i) {
      float* cr = c + i * ldc;
      for (int64_t j = js; j < je; ++j) cr[j] = beta == 0.0f ? 0.0f : beta * cr[j];
    }
    for (int64_t p = 0; p < k; ++p) {
      const float* bp = b + p * ldb;
      for (int i = 0; i < m; ++i) {
        const float s = alpha * a[i * a_rs + p * a_cs];
        float* cr = c + i * ldc;
        for (int64_t j = js; j < je; ++j) cr[j] += s * bp[j];
      }
    }
  }
}

const GemmKernel kPortable = {
    "portable 4x8", kPortableMR, kPortableNR, 128, 256, 2048, portable_micro, portable_dot_nt, portable_axpy_nn, nullptr,
};

// ---------------------------------------------------------------------------------------------
// Driver.

const GemmKernel& active_kernel() {
  switch (kernel_path()) {
    case KernelPath::Avx512: return *gemm_kernel_avx512();
    case KernelPath::Avx2: return *gemm_kernel_avx2();
    default: return kPortable;
  }
}

// Per-thread packing buffers, grown on demand and kept (pool threads live for the process).
struct AlignedBuffer {
  float* data = nullptr;
  size_t capacity = 0;
  float* get(size_t n) {
    if (n > capacity) {
      std::free(data);
      const size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
      data = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (data == nullptr) throw std::bad_alloc();
      capacity = bytes / sizeof(float);
    }
    return data;
  }
  ~AlignedBuffer() { std::free(data); }
};
thread_local AlignedBuffer tl_pack_a;
thread_local AlignedBuffer tl_pack_b;
thread_local AlignedBuffer tl_skinny_a;

// op(A)(i, p) = a[i·a_rs + p·a_cs], op(B)(p, j) = b[p·b_rs + j·b_cs]: one of each pair is 1.
struct Operands {
  const float* a;
  int64_t a_rs, a_cs;
  const float* b;
  int64_t b_rs, b_cs;
  float* c;
  int64_t ldc;
};

// mc×kc block of op(A) → ceil(mc/mr) micro-panels of kc×mr, zero rows past mc.
void pack_a(const float* a, int64_t a_rs, int64_t a_cs, int64_t mc, int64_t kc, int mr, float* dst) {
  for (int64_t i0 = 0; i0 < mc; i0 += mr) {
    const int rows = static_cast<int>(std::min<int64_t>(mr, mc - i0));
    const float* src = a + i0 * a_rs;
    if (a_cs == 1) {
      // Rows are k-contiguous: transpose through 8-wide k chunks so reads stay sequential.
      int64_t p = 0;
      for (; p + 8 <= kc; p += 8) {
        float* d = dst + p * mr;
        for (int r = 0; r < rows; ++r) {
          const float* s = src + r * a_rs + p;
          for (int u = 0; u < 8; ++u) d[u * mr + r] = s[u];
        }
        for (int r = rows; r < mr; ++r)
          for (int u = 0; u < 8; ++u) d[u * mr + r] = 0.0f;
      }
      for (; p < kc; ++p) {
        float* d = dst + p * mr;
        for (int r = 0; r < rows; ++r) d[r] = src[r * a_rs + p];
        for (int r = rows; r < mr; ++r) d[r] = 0.0f;
      }
    } else {
      // transA: each k step is a contiguous run of rows.
      for (int64_t p = 0; p < kc; ++p) {
        float* d = dst + p * mr;
        const float* s = src + p * a_cs;
        for (int r = 0; r < rows; ++r) d[r] = s[r];
        for (int r = rows; r < mr; ++r) d[r] = 0.0f;
      }
    }
    dst += static_cast<int64_t>(mr) * kc;
  }
}

// kc×nc panel of op(B) → ceil(nc/nr) micro-panels of kc×nr, zero columns past nc.
void pack_b(const float* b, int64_t b_rs, int64_t b_cs, int64_t kc, int64_t nc, int nr, float* dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += nr) {
    const int cols = static_cast<int>(std::min<int64_t>(nr, nc - j0));
    if (b_cs == 1) {
      const float* src = b + j0;
      for (int64_t p = 0; p < kc; ++p) {
        float* d = dst + p * nr;
        std::memcpy(d, src + p * b_rs, sizeof(float) * cols);
        for (int c = cols; c < nr; ++c) d[c] = 0.0f;
      }
    } else {
      // transB: column j of op(B) is row j of the stored n×k matrix; transpose in 8-wide k chunks.
      const float* src = b + j0 * b_cs;
      int64_t p = 0;
      for (; p + 8 <= kc; p += 8) {
        float* d = dst + p * nr;
        for (int c = 0; c < cols; ++c) {
          const float* s = src + c * b_cs + p;
          for (int u = 0; u < 8; ++u) d[u * nr + c] = s[u];
        }
        for (int c = cols; c < nr; ++c)
          for (int u = 0; u < 8; ++u) d[u * nr + c] = 0.0f;
      }
      for (; p < kc; ++p) {
        float* d = dst + p * nr;
        for (int c = 0; c < cols; ++c) d[c] = src[c * b_cs + p];
        for (int c = cols; c < nr; ++c) d[c] = 0.0f;
      }
    }
    dst += static_cast<int64_t>(nr) * kc;
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Serial blocked GEMM of an m×n block of C (k >= 1).
void gemm_blocked(const GemmKernel& K, const Operands& o, int64_t m, int64_t n, int64_t k, float alpha,
                  float beta) {
  // Even block sizes: k = 400 with KC = 384 becomes 2×200, not 384 + 16.
  const int64_t kc_step = round_up(ceil_div(k, ceil_div(k, K.kc)), 8);
  const int64_t mc_step = round_up(ceil_div(m, ceil_div(m, K.mc)), K.mr);
  const int64_t nc_step = round_up(ceil_div(n, ceil_div(n, K.nc)), K.nr);
  float* bp = tl_pack_b.get(static_cast<size_t>(kc_step * round_up(std::min(n, nc_step), K.nr)));
  float* ap = tl_pack_a.get(static_cast<size_t>(kc_step * round_up(std::min(m, mc_step), K.mr)));
  for (int64_t jc = 0; jc < n; jc += nc_step) {
    const int64_t nc = std::min(nc_step, n - jc);
    for (int64_t pc = 0; pc < k; pc += kc_step) {
      const int64_t kc = std::min(kc_step, k - pc);
      if (o.b_rs == 1 && K.pack_b_trans != nullptr) K.pack_b_trans(o.b + pc + jc * o.b_cs, o.b_cs, kc, nc, bp);
      else pack_b(o.b + pc * o.b_rs + jc * o.b_cs, o.b_rs, o.b_cs, kc, nc, K.nr, bp);
      const float beta_block = pc == 0 ? beta : 1.0f;  // later k blocks accumulate
      for (int64_t ic = 0; ic < m; ic += mc_step) {
        const int64_t mc = std::min(mc_step, m - ic);
        pack_a(o.a + ic * o.a_rs + pc * o.a_cs, o.a_rs, o.a_cs, mc, kc, K.mr, ap);
        for (int64_t jr = 0; jr < nc; jr += K.nr) {
          const int cols = static_cast<int>(std::min<int64_t>(K.nr, nc - jr));
          const float* bpanel = bp + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += K.mr) {
            const int rows = static_cast<int>(std::min<int64_t>(K.mr, mc - ir));
            K.micro(kc, ap + ir * kc, bpanel, o.c + (ic + ir) * o.ldc + jc + jr, o.ldc, rows, cols, alpha,
                    beta_block);
          }
        }
      }
    }
  }
}

// Below this many multiply-adds a product runs on the calling thread (waking the pool costs more).
constexpr int64_t kParallelMinMacs = int64_t{1} << 18;

int threads_for(int64_t macs) {
  if (macs < kParallelMinMacs) return 1;
  const int64_t by_work = macs / kParallelMinMacs;
  return static_cast<int>(std::min<int64_t>(num_threads(), by_work));
}

// Splits [0, n) into `parts` chunks at multiples of `align`; returns chunk t's [begin, end).
void split_range(int64_t n, int64_t align, int parts, int t, int64_t* begin, int64_t* end) {
  const int64_t units = ceil_div(n, align);
  *begin = std::min(n, units * t / parts * align);
  *end = std::min(n, units * (t + 1) / parts * align);
}

void gemm_skinny(const GemmKernel& K, const Operands& o, int64_t m, int64_t n, int64_t k, float alpha, float beta,
                 int nthreads) {
  const int mi = static_cast<int>(m);
  if (o.b_rs == 1) {
    // op(B) = B^T with B stored n×k: each C column is a dot product with one contiguous row of B.
    const float* a = o.a;
    int64_t lda = o.a_rs;
    if (o.a_cs != 1) {
      // transA: gather the m (<= 16) rows of op(A) once so the dot products read them contiguously.
      float* buf = tl_skinny_a.get(static_cast<size_t>(m * k));
      for (int64_t p = 0; p < k; ++p)
        for (int i = 0; i < mi; ++i) buf[i * k + p] = o.a[i * o.a_rs + p * o.a_cs];
      a = buf;
      lda = k;
    }
    const int64_t ldb = o.b_cs;
    auto run = [&](int tid, int nt) {
      int64_t j0, j1;
      split_range(n, 4, nt, tid, &j0, &j1);
      if (j0 < j1) K.dot_nt(mi, j0, j1, k, a, lda, o.b, ldb, o.c, o.ldc, alpha, beta);
    };
    if (nthreads <= 1) run(0, 1);
    else parallel_run(run, nthreads);
  } else {
    auto run = [&](int tid, int nt) {
      int64_t j0, j1;
      split_range(n, 64, nt, tid, &j0, &j1);
      if (j0 < j1) K.axpy_nn(mi, j0, j1, k, o.a, o.a_rs, o.a_cs, o.b, o.b_rs, o.c, o.ldc, alpha, beta);
    };
    if (nthreads <= 1) run(0, 1);
    else parallel_run(run, nthreads);
  }
}

// Narrow products (n <= 16 < m, e.g. W·x with x a column): the mirror of the skinny path. Cᵀ (n×m)
// is computed into a scratch buffer with the skinny kernels (op(B)ᵀ plays A, A plays Bᵀ), then
// written into C with beta. Packing for the blocked path would pad n up to NR and waste most work.
void gemm_narrow(const GemmKernel& K, const Operands& o, int64_t m, int64_t n, int64_t k, float alpha, float beta,
                 int nthreads) {
  const int ni = static_cast<int>(n);
  float* t = tl_pack_a.get(static_cast<size_t>(n * m));  // Cᵀ, row stride m
  if (o.a_cs == 1) {
    // A rows are k-contiguous: Cᵀ[j][i] = dot(op(B) column j, A row i).
    const float* bt = o.b;
    int64_t ldbt = o.b_cs;
    if (o.b_rs != 1) {
      float* buf = tl_skinny_a.get(static_cast<size_t>(n * k));  // op(B)ᵀ gathered, n×k
      for (int64_t p = 0; p < k; ++p)
        for (int j = 0; j < ni; ++j) buf[j * k + p] = o.b[p * o.b_rs + j * o.b_cs];
      bt = buf;
      ldbt = k;
    }
    auto run = [&](int tid, int nt) {
      int64_t i0, i1;
      split_range(m, 8, nt, tid, &i0, &i1);
      if (i0 < i1) K.dot_nt(ni, i0, i1, k, bt, ldbt, o.a, o.a_rs, t, m, alpha, 0.0f);
    };
    if (nthreads <= 1) run(0, 1);
    else parallel_run(run, nthreads);
  } else {
    // transA: A is stored k×m with rows m-contiguous, so Cᵀ = op(B)ᵀ · A is an axpy over A's rows.
    auto run = [&](int tid, int nt) {
      int64_t i0, i1;
      split_range(m, 64, nt, tid, &i0, &i1);
      if (i0 < i1) K.axpy_nn(ni, i0, i1, k, o.b, o.b_cs, o.b_rs, o.a, o.a_cs, t, m, alpha, 0.0f);
    };
    if (nthreads <= 1) run(0, 1);
    else parallel_run(run, nthreads);
  }
  for (int64_t i = 0; i < m; ++i) {
    float* cr = o.c + i * o.ldc;
    for (int j = 0; j < ni; ++j) cr[j] = beta == 0.0f ? t[j * m + i] : t[j * m + i] + beta * cr[j];
  }
}

// C = beta·C (alpha = 0 or k = 0); beta = 0 writes zeros without reading C.
void scale_c(float* c, int64_t m, int64_t n, int64_t ldc, float beta) {
  for (int64_t i = 0; i < m; ++i) {
    float* cr = c + i * ldc;
    if (beta == 0.0f) std::fill(cr, cr + n, 0.0f);
    else if (beta != 1.0f)
      for (int64_t j = 0; j < n; ++j) cr[j] *= beta;
  }
}

void gemm_one(const GemmKernel& K, const Operands& o, int64_t m, int64_t n, int64_t k, float alpha, float beta,
              int nthreads) {
  if (k == 0 || alpha == 0.0f) {
    scale_c(o.c, m, n, o.ldc, beta);
    return;
  }
  if (m <= 16) {
    gemm_skinny(K, o, m, n, k, alpha, beta, nthreads);
    return;
  }
  if (n <= 16) {
    gemm_narrow(K, o, m, n, k, alpha, beta, nthreads);
    return;
  }
  if (nthreads <= 1) {
    gemm_blocked(K, o, m, n, k, alpha, beta);
    return;
  }
  // Thread grid tm × tn over C. Split n (each thread packs only its share of B) unless n has too
  // few NR tiles to share; then split m (each thread packs all of B, its own A rows).
  const int64_t tiles_n = ceil_div(n, K.nr);
  const int64_t tiles_m = ceil_div(m, K.mr);
  int tn = nthreads, tm = 1;
  if (tiles_n < 2 * static_cast<int64_t>(nthreads) && tiles_m > tiles_n) {
    tm = nthreads;
    tn = 1;
  }
  parallel_run(
      [&](int tid, int nt) {
        // nt may be below nthreads when called from inside a worker; cover C all the same.
        const int gm = nt == nthreads ? tm : 1;
        const int gn = nt == nthreads ? tn : nt;
        int64_t i0, i1, j0, j1;
        split_range(m, K.mr, gm, tid / gn, &i0, &i1);
        split_range(n, K.nr, gn, tid % gn, &j0, &j1);
        if (i0 >= i1 || j0 >= j1) return;
        Operands sub = o;
        sub.a = o.a + i0 * o.a_rs;
        sub.b = o.b + j0 * o.b_cs;
        sub.c = o.c + i0 * o.ldc + j0;
        gemm_blocked(K, sub, i1 - i0, j1 - j0, k, alpha, beta);
      },
      nthreads);
}

}  // namespace

const GemmKernel* gemm_kernel_portable() { return &kPortable; }

const char* gemm_kernel_name() { return active_kernel().name; }

void gemm_f32(const float* a, const float* b, float* c, int64_t batch, int64_t m, int64_t n, int64_t k,
              bool trans_a, bool trans_b, int64_t lda, int64_t ldb, int64_t ldc, int64_t stride_a,
              int64_t stride_b, int64_t stride_c, float alpha, float beta) {
  if (batch <= 0 || m <= 0 || n <= 0) return;
  const GemmKernel& K = active_kernel();
  Operands o;
  o.a = a;
  o.a_rs = trans_a ? 1 : lda;
  o.a_cs = trans_a ? lda : 1;
  o.b = b;
  o.b_rs = trans_b ? 1 : ldb;
  o.b_cs = trans_b ? ldb : 1;
  o.c = c;
  o.ldc = ldc;
  const int64_t macs = m * n * std::max<int64_t>(k, 1);
  const int threads_total = threads_for(macs * batch);
  // Many small products (attention heads): one thread per group of whole products. Not when the
  // items share C (stride 0): they then run in order, each accumulating per beta.
  if (batch > 1 && stride_c != 0 && threads_total > 1 && threads_for(macs) < threads_total) {
    parallel_run(
        [&](int tid, int nt) {
          const int64_t b0 = batch * tid / nt, b1 = batch * (tid + 1) / nt;
          for (int64_t t = b0; t < b1; ++t) {
            Operands it = o;
            it.a = a + t * stride_a;
            it.b = b + t * stride_b;
            it.c = c + t * stride_c;
            gemm_one(K, it, m, n, k, alpha, beta, 1);
          }
        },
        threads_total);
    return;
  }
  const int nthreads = threads_for(macs);
  for (int64_t t = 0; t < batch; ++t) {
    Operands it = o;
    it.a = a + t * stride_a;
    it.b = b + t * stride_b;
    it.c = c + t * stride_c;
    gemm_one(K, it, m, n, k, alpha, beta, nthreads);
  }
}

}  // namespace weft
