// AVX2 + FMA instantiation of the row kernels (8 lanes); compiled with -mavx2 -mfma (binding.gyp).
#define WEFT_ISA_NS isa_avx2
#define WEFT_VW 8
#include "kernels_impl.h"
