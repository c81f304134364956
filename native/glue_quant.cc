// N-API glue for the quantized kernels (quant.cc): checks formats, shapes and buffer lengths, then
// calls weft::quant_matmul / weft::int8_gemm. Errors name the function, the argument and the fix.
#include <napi.h>

#include <cmath>
#include <string>

#include "quant.h"

namespace weft {
namespace {

using Info = Napi::CallbackInfo;

[[noreturn]] void fail_type(const Info& info, const std::string& fn, const std::string& msg) {
  throw Napi::TypeError::New(info.Env(), fn + ": " + msg);
}
[[noreturn]] void fail_range(const Info& info, const std::string& fn, const std::string& msg) {
  throw Napi::RangeError::New(info.Env(), fn + ": " + msg);
}

template <class T>
struct Arr {
  T* data = nullptr;
  int64_t length = 0;
};

template <class T>
Arr<T> typed_arg(const Info& info, const std::string& fn, size_t i, const char* name, napi_typedarray_type want,
                 const char* type_name, bool nullable) {
  if (nullable && (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined())) return {};
  if (i >= info.Length() || !info[i].IsTypedArray()) fail_type(info, fn, std::string("'") + name + "' must be a " + type_name);
  Napi::TypedArray t = info[i].As<Napi::TypedArray>();
  const napi_typedarray_type got = t.TypedArrayType();
  // Int8 codes may come as an Int8Array or as their bytes (Uint8Array).
  const bool bytes_ok = (want == napi_uint8_array || want == napi_int8_array) &&
                        (got == napi_uint8_array || got == napi_int8_array);
  if (got != want && !bytes_ok) fail_type(info, fn, std::string("'") + name + "' must be a " + type_name);
  auto* base = static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
  return {reinterpret_cast<T*>(base), static_cast<int64_t>(t.ElementLength())};
}

int64_t size_arg(const Info& info, const std::string& fn, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber()) fail_type(info, fn, std::string("'") + name + "' must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v == std::floor(v)) || v < 0 || v > 2147483647.0) {
    fail_range(info, fn, std::string("'") + name + "' must be an integer in [0, 2^31), got " + std::to_string(v));
  }
  return static_cast<int64_t>(v);
}

bool bool_arg(const Info& info, size_t i) { return i < info.Length() && info[i].IsBoolean() && info[i].As<Napi::Boolean>().Value(); }

QFormat format_arg(const Info& info, const std::string& fn, size_t i) {
  const std::string s = i < info.Length() && info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  if (s == "q8_0") return QFormat::Q8_0;
  if (s == "q4_0") return QFormat::Q4_0;
  if (s == "q4_1") return QFormat::Q4_1;
  if (s == "q4_g128") return QFormat::Q4_G128;
  if (s == "int8") return QFormat::INT8;
  if (s == "tq2") return QFormat::TQ2;
  fail_type(info, fn, "'format' must be one of q8_0, q4_0, q4_1, q4_g128, int8, tq2, got '" + s + "'");
}

void check_len(const Info& info, const std::string& fn, const char* name, int64_t got, int64_t want, const std::string& what) {
  if (got != want) {
    fail_range(info, fn, std::string("'") + name + "' has " + std::to_string(got) + " elements, expected " + what + " = " +
                             std::to_string(want));
  }
}

// quantMatmul(format, w, rowScales|null, x, bias|null, y, m, n, k, ref?, packed?): y[m,n] = x[m,k]·Wᵀ + bias.
Napi::Value QuantMatmul(const Info& info) {
  const std::string fn = "quantMatmul";
  const QFormat f = format_arg(info, fn, 0);
  const auto w = typed_arg<uint8_t>(info, fn, 1, "w", napi_uint8_array, "Uint8Array", false);
  const auto rs = typed_arg<float>(info, fn, 2, "rowScales", napi_float32_array, "Float32Array or null", true);
  const auto x = typed_arg<float>(info, fn, 3, "x", napi_float32_array, "Float32Array", false);
  const auto bias = typed_arg<float>(info, fn, 4, "bias", napi_float32_array, "Float32Array or null", true);
  const auto y = typed_arg<float>(info, fn, 5, "y", napi_float32_array, "Float32Array", false);
  const int64_t m = size_arg(info, fn, 6, "m"), n = size_arg(info, fn, 7, "n"), k = size_arg(info, fn, 8, "k");
  const bool ref = bool_arg(info, 9);
  const int64_t block = qformat_block(f);
  if (k % 32 != 0 || k % block != 0) {
    fail_range(info, fn, "k (the input width, " + std::to_string(k) + ") must be a multiple of " +
                             std::to_string(std::max<int64_t>(block, 32)) +
                             " (the block the kernel dots over); leave this layer unquantized or pad it");
  }
  check_len(info, fn, "w", w.length, n * qformat_row_bytes(f, k), "n · bytes per row");
  check_len(info, fn, "x", x.length, m * k, "m · k");
  check_len(info, fn, "y", y.length, m * n, "m · n");
  if (bias.data != nullptr) check_len(info, fn, "bias", bias.length, n, "n");
  if (f == QFormat::INT8) {
    if (rs.data == nullptr) fail_type(info, fn, "int8 weights need 'rowScales' (one f32 scale per output row)");
    check_len(info, fn, "rowScales", rs.length, n, "n");
  }
  const auto packed = typed_arg<uint8_t>(info, fn, 10, "packed", napi_uint8_array, "Uint8Array or null", true);
  if (packed.data != nullptr) {
    if (f != QFormat::Q4_0) fail_type(info, fn, "'packed' (quantRepack's q4_0x8 bytes) is for q4_0 weights only");
    check_len(info, fn, "packed", packed.length, q4_0x8_bytes(n, k), "quantRepack's size for n, k");
  }
  quant_matmul(f, w.data, rs.data, x.data, bias.data, y.data, m, n, k, ref, packed.data);
  return info.Env().Undefined();
}

// quantRepack(format, w, n, k) → Uint8Array: q4_0 rows regrouped eight at a time (q4_0x8, see
// quant.h) for quantMatmul's `packed` argument; rows past the last whole group are not included.
Napi::Value QuantRepack(const Info& info) {
  const std::string fn = "quantRepack";
  const QFormat f = format_arg(info, fn, 0);
  if (f != QFormat::Q4_0) fail_type(info, fn, "only q4_0 has a repacked layout; call quantMatmul without 'packed'");
  const auto w = typed_arg<uint8_t>(info, fn, 1, "w", napi_uint8_array, "Uint8Array", false);
  const int64_t n = size_arg(info, fn, 2, "n"), k = size_arg(info, fn, 3, "k");
  if (k % 32 != 0) fail_range(info, fn, "k (" + std::to_string(k) + ") must be a multiple of 32");
  check_len(info, fn, "w", w.length, n * qformat_row_bytes(f, k), "n · bytes per row");
  Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), static_cast<size_t>(q4_0x8_bytes(n, k)));
  repack_q4_0x8(w.data, n, k, out.Data());
  return out;
}

