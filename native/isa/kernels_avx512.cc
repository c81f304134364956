// AVX-512 instantiation of the row kernels (16 lanes); compiled with -mavx512* -mfma (binding.gyp).
#define WEFT_ISA_NS isa_avx512
#define WEFT_VW 16
#include "kernels_impl.h"
