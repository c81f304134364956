// N-API glue only: argument checking and dispatch. Kernels live in plain C++ files on raw pointers.
#include <napi.h>

#include "cpu.h"
#include "threadpool.h"

namespace weft {
// Each kernel family registers its own bindings (see glue_*.cc).
void RegisterGemm(Napi::Env env, Napi::Object exports);
void RegisterKernels(Napi::Env env, Napi::Object exports);
void RegisterPaged(Napi::Env env, Napi::Object exports);
void RegisterQuant(Napi::Env env, Napi::Object exports);
void RegisterText(Napi::Env env, Napi::Object exports);
void RegisterBpe(Napi::Env env, Napi::Object exports);
}  // namespace weft

namespace {

Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const weft::CpuFeatures& f = weft::cpu_features();
  Napi::Object features = Napi::Object::New(env);
  features.Set("sse4.2", f.sse42);
  features.Set("avx", f.avx);
  features.Set("avx2", f.avx2);
  features.Set("fma", f.fma);
  features.Set("f16c", f.f16c);
  features.Set("avx512f", f.avx512f);
  features.Set("avx512bw", f.avx512bw);
  features.Set("avx512dq", f.avx512dq);
  features.Set("avx512vl", f.avx512vl);
  features.Set("avx512bf16", f.avx512bf16);
  features.Set("avx512vnni", f.avx512vnni);
  features.Set("avxvnni", f.avxvnni);
  Napi::Object out = Napi::Object::New(env);
  out.Set("features", features);
  out.Set("kernelPath", weft::kernel_path_name(weft::kernel_path()));
  out.Set("threads", weft::num_threads());
  return out;
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber() || info[0].As<Napi::Number>().Int32Value() < 1) {
    throw Napi::TypeError::New(env, "setNumThreads(n): n must be an integer >= 1");
  }
  weft::set_num_threads(info[0].As<Napi::Number>().Int32Value());
  return env.Undefined();
}

Napi::Value SetKernelPath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  weft::KernelPath p;
  if (name == "portable") p = weft::KernelPath::Portable;
  else if (name == "avx2") p = weft::KernelPath::Avx2;
  else if (name == "avx512") p = weft::KernelPath::Avx512;
  else throw Napi::TypeError::New(env, "setKernelPath(name): name must be 'portable', 'avx2' or 'avx512'");
  return Napi::Boolean::New(env, weft::set_kernel_path(p));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfo));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("setKernelPath", Napi::Function::New(env, SetKernelPath));
  weft::RegisterGemm(env, exports);
  weft::RegisterKernels(env, exports);
  weft::RegisterPaged(env, exports);
  weft::RegisterQuant(env, exports);
  weft::RegisterText(env, exports);
  weft::RegisterBpe(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(weft, Init)
