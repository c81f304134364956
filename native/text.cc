// Text kernels for the data pipeline (src/data/pipeline): the MinHash signature, the near-dedup
// stage's cost — numPerm hashes per shingle. The loop over the permutations is written so the
// compiler vectorises it (32-bit multiply, xor-shift, unsigned min), once per ISA through target
// attributes, dispatched on the process's kernel path. Results are the same bits on every path.
#include <napi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

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

// ---- Gopher word statistics (src/data/pipeline/filters/text-stats.ts is the specification) ----

// Class bits of a UTF-16 unit, as text-stats.ts fills its table from the Unicode regexes.
constexpr uint8_t C_LNM = 1, C_LN = 2, C_L = 4, C_SPACE = 8;

// The string's UTF-16 units, copied into a per-thread buffer (the data pipeline runs one per worker).
const std::vector<char16_t>& utf16_of(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  thread_local std::vector<char16_t> tls_buf;
  std::vector<char16_t>& buf = tls_buf;
  if (i >= info.Length() || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": 'text' must be a string");
  napi_env env = info.Env();
  size_t len = 0;
  napi_get_value_string_utf16(env, info[i], nullptr, 0, &len);
  buf.resize(len + 1);
  napi_get_value_string_utf16(env, info[i], buf.data(), len + 1, &len);
  buf.resize(len);
  return buf;
}

template <typename T>
T* typed_data(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type, const char* fn, const char* name,
              size_t* length) {
  if (i >= info.Length() || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type) {
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": '" + name + "' has the wrong type");
  }
  Napi::TypedArray a = info[i].As<Napi::TypedArray>();
  *length = a.ElementLength();
  return reinterpret_cast<T*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
}

// textWordScan(text, classes: Uint8Array(65536), starts: Int32Array, ends: Int32Array, stats: Int32Array(4)):
// the word-token spans of scanWords and its whitespace-chunk counts: stats = [count, chars, spaced,
// spacedAlpha]. The text must hold no surrogate (the caller checks; astral characters take the
// TypeScript path), and starts/ends must have room for length/2 + 1 words.
Napi::Value TextWordScan(const Napi::CallbackInfo& info) {
  const char* fn = "textWordScan";
  const std::vector<char16_t>& text = utf16_of(info, 0, fn);
  size_t n_classes = 0, n_starts = 0, n_ends = 0, n_stats = 0;
  const uint8_t* cls_of = typed_data<uint8_t>(info, 1, napi_uint8_array, fn, "classes", &n_classes);
  int32_t* starts = typed_data<int32_t>(info, 2, napi_int32_array, fn, "starts", &n_starts);
  int32_t* ends = typed_data<int32_t>(info, 3, napi_int32_array, fn, "ends", &n_ends);
  int32_t* stats = typed_data<int32_t>(info, 4, napi_int32_array, fn, "stats", &n_stats);
  const size_t len = text.size();
  if (n_classes != 65536 || n_stats < 4 || n_starts < len / 2 + 1 || n_ends < len / 2 + 1) {
    throw Napi::RangeError::New(info.Env(), "textWordScan: classes must have 65536 entries, stats 4, starts/ends length/2 + 1");
  }
  const char16_t* t = text.data();
  int32_t count = 0, chars = 0, spaced = 0, spaced_alpha = 0;
  bool in_chunk = false, chunk_alpha = false;
  auto visit = [&](uint8_t c) {
    if (c & C_SPACE) {
      if (in_chunk) {
        ++spaced;
        if (chunk_alpha) ++spaced_alpha;
        in_chunk = false;
      }
    } else {
      if (!in_chunk) {
        in_chunk = true;
        chunk_alpha = false;
      }
      if (c & C_L) chunk_alpha = true;
    }
  };
  size_t i = 0;
  while (i < len) {
    uint8_t c = cls_of[t[i]];
    if (c & C_SPACE) {
      visit(c);
      ++i;
      continue;
    }
    if (c & C_LNM) {
      const size_t start = i;
      bool is_word = false;
      for (;;) {
        while (i < len) {
          c = cls_of[t[i]];
          if (!(c & C_LNM)) break;
          visit(c);
          if (c & C_LN) is_word = true;
          ++i;
        }
        if (i + 1 < len) {
          const char16_t j = t[i];
          if ((j == 0x27 || j == 0x2019 || j == 0x2e || j == 0x2d || j == 0x5f) && (cls_of[t[i + 1]] & C_LNM)) {
            visit(cls_of[j]);
            ++i;
            continue;
          }
        }
        break;
      }
      if (is_word) {
        starts[count] = static_cast<int32_t>(start);
        ends[count] = static_cast<int32_t>(i);
        ++count;
        chars += static_cast<int32_t>(i - start);
      }
      continue;
    }
    while (i < len) {
      c = cls_of[t[i]];
      if (c & (C_SPACE | C_LNM)) break;
      visit(c);
      ++i;
    }
  }
  if (in_chunk) {
    ++spaced;
    if (chunk_alpha) ++spaced_alpha;
  }
  stats[0] = count;
  stats[1] = chars;
  stats[2] = spaced;
  stats[3] = spaced_alpha;
  return Napi::Number::New(info.Env(), count);
}

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// An open-addressing table of 64-bit keys with a count and a first position, cleared by generation;
// one 24-byte slot per key, so a probe touches one cache line.
struct NgramSlot {
  uint64_t key;
  int32_t count, first;
  uint32_t stamp;
};

