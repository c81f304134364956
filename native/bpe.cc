// Byte-level BPE word encoder for the tokenizer's ids-only fast path (src/tokenizers/models/bpe.ts).
// One call encodes every word span of a text: UTF-16 → UTF-8 byte ids (lone surrogates → U+FFFD, as
// TextEncoder does), a word cache keyed by the word's UTF-16 units, and the merges — lowest rank
// first, leftmost on ties, exactly as the TypeScript mergeScan / mergeHeap (the oracle) do. Short
// words merge with a flat scan (tiktoken's), long ones with a heap over a linked list (HF merge_all)
// so a 100k-byte word stays O(n log n). Crossing N-API once per text, not per word, is the point:
// GPT-2 makes each run of Han characters one word of many 3-byte symbols that rarely repeats, so
// the cache misses and the merges themselves are the cost.
#include <napi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace weft {
namespace {

constexpr int32_t kNoRank = 0x7fffffff;
/** Words of more byte symbols than this merge with the heap instead of the quadratic scan. */
constexpr int64_t kScanLimit = 96;

/**
 * (left id, right id) → (rank, merged id), open addressing with linear probing. When every id and
 * rank fits in 16 bits (GPT-2: 50257 ids, 50000 merges) a slot is 8 bytes, so the table (1 MiB for
 * 50k merges) stays in L2: the lookups are most of the merge cost.
 */
class PairTable {
 public:
  PairTable(const int32_t* left, const int32_t* right, const int32_t* merged, int64_t n) {
    uint64_t cap = 16;
    while (cap < static_cast<uint64_t>(n) * 2) cap *= 2;
    mask_ = cap - 1;
    int32_t max_id = 0;
    for (int64_t r = 0; r < n; ++r) max_id = std::max({max_id, left[r], right[r], merged[r]});
    compact_ = max_id < 0xffff && n <= 0x10000;
    if (compact_) small_.assign(cap, Small{kEmptySmall, 0});
    else wide_.assign(cap, Wide{kEmptyWide, kNoRank, -1});
    for (int64_t r = 0; r < n; ++r) insert(left[r], right[r], static_cast<int32_t>(r), merged[r]);
  }

  /** The rank of (a, b) (kNoRank when no rule joins them), and in *merged the id it makes. */
  int32_t find(int32_t a, int32_t b, int32_t* merged) const {
    if (compact_) {
      if (a > 0xfffe || b > 0xfffe) return kNoRank;
      const uint32_t key = (static_cast<uint32_t>(a) << 16) | static_cast<uint32_t>(b);
      for (uint64_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
        const Small& s = small_[i];
        if (s.key == key) {
          *merged = static_cast<int32_t>(s.value & 0xffff);
          return static_cast<int32_t>(s.value >> 16);
        }
        if (s.key == kEmptySmall) return kNoRank;
      }
    }
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
    for (uint64_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Wide& s = wide_[i];
      if (s.key == key) {
        *merged = s.merged;
        return s.rank;
      }
      if (s.key == kEmptyWide) return kNoRank;
    }
  }

 private:
  struct Small {
    uint32_t key;    // left << 16 | right
    uint32_t value;  // rank << 16 | merged
  };
  struct Wide {
    uint64_t key;
    int32_t rank;
    int32_t merged;
  };
  static constexpr uint32_t kEmptySmall = ~uint32_t{0};
  static constexpr uint64_t kEmptyWide = ~uint64_t{0};

  static uint64_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
  }

  /** Inserts unless present: the first (lowest-rank) rule for a pair wins, as in the TS table. */
  void insert(int32_t a, int32_t b, int32_t rank, int32_t merged) {
    if (compact_) {
      const uint32_t key = (static_cast<uint32_t>(a) << 16) | static_cast<uint32_t>(b);
      for (uint64_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
        Small& s = small_[i];
        if (s.key == key) return;
        if (s.key == kEmptySmall) {
          s = Small{key, (static_cast<uint32_t>(rank) << 16) | static_cast<uint32_t>(merged)};
          return;
        }
      }
    }
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
    for (uint64_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      Wide& s = wide_[i];
      if (s.key == key) return;
      if (s.key == kEmptyWide) {
        s = Wide{key, rank, merged};
        return;
      }
    }
  }

