// N-API glue for the paged-attention kernels (inference engine's KV blocks).
#include <napi.h>

namespace weft {
void RegisterPaged(Napi::Env env, Napi::Object exports) {
  (void)env;
  (void)exports;
}
}  // namespace weft