struct NgramTable {
  std::vector<NgramSlot> slots;
  uint32_t gen = 0;
  size_t mask = 0;
  void reset(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    if (cap > slots.size()) {
      slots.assign(cap, NgramSlot{0, 0, 0, 0});
      gen = 0;
    }
    mask = cap - 1;
    if (++gen == 0) {
      for (NgramSlot& e : slots) e.stamp = 0;
      gen = 1;
    }
  }
  // The slot of key k, inserting it (count 0, first = pos) if absent.
  NgramSlot& slot(uint64_t k, int32_t pos) {
    size_t i = mix64(k) & mask;
    for (;;) {
      NgramSlot& e = slots[i];
      if (e.stamp != gen) {
        e = NgramSlot{k, 0, pos, gen};
        return e;
      }
      if (e.key == k) return e;
      i = (i + 1) & mask;
    }
  }
};

// The repetition rules over a unit sequence (ids, prefix[i] = characters of units [0, i)), in order:
// rule r measures the characters covered by the most frequent n-gram (dup[r] = 0; `joiner` characters
// between units) or in duplicated n-grams, left to right without overlap (dup[r] = 1), over `len`,
// against fracs[r]. Returns the first rule over its limit, -1 for none, -2 for an n below 1. Past an
// n with no repeated n-gram no longer n-gram repeats, so those rules are skipped (as gopher.ts does).
int64_t first_rule_over(const int32_t* ids, const double* prefix, int64_t words, size_t len, const int32_t* ns,
                        const double* fracs, const uint8_t* dup, size_t n_ns, double joiner) {
  thread_local std::vector<uint64_t> tls_hashes;
  thread_local NgramTable tls_table;
  // Bound once: each use of a function-local thread_local goes through its TLS wrapper otherwise.
  std::vector<uint64_t>& hash_buf = tls_hashes;
  NgramTable& table = tls_table;
  // Prefix polynomial hashes mod 2^64 of the (mixed) ids: the n-gram at i is H[i+n] - H[i]·B^n.
  constexpr uint64_t B = 0x9e3779b97f4a7c15ULL;
  hash_buf.resize(words + 1);
  uint64_t* hashes = hash_buf.data();
  hashes[0] = 0;
  for (int64_t k = 0; k < words; ++k) hashes[k + 1] = hashes[k] * B + mix64(static_cast<uint64_t>(ids[k]) + 1);
  auto ngram = [hashes](int64_t i, int64_t n, uint64_t pow) { return hashes[i + n] - hashes[i] * pow; };
  const double text_len = static_cast<double>(len);
  int64_t no_repeat_from = INT64_MAX;
  for (size_t r = 0; r < n_ns; ++r) {
    const int64_t n = ns[r];
    if (n < 1) return -2;
    if (n >= no_repeat_from) continue;
    uint64_t pow = 1;
    for (int64_t k = 0; k < n; ++k) pow *= B;
    const int64_t total = words - n + 1;
    double chars = 0;
    if (total > 0) {
      table.reset(static_cast<size_t>(total));
      if (!dup[r]) {
        int32_t best = 1;
        int64_t best_first = -1;
        for (int64_t i = 0; i < total; ++i) {
          NgramSlot& e = table.slot(ngram(i, n, pow), static_cast<int32_t>(i));
          const int32_t c = ++e.count;
          if (c > best) {
            best = c;
            best_first = e.first;
          } else if (c == best && best_first >= 0 && e.first < best_first) {
            best_first = e.first;
          }
        }
        if (best_first >= 0) chars = (prefix[best_first + n] - prefix[best_first] + joiner * static_cast<double>(n - 1)) * best;
      } else {
        int64_t i = 0;
        while (i < total) {
          NgramSlot& e = table.slot(ngram(i, n, pow), static_cast<int32_t>(i));
          if (e.count > 0) {
            chars += prefix[i + n] - prefix[i];
            i += n;
          } else {
            e.count = 1;
            ++i;
          }
        }
      }
    }
    if (chars == 0) no_repeat_from = n;
    if (chars / text_len > fracs[r]) return static_cast<int64_t>(r);
  }
  return -1;
}