  uint64_t mask_;
  bool compact_;
  std::vector<Small> small_;
  std::vector<Wide> wide_;
};

/**
 * Word (UTF-16 units) → ids. A slot is 8 bytes (hash tag, record offset); a record in the arena is
 * [key length, id count, units (padded to 4 bytes), ids], so a hit touches two cache lines. The
 * table is cleared wholesale when it holds `capacity` words (as the TS idCache is).
 */
class WordCache {
 public:
  WordCache(int64_t capacity, int64_t max_word) : capacity_(capacity), max_word_(max_word) {
    uint64_t cap = 16;
    while (capacity > 0 && cap < static_cast<uint64_t>(capacity) * 3 / 2) cap *= 2;
    mask_ = cap - 1;
    if (capacity > 0) table_.assign(cap, Slot{0, 0});
  }

  bool enabled(int64_t len) const { return capacity_ > 0 && len <= max_word_; }

  static uint64_t hash(const char16_t* s, int64_t n) {
    uint64_t h = 0xcbf29ce484222325ULL ^ static_cast<uint64_t>(n);
    for (int64_t i = 0; i < n; ++i) h = (h ^ s[i]) * 0x100000001b3ULL;
    h ^= h >> 29;
    return h;
  }

  void prefetch(uint64_t h) const { __builtin_prefetch(&table_[h & mask_]); }

  /** The cached ids of the word (count in *n), or nullptr. */
  const int32_t* find(const char16_t* s, int64_t len, uint64_t h, int64_t* n) const {
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (uint64_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& e = table_[i];
      if (e.offset == 0) return nullptr;
      if (e.tag != tag) continue;
      const uint32_t* rec = &arena_[e.offset];
      if (rec[0] != static_cast<uint32_t>(len) || std::memcmp(rec + 2, s, len * sizeof(char16_t)) != 0) continue;
      *n = rec[1];
      return reinterpret_cast<const int32_t*>(rec + 2 + (len + 1) / 2);
    }
  }

  void insert(const char16_t* s, int64_t len, uint64_t h, const int32_t* ids, int64_t n) {
    // Bounded in words and in bytes (100k words of 96 CJK units would otherwise take 130 MB).
    if (count_ >= capacity_ || arena_.size() > kArenaMax) clear();
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (uint64_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& e = table_[i];
      if (e.offset != 0) continue;
      const size_t at = arena_.size();
      const size_t key_words = static_cast<size_t>((len + 1) / 2);
      arena_.resize(at + 2 + key_words + static_cast<size_t>(n));
      uint32_t* rec = &arena_[at];
      rec[0] = static_cast<uint32_t>(len);
      rec[1] = static_cast<uint32_t>(n);
      rec[1 + key_words] = 0;  // padding unit of an odd-length key
      std::memcpy(rec + 2, s, len * sizeof(char16_t));
      std::memcpy(rec + 2 + key_words, ids, n * sizeof(int32_t));
      e = Slot{tag, static_cast<uint32_t>(at)};
      ++count_;
      return;
    }
  }

  void clear() {
    if (count_ == 0) return;
    std::fill(table_.begin(), table_.end(), Slot{0, 0});
    arena_.assign(1, 0);
    count_ = 0;
  }

 private:
  struct Slot {
    uint32_t tag;
    uint32_t offset;  // into arena_; 0 = empty (arena_[0] is a dummy)
  };
  // 64 MiB of records: 32 MiB filled up on a mixed English/Chinese corpus (Chinese words are long,
  // their records large), and clearing the cache wholesale cost the data pipeline ~6% of its time.
  static constexpr size_t kArenaMax = size_t{1} << 24;
  int64_t capacity_, max_word_, count_ = 0;
  uint64_t mask_;
  std::vector<Slot> table_;
  std::vector<uint32_t> arena_ = std::vector<uint32_t>(1, 0);
};

