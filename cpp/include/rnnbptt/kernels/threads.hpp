/// @file threads.hpp
/// @brief Thread control for the core, and what the build was compiled for.
///
/// Every call of the library may use several threads of its own: its OpenMP loops and its own
/// tiled products (Eigen runs single-threaded inside each tile, EIGEN_DONT_PARALLELIZE).
/// set_num_threads sets how many, for the whole process: every later call of every object
/// (Model, StreamRunner, Predictor, clipping, optimizers) on any thread reads it when it
/// starts; a call already running keeps its count. The default is OpenMP's (OMP_NUM_THREADS,
/// else all cores). Results do not depend on the thread count: the same bits for 1 or 64.
///
/// Thread safety of the library as a whole: one Model, StreamRunner, Predictor or Adam per
/// thread (an object is never synchronized; two threads calling one object at once is a data
/// race), while different objects may run on different threads at the same time, each with
/// its own team of set_num_threads() threads. The functions here are safe to call from any
/// thread; set_num_threads while other threads start calls gives each call either count.
#pragma once
#include "rnnbptt/core/export.hpp"

namespace rnnbptt {

/// threads >= 1 (InvalidArgument naming `threads` otherwise).
RNNBPTT_EXPORT void set_num_threads(int threads);
/// The count the next call will use (1 without OpenMP).
RNNBPTT_EXPORT int get_num_threads();
/// Whether this build runs OpenMP loops.
RNNBPTT_EXPORT bool has_openmp();
/// The SIMD instruction sets this build was compiled for, e.g. "AVX512F AVX2 FMA SSE2".
RNNBPTT_EXPORT const char* simd_instruction_sets();

}  // namespace rnnbptt