// ngramRepetition(text, starts, ends, count, ns: Int32Array, fracs: Float64Array, dup: Uint8Array):
// the Gopher repetition rules over the scanned words, in order: for rule r, the characters covered by
// the most frequent word n-gram (dup[r] = 0; a space between words counts one) or in duplicated
// n-grams, left to right without overlap (dup[r] = 1), over the text's length, against fracs[r].
// Returns the first rule over its limit, or -1. Past an n with no repeated n-gram no longer n-gram
// repeats, so those rules are skipped, as in gopher.ts. Words are equal when their units are.
Napi::Value NgramRepetition(const Napi::CallbackInfo& info) {
  const char* fn = "ngramRepetition";
  const std::vector<char16_t>& text = utf16_of(info, 0, fn);
  size_t n_starts = 0, n_ends = 0, n_ns = 0, n_fracs = 0, n_dup = 0;
  const int32_t* starts = typed_data<int32_t>(info, 1, napi_int32_array, fn, "starts", &n_starts);
  const int32_t* ends = typed_data<int32_t>(info, 2, napi_int32_array, fn, "ends", &n_ends);
  if (info.Length() < 4 || !info[3].IsNumber()) throw Napi::TypeError::New(info.Env(), "ngramRepetition: 'count' must be a number");
  const int64_t words = info[3].As<Napi::Number>().Int64Value();
  const int32_t* ns = typed_data<int32_t>(info, 4, napi_int32_array, fn, "ns", &n_ns);
  const double* fracs = typed_data<double>(info, 5, napi_float64_array, fn, "fracs", &n_fracs);
  const uint8_t* dup = typed_data<uint8_t>(info, 6, napi_uint8_array, fn, "dup", &n_dup);
  if (words < 0 || static_cast<size_t>(words) > n_starts || static_cast<size_t>(words) > n_ends || n_fracs != n_ns ||
      n_dup != n_ns) {
    throw Napi::RangeError::New(info.Env(), "ngramRepetition: count exceeds the spans, or ns/fracs/dup differ in length");
  }
  const char16_t* t = text.data();
  const size_t len = text.size();
  for (int64_t w = 0; w < words; ++w) {
    if (starts[w] < 0 || ends[w] < starts[w] || static_cast<size_t>(ends[w]) > len) {
      throw Napi::RangeError::New(info.Env(), "ngramRepetition: a word span lies outside the text");
    }
  }
  // Word ids (equal units, equal id) and the prefix of word lengths.
  thread_local std::vector<int32_t> tls_ids;
  thread_local std::vector<double> tls_prefix;
  thread_local NgramTable tls_table;
  std::vector<int32_t>& id_buf = tls_ids;
  std::vector<double>& prefix_buf = tls_prefix;
  NgramTable& table = tls_table;
  id_buf.resize(words);
  prefix_buf.assign(words + 1, 0.0);
  int32_t* ids = id_buf.data();
  double* prefix = prefix_buf.data();
  {
    // Keyed by a 64-bit hash of the units; a hit is confirmed by comparing them.
    table.reset(static_cast<size_t>(words));
    int32_t next = 0;
    for (int64_t w = 0; w < words; ++w) {
      const char16_t* p = t + starts[w];
      const int32_t n = ends[w] - starts[w];
      uint64_t h = 0xcbf29ce484222325ULL ^ static_cast<uint64_t>(n);
      for (int32_t k = 0; k < n; ++k) h = (h ^ p[k]) * 0x100000001b3ULL;
      size_t i = mix64(h) & table.mask;
      for (;;) {
        NgramSlot& e = table.slots[i];
        if (e.stamp != table.gen) {
          // A new word: its id in `count`, its first index in `first`.
          e = NgramSlot{h, next, static_cast<int32_t>(w), table.gen};
          ids[w] = next++;
          break;
        }
        if (e.key == h && ends[e.first] - starts[e.first] == n && std::memcmp(t + starts[e.first], p, sizeof(char16_t) * n) == 0) {
          ids[w] = e.count;
          break;
        }
        i = (i + 1) & table.mask;
      }
      prefix[w + 1] = prefix[w] + n;
    }
  }
  const int64_t r = first_rule_over(ids, prefix, words, len, ns, fracs, dup, n_ns, 1.0);
  if (r == -2) throw Napi::RangeError::New(info.Env(), "ngramRepetition: every n must be ≥ 1");
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

// charNgramRepetition(text, classes, ns, fracs, dup): the same rules over the text's letters and
// digits (classes bit LN) as single characters, none joined (the CJK rules: cjk.ts). No surrogates.
Napi::Value CharNgramRepetition(const Napi::CallbackInfo& info) {
  const char* fn = "charNgramRepetition";
  const std::vector<char16_t>& text = utf16_of(info, 0, fn);
  size_t n_classes = 0, n_ns = 0, n_fracs = 0, n_dup = 0;
  const uint8_t* cls_of = typed_data<uint8_t>(info, 1, napi_uint8_array, fn, "classes", &n_classes);
  const int32_t* ns = typed_data<int32_t>(info, 2, napi_int32_array, fn, "ns", &n_ns);
  const double* fracs = typed_data<double>(info, 3, napi_float64_array, fn, "fracs", &n_fracs);
  const uint8_t* dup = typed_data<uint8_t>(info, 4, napi_uint8_array, fn, "dup", &n_dup);
  if (n_classes != 65536 || n_fracs != n_ns || n_dup != n_ns) {
    throw Napi::RangeError::New(info.Env(), "charNgramRepetition: classes must have 65536 entries; ns/fracs/dup one per rule");
  }
  thread_local std::vector<int32_t> tls_ids;
  thread_local std::vector<double> tls_prefix;
  std::vector<int32_t>& id_buf = tls_ids;
  std::vector<double>& prefix_buf = tls_prefix;
  if (id_buf.size() < text.size()) id_buf.resize(text.size());
  if (prefix_buf.size() < text.size() + 1) prefix_buf.resize(text.size() + 1);
  int32_t* ids = id_buf.data();
  double* prefix = prefix_buf.data();
  int64_t count = 0;
  prefix[0] = 0.0;
  for (const char16_t c : text) {
    if (!(cls_of[c] & C_LN)) continue;
    ids[count++] = c;
    prefix[count] = static_cast<double>(count);
  }
  const int64_t r = first_rule_over(ids, prefix, count, text.size(), ns, fracs, dup, n_ns, 0.0);
  if (r == -2) throw Napi::RangeError::New(info.Env(), "charNgramRepetition: every n must be ≥ 1");
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

}  // namespace

// ---- Exact-dedup key hash (src/data/pipeline/dedup.ts exactHash is the specification) ----

// JavaScript's \s: what /\s+/ folds and String.prototype.trim strips.
inline bool is_js_space(uint32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
         c == 0x205f || c == 0x3000 || c == 0xfeff;
}

inline uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}
inline uint32_t load_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