class BpeCore {
 public:
  BpeCore(const int32_t* left, const int32_t* right, const int32_t* merged, int64_t n_merges, const int32_t* byte_ids,
          int64_t cache_capacity, int64_t cache_max_word)
      : pairs_(left, right, merged, n_merges), cache_(cache_capacity, cache_max_word) {
    std::memcpy(byte_ids_, byte_ids, sizeof(byte_ids_));
    // Every word starts as bytes: a dense table for byte pairs keeps those first lookups (most of
    // them) on a few hot cache lines instead of scattered over the hash table.
    byte_pair_.resize(256 * 256);
    for (int b0 = 0; b0 < 256; ++b0) {
      for (int b1 = 0; b1 < 256; ++b1) {
        PairRule& p = byte_pair_[(b0 << 8) | b1];
        p.merged = -1;
        p.rank = pairs_.find(byte_ids_[b0], byte_ids_[b1], &p.merged);
      }
    }
  }

  void clear_cache() { cache_.clear(); }

  /**
   * Writes the ids of the words text[spans[2k], spans[2k+1]) (k < count; checked by the caller) to
   * out, which holds 3 ids per unit of the words; returns how many. The cache slot of the word a few
   * ahead is prefetched: on a cold cache those slot loads miss and were the largest single cost.
   */
  int64_t encode_words(const char16_t* text, const int32_t* spans, int64_t count, int32_t* out) {
    constexpr int64_t kAhead = 8;
    uint64_t ring[kAhead];
    const auto hash_of = [&](int64_t k) -> uint64_t {
      const int64_t len = spans[2 * k + 1] - spans[2 * k];
      if (!cache_.enabled(len)) return 0;
      const uint64_t h = WordCache::hash(text + spans[2 * k], len);
      cache_.prefetch(h);
      return h;
    };
    for (int64_t k = 0; k < count && k < kAhead; ++k) ring[k] = hash_of(k);
    int64_t written = 0;
    for (int64_t k = 0; k < count; ++k) {
      const uint64_t h = ring[k % kAhead];
      if (k + kAhead < count) ring[k % kAhead] = hash_of(k + kAhead);
      written += encode_word(text, spans[2 * k], spans[2 * k + 1], h, out + written);
    }
    return written;
  }

  /**
   * GPT-2's pre-tokenizer pattern over text (src/tokenizers/pre-tokenizers/byte-level.ts scanGpt2,
   * the oracle, which documents the pattern), writing [start, end) spans; classes[u] is the class of
   * BMP unit u (1 letter, 2 number, 3 white space, 4 other, surrogates other). Returns the number of
   * spans, or -1 at the first surrogate pair: astral classes are left to the TypeScript scanner.
   */
  int64_t scan_gpt2(const char16_t* text, int64_t n, const uint8_t* classes) {
    constexpr uint8_t kSpace = 3;
    spans_.clear();
    const auto pair_at = [&](int64_t i) {
      return text[i] >= 0xd800 && text[i] <= 0xdbff && i + 1 < n && (text[i + 1] & 0xfc00) == 0xdc00;
    };
    int64_t i = 0;
    while (i < n) {
      const char16_t c = text[i];
      // 's 't 'm 'd 're 've 'll (case-sensitive, as in GPT-2)
      if (c == 39 && i + 1 < n) {
        const char16_t d = text[i + 1];
        if (d == 115 || d == 116 || d == 109 || d == 100) {
          spans_.push_back(static_cast<int32_t>(i));
          spans_.push_back(static_cast<int32_t>(i + 2));
          i += 2;
          continue;
        }
        if (i + 2 < n) {
          const char16_t e = text[i + 2];
          if ((d == 114 && e == 101) || (d == 118 && e == 101) || (d == 108 && e == 108)) {
            spans_.push_back(static_cast<int32_t>(i));
            spans_.push_back(static_cast<int32_t>(i + 3));
            i += 3;
            continue;
          }
        }
      }
      if (pair_at(i)) return -1;
      int64_t j = i;
      uint8_t cls = classes[c];
      if (c == 32 && i + 1 < n) {
        // " ?X+": the space joins a following letter/number/other run.
        if (pair_at(i + 1)) return -1;
        const uint8_t k = classes[text[i + 1]];
        if (k != kSpace) {
          cls = k;
          j = i + 1;
        }
      }
      if (cls != kSpace) {
        ++j;
        while (j < n) {
          if (pair_at(j)) return -1;
          if (classes[text[j]] != cls) break;
          ++j;
        }
        spans_.push_back(static_cast<int32_t>(i));
        spans_.push_back(static_cast<int32_t>(j));
        i = j;
        continue;
      }
      // Whitespace: \s+(?!\S) leaves the last space of a run for the next word; a lone one is \s+.
      j = i + 1;
      while (j < n && classes[text[j]] == kSpace) ++j;
      const int64_t end = j == n || j - i == 1 ? j : j - 1;
      spans_.push_back(static_cast<int32_t>(i));
      spans_.push_back(static_cast<int32_t>(end));
      i = end;
    }
    return static_cast<int64_t>(spans_.size() / 2);
  }

