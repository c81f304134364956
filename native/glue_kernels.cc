#include <napi.h>

namespace weft {
void RegisterKernels(Napi::Env /*env*/, Napi::Object /*exports*/) {}
}  // namespace weft