// MurmurHash3_x86_128 (Austin Appleby, SMHasher), written out here; out gets h1..h4 little-endian.
void murmur3_x86_128(const uint8_t* data, size_t len, uint32_t seed, uint8_t out[16]) {
  const uint32_t c1 = 0x239b961bu, c2 = 0xab0e9789u, c3 = 0x38b34ae5u, c4 = 0xa1e38b93u;
  uint32_t h1 = seed, h2 = seed, h3 = seed, h4 = seed;
  const size_t nblocks = len / 16;
  for (size_t i = 0; i < nblocks; ++i) {
    const uint8_t* b = data + 16 * i;
    uint32_t k1 = load_le32(b), k2 = load_le32(b + 4), k3 = load_le32(b + 8), k4 = load_le32(b + 12);
    k1 *= c1; k1 = rotl32(k1, 15); k1 *= c2; h1 ^= k1;
    h1 = rotl32(h1, 19); h1 += h2; h1 = h1 * 5 + 0x561ccd1bu;
    k2 *= c2; k2 = rotl32(k2, 16); k2 *= c3; h2 ^= k2;
    h2 = rotl32(h2, 17); h2 += h3; h2 = h2 * 5 + 0x0bcaa747u;
    k3 *= c3; k3 = rotl32(k3, 17); k3 *= c4; h3 ^= k3;
    h3 = rotl32(h3, 15); h3 += h4; h3 = h3 * 5 + 0x96cd1c35u;
    k4 *= c4; k4 = rotl32(k4, 18); k4 *= c1; h4 ^= k4;
    h4 = rotl32(h4, 13); h4 += h1; h4 = h4 * 5 + 0x32ac3b17u;
  }
  const uint8_t* tail = data + 16 * nblocks;
  uint32_t k1 = 0, k2 = 0, k3 = 0, k4 = 0;
  switch (len & 15) {
    case 15: k4 ^= static_cast<uint32_t>(tail[14]) << 16; [[fallthrough]];
    case 14: k4 ^= static_cast<uint32_t>(tail[13]) << 8; [[fallthrough]];
    case 13: k4 ^= tail[12]; k4 *= c4; k4 = rotl32(k4, 18); k4 *= c1; h4 ^= k4; [[fallthrough]];
    case 12: k3 ^= static_cast<uint32_t>(tail[11]) << 24; [[fallthrough]];
    case 11: k3 ^= static_cast<uint32_t>(tail[10]) << 16; [[fallthrough]];
    case 10: k3 ^= static_cast<uint32_t>(tail[9]) << 8; [[fallthrough]];
    case 9: k3 ^= tail[8]; k3 *= c3; k3 = rotl32(k3, 17); k3 *= c4; h3 ^= k3; [[fallthrough]];
    case 8: k2 ^= static_cast<uint32_t>(tail[7]) << 24; [[fallthrough]];
    case 7: k2 ^= static_cast<uint32_t>(tail[6]) << 16; [[fallthrough]];
    case 6: k2 ^= static_cast<uint32_t>(tail[5]) << 8; [[fallthrough]];
    case 5: k2 ^= tail[4]; k2 *= c2; k2 = rotl32(k2, 16); k2 *= c3; h2 ^= k2; [[fallthrough]];
    case 4: k1 ^= static_cast<uint32_t>(tail[3]) << 24; [[fallthrough]];
    case 3: k1 ^= static_cast<uint32_t>(tail[2]) << 16; [[fallthrough]];
    case 2: k1 ^= static_cast<uint32_t>(tail[1]) << 8; [[fallthrough]];
    case 1: k1 ^= tail[0]; k1 *= c1; k1 = rotl32(k1, 15); k1 *= c2; h1 ^= k1; [[fallthrough]];
    default: break;
  }
  const uint32_t n = static_cast<uint32_t>(len);
  h1 ^= n; h2 ^= n; h3 ^= n; h4 ^= n;
  h1 += h2; h1 += h3; h1 += h4;
  h2 += h1; h3 += h1; h4 += h1;
  h1 = fmix32(h1); h2 = fmix32(h2); h3 = fmix32(h3); h4 = fmix32(h4);
  h1 += h2; h1 += h3; h1 += h4;
  h2 += h1; h3 += h1; h4 += h1;
  const uint32_t h[4] = {h1, h2, h3, h4};
  for (int i = 0; i < 4; ++i)
    for (int b = 0; b < 4; ++b) out[4 * i + b] = static_cast<uint8_t>(h[i] >> (8 * b));
}

