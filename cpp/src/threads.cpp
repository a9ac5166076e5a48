#include "rnnbptt/threads.hpp"

#include <Eigen/Core>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "rnnbptt/error.hpp"

namespace rnnbptt {

void set_num_threads(int threads) {
  if (threads < 1) detail::invalid("threads: expected an integer >= 1, got ", threads);
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
  Eigen::setNbThreads(threads);
}

int get_num_threads() { return Eigen::nbThreads(); }

bool has_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

const char* simd_instruction_sets() { return Eigen::SimdInstructionSetsInUse(); }

}  // namespace rnnbptt
