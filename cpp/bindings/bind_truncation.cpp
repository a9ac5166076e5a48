#include <pybind11/stl.h>

#include <sstream>

#include "bindings.hpp"
#include "rnnbptt/truncation.hpp"

namespace rnnbptt::bindings {

void define_truncation(py::module_& m) {
  py::class_<Truncation> cls(m, "Truncation",
                             "A truncation strategy for backward: Full, Regular(k1, k2) or "
                             "Randomized(pi, seed). Build one with the module's factories.");
  py::enum_<Truncation::Kind>(cls, "Kind")
      .value("full", Truncation::Kind::full)
      .value("regular", Truncation::Kind::regular)
      .value("randomized", Truncation::Kind::randomized);
  cls.def_readonly("kind", &Truncation::kind)
      .def_readonly("k1", &Truncation::k1)
      .def_readonly("k2", &Truncation::k2)
      .def_readonly("keep_probability", &Truncation::keep_probability)
      .def_readonly("seed", &Truncation::seed)
      .def_property_readonly("history_steps", &Truncation::history_steps)
      .def("__repr__", [](const Truncation& t) {
        std::ostringstream out;
        switch (t.kind) {
          case Truncation::Kind::full: out << "Full()"; break;
          case Truncation::Kind::regular: out << "Regular(k1=" << t.k1 << ", k2=" << t.k2 << ")"; break;
          case Truncation::Kind::randomized:
            out << "Randomized(pi=";
            if (t.keep_probability.size() == 1) {
              out << t.keep_probability[0];
            } else {
              out << "[";
              for (std::size_t i = 0; i < t.keep_probability.size(); ++i)
                out << (i ? ", " : "") << t.keep_probability[i];
              out << "]";
            }
            out << ", seed=" << t.seed << ")";
            break;
        }
        return out.str();
      })
      .def(py::pickle(
          [](const Truncation& t) {
            return py::make_tuple(static_cast<int>(t.kind), t.k1, t.k2, t.keep_probability, t.seed);
          },
          [](const py::tuple& s) {
            Truncation t;
            t.kind = static_cast<Truncation::Kind>(s[0].cast<int>());
            t.k1 = s[1].cast<Index>();
            t.k2 = s[2].cast<Index>();
            t.keep_probability = s[3].cast<std::vector<double>>();
            t.seed = s[4].cast<std::uint64_t>();
            t.validate();
            return t;
          }));
  m.def("full", &Truncation::full, "Full BPTT: c_t = 1 everywhere.");
  m.def("regular", &Truncation::regular, py::arg("k1"), py::arg("k2") = 0,
        "Williams & Peng's TBPTT(k1, k2); k2 = 0 means k2 = k1.");
  m.def("randomized", py::overload_cast<double, std::uint64_t>(&Truncation::randomized),
        py::arg("pi"), py::arg("seed"), "Randomized truncation with constant keep probability pi.");
  m.def("randomized_schedule",
        py::overload_cast<std::vector<double>, std::uint64_t>(&Truncation::randomized),
        py::arg("schedule"), py::arg("seed"),
        "Randomized truncation with pi = schedule[min(length, len(schedule)) - 1].");
  m.def("uniform_at", &uniform_at, py::arg("seed"), py::arg("step"),
        "The counter-based uniform draw in [0, 1) used for global step `step`.");
}

}  // namespace rnnbptt::bindings