// exactKeyHash(key: string, out: Uint8Array(16), lowerAscii: boolean): MurmurHash3_x86_128 (seed 0)
// of the UTF-16LE units of key with every run of JavaScript whitespace folded to one space and the
// ends trimmed — key.replace(/\s+/g, ' ').trim() — without building that string. The caller has
// applied NFKC and lower case (they need ICU), except on ASCII text, where lowerAscii maps A–Z here.
Napi::Value ExactKeyHash(const Napi::CallbackInfo& info) {
  const char* fn = "exactKeyHash";
  const std::vector<char16_t>& text = utf16_of(info, 0, fn);
  size_t n_out = 0;
  uint8_t* out = typed_data<uint8_t>(info, 1, napi_uint8_array, fn, "out", &n_out);
  if (n_out != 16) throw Napi::RangeError::New(info.Env(), "exactKeyHash: 'out' must be a Uint8Array of 16 bytes");
  const bool lower_ascii = info.Length() > 2 && info[2].ToBoolean().Value();
  thread_local std::vector<uint8_t> bytes_buf;
  if (bytes_buf.size() < 2 * text.size()) bytes_buf.resize(2 * text.size());
  // Plain pointers in the loop: through the thread-local vector, every byte store would reload it.
  uint8_t* bytes = bytes_buf.data();
  const char16_t* units = text.data();
  const size_t len = text.size();
  size_t n = 0;
  bool pending_space = false;
  for (size_t i = 0; i < len; ++i) {
    char16_t u = units[i];
    if (lower_ascii && u >= 'A' && u <= 'Z') u = static_cast<char16_t>(u + 32);
    if (is_js_space(u)) {
      // Only between words: leading and trailing runs vanish (trim).
      pending_space = n > 0;
      continue;
    }
    if (pending_space) {
      bytes[n++] = 0x20;
      bytes[n++] = 0;
      pending_space = false;
    }
    bytes[n++] = static_cast<uint8_t>(u & 0xff);
    bytes[n++] = static_cast<uint8_t>(u >> 8);
  }
  murmur3_x86_128(bytes, n, 0, out);
  return info.Env().Undefined();
}

