// Text kernels for the data pipeline (src/data/pipeline): the MinHash signature, the near-dedup
// stage's cost — numPerm hashes per shingle. The loop over the permutations is written so the
// compiler vectorises it (32-bit multiply, xor-shift, unsigned min), once per ISA through target
// attributes, dispatched on the process's kernel path. Results are the same bits on every path.
#include <napi.h>

#include <cstdint>
#include <string>

#include "cpu.h"

namespace weft {
namespace {

// fmix32(shingle ^ seed) per permutation, keeping the minimum: MurmurHash3's finaliser, as the
// TypeScript MinHasher.signatureOf computes it.
#define WEFT_MINHASH_BODY                                                 \
  for (int64_t j = 0; j < n; ++j) {                                       \
    const uint32_t x = shingles[j];                                       \
    for (int64_t i = 0; i < m; ++i) {                                     \
      uint32_t h = x ^ seeds[i];                                          \
      h ^= h >> 16;                                                       \
      h *= 0x85ebca6bu;                                                   \
      h ^= h >> 13;                                                       \
      h *= 0xc2b2ae35u;                                                   \
      h ^= h >> 16;                                                       \
      sig[i] = h < sig[i] ? h : sig[i];                                   \
    }                                                                     \
  }

void minhash_portable(const uint32_t* __restrict shingles, int64_t n, const uint32_t* __restrict seeds, int64_t m,
                      uint32_t* __restrict sig) {
  WEFT_MINHASH_BODY
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) void minhash_avx2(const uint32_t* __restrict shingles, int64_t n,
                                                  const uint32_t* __restrict seeds, int64_t m,
                                                  uint32_t* __restrict sig) {
  WEFT_MINHASH_BODY
}
__attribute__((target("avx512f,avx512vl,avx2"))) void minhash_avx512(const uint32_t* __restrict shingles, int64_t n,
                                                                     const uint32_t* __restrict seeds, int64_t m,
                                                                     uint32_t* __restrict sig) {
  WEFT_MINHASH_BODY
}
#endif

void minhash_signature(const uint32_t* shingles, int64_t n, const uint32_t* seeds, int64_t m, uint32_t* sig) {
  for (int64_t i = 0; i < m; ++i) sig[i] = 0xffffffffu;
#if defined(__x86_64__) || defined(__i386__)
  switch (kernel_path()) {
    case KernelPath::Avx512: return minhash_avx512(shingles, n, seeds, m, sig);
    case KernelPath::Avx2: return minhash_avx2(shingles, n, seeds, m, sig);
    default: return minhash_portable(shingles, n, seeds, m, sig);
  }
#else
  minhash_portable(shingles, n, seeds, m, sig);
#endif
}

Napi::Uint32Array u32_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    throw Napi::TypeError::New(info.Env(), std::string("minhashSignature: '") + name + "' must be a Uint32Array");
  }
  return info[i].As<Napi::Uint32Array>();
}

// minhashSignature(shingles: Uint32Array, seeds: Uint32Array, out: Uint32Array): out[i] = min over
// the shingles of fmix32(shingle ^ seeds[i]) (0xffffffff when there are none).
Napi::Value MinhashSignature(const Napi::CallbackInfo& info) {
  Napi::Uint32Array shingles = u32_arg(info, 0, "shingles");
  Napi::Uint32Array seeds = u32_arg(info, 1, "seeds");
  Napi::Uint32Array out = u32_arg(info, 2, "out");
  if (out.ElementLength() != seeds.ElementLength()) {
    throw Napi::RangeError::New(info.Env(), "minhashSignature: 'out' must have one element per seed (" +
                                                std::to_string(seeds.ElementLength()) + "), got " +
                                                std::to_string(out.ElementLength()));
  }
  minhash_signature(shingles.Data(), static_cast<int64_t>(shingles.ElementLength()), seeds.Data(),
                    static_cast<int64_t>(seeds.ElementLength()), out.Data());
  return info.Env().Undefined();
}

}  // namespace

void RegisterText(Napi::Env env, Napi::Object exports) {
  exports.Set("minhashSignature", Napi::Function::New(env, MinhashSignature, "minhashSignature"));
}

}  // namespace weft
