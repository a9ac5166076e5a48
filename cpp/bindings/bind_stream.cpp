#include "arrays.hpp"
#include "bindings.hpp"
#include "input.hpp"
#include "rnnbptt/stream.hpp"

namespace rnnbptt::bindings {

namespace {

// The runner works on one model's parameters and gradients; it holds the Python model so that
// those buffers outlive it.
template <class Scalar>
struct PyStream {
  PyStream(py::object model_object, const Truncation& truncation)
      : model(std::move(model_object)),
        runner(model.template cast<PyModel<Scalar>&>().model.config(), truncation) {}
  py::object model;
  StreamRunner<Scalar> runner;
};

template <class Scalar>
void define_stream_class(py::module_& m, const char* name, const char* model_name) {
  using PS = PyStream<Scalar>;
  py::class_<PS>(m, name, "Chunk-by-chunk BPTT over a long stream with a carried state.")
      .def(py::init([model_name](py::object model, const Truncation& truncation) {
             if (!py::isinstance<PyModel<Scalar>>(model))
               throw py::type_error(std::string("model: expected a ") + model_name +
                                    ", got " + describe(model));
             return new PS(model, truncation);
           }),
           py::arg("model"), py::arg("truncation"))
      .def("step", [](PS& s, py::handle x, py::handle targets, py::handle weights) {
        PyModel<Scalar>& pm = s.model.template cast<PyModel<Scalar>&>();
        BusyGuard guard(pm.busy);
        const ModelConfig& c = pm.model.config();
        Input<Scalar> in = input_from<Scalar>(x, c.input_size);
        TargetArrays<Scalar> y = targets_from<Scalar>(targets, weights, in.sequence.steps,
                                                      in.sequence.batch, c.output_size);
        py::gil_scoped_release release;
        return s.runner.step(pm.model, in.sequence, y.targets);
      }, py::arg("x"), py::arg("targets"), py::arg("weights") = py::none(),
         "Forward, loss and backward over the next chunk; overwrites model.grads; returns the loss.")
      .def("reset", [](PS& s, std::int64_t position) { s.runner.reset(position); }, py::arg("position") = 0)
      .def_property_readonly("truncation", [](PS& s) { return s.runner.truncation(); })
      .def_property_readonly("position", [](PS& s) { return s.runner.position(); })
      .def_property_readonly("memory_bytes", [](PS& s) { return s.runner.memory_bytes(); })
      .def_property_readonly("state", [](PS& s) -> py::object {
        const Index n = s.runner.batch(), h = s.model.template cast<PyModel<Scalar>&>().model.config().hidden_size;
        if (n == 0) return py::none();
        auto out = empty<Scalar>({n, h});
        std::copy(s.runner.state(), s.runner.state() + n * h, out.mutable_data());
        return out;
      })
      .def_property_readonly("windows", [](PS& s) { return windows_list(s.runner.workspace().windows); });
}

}  // namespace

void define_stream(py::module_& m) {
  define_stream_class<float>(m, "StreamFloat32", "ModelFloat32");
  define_stream_class<double>(m, "StreamFloat64", "ModelFloat64");
}

}  // namespace rnnbptt::bindings
