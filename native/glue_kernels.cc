// N-API glue for every non-GEMM kernel: checks argument types, integer sizes and that each buffer
// is long enough for the sizes given (including every element a strided view can reach), then
// calls the plain C++ kernel. Errors name the kernel and the sizes involved.
#include <napi.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels.h"

namespace weft {
namespace {

using Info = Napi::CallbackInfo;

[[noreturn]] void type_error(const Info& info, const std::string& msg) { throw Napi::TypeError::New(info.Env(), msg); }
[[noreturn]] void range_error(const Info& info, const std::string& msg) {
  throw Napi::RangeError::New(info.Env(), msg);
}

std::string num(double v) {
  if (v == std::floor(v) && std::fabs(v) < 9e15) return std::to_string(static_cast<long long>(v));
  return std::to_string(v);
}

template <typename T>
struct Buf {
  T* data = nullptr;
  int64_t length = 0;
};

template <typename T>
constexpr napi_typedarray_type typed_kind();
template <>
constexpr napi_typedarray_type typed_kind<float>() { return napi_float32_array; }
template <>
constexpr napi_typedarray_type typed_kind<int32_t>() { return napi_int32_array; }
template <>
constexpr napi_typedarray_type typed_kind<uint16_t>() { return napi_uint16_array; }

template <typename T>
const char* typed_name() {
  if (typed_kind<T>() == napi_float32_array) return "Float32Array";
  if (typed_kind<T>() == napi_int32_array) return "Int32Array";
  return "Uint16Array";
}

template <typename T>
Buf<T> array_arg(const Info& info, size_t i, const char* kernel, const char* name, bool nullable = false) {
  Buf<T> b;
  if (i >= info.Length()) type_error(info, std::string(kernel) + ": missing argument '" + name + "'");
  Napi::Value v = info[i];
  if (nullable && (v.IsNull() || v.IsUndefined())) return b;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != typed_kind<T>()) {
    type_error(info, std::string(kernel) + ": '" + name + "' must be a " + typed_name<T>() + (nullable ? " or null" : ""));
  }
  Napi::TypedArrayOf<T> a = v.As<Napi::TypedArrayOf<T>>();
  b.data = a.Data();
  b.length = static_cast<int64_t>(a.ElementLength());
  return b;
}

double number_arg(const Info& info, size_t i, const char* kernel, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber()) type_error(info, std::string(kernel) + ": '" + name + "' must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

int64_t int_arg(const Info& info, size_t i, const char* kernel, const char* name, int64_t lo = 0) {
  double v = number_arg(info, i, kernel, name);
  if (!(v == std::floor(v)) || std::fabs(v) > 9007199254740991.0 || v < static_cast<double>(lo)) {
    range_error(info, std::string(kernel) + ": '" + name + "' must be an integer >= " + std::to_string(lo) + ", got " +
                          num(v));
  }
  return static_cast<int64_t>(v);
}

bool bool_arg(const Info& info, size_t i, const char* kernel, const char* name) {
  if (i >= info.Length() || !info[i].IsBoolean()) type_error(info, std::string(kernel) + ": '" + name + "' must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

std::vector<int64_t> int_list(const Info& info, size_t i, const char* kernel, const char* name, bool allow_negative) {
  if (i >= info.Length() || !info[i].IsArray()) type_error(info, std::string(kernel) + ": '" + name + "' must be an array");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  if (out.size() > static_cast<size_t>(kMaxDims))
    range_error(info, std::string(kernel) + ": at most " + std::to_string(kMaxDims) + " dims, got " + std::to_string(out.size()));
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value v = a.Get(k);
    if (!v.IsNumber()) type_error(info, std::string(kernel) + ": '" + name + "' must hold numbers");
    double d = v.As<Napi::Number>().DoubleValue();
    if (d != std::floor(d) || std::fabs(d) > 9007199254740991.0 || (!allow_negative && d < 0))
      range_error(info, std::string(kernel) + ": '" + name + "' holds a bad value " + num(d));
    out[k] = static_cast<int64_t>(d);
  }
  return out;
}

void need(const Info& info, const char* kernel, const char* name, int64_t have, double want) {
  if (static_cast<double>(have) < want) {
    range_error(info, std::string(kernel) + ": '" + name + "' has " + std::to_string(have) + " elements, needs " +
                          num(want));
  }
}

// Checks that every element a strided view reaches over `shape` lies inside [0, length).
void check_strided(const Info& info, const char* kernel, const char* name, int64_t length, int64_t offset,
                   const std::vector<int64_t>& strides, const std::vector<int64_t>& shape) {
  if (strides.size() != shape.size()) {
    range_error(info, std::string(kernel) + ": '" + name + "' has " + std::to_string(strides.size()) +
                          " strides for a " + std::to_string(shape.size()) + "-d shape");
  }
  for (int64_t s : shape)
    if (s == 0) return;  // nothing is read
  double lo = static_cast<double>(offset), hi = static_cast<double>(offset);
  for (size_t d = 0; d < shape.size(); ++d) {
    double span = static_cast<double>(shape[d] - 1) * static_cast<double>(strides[d]);
    if (span < 0) lo += span; else hi += span;
  }
  if (lo < 0 || hi >= static_cast<double>(length)) {
    range_error(info, std::string(kernel) + ": strided view '" + name + "' reaches elements [" + num(lo) + ", " +
                          num(hi) + "] of a buffer of " + std::to_string(length));
  }
}

double product(const std::vector<int64_t>& shape) {
  double p = 1;
  for (int64_t s : shape) p *= static_cast<double>(s);
  return p;
}

int op_arg(const Info& info, size_t i, const char* kernel, int count) {
  int64_t op = int_arg(info, i, kernel, "op");
  if (op >= count) range_error(info, std::string(kernel) + ": unknown op code " + std::to_string(op));
  return static_cast<int>(op);
}

// Runs a kernel, turning an IndexError into a JS RangeError.
template <typename F>
void guarded(const Info& info, F f) {
  try {
    f();
  } catch (const IndexError& e) {
    range_error(info, e.what());
  }
}

// ------------------------------------------------------------------ layout and dtype

template <typename T>
void copy_strided_typed(const Info& info) {
  const char* K = "copyStrided";
  auto src = array_arg<T>(info, 0, K, "src");
  int64_t offset = int_arg(info, 1, K, "offset");
  auto strides = int_list(info, 2, K, "strides", true);
  auto shape = int_list(info, 3, K, "shape", false);
  auto dst = array_arg<T>(info, 4, K, "dst");
  check_strided(info, K, "src", src.length, offset, strides, shape);
  need(info, K, "dst", dst.length, product(shape));
  copy_strided(src.data, sizeof(T), offset, strides.data(), shape.data(), static_cast<int>(shape.size()), dst.data);
}

Napi::Value CopyStrided(const Info& info) {
  if (info.Length() < 5 || !info[0].IsTypedArray()) type_error(info, "copyStrided: 'src' must be a typed array");
  Napi::TypedArray t = info[0].As<Napi::TypedArray>();
  switch (t.TypedArrayType()) {
    case napi_float32_array: copy_strided_typed<float>(info); break;
    case napi_int32_array: copy_strided_typed<int32_t>(info); break;
    case napi_uint16_array: copy_strided_typed<uint16_t>(info); break;
    default: type_error(info, "copyStrided: 'src' must be a Float32Array, Int32Array or Uint16Array");
  }
  return info.Env().Undefined();
}

Napi::Value Fill(const Info& info) {
  auto out = array_arg<float>(info, 0, "fill", "out");
  fill_f32(out.data, out.length, static_cast<float>(number_arg(info, 1, "fill", "value")));
  return info.Env().Undefined();
}

template <typename In, typename Out, void (*Fn)(const In*, Out*, int64_t)>
Napi::Value Convert(const Info& info, const char* K) {
  auto x = array_arg<In>(info, 0, K, "x");
  auto out = array_arg<Out>(info, 1, K, "out");
  need(info, K, "out", out.length, static_cast<double>(x.length));
  Fn(x.data, out.data, x.length);
  return info.Env().Undefined();
}

// ------------------------------------------------------------------ elementwise

Napi::Value Unary(const Info& info) {
  const char* K = "unary";
  int op = op_arg(info, 0, K, U_COUNT);
  auto x = array_arg<float>(info, 1, K, "x");
  auto out = array_arg<float>(info, 2, K, "out");
  need(info, K, "out", out.length, static_cast<double>(x.length));
  unary(op, x.data, out.data, x.length);
  return info.Env().Undefined();
}

Napi::Value UnaryBackward(const Info& info) {
  const char* K = "unaryBackward";
  int op = op_arg(info, 0, K, U_COUNT);
  auto x = array_arg<float>(info, 1, K, "x");
  auto y = array_arg<float>(info, 2, K, "y");
  auto gy = array_arg<float>(info, 3, K, "gy");
  auto gx = array_arg<float>(info, 4, K, "gx");
  need(info, K, "y", y.length, static_cast<double>(x.length));
  need(info, K, "gy", gy.length, static_cast<double>(x.length));
  need(info, K, "gx", gx.length, static_cast<double>(x.length));
  unary_backward(op, x.data, y.data, gy.data, gx.data, x.length);
  return info.Env().Undefined();
}

struct StridedArg {
  Buf<float> buf;
  int64_t offset;
  std::vector<int64_t> strides;
  StridedF32 view() const { return StridedF32{buf.data + offset, strides.data()}; }
};

StridedArg strided_arg(const Info& info, size_t i, const char* K, const char* name, const std::vector<int64_t>& shape) {
  StridedArg s;
  s.buf = array_arg<float>(info, i, K, name);
  s.offset = int_arg(info, i + 1, K, "offset");
  s.strides = int_list(info, i + 2, K, "strides", true);
  check_strided(info, K, name, s.buf.length, s.offset, s.strides, shape);
  return s;
}

Napi::Value Binary(const Info& info) {
  const char* K = "binary";
  int op = op_arg(info, 0, K, B_COUNT);
  auto shape = int_list(info, 7, K, "shape", false);
  auto a = strided_arg(info, 1, K, "a", shape);
  auto b = strided_arg(info, 4, K, "b", shape);
  auto out = array_arg<float>(info, 8, K, "out");
  need(info, K, "out", out.length, product(shape));
  binary(op, a.view(), b.view(), shape.data(), static_cast<int>(shape.size()), out.data);
  return info.Env().Undefined();
}

Napi::Value Affine(const Info& info) {
  const char* K = "affine";
  auto x = array_arg<float>(info, 0, K, "x");
  float scale = static_cast<float>(number_arg(info, 1, K, "scale"));
  float shift = static_cast<float>(number_arg(info, 2, K, "shift"));
  auto out = array_arg<float>(info, 3, K, "out");
  need(info, K, "out", out.length, static_cast<double>(x.length));
  affine(x.data, scale, shift, out.data, x.length);
  return info.Env().Undefined();
}

Napi::Value Clamp(const Info& info) {
  const char* K = "clamp";
  auto x = array_arg<float>(info, 0, K, "x");
  float lo = static_cast<float>(number_arg(info, 1, K, "lo"));
  float hi = static_cast<float>(number_arg(info, 2, K, "hi"));
  auto out = array_arg<float>(info, 3, K, "out");
  need(info, K, "out", out.length, static_cast<double>(x.length));
  clamp(x.data, lo, hi, out.data, x.length);
  return info.Env().Undefined();
}

Napi::Value Where(const Info& info) {
  const char* K = "where";
  auto shape = int_list(info, 9, K, "shape", false);
  auto c = strided_arg(info, 0, K, "cond", shape);
  auto a = strided_arg(info, 3, K, "a", shape);
  auto b = strided_arg(info, 6, K, "b", shape);
  auto out = array_arg<float>(info, 10, K, "out");
  need(info, K, "out", out.length, product(shape));
  where(c.view(), a.view(), b.view(), shape.data(), static_cast<int>(shape.size()), out.data);
  return info.Env().Undefined();
}

// ------------------------------------------------------------------ reductions

Napi::Value Reduce(const Info& info) {
  const char* K = "reduce";
  int op = op_arg(info, 0, K, R_COUNT);
  auto x = array_arg<float>(info, 1, K, "x");
  int64_t outer = int_arg(info, 2, K, "outer"), n = int_arg(info, 3, K, "n"), inner = int_arg(info, 4, K, "inner");
  auto out = array_arg<float>(info, 5, K, "out");
  need(info, K, "x", x.length, static_cast<double>(outer) * n * inner);
  need(info, K, "out", out.length, static_cast<double>(outer) * inner);
  if (n == 0 && op != R_SUM && outer * inner > 0) {
    static const char* names[] = {"sum", "max", "min", "logsumexp"};
    range_error(info, std::string("reduce(") + names[op] + "): cannot reduce over an empty axis (n = 0)");
  }
  reduce(op, x.data, outer, n, inner, out.data);
  return info.Env().Undefined();
}

Napi::Value ArgReduce(const Info& info) {
  const char* K = "argReduce";
  int op = op_arg(info, 0, K, A_COUNT);
  auto x = array_arg<float>(info, 1, K, "x");
  int64_t outer = int_arg(info, 2, K, "outer"), n = int_arg(info, 3, K, "n"), inner = int_arg(info, 4, K, "inner");
  auto out = array_arg<int32_t>(info, 5, K, "out");
  need(info, K, "x", x.length, static_cast<double>(outer) * n * inner);
  need(info, K, "out", out.length, static_cast<double>(outer) * inner);
  if (n == 0 && outer * inner > 0)
    range_error(info, std::string(op == A_ARGMAX ? "argmax" : "argmin") + ": cannot reduce over an empty axis (n = 0)");
  if (n > 2147483647) range_error(info, "argReduce: n too large for Int32 indices");
  arg_reduce(op, x.data, outer, n, inner, out.data);
  return info.Env().Undefined();
}

// ------------------------------------------------------------------ fused NN

Napi::Value Softmax(const Info& info) {
  const char* K = "softmax";
  auto x = array_arg<float>(info, 0, K, "x");
  int64_t rows = int_arg(info, 1, K, "rows"), cols = int_arg(info, 2, K, "cols");
  bool log = bool_arg(info, 3, K, "log");
  auto out = array_arg<float>(info, 4, K, "out");
  double n = static_cast<double>(rows) * cols;
  need(info, K, "x", x.length, n);
  need(info, K, "out", out.length, n);
  softmax(x.data, rows, cols, log, out.data);
  return info.Env().Undefined();
}

Napi::Value SoftmaxBackward(const Info& info) {
  const char* K = "softmaxBackward";
  auto y = array_arg<float>(info, 0, K, "y");
  auto gy = array_arg<float>(info, 1, K, "gy");
  int64_t rows = int_arg(info, 2, K, "rows"), cols = int_arg(info, 3, K, "cols");
  bool log = bool_arg(info, 4, K, "log");
  auto gx = array_arg<float>(info, 5, K, "gx");
  double n = static_cast<double>(rows) * cols;
  need(info, K, "y", y.length, n);
  need(info, K, "gy", gy.length, n);
  need(info, K, "gx", gx.length, n);
  softmax_backward(y.data, gy.data, rows, cols, log, gx.data);
  return info.Env().Undefined();
}

Napi::Value LayerNorm(const Info& info) {
  const char* K = "layerNorm";
  auto x = array_arg<float>(info, 0, K, "x");
  auto w = array_arg<float>(info, 1, K, "weight", true);
  auto b = array_arg<float>(info, 2, K, "bias", true);
  int64_t rows = int_arg(info, 3, K, "rows"), cols = int_arg(info, 4, K, "cols");
  float eps = static_cast<float>(number_arg(info, 5, K, "eps"));
  auto out = array_arg<float>(info, 6, K, "out");
  auto mean = array_arg<float>(info, 7, K, "mean");
  auto rstd = array_arg<float>(info, 8, K, "rstd");
  double n = static_cast<double>(rows) * cols;
  need(info, K, "x", x.length, n);
  need(info, K, "out", out.length, n);
  if (w.data) need(info, K, "weight", w.length, static_cast<double>(cols));
  if (b.data) need(info, K, "bias", b.length, static_cast<double>(cols));
  need(info, K, "mean", mean.length, static_cast<double>(rows));
  need(info, K, "rstd", rstd.length, static_cast<double>(rows));
  if (cols == 0 && rows > 0) range_error(info, "layerNorm: cols must be > 0");
  layer_norm(x.data, w.data, b.data, rows, cols, eps, out.data, mean.data, rstd.data);
  return info.Env().Undefined();
}

Napi::Value LayerNormBackward(const Info& info) {
  const char* K = "layerNormBackward";
  auto x = array_arg<float>(info, 0, K, "x");
  auto w = array_arg<float>(info, 1, K, "weight", true);
  auto mean = array_arg<float>(info, 2, K, "mean");
  auto rstd = array_arg<float>(info, 3, K, "rstd");
  auto gy = array_arg<float>(info, 4, K, "gy");
  int64_t rows = int_arg(info, 5, K, "rows"), cols = int_arg(info, 6, K, "cols");
  auto gx = array_arg<float>(info, 7, K, "gx");
  auto gw = array_arg<float>(info, 8, K, "gWeight", true);
  auto gb = array_arg<float>(info, 9, K, "gBias", true);
  double n = static_cast<double>(rows) * cols;
  need(info, K, "x", x.length, n);
  need(info, K, "gy", gy.length, n);
  need(info, K, "gx", gx.length, n);
  need(info, K, "mean", mean.length, static_cast<double>(rows));
  need(info, K, "rstd", rstd.length, static_cast<double>(rows));
  if (w.data) need(info, K, "weight", w.length, static_cast<double>(cols));
  if (gw.data) need(info, K, "gWeight", gw.length, static_cast<double>(cols));
  if (gb.data) need(info, K, "gBias", gb.length, static_cast<double>(cols));
  layer_norm_backward(x.data, w.data, mean.data, rstd.data, gy.data, rows, cols, gx.data, gw.data, gb.data);
  return info.Env().Undefined();
}

Napi::Value RmsNorm(const Info& info) {
  const char* K = "rmsNorm";
  auto x = array_arg<float>(info, 0, K, "x");
  auto w = array_arg<float>(info, 1, K, "weight", true);
  int64_t rows = int_arg(info, 2, K, "rows"), cols = int_arg(info, 3, K, "cols");
  float eps = static_cast<float>(number_arg(info, 4, K, "eps"));
  auto out = array_arg<float>(info, 5, K, "out");
  auto rstd = array_arg<float>(info, 6, K, "rstd");
  double n = static_cast<double>(rows) * cols;
  need(info, K, "x", x.length, n);
  need(info, K, "out", out.length, n);
  if (w.data) need(info, K, "weight", w.length, static_cast<double>(cols));
  need(info, K, "rstd", rstd.length, static_cast<double>(rows));
  if (cols == 0 && rows > 0) range_error(info, "rmsNorm: cols must be > 0");
  rms_norm(x.data, w.data, rows, cols, eps, out.data, rstd.data);
  return info.Env().Undefined();
}

Napi::Value RmsNormBackward(const Info& info) {
  const char* K = "rmsNormBackward";
  auto x = array_arg<float>(info, 0, K, "x");
  auto w = array_arg<float>(info, 1, K, "weight", true);
  auto rstd = array_arg<float>(info, 2, K, "rstd");
  auto gy = array_arg<float>(info, 3, K, "gy");
  int64_t rows = int_arg(info, 4, K, "rows"), cols = int_arg(info, 5, K, "cols");
  auto gx = array_arg<float>(info, 6, K, "gx");
  auto gw = array_arg<float>(info, 7, K, "gWeight", true);
  double n = static_cast<double>(rows) * cols;
  need(info, K, "x", x.length, n);
  need(info, K, "gy", gy.length, n);
  need(info, K, "gx", gx.length, n);
  need(info, K, "rstd", rstd.length, static_cast<double>(rows));
  if (w.data) need(info, K, "weight", w.length, static_cast<double>(cols));
  if (gw.data) need(info, K, "gWeight", gw.length, static_cast<double>(cols));
  rms_norm_backward(x.data, w.data, rstd.data, gy.data, rows, cols, gx.data, gw.data);
  return info.Env().Undefined();
}

// ------------------------------------------------------------------ indexing

Napi::Value GatherRows(const Info& info) {
  const char* K = "gatherRows";
  auto table = array_arg<float>(info, 0, K, "table");
  int64_t num_rows = int_arg(info, 1, K, "numRows"), cols = int_arg(info, 2, K, "cols");
  auto idx = array_arg<int32_t>(info, 3, K, "idx");
  auto out = array_arg<float>(info, 4, K, "out");
  need(info, K, "table", table.length, static_cast<double>(num_rows) * cols);
  need(info, K, "out", out.length, static_cast<double>(idx.length) * cols);
  guarded(info, [&] { gather_rows(table.data, num_rows, cols, idx.data, idx.length, out.data); });
  return info.Env().Undefined();
}

Napi::Value ScatterAddRows(const Info& info) {
  const char* K = "scatterAddRows";
  auto g = array_arg<float>(info, 0, K, "g");
  auto idx = array_arg<int32_t>(info, 1, K, "idx");
  int64_t cols = int_arg(info, 2, K, "cols");
  auto gt = array_arg<float>(info, 3, K, "gTable");
  int64_t num_rows = int_arg(info, 4, K, "numRows");
  need(info, K, "g", g.length, static_cast<double>(idx.length) * cols);
  need(info, K, "gTable", gt.length, static_cast<double>(num_rows) * cols);
  guarded(info, [&] { scatter_add_rows(g.data, idx.data, idx.length, cols, gt.data, num_rows); });
  return info.Env().Undefined();
}

Napi::Value Gather(const Info& info) {
  const char* K = "gather";
  auto x = array_arg<float>(info, 0, K, "x");
  int64_t outer = int_arg(info, 1, K, "outer"), n = int_arg(info, 2, K, "n"), inner = int_arg(info, 3, K, "inner");
  auto idx = array_arg<int32_t>(info, 4, K, "idx");
  int64_t m = int_arg(info, 5, K, "m");
  auto out = array_arg<float>(info, 6, K, "out");
  need(info, K, "x", x.length, static_cast<double>(outer) * n * inner);
  need(info, K, "idx", idx.length, static_cast<double>(outer) * m * inner);
  need(info, K, "out", out.length, static_cast<double>(outer) * m * inner);
  guarded(info, [&] { gather(x.data, outer, n, inner, idx.data, m, out.data); });
  return info.Env().Undefined();
}

Napi::Value ScatterAdd(const Info& info) {
  const char* K = "scatterAdd";
  auto out = array_arg<float>(info, 0, K, "out");
  int64_t outer = int_arg(info, 1, K, "outer"), n = int_arg(info, 2, K, "n"), inner = int_arg(info, 3, K, "inner");
  auto idx = array_arg<int32_t>(info, 4, K, "idx");
  int64_t m = int_arg(info, 5, K, "m");
  auto src = array_arg<float>(info, 6, K, "src");
  need(info, K, "out", out.length, static_cast<double>(outer) * n * inner);
  need(info, K, "idx", idx.length, static_cast<double>(outer) * m * inner);
  need(info, K, "src", src.length, static_cast<double>(outer) * m * inner);
  guarded(info, [&] { scatter_add(out.data, outer, n, inner, idx.data, m, src.data); });
  return info.Env().Undefined();
}

Napi::Value Topk(const Info& info) {
  const char* K = "topk";
  auto x = array_arg<float>(info, 0, K, "x");
  int64_t rows = int_arg(info, 1, K, "rows"), cols = int_arg(info, 2, K, "cols"), k = int_arg(info, 3, K, "k");
  bool largest = bool_arg(info, 4, K, "largest");
  auto values = array_arg<float>(info, 5, K, "values");
  auto indices = array_arg<int32_t>(info, 6, K, "indices");
  if (k > cols) range_error(info, "topk: k = " + std::to_string(k) + " exceeds the row length " + std::to_string(cols));
  if (cols > 2147483647) range_error(info, "topk: cols too large for Int32 indices");
  need(info, K, "x", x.length, static_cast<double>(rows) * cols);
  need(info, K, "values", values.length, static_cast<double>(rows) * k);
  need(info, K, "indices", indices.length, static_cast<double>(rows) * k);
  topk(x.data, rows, cols, k, largest, values.data, indices.data);
  return info.Env().Undefined();
}

// ------------------------------------------------------------------ losses

int32_t ignore_arg(const Info& info, size_t i, const char* K) {
  double v = number_arg(info, i, K, "ignoreIndex");
  if (v != std::floor(v) || v < -2147483648.0 || v > 2147483647.0)
    range_error(info, std::string(K) + ": ignoreIndex must be an Int32, got " + num(v));
  return static_cast<int32_t>(v);
}

Napi::Value CrossEntropy(const Info& info) {
  const char* K = "crossEntropy";
  auto logits = array_arg<float>(info, 0, K, "logits");
  auto targets = array_arg<int32_t>(info, 1, K, "targets");
  int64_t rows = int_arg(info, 2, K, "rows"), cols = int_arg(info, 3, K, "cols");
  int32_t ignore = ignore_arg(info, 4, K);
  float smoothing = static_cast<float>(number_arg(info, 5, K, "labelSmoothing"));
  auto loss = array_arg<float>(info, 6, K, "loss");
  auto lse = array_arg<float>(info, 7, K, "lse");
  need(info, K, "logits", logits.length, static_cast<double>(rows) * cols);
  need(info, K, "targets", targets.length, static_cast<double>(rows));
  need(info, K, "loss", loss.length, static_cast<double>(rows));
  need(info, K, "lse", lse.length, static_cast<double>(rows));
  if (cols == 0 && rows > 0) range_error(info, "crossEntropy: cols must be > 0");
  guarded(info, [&] { cross_entropy(logits.data, targets.data, rows, cols, ignore, smoothing, loss.data, lse.data); });
  return info.Env().Undefined();
}

Napi::Value CrossEntropyBackward(const Info& info) {
  const char* K = "crossEntropyBackward";
  auto logits = array_arg<float>(info, 0, K, "logits");
  auto lse = array_arg<float>(info, 1, K, "lse");
  auto targets = array_arg<int32_t>(info, 2, K, "targets");
  auto gloss = array_arg<float>(info, 3, K, "gLoss");
  int64_t rows = int_arg(info, 4, K, "rows"), cols = int_arg(info, 5, K, "cols");
  int32_t ignore = ignore_arg(info, 6, K);
  float smoothing = static_cast<float>(number_arg(info, 7, K, "labelSmoothing"));
  auto glogits = array_arg<float>(info, 8, K, "gLogits");
  need(info, K, "logits", logits.length, static_cast<double>(rows) * cols);
  need(info, K, "gLogits", glogits.length, static_cast<double>(rows) * cols);
  need(info, K, "lse", lse.length, static_cast<double>(rows));
  need(info, K, "targets", targets.length, static_cast<double>(rows));
  need(info, K, "gLoss", gloss.length, static_cast<double>(rows));
  guarded(info, [&] {
    cross_entropy_backward(logits.data, lse.data, targets.data, gloss.data, rows, cols, ignore, smoothing,
                           glogits.data);
  });
  return info.Env().Undefined();
}

// ------------------------------------------------------------------ attention

// Reads batch, heads, tq, tk, dim, scale, causal, maskData|null, maskOffset, maskStrides from
// position i on.
AttnParams attn_params(const Info& info, size_t i, const char* K) {
  AttnParams p{};
  p.batch = int_arg(info, i, K, "batch");
  p.heads = int_arg(info, i + 1, K, "heads");
  p.tq = int_arg(info, i + 2, K, "tq");
  p.tk = int_arg(info, i + 3, K, "tk");
  p.dim = int_arg(info, i + 4, K, "dim");
  p.scale = static_cast<float>(number_arg(info, i + 5, K, "scale"));
  p.causal = bool_arg(info, i + 6, K, "causal");
  auto mask = array_arg<float>(info, i + 7, K, "mask", true);
  p.mask = nullptr;
  if (mask.data != nullptr) {
    int64_t off = int_arg(info, i + 8, K, "maskOffset");
    auto strides = int_list(info, i + 9, K, "maskStrides", true);
    if (strides.size() != 4) range_error(info, std::string(K) + ": the mask needs 4 strides, got " + std::to_string(strides.size()));
    check_strided(info, K, "mask", mask.length, off, strides, {p.batch, p.heads, p.tq, p.tk});
    p.mask = mask.data + off;
    for (int d = 0; d < 4; ++d) p.mask_strides[d] = strides[d];
  }
  return p;
}

void check_attn_buffers(const Info& info, const char* K, const AttnParams& p, const Buf<float>& q, const Buf<float>& k,
                        const Buf<float>& v) {
  double bh = static_cast<double>(p.batch) * p.heads;
  need(info, K, "q", q.length, bh * p.tq * p.dim);
  need(info, K, "k", k.length, bh * p.tk * p.dim);
  need(info, K, "v", v.length, bh * p.tk * p.dim);
}

Napi::Value Attention(const Info& info) {
  const char* K = "attention";
  auto q = array_arg<float>(info, 0, K, "q");
  auto k = array_arg<float>(info, 1, K, "k");
  auto v = array_arg<float>(info, 2, K, "v");
  AttnParams p = attn_params(info, 3, K);
  auto out = array_arg<float>(info, 13, K, "out");
  auto lse = array_arg<float>(info, 14, K, "lse");
  check_attn_buffers(info, K, p, q, k, v);
  double bh = static_cast<double>(p.batch) * p.heads;
  need(info, K, "out", out.length, bh * p.tq * p.dim);
  need(info, K, "lse", lse.length, bh * p.tq);
  attention(q.data, k.data, v.data, p, out.data, lse.data);
  return info.Env().Undefined();
}

Napi::Value AttentionBackward(const Info& info) {
  const char* K = "attentionBackward";
  auto q = array_arg<float>(info, 0, K, "q");
  auto k = array_arg<float>(info, 1, K, "k");
  auto v = array_arg<float>(info, 2, K, "v");
  auto out = array_arg<float>(info, 3, K, "out");
  auto lse = array_arg<float>(info, 4, K, "lse");
  auto gout = array_arg<float>(info, 5, K, "gOut");
  AttnParams p = attn_params(info, 6, K);
  auto gq = array_arg<float>(info, 16, K, "gq");
  auto gk = array_arg<float>(info, 17, K, "gk");
  auto gv = array_arg<float>(info, 18, K, "gv");
  check_attn_buffers(info, K, p, q, k, v);
  double bh = static_cast<double>(p.batch) * p.heads;
  need(info, K, "out", out.length, bh * p.tq * p.dim);
  need(info, K, "gOut", gout.length, bh * p.tq * p.dim);
  need(info, K, "lse", lse.length, bh * p.tq);
  need(info, K, "gq", gq.length, bh * p.tq * p.dim);
  need(info, K, "gk", gk.length, bh * p.tk * p.dim);
  need(info, K, "gv", gv.length, bh * p.tk * p.dim);
  attention_backward(q.data, k.data, v.data, out.data, lse.data, gout.data, p, gq.data, gk.data, gv.data);
  return info.Env().Undefined();
}

// ------------------------------------------------------------------ optimizer

Napi::Value AdamW(const Info& info) {
  const char* K = "adamw";
  auto param = array_arg<float>(info, 0, K, "param");
  auto grad = array_arg<float>(info, 1, K, "grad");
  auto m = array_arg<float>(info, 2, K, "m");
  auto v = array_arg<float>(info, 3, K, "v");
  AdamWArgs a;
  a.lr = static_cast<float>(number_arg(info, 4, K, "lr"));
  a.beta1 = static_cast<float>(number_arg(info, 5, K, "beta1"));
  a.beta2 = static_cast<float>(number_arg(info, 6, K, "beta2"));
  a.eps = static_cast<float>(number_arg(info, 7, K, "eps"));
  a.weight_decay = static_cast<float>(number_arg(info, 8, K, "weightDecay"));
  a.step = static_cast<double>(int_arg(info, 9, K, "step", 1));
  need(info, K, "grad", grad.length, static_cast<double>(param.length));
  need(info, K, "m", m.length, static_cast<double>(param.length));
  need(info, K, "v", v.length, static_cast<double>(param.length));
  adamw(param.data, grad.data, m.data, v.data, param.length, a);
  return info.Env().Undefined();
}

}  // namespace

void RegisterKernels(Napi::Env env, Napi::Object exports) {
  auto add = [&](const char* name, Napi::Value (*fn)(const Info&)) { exports.Set(name, Napi::Function::New(env, fn, name)); };
  add("copyStrided", CopyStrided);
  add("fill", Fill);
  add("f32ToBf16", [](const Info& i) { return Convert<float, uint16_t, f32_to_bf16>(i, "f32ToBf16"); });
  add("bf16ToF32", [](const Info& i) { return Convert<uint16_t, float, bf16_to_f32>(i, "bf16ToF32"); });
  add("f32ToF16", [](const Info& i) { return Convert<float, uint16_t, f32_to_f16>(i, "f32ToF16"); });
  add("f16ToF32", [](const Info& i) { return Convert<uint16_t, float, f16_to_f32>(i, "f16ToF32"); });
  add("unary", Unary);
  add("unaryBackward", UnaryBackward);
  add("binary", Binary);
  add("affine", Affine);
  add("clamp", Clamp);
  add("where", Where);
  add("reduce", Reduce);
  add("argReduce", ArgReduce);
  add("softmax", Softmax);
  add("softmaxBackward", SoftmaxBackward);
  add("layerNorm", LayerNorm);
  add("layerNormBackward", LayerNormBackward);
  add("rmsNorm", RmsNorm);
  add("rmsNormBackward", RmsNormBackward);
  add("gatherRows", GatherRows);
  add("scatterAddRows", ScatterAddRows);
  add("gather", Gather);
  add("scatterAdd", ScatterAdd);
  add("topk", Topk);
  add("crossEntropy", CrossEntropy);
  add("crossEntropyBackward", CrossEntropyBackward);
  add("attention", Attention);
  add("attentionBackward", AttentionBackward);
  add("adamw", AdamW);
}

}  // namespace weft