// ---- Language id n-gram scoring (src/data/pipeline/langid.ts FastEld.detect is the specification) ----

// The 53-bit key of the n-gram codes[from, to) with a space before (lead) and/or after (trail):
// langid.ts ngramKey, bit for bit (its double is exactly this integer).
uint64_t eld_ngram_key(const uint16_t* codes, int64_t from, int64_t to, bool lead, bool trail) {
  uint32_t h1 = 0x811c9dc5u, h2 = 0x9747b28cu;
  const auto mix = [&](uint32_t c) {
    h1 = (h1 ^ c) * 0x01000193u;
    h2 = (h2 + c + 0x7f4a7c15u) * 0x5bd1e995u;
    h2 ^= h2 >> 15;
  };
  if (lead) mix(0x20);
  for (int64_t k = from; k < to; ++k) mix(codes[k]);
  if (trail) mix(0x20);
  h1 ^= static_cast<uint32_t>(to - from + (lead ? 1 : 0) + (trail ? 1 : 0)) << 24;
  h2 = (h2 ^ (h2 >> 16)) * 0x85ebca6bu;
  h2 = (h2 ^ (h2 >> 13)) * 0xc2b2ae35u;
  h2 ^= h2 >> 16;
  return (static_cast<uint64_t>(h1) << 21) + (h2 & 0x1fffffu);
}

