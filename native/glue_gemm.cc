// N-API glue for GEMM: checks argument types, sizes and that every element the product touches lies
// inside its buffer, then calls weft::gemm_f32 (gemm.cc). Errors name 'gemm', the operand and sizes.
#include <napi.h>

#include <cmath>
#include <cstring>
#include <string>

#include "gemm.h"
#include "threadpool.h"

namespace weft {
namespace {

using Info = Napi::CallbackInfo;

[[noreturn]] void type_error(const Info& info, const std::string& msg) {
  throw Napi::TypeError::New(info.Env(), "gemm: " + msg);
}
[[noreturn]] void range_error(const Info& info, const std::string& msg) {
  throw Napi::RangeError::New(info.Env(), "gemm: " + msg);
}

struct F32Arg {
  float* data;
  int64_t length;
};

F32Arg f32_arg(const Info& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    type_error(info, std::string("'") + name + "' must be a Float32Array");
  }
  Napi::Float32Array a = info[i].As<Napi::Float32Array>();
  return {a.Data(), static_cast<int64_t>(a.ElementLength())};
}

double number_arg(const Info& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber()) type_error(info, std::string("'") + name + "' must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

// Sizes are capped well below 2^53 / 2^31 products so offset arithmetic below cannot overflow int64.
constexpr double kMaxSize = 4294967296.0;  // 2^32

int64_t size_arg(const Info& info, size_t i, const char* name) {
  const double v = number_arg(info, i, name);
  if (!(v == std::floor(v)) || v < 0 || v > kMaxSize) {
    range_error(info, std::string("'") + name + "' must be an integer in [0, 2^32], got " + std::to_string(v));
  }
  return static_cast<int64_t>(v);
}

bool bool_arg(const Info& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsBoolean()) type_error(info, std::string("'") + name + "' must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

// Largest element offset touched in a batch of `batch` matrices of rows×cols (row stride ld,
// batch stride stride), checked against the buffer length. Uses __int128 so no input overflows.
void check_extent(const Info& info, const char* operand, const F32Arg& buf, int64_t batch, int64_t rows,
                  int64_t cols, int64_t ld, int64_t stride, const char* rows_name, const char* cols_name) {
  if (ld < cols) {
    range_error(info, std::string("leading dimension of ") + operand + " (" + std::to_string(ld) +
                          ") is smaller than its row length " + cols_name + " = " + std::to_string(cols));
  }
  const __int128 last = static_cast<__int128>(batch - 1) * stride + static_cast<__int128>(rows - 1) * ld + (cols - 1);
  if (last >= buf.length) {
    range_error(info, std::string(operand) + " is too short: batch=" + std::to_string(batch) + ", " + rows_name +
                          "=" + std::to_string(rows) + ", " + cols_name + "=" + std::to_string(cols) +
                          ", ld=" + std::to_string(ld) + ", stride=" + std::to_string(stride) + " reach element " +
                          std::to_string(static_cast<long long>(last)) + " but " + operand + ".length is " +
                          std::to_string(buf.length));
  }
}

bool overlaps(const F32Arg& x, const F32Arg& y) {
  const uintptr_t x0 = reinterpret_cast<uintptr_t>(x.data), x1 = x0 + static_cast<uintptr_t>(x.length) * 4;
  const uintptr_t y0 = reinterpret_cast<uintptr_t>(y.data), y1 = y0 + static_cast<uintptr_t>(y.length) * 4;
  return x.length > 0 && y.length > 0 && x0 < y1 && y0 < x1;
}

// gemm(a, b, c, batch, m, n, k, transA, transB, lda, ldb, ldc, strideA, strideB, strideC, alpha, beta)
Napi::Value Gemm(const Info& info) {
  if (info.Length() != 17) {
    type_error(info, "expected 17 arguments (a, b, c, batch, m, n, k, transA, transB, lda, ldb, ldc, strideA, "
                     "strideB, strideC, alpha, beta), got " +
                         std::to_string(info.Length()));
  }
  const F32Arg a = f32_arg(info, 0, "a");
  const F32Arg b = f32_arg(info, 1, "b");
  const F32Arg c = f32_arg(info, 2, "c");
  const int64_t batch = size_arg(info, 3, "batch");
  const int64_t m = size_arg(info, 4, "m");
  const int64_t n = size_arg(info, 5, "n");
  const int64_t k = size_arg(info, 6, "k");
  const bool trans_a = bool_arg(info, 7, "transA");
  const bool trans_b = bool_arg(info, 8, "transB");
  const int64_t lda = size_arg(info, 9, "lda");
  const int64_t ldb = size_arg(info, 10, "ldb");
  const int64_t ldc = size_arg(info, 11, "ldc");
  const int64_t stride_a = size_arg(info, 12, "strideA");
  const int64_t stride_b = size_arg(info, 13, "strideB");
  const int64_t stride_c = size_arg(info, 14, "strideC");
  const double alpha = number_arg(info, 15, "alpha");
  const double beta = number_arg(info, 16, "beta");

  if (batch == 0 || m == 0 || n == 0) return info.Env().Undefined();
  check_extent(info, "c", c, batch, m, n, ldc, stride_c, "m", "n");
  if (k > 0) {
    check_extent(info, "a", a, batch, trans_a ? k : m, trans_a ? m : k, lda, stride_a, trans_a ? "k" : "m",
                 trans_a ? "m" : "k");
    check_extent(info, "b", b, batch, trans_b ? n : k, trans_b ? k : n, ldb, stride_b, trans_b ? "n" : "k",
                 trans_b ? "k" : "n");
    if (overlaps(c, a) || overlaps(c, b)) range_error(info, "c must not share memory with a or b");
  }
  gemm_f32(a.data, b.data, c.data, batch, m, n, k, trans_a, trans_b, lda, ldb, ldc, stride_a, stride_b, stride_c,
           static_cast<float>(alpha), static_cast<float>(beta));
  return info.Env().Undefined();
}

// The GEMM this process runs: micro-kernel and blocking, for `weft doctor` and the benchmarks.
Napi::Value GemmInfo(const Info& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("kernel", gemm_kernel_name());
  out.Set("threads", num_threads());
  return out;
}

// memcpy of src into dst (equal lengths), on one thread or split over the pool (third argument
// true): the bandwidth anchor for the memory-bound kernel benchmarks.
Napi::Value MemcpyBench(const Info& info) {
  for (size_t i = 0; i < 2; ++i) {
    if (i >= info.Length() || !info[i].IsTypedArray() ||
        info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw Napi::TypeError::New(info.Env(), "memcpyBench(src, dst): both arguments must be Float32Arrays");
    }
  }
  Napi::Float32Array s = info[0].As<Napi::Float32Array>(), d = info[1].As<Napi::Float32Array>();
  const F32Arg src{s.Data(), static_cast<int64_t>(s.ElementLength())};
  const F32Arg dst{d.Data(), static_cast<int64_t>(d.ElementLength())};
  if (src.length != dst.length) {
    throw Napi::RangeError::New(info.Env(), "memcpyBench: src.length (" + std::to_string(src.length) +
                                                ") != dst.length (" + std::to_string(dst.length) + ")");
  }
  const bool parallel = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  if (!parallel || overlaps(src, dst)) {
    std::memmove(dst.data, src.data, static_cast<size_t>(src.length) * sizeof(float));
  } else {
    // The ceiling for kernels that split rows over the pool: each thread copies its own chunk.
    parallel_for(src.length, int64_t{1} << 16, [&](int64_t begin, int64_t end) {
      std::memcpy(dst.data + begin, src.data + begin, static_cast<size_t>(end - begin) * sizeof(float));
    });
  }
  return info.Env().Undefined();
}

}  // namespace

void RegisterGemm(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, Gemm));
  exports.Set("gemmInfo", Napi::Function::New(env, GemmInfo));
  exports.Set("memcpyBench", Napi::Function::New(env, MemcpyBench));
}

}  // namespace weft
