#include <napi.h>

namespace weft {
void RegisterGemm(Napi::Env /*env*/, Napi::Object /*exports*/) {}
}  // namespace weft
