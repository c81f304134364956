// N-API glue for the quantized kernels (block formats, INT8 GEMM).
#include <napi.h>

namespace weft {
void RegisterQuant(Napi::Env env, Napi::Object exports) {
  (void)env;
  (void)exports;
}
}  // namespace weft
