#include "threadpool.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define WEFT_PAUSE() _mm_pause()
#else
#define WEFT_PAUSE() ((void)0)
#endif

namespace weft {
namespace {

thread_local bool tls_in_worker = false;

class Pool {
 public:
  explicit Pool(int n) { start(n); }
  ~Pool() { stop(); }

  int size() const { return size_; }

  void resize(int n) {
    if (n < 1) n = 1;
    if (n == size_) return;
    stop();
    start(n);
  }

  void run(const std::function<void(int, int)>& fn, int max_threads) {
    int nt = size_;
    if (max_threads > 0 && max_threads < nt) nt = max_threads;
    if (nt <= 1 || tls_in_worker) {
      fn(0, 1);
      return;
    }
    std::lock_guard<std::mutex> run_lock(run_mutex_);  // one parallel region at a time
    {
      std::lock_guard<std::mutex> lk(mutex_);
      job_ = &fn;
      job_threads_ = nt;
      pending_.store(nt - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    tls_in_worker = true;
    fn(0, nt);
    tls_in_worker = false;
    // Short spin first: most kernels finish within microseconds of each other.
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
      if (spin > 2000) std::this_thread::yield(); else WEFT_PAUSE();
    }
  }

 private:
  void start(int n) {
    size_ = n;
    quit_ = false;
    // Each worker starts from the generation current now: reading it inside the new thread would race
    // with a job published before the thread got scheduled (the worker would skip it and the caller
    // would wait forever).
    const uint64_t start_generation = generation_.load(std::memory_order_acquire);
    for (int t = 1; t < n; ++t) workers_.emplace_back([this, t, start_generation] { loop(t, start_generation); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mutex_);
      quit_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  void loop(int tid, uint64_t seen) {
    tls_in_worker = true;
    for (;;) {
      // Spin a little before sleeping so back-to-back kernels don't pay a futex wake-up each.
      int spin = 0;
      while (generation_.load(std::memory_order_acquire) == seen && spin < 20000) {
        WEFT_PAUSE();
        ++spin;
      }
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lk(mutex_);
        cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      }
      const std::function<void(int, int)>* job;
      int nt;
      {
        // Generation and job are read together under the lock that publishes them, so a worker
        // never pairs a new generation with a stale job (or runs one job twice).
        std::lock_guard<std::mutex> lk(mutex_);
        if (quit_) return;
        seen = generation_.load(std::memory_order_acquire);
        job = job_;
        nt = job_threads_;
      }
      if (job != nullptr && tid < nt) {
        (*job)(tid, nt);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  int size_ = 1;
  bool quit_ = false;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::mutex run_mutex_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  const std::function<void(int, int)>* job_ = nullptr;
  int job_threads_ = 1;
};

int default_threads() {
  const char* env = std::getenv("WEFT_NUM_THREADS");
  if (env != nullptr) {
    int n = std::atoi(env);
    if (n >= 1) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

Pool& pool() {
  static Pool p(default_threads());
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }
void set_num_threads(int n) { pool().resize(n); }

void parallel_run(const std::function<void(int, int)>& fn, int max_threads) { pool().run(fn, max_threads); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t max_chunks = (n + grain - 1) / grain;
  int nt = num_threads();
  if (max_chunks < nt) nt = static_cast<int>(max_chunks);
  if (nt <= 1) {
    fn(0, n);
    return;
  }
  parallel_run(
      [&](int tid, int nthreads) {
        int64_t begin = n * tid / nthreads;
        int64_t end = n * (tid + 1) / nthreads;
        if (begin < end) fn(begin, end);
      },
      nt);
}

}  // namespace weft
