#include "arrays.hpp"
#include "bindings.hpp"
#include "rnnbptt/clip.hpp"
#include "rnnbptt/diagnostics.hpp"

namespace rnnbptt::bindings {

namespace {

// Calls f<Scalar>(array) for a float32 or float64 array, TypeError otherwise.
template <class F>
auto by_dtype(py::handle obj, const char* name, const Shape& shape, bool writeable, F&& f) {
  const std::string expected = "a C-contiguous float32 or float64 array of shape " + shape_text(shape);
  py::array a = as_array(obj, name, expected);
  if (has_dtype<float>(a)) {
    if (writeable) require_writeable<float>(a, name, shape); else require<float>(a, name, shape);
    return f(a, static_cast<float*>(nullptr));
  }
  if (has_dtype<double>(a)) {
    if (writeable) require_writeable<double>(a, name, shape); else require<double>(a, name, shape);
    return f(a, static_cast<double*>(nullptr));
  }
  throw py::type_error(std::string(name) + ": expected " + expected + ", got " + describe(a));
}

const Shape flat{{-1}, {"size"}};
const Shape square{{-1, -1}, {"h", "h"}};

void check_square(const py::array& a) {
  if (a.shape(0) != a.shape(1) || a.shape(0) == 0)
    throw py::value_error("W_hh: expected a non-empty square matrix, got " + describe(a));
}

}  // namespace

void define_clip(py::module_& m) {
  py::enum_<NonFinitePolicy>(m, "NonFinitePolicy")
      .value("raise_", NonFinitePolicy::raise)
      .value("report", NonFinitePolicy::report);
  py::class_<ClipReport>(m, "ClipReport", "What clip_grad_norm saw and did.")
      .def_readonly("norm", &ClipReport::norm, "||g|| before clipping")
      .def_readonly("scale", &ClipReport::scale, "the factor applied (1 when not clipped)")
      .def_readonly("finite", &ClipReport::finite, "False when ||g|| is NaN or infinite")
      .def("__repr__", [](const ClipReport& r) {
        return "ClipReport(norm=" + std::to_string(r.norm) + ", scale=" + std::to_string(r.scale) +
               ", finite=" + (r.finite ? "True" : "False") + ")";
      });

  m.def("global_norm", [](py::handle g) {
    return by_dtype(g, "grads", flat, false, [](py::array& a, auto* tag) {
      using S = std::remove_pointer_t<decltype(tag)>;
      const S* data = static_cast<const S*>(a.data());
      const Index size = a.size();
      py::gil_scoped_release release;
      return global_norm(data, size);
    });
  }, py::arg("grads"));
  m.def("clip_grad_norm", [](py::handle g, double max_norm, NonFinitePolicy policy) {
    return by_dtype(g, "grads", flat, true, [&](py::array& a, auto* tag) {
      using S = std::remove_pointer_t<decltype(tag)>;
      S* data = static_cast<S*>(a.mutable_data());
      const Index size = a.size();
      py::gil_scoped_release release;
      return clip_grad_norm(data, size, max_norm, policy);
    });
  }, py::arg("grads"), py::arg("max_norm"), py::arg("policy") = NonFinitePolicy::raise);
  m.def("clip_grad_value", [](py::handle g, double limit) {
    return by_dtype(g, "grads", flat, true, [&](py::array& a, auto* tag) {
      using S = std::remove_pointer_t<decltype(tag)>;
      S* data = static_cast<S*>(a.mutable_data());
      const Index size = a.size();
      py::gil_scoped_release release;
      return clip_grad_value(data, size, limit);
    });
  }, py::arg("grads"), py::arg("clip_value"));
  // Both diagnostics take a square W_hh of either dtype and return a double.
  const auto define_square = [&m](const char* name, auto compute) {
    m.def(name, [compute](py::handle W) {
      return by_dtype(W, "W_hh", square, false, [&compute](py::array& a, auto* tag) {
        using S = std::remove_pointer_t<decltype(tag)>;
        check_square(a);
        const S* data = static_cast<const S*>(a.data());
        const Index h = a.shape(0);
        py::gil_scoped_release release;
        return compute(data, h);
      });
    }, py::arg("W_hh"));
  };
  define_square("spectral_radius", [](auto* W, Index h) { return spectral_radius(W, h); });
  define_square("largest_singular_value", [](auto* W, Index h) { return largest_singular_value(W, h); });
}

}  // namespace rnnbptt::bindings
