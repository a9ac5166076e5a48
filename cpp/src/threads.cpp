#include "rnnbptt/threads.hpp"

#include <Eigen/Core>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "rnnbptt/error.hpp"

namespace rnnbptt {

namespace {
// 0 until set: then OpenMP's default (OMP_NUM_THREADS, else all cores) applies.
int requested_threads = 0;
}  // namespace

void set_num_threads(int threads) {
  if (threads < 1) detail::invalid("threads: expected an integer >= 1, got ", threads);
  requested_threads = threads;
}

int get_num_threads() {
#ifdef _OPENMP
  return requested_threads > 0 ? requested_threads : omp_get_max_threads();
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

const char* simd_instruction_sets() { return Eigen::SimdInstructionSetsInUse(); }

}  // namespace rnnbptt
