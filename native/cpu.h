// Runtime CPU feature detection and kernel-path choice. Shipped code is never built with
// -march=native: per-ISA translation units are compiled with their own flags and chosen here.
#pragma once

namespace weft {

struct CpuFeatures {
  bool sse42 = false;
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512dq = false;
  bool avx512vl = false;
  bool avx512bf16 = false;
  bool avx512vnni = false;
  bool avxvnni = false;
};

enum class KernelPath { Portable = 0, Avx2 = 1, Avx512 = 2 };

const CpuFeatures& cpu_features();
// The best path this CPU (and OS) supports, lowered by WEFT_KERNEL=portable|avx2|avx512 if set.
KernelPath kernel_path();
const char* kernel_path_name(KernelPath p);
// Forces a path (tests use it to cover every variant); refuses a path the CPU lacks (returns false).
bool set_kernel_path(KernelPath p);

}  // namespace weft
