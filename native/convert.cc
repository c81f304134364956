// f32 <-> bf16 / f16 conversions, bit-exact with src/tensor/backend/f16.ts: round to nearest even,
// overflow to ±Inf, f16 subnormals kept, NaN kept NaN (made quiet). Written branch-light on bits
// so GCC vectorises the loops.
#include <cstring>

#include "kernels.h"
#include "threadpool.h"

namespace weft {
namespace {

inline uint32_t bits_of(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}
inline float float_of(uint32_t b) {
  float x;
  std::memcpy(&x, &b, 4);
  return x;
}

inline uint16_t to_bf16(uint32_t b) {
  if ((b & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((b >> 16) | 0x0040u);
  return static_cast<uint16_t>((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

inline uint16_t to_f16(uint32_t b) {
  const uint32_t sign = (b >> 16) & 0x8000u;
  const uint32_t exponent = (b >> 23) & 0xffu;
  const uint32_t mantissa = b & 0x7fffffu;
  if (exponent == 0xffu) return static_cast<uint16_t>(mantissa == 0 ? sign | 0x7c00u : sign | 0x7e00u | (mantissa >> 13));
  const int half_exp = static_cast<int>(exponent) - 127 + 15;
  if (half_exp >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);
  if (half_exp <= 0) {
    if (half_exp < -10) return static_cast<uint16_t>(sign);
    const uint32_t significand = mantissa | 0x800000u;
    const int shift = 14 - half_exp;
    uint32_t m = significand >> shift;
    const uint32_t rem = significand & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (m & 1u))) ++m;
    return static_cast<uint16_t>(sign | m);
  }
  uint32_t half = sign | (static_cast<uint32_t>(half_exp) << 10) | (mantissa >> 13);
  const uint32_t rem = mantissa & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;
  return static_cast<uint16_t>(half);
}

inline uint32_t from_f16(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1fu) return sign | 0x7f800000u | (mantissa << 13);
  if (exponent != 0) return sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
  if (mantissa == 0) return sign;
  uint32_t m = mantissa;
  int e = -14;
  while ((m & 0x400u) == 0) {
    m <<= 1;
    --e;
  }
  return sign | (static_cast<uint32_t>(e + 127) << 23) | ((m & 0x3ffu) << 13);
}

constexpr int64_t kGrain = 1 << 16;

}  // namespace

void f32_to_bf16(const float* x, uint16_t* out, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = to_bf16(bits_of(x[i]));
  });
}

void bf16_to_f32(const uint16_t* x, float* out, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = float_of(static_cast<uint32_t>(x[i]) << 16);
  });
}

void f32_to_f16(const float* x, uint16_t* out, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = to_f16(bits_of(x[i]));
  });
}

void f16_to_f32(const uint16_t* x, float* out, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = float_of(from_f16(x[i]));
  });
}

}  // namespace weft
