#include <pybind11/stl.h>

#include <functional>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "rnnbptt/bptt/truncation.hpp"

namespace rnnbptt::bindings {

namespace {

std::string python_repr(const Truncation& t) {
  switch (t.kind()) {
    case Truncation::Kind::full:
      return "Full()";
    case Truncation::Kind::regular:
      return "Regular(" + std::to_string(t.k1()) + ", " + std::to_string(t.k2()) + ")";
    case Truncation::Kind::randomized: {
      const auto& pi = t.keep_probability();
      const py::object value = pi.size() == 1 ? py::cast(pi[0]) : py::cast(pi);
      return "Randomized(" + std::string(py::repr(value)) + ", seed=" + std::to_string(t.seed()) + ")";
    }
  }
  return {};
}

}  // namespace

py::list windows_list(const std::vector<Window>& windows) {
  py::list out;
  for (const Window& w : windows) out.append(py::make_tuple(w.first, w.begin, w.end));
  return out;
}

void define_truncation(py::module_& m) {
  py::class_<Truncation> cls(m, "Truncation",
                             "A truncation strategy: Full(), Regular(k1, k2) or Randomized(pi, seed). "
                             "Immutable; validated when built.");
  py::enum_<Truncation::Kind>(cls, "Kind")
      .value("full", Truncation::Kind::full)
      .value("regular", Truncation::Kind::regular)
      .value("randomized", Truncation::Kind::randomized);
  cls.def_static("full", &Truncation::full)
      .def_static("regular", py::overload_cast<Index, Index>(&Truncation::regular), py::arg("k1"), py::arg("k2"))
      .def_static("randomized", py::overload_cast<std::vector<double>, std::uint64_t>(&Truncation::randomized),
                  py::arg("pi"), py::arg("seed"))
      .def_static(
          "parse",
          [](py::handle spec) {
            // std::string would also take bytes and bytearray; the string form is text.
            if (!PyUnicode_Check(spec.ptr())) throw py::type_error("spec: expected a str, got " + describe(spec));
            return Truncation::parse(spec.cast<std::string>());
          },
          py::arg("spec"),
          "From the string form: 'full', 'regular:K', 'regular:K1,K2' or "
          "'randomized:PI[,PI...][,seed=S]'. Truncation.parse(str(t)) == t.")
      .def_property_readonly("kind", &Truncation::kind)
      .def_property_readonly("k1", &Truncation::k1)
      .def_property_readonly("k2", &Truncation::k2)
      .def_property_readonly("keep_probability", &Truncation::keep_probability)
      .def_property_readonly("seed", &Truncation::seed)
      .def(
          "check_chunk",
          [](const Truncation& t, Index steps, const std::string& argument) { t.check_chunk(steps, argument.c_str()); },
          py::arg("steps"), py::arg("argument"))
      .def(
          "schedule",
          [](const Truncation& t, Index steps, std::int64_t step_offset, Index context) {
            if (steps < 1)
              throw InvalidArgument("steps: expected a positive number of steps, got " + std::to_string(steps));
            py::array flow = empty<double>({steps});
            std::vector<Window> windows;
            const Index lanes = t.schedule(step_offset, steps, context, mutable_span_of<double>(flow), windows);
            return py::make_tuple(flow, windows_list(windows), lanes);
          },
          py::arg("steps"), py::arg("step_offset") = 0, py::arg("context") = 0)
      .def("__str__", &Truncation::to_string)
      .def("__repr__", &python_repr)
      .def("__eq__",
           [](const Truncation& a, const py::object& b) {
             return py::isinstance<Truncation>(b) && a == b.cast<const Truncation&>();
           })
      .def("__hash__", [](const Truncation& t) { return std::hash<std::string>()(t.to_string()); })
      .def(py::pickle([](const Truncation& t) { return t.to_string(); },
                      [](const std::string& spec) { return Truncation::parse(spec); }));
  m.def("uniform_at", &uniform_at, py::arg("seed"), py::arg("step"),
        "The counter-based uniform draw in [0, 1) used for global step `step`.");
}

}  // namespace rnnbptt::bindings