// int8Gemm(w int8 [n,k], rowScales [n], x [m,k], bias|null, y [m,n], m, n, k, ref?): W8A8 with
// per-token dynamic activation quantization.
Napi::Value Int8Gemm(const Info& info) {
  const std::string fn = "int8Gemm";
  const auto w = typed_arg<int8_t>(info, fn, 0, "w", napi_int8_array, "Int8Array (or its bytes)", false);
  const auto rs = typed_arg<float>(info, fn, 1, "rowScales", napi_float32_array, "Float32Array", false);
  const auto x = typed_arg<float>(info, fn, 2, "x", napi_float32_array, "Float32Array", false);
  const auto bias = typed_arg<float>(info, fn, 3, "bias", napi_float32_array, "Float32Array or null", true);
  const auto y = typed_arg<float>(info, fn, 4, "y", napi_float32_array, "Float32Array", false);
  const int64_t m = size_arg(info, fn, 5, "m"), n = size_arg(info, fn, 6, "n"), k = size_arg(info, fn, 7, "k");
  const bool ref = bool_arg(info, 8);
  // int32 sums of (q + 128)·w stay exact up to k = 2^31 / (255·127).
  if (k > 65536) fail_range(info, fn, "k = " + std::to_string(k) + " exceeds 65536 (int32 accumulation limit)");
  check_len(info, fn, "w", w.length, n * k, "n · k");
  check_len(info, fn, "rowScales", rs.length, n, "n");
  check_len(info, fn, "x", x.length, m * k, "m · k");
  check_len(info, fn, "y", y.length, m * n, "m · n");
  if (bias.data != nullptr) check_len(info, fn, "bias", bias.length, n, "n");
  int8_gemm(w.data, rs.data, x.data, bias.data, y.data, m, n, k, ref);
  return info.Env().Undefined();
}

// quantizeActQ8(x, m, k, scalar?) → { q: Int8Array, d: Float32Array }: the activation blocks the
// kernels see (scalar = true: the reference loops).
Napi::Value QuantizeActQ8(const Info& info) {
  const std::string fn = "quantizeActQ8";
  const auto x = typed_arg<float>(info, fn, 0, "x", napi_float32_array, "Float32Array", false);
  const int64_t m = size_arg(info, fn, 1, "m"), k = size_arg(info, fn, 2, "k");
  if (k % 32 != 0) fail_range(info, fn, "k (" + std::to_string(k) + ") must be a multiple of 32");
  check_len(info, fn, "x", x.length, m * k, "m · k");
  Napi::Env env = info.Env();
  Napi::Int8Array q = Napi::Int8Array::New(env, static_cast<size_t>(m * k));
  Napi::Float32Array d = Napi::Float32Array::New(env, static_cast<size_t>(m * (k / 32)));
  quantize_act_q8(x.data, m, k, q.Data(), d.Data(), bool_arg(info, 3));
  Napi::Object out = Napi::Object::New(env);
  out.Set("q", q);
  out.Set("d", d);
  return out;
}

Napi::Value QuantKernelInfo(const Info& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("kernel", quant_kernel_name());
  return out;
}

}  // namespace

void RegisterQuant(Napi::Env env, Napi::Object exports) {
  exports.Set("quantMatmul", Napi::Function::New(env, QuantMatmul));
  exports.Set("quantRepack", Napi::Function::New(env, QuantRepack));
  exports.Set("int8Gemm", Napi::Function::New(env, Int8Gemm));
  exports.Set("quantizeActQ8", Napi::Function::New(env, QuantizeActQ8));
  exports.Set("quantKernelInfo", Napi::Function::New(env, QuantKernelInfo));
}

}  // namespace weft
