#include "arrays.hpp"
#include "bindings.hpp"
#include "rnnbptt/train/clip.hpp"

namespace rnnbptt::bindings {

namespace {

const Shape flat{{-1}, {"size"}};
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

  m.def(
      "global_norm",
      [](py::handle g) {
        return by_dtype(g, "grads", flat, false, [](py::array& a, auto* tag) {
          using S = std::remove_pointer_t<decltype(tag)>;
          const Span<const S> data = span_of<S>(a);
          py::gil_scoped_release release;
          return global_norm<S>(data);
        });
      },
      py::arg("grads"));
  m.def(
      "clip_grad_norm",
      [](py::handle g, double max_norm, NonFinitePolicy policy) {
        return by_dtype(g, "grads", flat, true, [&](py::array& a, auto* tag) {
          using S = std::remove_pointer_t<decltype(tag)>;
          const Span<S> data = mutable_span_of<S>(a);
          py::gil_scoped_release release;
          return clip_grad_norm<S>(data, max_norm, policy);
        });
      },
      py::arg("grads"), py::arg("max_norm"), py::arg("policy") = NonFinitePolicy::raise);
  m.def(
      "clip_grad_value",
      [](py::handle g, double limit) {
        return by_dtype(g, "grads", flat, true, [&](py::array& a, auto* tag) {
          using S = std::remove_pointer_t<decltype(tag)>;
          const Span<S> data = mutable_span_of<S>(a);
          py::gil_scoped_release release;
          return clip_grad_value<S>(data, limit);
        });
      },
      py::arg("grads"), py::arg("clip_value"));
}

}  // namespace rnnbptt::bindings
