#include "arrays.hpp"

namespace rnnbptt::bindings {

template <>
const char* dtype_name<float>() {
  return "float32";
}
template <>
const char* dtype_name<double>() {
  return "float64";
}
template <>
const char* dtype_name<std::int64_t>() {
  return "int64";
}
template <>
const char* dtype_name<bool>() {
  return "bool";
}

std::string describe(py::handle obj) {
  if (!py::isinstance<py::array>(obj))
    return std::string("an object of type ") + py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
  auto a = py::reinterpret_borrow<py::array>(obj);
  std::string text = py::str(a.dtype()).cast<std::string>() + " array of shape (";
  for (py::ssize_t i = 0; i < a.ndim(); ++i)
    text += (i ? ", " : "") + std::to_string(a.shape(i)) + (a.ndim() == 1 ? "," : "");
  text += ")";
  if (!(a.flags() & py::array::c_style)) text += ", not C-contiguous";
  return text;
}

std::string shape_text(const Shape& shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.names.size(); ++i)
    text += (i ? ", " : "") + shape.names[i] + (shape.names.size() == 1 ? "," : "");
  return text + ")";
}

Shape state_shape(const ModelConfig& c, Index n) {
  const std::string nn = n < 0 ? "n" : "n=" + std::to_string(n), hh = "h=" + std::to_string(c.hidden_size),
                    ll = "L=" + std::to_string(c.num_layers);
  if (c.cell == Cell::lstm) return Shape{{2, c.num_layers, n, c.hidden_size}, {"2", ll, nn, hh}};
  if (!c.single_elman()) return Shape{{c.num_layers, n, c.hidden_size}, {ll, nn, hh}};
  return Shape{{n, c.hidden_size}, {nn, hh}};
}

py::array as_array(py::handle obj, const char* name, const std::string& expected) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected " + expected + ", got " + describe(obj));
  return py::reinterpret_borrow<py::array>(obj);
}

void check_layout(const py::array& a, const char* name, const std::string& dtype, const Shape& shape) {
  const std::string expected = std::string("a C-contiguous ") + dtype + " array of shape " + shape_text(shape);
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.sizes.size());
  for (py::ssize_t i = 0; ok && i < a.ndim(); ++i) ok = shape.sizes[i] < 0 || a.shape(i) == shape.sizes[i];
  if (!ok) throw InvalidArgument(std::string(name) + ": expected " + expected + ", got " + describe(a));
  if (!(a.flags() & py::array::c_style))
    throw InvalidArgument(std::string(name) + ": expected " + expected + ", got " + describe(a) +
                          " (pass np.ascontiguousarray(...) to copy it explicitly)");
}

bool is_id_array(const py::array& a) { return has_dtype<std::int32_t>(a) || has_dtype<std::int64_t>(a); }

Ids require_ids(py::handle obj, const char* name, const Shape& shape) {
  const std::string expected = "a C-contiguous int32 or int64 array of shape " + shape_text(shape);
  py::array a = as_array(obj, name, expected);
  if (!is_id_array(a)) throw py::type_error(std::string(name) + ": expected " + expected + ", got " + describe(a));
  check_layout(a, name, "int32 or int64", shape);
  const IdType type = has_dtype<std::int32_t>(a) ? IdType::int32 : IdType::int64;
  return Ids{a, IdView(a.data(), type, static_cast<Index>(a.size()))};
}

}  // namespace rnnbptt::bindings
