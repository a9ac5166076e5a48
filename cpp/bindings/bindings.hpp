// One define_* function per area; module.cpp calls them all to build rnnbptt._core.
#pragma once

#include <pybind11/pybind11.h>

#include <mutex>
#include <string>
#include <vector>

#include "rnnbptt/rnn.hpp"

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
};

// Held for a whole call; a second thread gets a clear error instead of a data race.
class BusyGuard {
 public:
  explicit BusyGuard(std::mutex& m);
  ~BusyGuard() { lock_.unlock(); }

 private:
  std::unique_lock<std::mutex> lock_;
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
void define_optim(py::module_& m);
void define_system(py::module_& m);

}  // namespace rnnbptt::bindings
