#include <cstdlib>
#include <string>

#include <pybind11/numpy.h>

#include "bindings.hpp"
#include "rnnbptt/core/error.hpp"
#include "rnnbptt/version.hpp"

namespace rnnbptt::bindings {

namespace {

const char* const busy_message =
    "model: expected exclusive use, got a call while another thread is using this model "
    "(use one model per thread)";

// The locks this thread holds through BufferGuards (at most a few: params and grads).
constexpr int max_held = 8;
thread_local std::mutex* held[max_held] = {};
thread_local int held_count = 0;

// The lock of the model whose memory `obj` views, or nullptr.
std::mutex* model_lock(py::handle obj) {
  py::object current = py::reinterpret_borrow<py::object>(obj);
  for (int depth = 0; depth < 64 && current && !current.is_none(); ++depth) {
    if (py::isinstance<PyModel<float>>(current)) return &current.cast<PyModel<float>&>().busy;
    if (py::isinstance<PyModel<double>>(current)) return &current.cast<PyModel<double>&>().busy;
    if (py::isinstance<py::array>(current)) {
      current = current.attr("base");
    } else if (PyMemoryView_Check(current.ptr())) {
      current = current.attr("obj");
    } else {
      return nullptr;
    }
  }
  return nullptr;
}

// The module's NonFiniteError class (set once, when the module is built).
PyObject* non_finite_error = nullptr;

// By value: pybind11's exception translators are void(*)(std::exception_ptr).
void translate(std::exception_ptr error) {  // NOLINT(performance-unnecessary-value-param)
  try {
    if (error) std::rethrow_exception(error);
  } catch (const ConcurrentUseError& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (const NonFiniteError& e) {
    PyErr_SetString(non_finite_error != nullptr ? non_finite_error : PyExc_FloatingPointError, e.what());
  } catch (const AllocationError& e) {
    PyErr_SetString(PyExc_MemoryError, e.what());
  } catch (const Error& e) {  // InvalidArgument, SizeError, StateError, CheckpointError
    PyErr_SetString(PyExc_ValueError, e.what());
  }
}

}  // namespace

void register_translators(py::handle non_finite) {
  non_finite_error = non_finite.ptr();
  py::register_local_exception_translator(&translate);
}

BusyGuard::BusyGuard(std::mutex& m) : lock_(m, std::try_to_lock) {
  if (!lock_.owns_lock()) throw ConcurrentUseError(busy_message);
}

BufferGuard::BufferGuard(py::handle array) {
  std::mutex* m = model_lock(array);
  if (m == nullptr) return;
  for (int i = 0; i < held_count; ++i)
    if (held[i] == m) return;  // this thread already holds it for this call
  if (held_count == max_held) throw ConcurrentUseError("model: too many buffers guarded at once");
  if (!m->try_lock()) throw ConcurrentUseError(busy_message);
  held[held_count++] = m;
  mutex_ = m;
}

BufferGuard::~BufferGuard() {
  if (mutex_ == nullptr) return;
  for (int i = 0; i < held_count; ++i)
    if (held[i] == mutex_) {
      held[i] = held[--held_count];
      break;
    }
  mutex_->unlock();
}

void check_forward_thread(const std::thread::id& forward_thread) {
  if (forward_thread != std::this_thread::get_id())
    throw ConcurrentUseError(
        "model: expected the thread that ran forward, got another thread "
        "(use one model per thread)");
}

#ifdef RNNBPTT_DISPATCH
std::string choose_isa() {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  const char* forced = std::getenv("RNNBPTT_ISA");
  if (forced != nullptr && *forced != '\0') {
    std::string choice = forced;
    if (choice != "baseline" && choice != "avx2" && choice != "avx512")
      throw pybind11::import_error("RNNBPTT_ISA: expected 'baseline', 'avx2' or 'avx512', got '" + choice + "'");
    if ((choice == "avx2" && !avx2) || (choice == "avx512" && !avx512))
      throw pybind11::import_error("RNNBPTT_ISA: expected an instruction set this CPU supports, got '" + choice + "'");
    return choice;
  }
  return avx512 ? "avx512" : avx2 ? "avx2" : "baseline";
}
#endif

}  // namespace rnnbptt::bindings

#ifndef RNNBPTT_MODULE
#define RNNBPTT_MODULE _core
#define RNNBPTT_ISA "baseline"
#endif

PYBIND11_MODULE(RNNBPTT_MODULE, m) {
  namespace rb = rnnbptt::bindings;
#ifdef RNNBPTT_DISPATCH
  // The baseline module picks the best variant this CPU runs and re-exports its contents.
  const std::string isa = rb::choose_isa();
  if (isa != RNNBPTT_ISA) {
    pybind11::module_ variant = pybind11::module_::import(("rnnbptt._core_" + isa).c_str());
    for (auto item : variant.attr("__dict__").cast<pybind11::dict>()) {
      const std::string name = pybind11::str(item.first);
      if (name.rfind("__", 0) == 0 && name != "__version__" && name != "__doc__") continue;
      m.attr(item.first) = item.second;
    }
    return;
  }
#endif
  m.doc() = "rnnbptt's compiled core: Elman RNN forward pass and BPTT in C++/Eigen.";
  m.attr("__version__") = RNNBPTT_VERSION_STRING;
  m.attr("isa") = RNNBPTT_ISA;
  // The Python class of NonFiniteError (a FloatingPointError), then the translation of the
  // whole hierarchy (rnnbptt/core/error.hpp) for this module's functions.
  auto& non_finite =
      pybind11::register_local_exception<rnnbptt::NonFiniteError>(m, "NonFiniteError", PyExc_FloatingPointError);
  rb::register_translators(non_finite);
  rb::define_truncation(m);
  rb::define_model(m);
  rb::define_stream(m);
  rb::define_clip(m);
  rb::define_diagnostics(m);
  rb::define_bias(m);
  rb::define_optim(m);
  rb::define_system(m);
  rb::define_data(m);
  rb::define_text(m);
  rb::define_checkpoint(m);
}
