// Overlapped execution: the batched products of a pass (output layer, injected gradients,
// dW_hh) run over fixed chunks of time steps, and, when the steps are small, on a second thread
// overlapped with the recurrence instead of after it.
//
// A step of the recurrence is one n x h times h x h product. When that is small (n h^2 at most
// 2^20 multiply-adds, e.g. h = 128 with n = 8: a few microseconds), cutting it into column
// bands for several threads buys little and costs a barrier per step, which waits for the
// slowest core at every one of T steps, and there are too few rows for row bands (16 per
// thread, recurrence.hpp) to keep the kernel busy. Then one thread runs the whole recurrence (no barrier)
// and a second thread runs the products for each chunk of steps as soon as the recurrence has
// finished it (forward: o_t = W_qh h_t; backward: dW_hh += g^a h_{t-1}^T), or before the
// recurrence needs it (backward: W_qh^T g^o_t). The two meet through two counters, not barriers.
// Backward, the recurrence's thread computes dW_qh once the recurrence is done, so that each
// thread has about (h + q) / h of the recurrence's work (rnn_backward).
//
// The chunks are the same whether or not the products overlap the recurrence and whatever
// the thread count, and each chunk's product is the same call (gemm.hpp, whose results do not
// depend on the thread count), so the results are bit for bit the same in every case.
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "rnnbptt/core/config.hpp"
#include "rnnbptt/kernels/threads.hpp"

namespace rnnbptt::detail {

// Whether a recurrence of n x h by h x h steps has small steps: below 2^20 multiply-adds.
inline bool small_steps(Index n, Index h) { return n * h * h <= (Index(1) << 20); }

// Steps [first, end) in chunks: with small steps, of about 2048 rows (steps x n), big enough
// for a GEMM to run at full speed and small enough to overlap; otherwise one chunk (a product
// per chunk costs a parallel region each, and nothing overlaps). Depends on the shape alone.
struct TimeChunks {
  Index first = 0, end = 0, steps = 1;
  TimeChunks(Index first_, Index end_, Index n, Index h)
      : first(first_), end(end_), steps(std::max<Index>(1, small_steps(n, h) ? 2048 / n : end_ - first_)) {}
  Index count() const { return end > first ? (end - first + steps - 1) / steps : 0; }
  Index begin(Index c) const { return first + c * steps; }
  Index stop(Index c) const { return std::min(end, first + (c + 1) * steps); }
};

// Whether the products over `chunks` overlap a recurrence of hidden size h feeding q
// outputs: two threads or more, at least two chunks to overlap (so small steps; a Predictor's
// single steps stay on one thread), and q <= h, so that the helper's share (about q / h of the
// recurrence's work forward, (q + h) / h backward) does not make one thread the bottleneck
// where the products would otherwise have every thread.
inline bool overlap_products(const TimeChunks& chunks, Index h, Index q) {
  return get_num_threads() >= 2 && chunks.count() >= 2 && q <= h;
}

// A step counter one thread publishes and the other waits on (a cache line of its own: the
// recurrence publishes one at every step while the other thread polls its neighbour).
class alignas(64) StepCounter {
 public:
  explicit StepCounter(Index start) : value_(start) {}
  void publish(Index value) { value_.store(value, std::memory_order_release); }
  // Waits until ready(value) holds: spins briefly, then yields the core (on a machine with more
  // threads than cores, spinning would keep the publisher off the core it needs).
  template <class Ready>
  void wait(Ready&& ready) const {
    for (int spin = 0; !ready(value_.load(std::memory_order_acquire)); ++spin) {
      if (spin < 4096) {
#if defined(__x86_64__) || defined(__i386__)
        _mm_pause();
#endif
      } else {
        std::this_thread::yield();
      }
    }
  }

 private:
  std::atomic<Index> value_;
};

// Runs main() and helper() on two threads at once. Returns false, running neither, when two
// threads cannot be had (no OpenMP, or inside another parallel region); the caller then runs
// its sequential order. An exception cannot leave an OpenMP region: if either function throws,
// release() is called (it must publish whatever lets the other thread stop waiting) and the
// exception is rethrown here once both have returned.
template <class Main, class Helper, class Release>
bool run_overlapped(Main&& main, Helper&& helper, Release&& release) {
#ifdef _OPENMP
  if (omp_in_parallel()) return false;
  std::atomic<int> team{0};
  std::exception_ptr failures[2];
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    team.store(omp_get_num_threads());
    // the implicit barrier of `single` publishes the team size to both threads
    if (team.load() == 2) {
      const int thread = omp_get_thread_num();
      try {
        if (thread == 0)
          main();
        else
          helper();
      } catch (...) {
        failures[thread] = std::current_exception();
        release();
      }
    }
  }
  for (const std::exception_ptr& failure : failures)
    if (failure) std::rethrow_exception(failure);
  return team.load() == 2;
#else
  (void)main, (void)helper, (void)release;
  return false;
#endif
}

}  // namespace rnnbptt::detail
