#include "cpu.h"

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace weft {
namespace {

#if defined(__x86_64__)
unsigned long long xgetbv0() {
  unsigned int eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  f.sse42 = (c >> 20) & 1;
  const bool osxsave = (c >> 27) & 1;
  const bool avx_hw = (c >> 28) & 1;
  f.fma = (c >> 12) & 1;
  f.f16c = (c >> 29) & 1;
  unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_ymm = (xcr0 & 0x6) == 0x6;          // XMM and YMM state saved by the OS
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;        // plus opmask and ZMM state
  f.avx = avx_hw && os_ymm;
  if (!f.avx) {
    f.fma = f.f16c = false;
    return f;
  }
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = (b >> 5) & 1;
    if (os_zmm) {
      f.avx512f = (b >> 16) & 1;
      f.avx512dq = (b >> 17) & 1;
      f.avx512bw = (b >> 30) & 1;
      f.avx512vl = (b >> 31) & 1;
      f.avx512vnni = (c >> 11) & 1;
    }
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
    f.avxvnni = (a >> 4) & 1;
    if (os_zmm) f.avx512bf16 = (a >> 5) & 1;
  }
#endif
  return f;
}

KernelPath best_supported(const CpuFeatures& f) {
  if (f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.fma && f.f16c) return KernelPath::Avx512;
  if (f.avx2 && f.fma && f.f16c) return KernelPath::Avx2;
  return KernelPath::Portable;
}

KernelPath initial_path() {
  KernelPath best = best_supported(cpu_features());
  const char* env = std::getenv("WEFT_KERNEL");
  if (env == nullptr) return best;
  KernelPath want = best;
  if (std::strcmp(env, "portable") == 0) want = KernelPath::Portable;
  else if (std::strcmp(env, "avx2") == 0) want = KernelPath::Avx2;
  else if (std::strcmp(env, "avx512") == 0) want = KernelPath::Avx512;
  return static_cast<int>(want) <= static_cast<int>(best) ? want : best;
}

KernelPath g_path = KernelPath::Portable;
bool g_path_init = false;

}  // namespace

const CpuFeatures& cpu_features() {
  static CpuFeatures f = detect();
  return f;
}

KernelPath kernel_path() {
  if (!g_path_init) {
    g_path = initial_path();
    g_path_init = true;
  }
  return g_path;
}

const char* kernel_path_name(KernelPath p) {
  switch (p) {
    case KernelPath::Avx512: return "avx512";
    case KernelPath::Avx2: return "avx2";
    default: return "portable";
  }
}

bool set_kernel_path(KernelPath p) {
  if (static_cast<int>(p) > static_cast<int>(best_supported(cpu_features()))) return false;
  g_path = p;
  g_path_init = true;
  return true;
}

}  // namespace weft
