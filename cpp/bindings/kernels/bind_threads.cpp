#include "bindings.hpp"
#include "rnnbptt/kernels/threads.hpp"

namespace rnnbptt::bindings {

void define_system(py::module_& m) {
  m.def("set_num_threads", &set_num_threads, py::arg("threads"),
        "Threads for the core's OpenMP loops and its own tiled products (Eigen runs single-threaded inside them); "
        "default: OMP_NUM_THREADS or all cores.");
  m.def("get_num_threads", &get_num_threads);
  m.def("has_openmp", &has_openmp);
  m.def("simd_instruction_sets", &simd_instruction_sets,
        "The SIMD instruction sets this build of the core was compiled for.");
}

}  // namespace rnnbptt::bindings
