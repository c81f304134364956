// Portable instantiation of the row kernels: 4 lanes, which x86-64's baseline SSE2 (and any other
// target GCC supports) handles natively.
#define WEFT_ISA_NS isa_portable
#define WEFT_VW 4
#include "kernels_impl.h"
