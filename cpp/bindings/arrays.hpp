// Strict NumPy argument checks for the bindings: an array is used in place when its dtype,
// layout and shape match, and otherwise rejected with a message that names the argument,
// what was expected and what was received. Nothing is ever converted or copied.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "bindings.hpp"
#include "rnnbptt/core/sequence.hpp"
#include "rnnbptt/core/span.hpp"

namespace rnnbptt::bindings {

namespace py = pybind11;

// A shape with -1 for "any size"; names say what each axis is, e.g. {"T", "n", "d=28"}.
struct Shape {
  std::vector<py::ssize_t> sizes;
  std::vector<std::string> names;
};

std::string describe(py::handle obj);        // "float64 array of shape (3, 2), not C-contiguous"
std::string shape_text(const Shape& shape);  // "(T, n, d=28)"

// The shape of a whole state of n sequences (ModelConfig::state_size): (n, h) for one Elman
// layer, (L, n, h) for stacks and the GRU, (2, L, n, h) for the LSTM (every h, then every c).
// n = -1: any n (named "n"); n_axis(config) is its axis.
Shape state_shape(const ModelConfig& config, Index n);
inline std::size_t n_axis(const ModelConfig& config) {
  return config.single_elman() ? 0 : config.cell == Cell::lstm ? 2 : 1;
}

template <class T>
const char* dtype_name();

template <class T>
bool has_dtype(const py::array& a) {
  return py::array_t<T>::check_(a);
}

// For a real array of another dtype (NumPy's default float64 into a float32 model, say): how to
// convert it explicitly, since nothing is converted here. Empty otherwise.
template <class T>
std::string conversion_hint(const py::array& a, const char* name) {
  if (!std::is_floating_point_v<T> || a.dtype().kind() != 'f') return "";
  return std::string(" (convert it explicitly with ") + name + ".astype(np." + dtype_name<T>() + "), which copies)";
}

// obj must be an ndarray; TypeError otherwise.
py::array as_array(py::handle obj, const char* name, const std::string& expected);

// Checks C-contiguity and shape (ValueError) of an array whose dtype was already checked.
void check_layout(const py::array& a, const char* name, const std::string& dtype, const Shape& shape);

// The whole check for one dtype: TypeError on a wrong type or dtype, ValueError on layout/shape.
template <class T>
py::array require(py::handle obj, const char* name, const Shape& shape) {
  const std::string expected =
      std::string("a C-contiguous ") + dtype_name<T>() + " array of shape " + shape_text(shape);
  py::array a = as_array(obj, name, expected);
  if (!has_dtype<T>(a))
    throw py::type_error(std::string(name) + ": expected " + expected + ", got " + describe(a) +
                         conversion_hint<T>(a, name));
  check_layout(a, name, dtype_name<T>(), shape);
  return a;
}

template <class T>
py::array require_writeable(py::handle obj, const char* name, const Shape& shape) {
  py::array a = require<T>(obj, name, shape);
  if (!a.writeable()) throw InvalidArgument(std::string(name) + ": expected a writeable array, got a read-only one");
  return a;
}

// Integer ids (int32 or int64, native byte order), C-contiguous, of the given shape.
struct Ids {
  py::array array;
  IdView view;
};
bool is_id_array(const py::array& a);
Ids require_ids(py::handle obj, const char* name, const Shape& shape);

// The whole of a checked array as a Span (its exact length: the core checks it against the
// shapes it expects).
template <class T>
Span<const T> span_of(const py::array& a) {
  return {static_cast<const T*>(a.data()), static_cast<Index>(a.size())};
}
template <class T>
Span<T> mutable_span_of(py::array& a) {
  return {static_cast<T*>(a.mutable_data()), static_cast<Index>(a.size())};
}

// A fresh C-contiguous array the caller fills (outputs are never views of scratch memory).
template <class T>
py::array_t<T> empty(std::vector<py::ssize_t> shape) {
  return py::array_t<T>(shape);
}

// The one dtype dispatch of the bindings: functions over flat buffers accept either dtype
// and call f(array, (Scalar*)nullptr) for a float32 or float64 array (TypeError otherwise),
// holding the lock of the model whose buffer the array views (BufferGuard);
// classes are bound once per dtype (ModelFloat32, ...) and rnnbptt._dtypes picks the class.
template <class F>
auto by_dtype(py::handle obj, const char* name, const Shape& shape, bool writeable, F&& f) {
  const std::string expected = "a C-contiguous float32 or float64 array of shape " + shape_text(shape);
  py::array a = as_array(obj, name, expected);
  // A view of a model's buffer (model.grads, model.params, model.W_hh) is used under that
  // model's lock: never during another thread's forward/backward on it.
  BufferGuard guard(a);
  if (has_dtype<float>(a)) {
    if (writeable)
      require_writeable<float>(a, name, shape);
    else
      require<float>(a, name, shape);
    return f(a, static_cast<float*>(nullptr));
  }
  if (has_dtype<double>(a)) {
    if (writeable)
      require_writeable<double>(a, name, shape);
    else
      require<double>(a, name, shape);
    return f(a, static_cast<double*>(nullptr));
  }
  throw py::type_error(std::string(name) + ": expected " + expected + ", got " + describe(a));
}

}  // namespace rnnbptt::bindings
