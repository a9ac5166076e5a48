#include <stdexcept>

#include "bindings.hpp"
#include "rnnbptt/error.hpp"
#include "rnnbptt/version.hpp"

namespace rnnbptt::bindings {

BusyGuard::BusyGuard(std::mutex& m) : lock_(m, std::try_to_lock) {
  if (!lock_.owns_lock())
    throw std::runtime_error("model: expected exclusive use, got a call while another thread "
                             "is using this model (use one model per thread)");
}

}  // namespace rnnbptt::bindings

PYBIND11_MODULE(_core, m) {
  namespace rb = rnnbptt::bindings;
  m.doc() = "rnnbptt's compiled core: Elman RNN forward pass and BPTT in C++/Eigen.";
  m.attr("__version__") = RNNBPTT_VERSION_STRING;
  pybind11::register_exception<rnnbptt::NonFiniteError>(m, "NonFiniteError",
                                                        PyExc_FloatingPointError);
  rb::define_truncation(m);
  rb::define_model(m);
  rb::define_stream(m);
  rb::define_clip(m);
  rb::define_optim(m);
  rb::define_system(m);
}
