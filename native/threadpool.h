// One thread pool for the process. Every parallel kernel splits its work by (thread index,
// thread count); the calling thread is worker 0. No nested parallelism: a parallel_run issued
// from inside a worker runs serially on that worker.
#pragma once
#include <cstdint>
#include <functional>

namespace weft {

int num_threads();
// Resizes the pool (n >= 1). Not to be called while a parallel region runs.
void set_num_threads(int n);

// Runs fn(tid, nthreads) once on each pool thread (tid 0 is the caller) and returns when all are done.
// `max_threads` caps how many take part (useful for small problems); <= 0 means all.
void parallel_run(const std::function<void(int tid, int nthreads)>& fn, int max_threads = 0);

// Splits [0, n) into at most num_threads() contiguous chunks of at least `grain` items each and
// calls fn(begin, end) for each chunk, in parallel.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

}  // namespace weft