// eldScore(codes: Uint16Array, wordStarts: Int32Array, words, slotKeys: Float64Array, slotEntry:
// Int32Array, offsets: Uint32Array, langs: Uint8Array, scores: Uint16Array, out: Float64Array) →
// the number of distinct n-grams: eld's byte n-grams of each word (its first 70 symbols; 4 symbols at
// stride 3, the first with a leading space; then the last 4 with a trailing space), each scored
// once, adding score + 53 per language of its table entry into out (zeroed here).
Napi::Value EldScore(const Napi::CallbackInfo& info) {
  const char* fn = "eldScore";
  size_t n_codes = 0, n_starts = 0, n_slots = 0, n_entry = 0, n_offsets = 0, n_langs = 0, n_scores = 0, n_out = 0;
  const uint16_t* codes = typed_data<uint16_t>(info, 0, napi_uint16_array, fn, "codes", &n_codes);
  const int32_t* starts = typed_data<int32_t>(info, 1, napi_int32_array, fn, "wordStarts", &n_starts);
  if (info.Length() < 3 || !info[2].IsNumber()) throw Napi::TypeError::New(info.Env(), "eldScore: 'words' must be a number");
  const int64_t words = info[2].As<Napi::Number>().Int64Value();
  const double* slot_keys = typed_data<double>(info, 3, napi_float64_array, fn, "slotKeys", &n_slots);
  const int32_t* slot_entry = typed_data<int32_t>(info, 4, napi_int32_array, fn, "slotEntry", &n_entry);
  const uint32_t* offsets = typed_data<uint32_t>(info, 5, napi_uint32_array, fn, "offsets", &n_offsets);
  const uint8_t* langs = typed_data<uint8_t>(info, 6, napi_uint8_array, fn, "langs", &n_langs);
  const uint16_t* scores = typed_data<uint16_t>(info, 7, napi_uint16_array, fn, "scores", &n_scores);
  double* out = typed_data<double>(info, 8, napi_float64_array, fn, "out", &n_out);
  if (words < 0 || static_cast<size_t>(words) + 1 > n_starts || n_slots == 0 || (n_slots & (n_slots - 1)) != 0 ||
      n_entry != n_slots || n_offsets == 0 || offsets[n_offsets - 1] > n_langs || n_langs != n_scores) {
    throw Napi::RangeError::New(info.Env(), "eldScore: inconsistent table or word arrays");
  }
  if (words > 0 && static_cast<size_t>(starts[words]) > n_codes) throw Napi::RangeError::New(info.Env(), "eldScore: word starts past the codes");
  std::fill(out, out + n_out, 0.0);
  // The n-grams seen in this text: a few hundred at most, in a small open-addressing set.
  thread_local std::vector<uint64_t> seen;
  thread_local std::vector<uint64_t> keys;
  thread_local std::vector<int32_t> entries;
  // codes holds at most 1024 symbols, so fewer than 2048 n-grams: the set is never more than half full.
  constexpr size_t kSeen = 4096;
  seen.assign(kSeen, 0);
  keys.clear();
  const uint64_t mask = n_slots - 1;
  // Pass 1: the distinct keys, in eld's order, each slot prefetched. The table is megabytes: its
  // lookups are cache misses, and issuing them all before using any overlaps their latencies.
  const auto add = [&](int64_t from, int64_t to, bool lead, bool trail) {
    const uint64_t key = eld_ngram_key(codes, from, to, lead, trail);
    // Stored as key + 1: 0 marks an empty slot.
    for (size_t i = (key * 0x9e3779b97f4a7c15ULL) >> 52;; i = (i + 1) & (kSeen - 1)) {
      if (seen[i] == key + 1) return;
      if (seen[i] == 0) {
        seen[i] = key + 1;
        break;
      }
    }
    keys.push_back(key);
    __builtin_prefetch(&slot_keys[key % n_slots]);
  };
  for (int64_t w = 0; w < words; ++w) {
    const int64_t s = starts[w], e = starts[w + 1];
    const int64_t len = std::min<int64_t>(e - s, 70);
    int64_t j = 0;
    for (; j + 4 < len; j += 3) add(s + j, s + j + 4, j == 0, false);
    add(s + std::max<int64_t>(0, len - 4), e, j == 0, true);
  }
  // Pass 2: the table entries (their score ranges prefetched).
  entries.clear();
  for (const uint64_t key : keys) {
    const double dkey = static_cast<double>(key);
    for (uint64_t i = key % n_slots;; i = (i + 1) & mask) {
      const double k = slot_keys[i];
      if (k == dkey) {
        const int32_t e = slot_entry[i];
        if (e >= 0 && static_cast<size_t>(e) + 1 < n_offsets) {
          entries.push_back(e);
          __builtin_prefetch(&offsets[e]);
        }
        break;
      }
      if (k == 0) break;
    }
  }
  // Pass 3: the sums (integers, exact in doubles, so their order does not matter).
  for (const int32_t e : entries) {
    // eld subtracted 53 from every stored score to shrink its table; it adds it back.
    for (uint32_t j = offsets[e]; j < offsets[e + 1]; ++j) {
      if (langs[j] < n_out) out[langs[j]] += static_cast<double>(scores[j]) + 53.0;
    }
  }
  const int64_t distinct = static_cast<int64_t>(keys.size());
  return Napi::Number::New(info.Env(), static_cast<double>(distinct));
}

void RegisterText(Napi::Env env, Napi::Object exports) {
  exports.Set("minhashSignature", Napi::Function::New(env, MinhashSignature, "minhashSignature"));
  exports.Set("textWordScan", Napi::Function::New(env, TextWordScan, "textWordScan"));
  exports.Set("ngramRepetition", Napi::Function::New(env, NgramRepetition, "ngramRepetition"));
  exports.Set("charNgramRepetition", Napi::Function::New(env, CharNgramRepetition, "charNgramRepetition"));
  exports.Set("exactKeyHash", Napi::Function::New(env, ExactKeyHash, "exactKeyHash"));
  exports.Set("eldScore", Napi::Function::New(env, EldScore, "eldScore"));
}

}  // namespace weft