  const int32_t* spans() const { return spans_.data(); }

 private:
  /** Appends the ids of text[start, end) to out; h is the word's WordCache::hash when it is cacheable. */
  int64_t encode_word(const char16_t* text, int64_t start, int64_t end, uint64_t h, int32_t* out) {
    const int64_t len = end - start;
    if (len <= 0) return 0;
    const char16_t* w = text + start;
    const bool cacheable = cache_.enabled(len);
    if (cacheable) {
      int64_t n = 0;
      const int32_t* hit = cache_.find(w, len, h, &n);
      if (hit != nullptr) {
        std::memcpy(out, hit, n * sizeof(int32_t));
        return n;
      }
    }
    if (static_cast<int64_t>(bytes_.size()) < 3 * len) bytes_.resize(3 * len);
    const int64_t n = to_bytes(w, len, bytes_.data());
    for (int64_t i = 0; i < n; ++i) out[i] = byte_ids_[bytes_[i]];
    const int64_t m = n <= 1 ? n : n <= kScanLimit ? merge_scan(out, n) : merge_heap(out, n);
    if (cacheable) cache_.insert(w, len, h, out, m);
    return m;
  }

  /** UTF-8 bytes of the units; lone surrogates become U+FFFD as TextEncoder does. */
  static int64_t to_bytes(const char16_t* w, int64_t len, uint8_t* bytes) {
    int64_t n = 0;
    for (int64_t i = 0; i < len; ++i) {
      uint32_t c = w[i];
      if (c < 0x80) {
        bytes[n++] = static_cast<uint8_t>(c);
        continue;
      }
      if (c < 0x800) {
        bytes[n++] = static_cast<uint8_t>(0xc0 | (c >> 6));
        bytes[n++] = static_cast<uint8_t>(0x80 | (c & 63));
        continue;
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        const uint32_t d = i + 1 < len ? w[i + 1] : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          ++i;
          bytes[n++] = static_cast<uint8_t>(0xf0 | (c >> 18));
          bytes[n++] = static_cast<uint8_t>(0x80 | ((c >> 12) & 63));
          bytes[n++] = static_cast<uint8_t>(0x80 | ((c >> 6) & 63));
          bytes[n++] = static_cast<uint8_t>(0x80 | (c & 63));
          continue;
        }
        c = 0xfffd;
      }
      bytes[n++] = static_cast<uint8_t>(0xe0 | (c >> 12));
      bytes[n++] = static_cast<uint8_t>(0x80 | ((c >> 6) & 63));
      bytes[n++] = static_cast<uint8_t>(0x80 | (c & 63));
    }
    return n;
  }

  /** tiktoken-style: each adjacent pair's rank and merged id; merge the lowest (leftmost on ties). */
  int64_t merge_scan(int32_t* ids, int64_t n) {
    if (static_cast<int64_t>(ranks_.size()) < n) {
      ranks_.resize(n);
      merged_.resize(n);
    }
    int32_t* ranks = ranks_.data();
    int32_t* merged = merged_.data();
    const uint8_t* bytes = bytes_.data();
    for (int64_t i = 0; i + 1 < n; ++i) {
      const PairRule& p = byte_pair_[(bytes[i] << 8) | bytes[i + 1]];
      ranks[i] = p.rank;
      merged[i] = p.merged;
    }
    while (n > 1) {
      // Branch-free minimum (the comparisons are unpredictable); strict < keeps the leftmost.
      int32_t best = kNoRank;
      int64_t at = 0;
      for (int64_t i = 0; i + 1 < n; ++i) {
        const int32_t r = ranks[i];
        const bool lower = r < best;
        best = lower ? r : best;
        at = lower ? i : at;
      }
      if (best == kNoRank) break;
      ids[at] = merged[at];
      // Drop symbol at + 1 and the pair (at, at + 1); pairs right of it shift down by one.
      const int64_t tail = n - at - 2;
      std::memmove(ids + at + 1, ids + at + 2, tail * sizeof(int32_t));
      std::memmove(ranks + at + 1, ranks + at + 2, (tail > 0 ? tail - 1 : 0) * sizeof(int32_t));
      std::memmove(merged + at + 1, merged + at + 2, (tail > 0 ? tail - 1 : 0) * sizeof(int32_t));
      --n;
      if (at > 0) set_pair(ids, at - 1, ranks, merged);
      if (at + 1 < n) set_pair(ids, at, ranks, merged);
    }
    return n;
  }

  void set_pair(const int32_t* ids, int64_t i, int32_t* ranks, int32_t* merged) const {
    ranks[i] = pairs_.find(ids[i], ids[i + 1], &merged[i]);
  }

  /** HF Word::merge_all: a min-heap of (rank, position) over a doubly linked list of symbols. */
  int64_t merge_heap(int32_t* ids, int64_t n) {
    prev_.resize(n);
    next_.resize(n);
    int64_t* prev = prev_.data();
    int64_t* next = next_.data();
    for (int64_t i = 0; i < n; ++i) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    // (rank << 32 | position): the smallest key is the lowest rank, leftmost on ties.
    std::vector<uint64_t>& heap = heap_;
    heap.clear();
    const auto push = [&heap](int32_t rank, int64_t pos) {
      heap.push_back((static_cast<uint64_t>(rank) << 32) | static_cast<uint64_t>(pos));
      std::push_heap(heap.begin(), heap.end(), std::greater<uint64_t>());
    };
    const uint8_t* bytes = bytes_.data();
    for (int64_t i = 0; i + 1 < n; ++i) {
      const int32_t rank = byte_pair_[(bytes[i] << 8) | bytes[i + 1]].rank;
      if (rank != kNoRank) push(rank, i);
    }
    int32_t made = 0;
    alive_.assign(n, 1);
    uint8_t* alive = alive_.data();
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<uint64_t>());
      const uint64_t top = heap.back();
      heap.pop_back();
      const int32_t rank = static_cast<int32_t>(top >> 32);
      const int64_t pos = static_cast<int64_t>(top & 0xffffffffULL);
      if (!alive[pos] || next[pos] == -1) continue;
      const int64_t right = next[pos];
      // A stale entry: the pair at pos changed since it was queued.
      if (pairs_.find(ids[pos], ids[right], &made) != rank) continue;
      ids[pos] = made;
      alive[right] = 0;
      next[pos] = next[right];
      if (next[right] != -1) prev[next[right]] = pos;
      int32_t unused = 0;
      if (prev[pos] != -1) {
        const int32_t l = pairs_.find(ids[prev[pos]], ids[pos], &unused);
        if (l != kNoRank) push(l, prev[pos]);
      }
      if (next[pos] != -1) {
        const int32_t r = pairs_.find(ids[pos], ids[next[pos]], &unused);
        if (r != kNoRank) push(r, pos);
      }
    }
    int64_t m = 0;
    for (int64_t i = 0; i != -1; i = next[i]) ids[m++] = ids[i];
    return m;
  }

  PairTable pairs_;
  WordCache cache_;
  int32_t byte_ids_[256];
  std::vector<int32_t> ranks_, merged_;
  std::vector<int64_t> prev_, next_;
  std::vector<uint64_t> heap_;
  struct PairRule {
    int32_t rank;
    int32_t merged;
  };
  std::vector<PairRule> byte_pair_;
  std::vector<uint8_t> bytes_;
  std::vector<uint8_t> alive_;
  std::vector<int32_t> spans_;
};

