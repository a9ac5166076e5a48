#include "rnnbptt/kernels/threads.hpp"

#include <Eigen/Core>

#include <atomic>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "rnnbptt/core/error.hpp"

namespace rnnbptt {

namespace {
// 0 until set: then OpenMP's default (OMP_NUM_THREADS, else all cores) applies. Atomic: any
// thread may set it while others start calls (each call reads it once or a few times).
std::atomic<int> requested_threads{0};
}  // namespace

void set_num_threads(int threads) {
  if (threads < 1) detail::invalid("threads: expected an integer >= 1, got ", threads);
  requested_threads.store(threads, std::memory_order_relaxed);
}

int get_num_threads() {
#ifdef _OPENMP
  const int requested = requested_threads.load(std::memory_order_relaxed);
  return requested > 0 ? requested : omp_get_max_threads();
#else
  return 1;
#endif
}

bool has_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

const char* simd_instruction_sets() {
  // What the compiler was told to use for this build (Eigen's own string omits AVX2 and FMA).
  return ""
#if defined(__AVX512F__)
         "AVX512F "
#endif
#if defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
         "AVX512BW/DQ/VL "
#endif
#if defined(__FMA__)
         "FMA "
#endif
#if defined(__AVX2__)
         "AVX2 "
#endif
#if defined(__AVX__)
         "AVX "
#endif
#if defined(__SSE4_2__)
         "SSE4.2 "
#endif
#if defined(__SSE2__)
         "SSE2"
#endif
#if defined(__ARM_NEON)
         "NEON"
#endif
      ;
}

}  // namespace rnnbptt
