// rnnbptt/io/text.hpp for Python: the one Vocab (rnnbptt.Vocab wraps it) and text generation
// (rnnbptt.generate calls it).
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "rnnbptt/io/text.hpp"

namespace rnnbptt::bindings {

namespace {

template <class Scalar>
void define_generate(py::module_& m) {
  m.def(
      "generate_text",
      [](PyModel<Scalar>& py_model, const Vocab& vocab, const std::string& prefix, Index length, double temperature,
         std::uint64_t seed) {
        BusyGuard busy(py_model.busy);
        py::gil_scoped_release release;
        return generate_text(py_model.model, vocab, prefix, length, GenerateOptions{temperature, seed});
      },
      py::arg("model"), py::arg("vocab"), py::arg("prefix"), py::arg("length"), py::arg("temperature") = 0.0,
      py::arg("seed") = 0);
}

}  // namespace

void define_text(py::module_& m) {
  py::class_<Vocab>(m, "Vocab", "Characters <-> token ids (rnnbptt/io/text.hpp).")
      .def(py::init<std::vector<std::string>>(), py::arg("tokens"))
      .def_static("from_text", &Vocab::from_text, py::arg("text"), py::arg("unknown") = false)
      .def_static("from_json", &Vocab::from_json, py::arg("text"))
      .def("to_json", &Vocab::to_json)
      .def_property_readonly("tokens", &Vocab::tokens)
      .def_property_readonly("unknown", &Vocab::unknown)
      .def("__len__", &Vocab::size)
      .def(
          "encode",
          [](const Vocab& vocab, const std::string& text) {
            std::vector<std::int64_t> ids;
            {
              py::gil_scoped_release release;
              ids = vocab.encode(text);
            }
            auto out = empty<std::int64_t>({static_cast<py::ssize_t>(ids.size())});
            std::copy(ids.begin(), ids.end(), out.mutable_data());
            return out;
          },
          py::arg("text"))
      .def(
          "decode",
          [](const Vocab& vocab, py::handle ids) {
            const py::array a = require<std::int64_t>(ids, "ids", Shape{{-1}, {"T"}});
            return vocab.decode(span_of<std::int64_t>(a));
          },
          py::arg("ids"))
      .def("__eq__", [](const Vocab& a, const Vocab& b) { return a == b; })
      .def(py::pickle([](const Vocab& v) { return py::make_tuple(v.tokens()); },
                      [](const py::tuple& t) { return Vocab(t[0].cast<std::vector<std::string>>()); }));
  m.def(
      "softmax",
      [](py::handle logits, double temperature) {
        const py::array a = require<double>(logits, "logits", Shape{{-1}, {"size"}});
        auto out = empty<double>({a.size()});
        softmax<double>(span_of<double>(a), temperature, mutable_span_of<double>(out));
        return out;
      },
      py::arg("logits"), py::arg("temperature"),
      "softmax(logits / temperature) in float64, as generate samples it (rnnbptt/io/inference.hpp).");
  define_generate<float>(m);
  define_generate<double>(m);
}

}  // namespace rnnbptt::bindings
