// N-API glue for the paged-attention kernels (inference engine's KV blocks): checks argument types,
// sizes, offsets and every block-table entry and slot before calling the kernels in
// paged_attention.cc. Errors name the function, the argument and the bad value.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

namespace weft {

struct PagedAttnArgs {
  const float* q;
  const float* k_cache;
  const float* v_cache;
  const int32_t* tables;
  const int32_t* t_off;
  const int32_t* q_off;
  const int32_t* start;
  int64_t seqs, heads, kv_heads, dim, block;
  float scale;
  float* out;
};
void paged_attention(const PagedAttnArgs& a);
void paged_write_kv(const float* k, const float* v, const int32_t* slots, int64_t tokens, int64_t kv_heads,
                    int64_t dim, int64_t block, float* k_cache, float* v_cache);
void rope_rotate_half(float* x, int64_t tokens, int64_t heads, int64_t dim, const float* cos_t, const float* sin_t,
                      const int32_t* positions);

namespace {

using Info = Napi::CallbackInfo;

[[noreturn]] void type_error(const Info& info, const std::string& msg) { throw Napi::TypeError::New(info.Env(), msg); }
[[noreturn]] void range_error(const Info& info, const std::string& msg) {
  throw Napi::RangeError::New(info.Env(), msg);
}

template <typename T>
struct Buf {
  T* data = nullptr;
  int64_t length = 0;
  T operator[](int64_t i) const { return data[i]; }
};

template <typename T>
Buf<T> typed(const Info& info, size_t i, const char* fn, const char* name) {
  constexpr bool is_f32 = sizeof(T) == 4 && static_cast<T>(0.5) != 0;
  const napi_typedarray_type want = is_f32 ? napi_float32_array : napi_int32_array;
  if (i >= info.Length() || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != want) {
    type_error(info, std::string(fn) + ": '" + name + "' must be a " + (is_f32 ? "Float32Array" : "Int32Array"));
  }
  auto a = info[i].As<Napi::TypedArrayOf<T>>();
  return {a.Data(), static_cast<int64_t>(a.ElementLength())};
}

int64_t int_arg(const Info& info, size_t i, const char* fn, const char* name, int64_t lo) {
  if (i >= info.Length() || !info[i].IsNumber()) type_error(info, std::string(fn) + ": '" + name + "' must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (v != std::floor(v) || v < static_cast<double>(lo) || v > 2147483647.0) {
    range_error(info, std::string(fn) + ": '" + name + "' must be an integer >= " + std::to_string(lo));
  }
  return static_cast<int64_t>(v);
}

void need(const Info& info, const char* fn, const char* name, int64_t have, int64_t want) {
  if (have < want) {
    range_error(info, std::string(fn) + ": '" + name + "' has " + std::to_string(have) + " elements, needs " +
                          std::to_string(want));
  }
}

// pagedAttention(q, kCache, vCache, tables, tableOffsets, queryOffsets, starts, heads, kvHeads, dim,
//                blockSize, scale, out)
Napi::Value PagedAttention(const Info& info) {
  const char* F = "pagedAttention";
  auto q = typed<float>(info, 0, F, "q");
  auto kc = typed<float>(info, 1, F, "kCache");
  auto vc = typed<float>(info, 2, F, "vCache");
  auto tables = typed<int32_t>(info, 3, F, "tables");
  auto t_off = typed<int32_t>(info, 4, F, "tableOffsets");
  auto q_off = typed<int32_t>(info, 5, F, "queryOffsets");
  auto start = typed<int32_t>(info, 6, F, "starts");
  PagedAttnArgs a{};
  a.heads = int_arg(info, 7, F, "heads", 1);
  a.kv_heads = int_arg(info, 8, F, "kvHeads", 1);
  a.dim = int_arg(info, 9, F, "dim", 1);
  a.block = int_arg(info, 10, F, "blockSize", 1);
  if (!info[11].IsNumber()) type_error(info, std::string(F) + ": 'scale' must be a number");
  a.scale = static_cast<float>(info[11].As<Napi::Number>().DoubleValue());
  auto out = typed<float>(info, 12, F, "out");
  if (a.heads % a.kv_heads != 0) range_error(info, std::string(F) + ": heads must be a multiple of kvHeads");
  if (kc.length != vc.length) range_error(info, std::string(F) + ": kCache and vCache differ in length");
  const int64_t per_block = a.kv_heads * a.block * a.dim;
  if (kc.length % per_block != 0) range_error(info, std::string(F) + ": kCache is not a whole number of blocks");
  const int64_t num_blocks = kc.length / per_block;
  a.seqs = start.length;
  need(info, F, "tableOffsets", t_off.length, a.seqs + 1);
  need(info, F, "queryOffsets", q_off.length, a.seqs + 1);
  if (q_off[0] < 0 || t_off[0] < 0) range_error(info, std::string(F) + ": offsets must start at >= 0");
  for (int64_t s = 0; s < a.seqs; ++s) {
    const std::string at = " of sequence " + std::to_string(s);
    if (q_off[s + 1] < q_off[s]) range_error(info, std::string(F) + ": queryOffsets decrease" + at);
    if (t_off[s + 1] < t_off[s]) range_error(info, std::string(F) + ": tableOffsets decrease" + at);
    if (start[s] < 0) range_error(info, std::string(F) + ": negative start" + at);
    const int64_t keys = static_cast<int64_t>(start[s]) + (q_off[s + 1] - q_off[s]);
    const int64_t blocks = (keys + a.block - 1) / a.block;
    if (blocks > t_off[s + 1] - t_off[s]) {
      range_error(info, std::string(F) + ": block table" + at + " has " + std::to_string(t_off[s + 1] - t_off[s]) +
                            " blocks, " + std::to_string(keys) + " positions need " + std::to_string(blocks));
    }
    need(info, F, "tables", tables.length, t_off[s] + blocks);
    for (int64_t b = 0; b < blocks; ++b) {
      const int32_t id = tables.data[t_off[s] + b];
      if (id < 0 || id >= num_blocks) {
        range_error(info, std::string(F) + ": block id " + std::to_string(id) + at + " is outside [0, " +
                              std::to_string(num_blocks) + ")");
      }
    }
  }
  const int64_t rows = q_off[a.seqs];
  need(info, F, "q", q.length, rows * a.heads * a.dim);
  need(info, F, "out", out.length, rows * a.heads * a.dim);
  a.q = q.data;
  a.k_cache = kc.data;
  a.v_cache = vc.data;
  a.tables = tables.data;
  a.t_off = t_off.data;
  a.q_off = q_off.data;
  a.start = start.data;
  a.out = out.data;
  paged_attention(a);
  return info.Env().Undefined();
}

// pagedWriteKV(k, v, slots, kvHeads, dim, blockSize, kCache, vCache)
Napi::Value PagedWriteKV(const Info& info) {
  const char* F = "pagedWriteKV";
  auto k = typed<float>(info, 0, F, "k");
  auto v = typed<float>(info, 1, F, "v");
  auto slots = typed<int32_t>(info, 2, F, "slots");
  const int64_t kv = int_arg(info, 3, F, "kvHeads", 1);
  const int64_t dim = int_arg(info, 4, F, "dim", 1);
  const int64_t block = int_arg(info, 5, F, "blockSize", 1);
  auto kc = typed<float>(info, 6, F, "kCache");
  auto vc = typed<float>(info, 7, F, "vCache");
  const int64_t tokens = slots.length;
  need(info, F, "k", k.length, tokens * kv * dim);
  need(info, F, "v", v.length, tokens * kv * dim);
  if (kc.length != vc.length || kc.length % (kv * block * dim) != 0) {
    range_error(info, std::string(F) + ": kCache and vCache must both be a whole number of blocks");
  }
  const int64_t capacity = kc.length / (kv * dim);
  for (int64_t t = 0; t < tokens; ++t) {
    if (slots.data[t] < 0 || slots.data[t] >= capacity) {
      range_error(info, std::string(F) + ": slot " + std::to_string(slots.data[t]) + " of token " + std::to_string(t) +
                            " is outside [0, " + std::to_string(capacity) + ")");
    }
  }
  paged_write_kv(k.data, v.data, slots.data, tokens, kv, dim, block, kc.data, vc.data);
  return info.Env().Undefined();
}

// ropeRotateHalf(x, heads, dim, cos, sin, positions): x [positions.length, heads, dim] in place.
Napi::Value RopeRotateHalf(const Info& info) {
  const char* F = "ropeRotateHalf";
  auto x = typed<float>(info, 0, F, "x");
  const int64_t heads = int_arg(info, 1, F, "heads", 1);
  const int64_t dim = int_arg(info, 2, F, "dim", 2);
  auto c = typed<float>(info, 3, F, "cos");
  auto s = typed<float>(info, 4, F, "sin");
  auto pos = typed<int32_t>(info, 5, F, "positions");
  if (dim % 2 != 0) range_error(info, std::string(F) + ": dim must be even");
  const int64_t half = dim / 2;
  if (c.length != s.length || c.length % half != 0) range_error(info, std::string(F) + ": cos and sin must be [rows, dim/2]");
  const int64_t rows = c.length / half;
  need(info, F, "x", x.length, pos.length * heads * dim);
  for (int64_t t = 0; t < pos.length; ++t) {
    if (pos.data[t] < 0 || pos.data[t] >= rows) {
      range_error(info, std::string(F) + ": position " + std::to_string(pos.data[t]) + " is outside the tables [0, " +
                            std::to_string(rows) + ")");
    }
  }
  rope_rotate_half(x.data, pos.length, heads, dim, c.data, s.data, pos.data);
  return info.Env().Undefined();
}

}  // namespace

void RegisterPaged(Napi::Env env, Napi::Object exports) {
  exports.Set("pagedAttention", Napi::Function::New(env, PagedAttention, "pagedAttention"));
  exports.Set("pagedWriteKV", Napi::Function::New(env, PagedWriteKV, "pagedWriteKV"));
  exports.Set("ropeRotateHalf", Napi::Function::New(env, RopeRotateHalf, "ropeRotateHalf"));
}

}  // namespace weft
