// Quantized block formats and their dot products (see glue_quant.cc).
#include "kernels.h"
