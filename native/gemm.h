// f32 GEMM: C = alpha·op(A)·op(B) + beta·C, batched, row-major, the semantics of GemmParams in
// src/tensor/backend/backend.ts. The driver (gemm.cc) does the BLIS loops, packing and threading;
// each ISA supplies a register-tiled micro-kernel and the unpacked skinny (m <= 16) kernels.
#pragma once
#include <cstdint>

namespace weft {

// beta == 0 never reads C. Strides are in elements; a zero batch stride broadcasts that operand.
// The caller guarantees every touched index is inside its buffer (the glue checks it).
void gemm_f32(const float* a, const float* b, float* c, int64_t batch, int64_t m, int64_t n, int64_t k,
              bool trans_a, bool trans_b, int64_t lda, int64_t ldb, int64_t ldc, int64_t stride_a,
              int64_t stride_b, int64_t stride_c, float alpha, float beta);

// Name of the micro-kernel gemm_f32 uses on the current kernel path, e.g. "avx512 14x32".
const char* gemm_kernel_name();

// What one ISA provides. Packed layouts: an A micro-panel is kc×MR ([p][r], rows padded with
// zeros), a B micro-panel is kc×NR ([p][c], columns padded with zeros).
struct GemmKernel {
  const char* name;
  int mr, nr;       // register tile
  int mc, kc, nc;   // cache blocking (mc multiple of mr, nc multiple of nr)
  // C[0..rows)[0..cols) = alpha·(Ap·Bp) + beta·C, with rows <= mr, cols <= nr; beta == 0 never reads C.
  void (*micro)(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int rows, int cols,
                float alpha, float beta);
  // Skinny, B stored n×k (rows k-contiguous): C[i][j] = alpha·dot(A_i, B_j) + beta·C[i][j] for
  // i < m, j in [j0, j1). A rows are k-contiguous with row stride lda.
  void (*dot_nt)(int m, int64_t j0, int64_t j1, int64_t k, const float* a, int64_t lda, const float* b,
                 int64_t ldb, float* c, int64_t ldc, float alpha, float beta);
  // Skinny, B stored k×n (rows n-contiguous): C[i][j0..j1) = alpha·Σ_p A(i,p)·B[p][j0..j1) + beta·C.
  // A(i,p) = a[i·a_rs + p·a_cs].
  void (*axpy_nn)(int m, int64_t j0, int64_t j1, int64_t k, const float* a, int64_t a_rs, int64_t a_cs,
                  const float* b, int64_t ldb, float* c, int64_t ldc, float alpha, float beta);
  // Optional fast packing of op(B) = Bᵀ (B stored n×k, row stride ldb) into kc×nr micro-panels;
  // null means the driver's generic packing.
  void (*pack_b_trans)(const float* b, int64_t ldb, int64_t kc, int64_t nc, float* dst);
};

const GemmKernel* gemm_kernel_portable();
const GemmKernel* gemm_kernel_avx2();
const GemmKernel* gemm_kernel_avx512();

}  // namespace weft