using Info = Napi::CallbackInfo;

[[noreturn]] void type_error(const Info& info, const std::string& msg) { throw Napi::TypeError::New(info.Env(), msg); }
[[noreturn]] void range_error(const Info& info, const std::string& msg) {
  throw Napi::RangeError::New(info.Env(), msg);
}

Napi::Int32Array int32_arg(const Info& info, size_t i, const char* fn, const char* name) {
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    type_error(info, std::string(fn) + ": '" + name + "' must be an Int32Array");
  }
  return info[i].As<Napi::Int32Array>();
}

int64_t int_arg(const Info& info, size_t i, const char* fn, const char* name, int64_t lo) {
  if (i >= info.Length() || !info[i].IsNumber()) type_error(info, std::string(fn) + ": '" + name + "' must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= static_cast<double>(lo) && v <= 2147483647.0) || v != static_cast<double>(static_cast<int64_t>(v))) {
    range_error(info, std::string(fn) + ": '" + name + "' must be an integer in [" + std::to_string(lo) +
                          ", 2^31), got " + std::to_string(v));
  }
  return static_cast<int64_t>(v);
}

/**
 * new BpeEncoder(left, right, merged, byteIds, cacheCapacity, cacheMaxWord): merge rule r joins
 * (left[r], right[r]) into merged[r] with rank r; byteIds[b] is the id of byte b's symbol.
 */
