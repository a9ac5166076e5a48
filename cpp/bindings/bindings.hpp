// One define_* function per area; module.cpp calls them all to build rnnbptt._core.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "rnnbptt/bptt/model.hpp"
#include "rnnbptt/core/error.hpp"

namespace rnnbptt::bindings {

namespace py = pybind11;

// A Model plus what Python needs around it: the input array of the last forward (kept alive,
// not copied, for backward) and a lock so that two Python threads cannot race on one model
// while the GIL is released.
template <class Scalar>
struct PyModel {
  explicit PyModel(const ModelConfig& config) : model(config) {}
  Model<Scalar> model;
  py::object input;
  std::mutex busy;
  // The thread of the last forward: loss, set_output_gradient and backward must run on it
  // (another thread's forward would otherwise interleave with them unnoticed).
  std::thread::id forward_thread;
  // Forward passes run so far: a caller holding results of one forward (rnnbptt.torch) can
  // tell whether the model still holds that forward for backward.
  std::uint64_t forwards = 0;
};

// An object used from two threads at once, or loss/backward from another thread than the
// forward's: a StateError of the library's hierarchy that Python sees as RuntimeError, as it
// always has (other StateErrors, call-order mistakes, are ValueError).
class ConcurrentUseError : public StateError {
 public:
  using StateError::StateError;
};

// Translates rnnbptt::Error and its subclasses into Python exceptions for this module:
// InvalidArgument, SizeError, StateError, CheckpointError -> ValueError; ConcurrentUseError ->
// RuntimeError; AllocationError -> MemoryError; NonFiniteError -> `non_finite` (the module's
// NonFiniteError, a FloatingPointError).
void register_translators(py::handle non_finite);

// Throws ConcurrentUseError (RuntimeError) unless the calling thread ran the model's last forward.
void check_forward_thread(const std::thread::id& forward_thread);

// Held for a whole call; a second thread gets a clear error (ConcurrentUseError) instead of a
// data race.
class BusyGuard {
 public:
  explicit BusyGuard(std::mutex& m);
  ~BusyGuard() { lock_.unlock(); }

 private:
  std::unique_lock<std::mutex> lock_;
};

// Holds the BusyGuard of the model whose buffer `array` views (found by walking array.base up
// to a ModelFloat32/ModelFloat64 instance), so that clipping or an optimizer step on
// model.grads / model.params is refused, with BusyGuard's error, while another thread runs
// that model, and the reverse. Does nothing for other arrays. Re-entrant within one thread:
// a call that guards params and grads of one model takes its lock once.
class BufferGuard {
 public:
  explicit BufferGuard(py::handle array);
  ~BufferGuard();
  BufferGuard(const BufferGuard&) = delete;
  BufferGuard& operator=(const BufferGuard&) = delete;

 private:
  std::mutex* mutex_ = nullptr;  // locked by this guard, or nullptr
};

// A schedule's windows as Python tuples (first, begin, end).
py::list windows_list(const std::vector<Window>& windows);

// The instruction set to load: RNNBPTT_ISA if set (and supported), else the best this CPU runs.
std::string choose_isa();

void define_model(py::module_& m);
void define_truncation(py::module_& m);
void define_stream(py::module_& m);
void define_clip(py::module_& m);
void define_diagnostics(py::module_& m);
void define_bias(py::module_& m);
void define_optim(py::module_& m);
void define_system(py::module_& m);
void define_text(py::module_& m);
void define_checkpoint(py::module_& m);
void define_data(py::module_& m);

}  // namespace rnnbptt::bindings
