// Thread control for the core: its OpenMP loops and its own tiled products (Eigen runs
// single-threaded inside each tile, EIGEN_DONT_PARALLELIZE). The default is OpenMP's
// (OMP_NUM_THREADS). Results do not depend on the thread count.
#pragma once

namespace rnnbptt {

void set_num_threads(int threads);  // threads >= 1
int get_num_threads();
bool has_openmp();
// The SIMD instruction sets this build was compiled for, e.g. "AVX512F AVX2 FMA SSE2".
const char* simd_instruction_sets();

}  // namespace rnnbptt