class BpeEncoder : public Napi::ObjectWrap<BpeEncoder> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "BpeEncoder",
                       {InstanceMethod<&BpeEncoder::Encode>("encode"),
                        InstanceMethod<&BpeEncoder::EncodeGpt2>("encodeGpt2"),
                        InstanceMethod<&BpeEncoder::ClearCache>("clearCache")});
  }

  explicit BpeEncoder(const Info& info) : Napi::ObjectWrap<BpeEncoder>(info) {
    const char* fn = "new BpeEncoder";
    Napi::Int32Array left = int32_arg(info, 0, fn, "left");
    Napi::Int32Array right = int32_arg(info, 1, fn, "right");
    Napi::Int32Array merged = int32_arg(info, 2, fn, "merged");
    Napi::Int32Array byte_ids = int32_arg(info, 3, fn, "byteIds");
    const int64_t capacity = int_arg(info, 4, fn, "cacheCapacity", 0);
    const int64_t max_word = int_arg(info, 5, fn, "cacheMaxWord", 0);
    const int64_t n = static_cast<int64_t>(left.ElementLength());
    if (static_cast<int64_t>(right.ElementLength()) != n || static_cast<int64_t>(merged.ElementLength()) != n) {
      range_error(info, std::string(fn) + ": 'left', 'right' and 'merged' must have the same length, got " +
                            std::to_string(n) + ", " + std::to_string(right.ElementLength()) + ", " +
                            std::to_string(merged.ElementLength()));
    }
    if (byte_ids.ElementLength() != 256) {
      range_error(info, std::string(fn) + ": 'byteIds' must hold 256 ids, got " + std::to_string(byte_ids.ElementLength()));
    }
    const int32_t* l = left.Data();
    const int32_t* r = right.Data();
    const int32_t* m = merged.Data();
    for (int64_t i = 0; i < n; ++i) {
      if (l[i] < 0 || r[i] < 0 || m[i] < 0) {
        range_error(info, std::string(fn) + ": merge " + std::to_string(i) + " has a negative id");
      }
    }
    for (size_t b = 0; b < 256; ++b) {
      if (byte_ids.Data()[b] < 0) range_error(info, std::string(fn) + ": 'byteIds' lacks byte " + std::to_string(b));
    }
    core_ = std::make_unique<BpeCore>(l, r, m, n, byte_ids.Data(), capacity, max_word);
  }

  /**
   * encode(text, spans, count, out) → number of ids written to out: the words text[spans[2k],
   * spans[2k+1]) for k < count, in order. out must hold 3 ids per UTF-16 unit of the words.
   */
  Napi::Value Encode(const Info& info) {
    const char* fn = "BpeEncoder.encode";
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) type_error(info, std::string(fn) + ": 'text' must be a string");
    Napi::Int32Array spans = int32_arg(info, 1, fn, "spans");
    const int64_t count = int_arg(info, 2, fn, "count", 0);
    Napi::Int32Array out = int32_arg(info, 3, fn, "out");
    if (2 * count > static_cast<int64_t>(spans.ElementLength())) {
      range_error(info, std::string(fn) + ": 'spans' holds " + std::to_string(spans.ElementLength() / 2) +
                            " spans, fewer than count " + std::to_string(count));
    }
    size_t len = 0;
    NAPI_THROW_IF_FAILED(env, napi_get_value_string_utf16(env, info[0], nullptr, 0, &len), env.Undefined());
    text_.resize(len + 1);
    size_t copied = 0;
    NAPI_THROW_IF_FAILED(env, napi_get_value_string_utf16(env, info[0], text_.data(), len + 1, &copied),
                         env.Undefined());
    const int32_t* sp = spans.Data();
    int32_t* dst = out.Data();
    const int64_t cap = static_cast<int64_t>(out.ElementLength());
    int64_t room = 0;
    for (int64_t k = 0; k < count; ++k) {
      const int64_t s = sp[2 * k];
      const int64_t e = sp[2 * k + 1];
      if (s < 0 || e < s || e > static_cast<int64_t>(len)) {
        range_error(info, std::string(fn) + ": span " + std::to_string(k) + " [" + std::to_string(s) + ", " +
                              std::to_string(e) + ") is outside the text of length " + std::to_string(len));
      }
      room += 3 * (e - s);
    }
    if (room > cap) {
      range_error(info, std::string(fn) + ": 'out' (" + std::to_string(cap) + " ids) is too small: give it " +
                            std::to_string(room) + " (3 ids per UTF-16 unit of the words)");
    }
    const int64_t written = core_->encode_words(text_.data(), sp, count, dst);
    return Napi::Number::New(env, static_cast<double>(written));
  }

  /**
   * encodeGpt2(text, classes, out) → number of ids written to out, or -1 when the text holds a
   * character outside the BMP (the caller then splits it in TypeScript): text split with GPT-2's
   * pattern (classes: Uint8Array of 65536 BMP unit classes, see scan_gpt2), every word encoded.
   * out must hold 3 ids per UTF-16 unit of the text.
   */
  Napi::Value EncodeGpt2(const Info& info) {
    const char* fn = "BpeEncoder.encodeGpt2";
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) type_error(info, std::string(fn) + ": 'text' must be a string");
    if (info.Length() < 2 || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
        info[1].As<Napi::Uint8Array>().ElementLength() != 65536) {
      type_error(info, std::string(fn) + ": 'classes' must be a Uint8Array of 65536 classes");
    }
    const uint8_t* classes = info[1].As<Napi::Uint8Array>().Data();
    Napi::Int32Array out = int32_arg(info, 2, fn, "out");
    size_t len = 0;
    NAPI_THROW_IF_FAILED(env, napi_get_value_string_utf16(env, info[0], nullptr, 0, &len), env.Undefined());
    if (3 * static_cast<int64_t>(len) > static_cast<int64_t>(out.ElementLength())) {
      range_error(info, std::string(fn) + ": 'out' (" + std::to_string(out.ElementLength()) + " ids) is too small: give it " +
                            std::to_string(3 * len) + " (3 ids per UTF-16 unit of the text)");
    }
    text_.resize(len + 1);
    size_t copied = 0;
    NAPI_THROW_IF_FAILED(env, napi_get_value_string_utf16(env, info[0], text_.data(), len + 1, &copied),
                         env.Undefined());
    const int64_t count = core_->scan_gpt2(text_.data(), static_cast<int64_t>(len), classes);
    if (count < 0) return Napi::Number::New(env, -1);
    return Napi::Number::New(env, static_cast<double>(core_->encode_words(text_.data(), core_->spans(), count, out.Data())));
  }

  Napi::Value ClearCache(const Info& info) {
    core_->clear_cache();
    return info.Env().Undefined();
  }

 private:
  std::unique_ptr<BpeCore> core_;
  std::vector<char16_t> text_;
};

}  // namespace

void RegisterBpe(Napi::Env env, Napi::Object exports) { exports.Set("BpeEncoder", BpeEncoder::Define(env)); }

}  // namespace weft
