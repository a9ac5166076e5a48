#include <pybind11/stl.h>

#include <iterator>
#include <string>

#include "arrays.hpp"
#include "bindings.hpp"
#include "input.hpp"
#include "rnnbptt/io/checkpoint.hpp"

namespace rnnbptt::bindings {

namespace {

template <class Scalar>
py::array view_of(py::handle owner, Scalar* data, std::vector<py::ssize_t> shape) {
  // A NumPy view of C++ memory; `owner` (the Python model) keeps that memory alive.
  return py::array_t<Scalar>(shape, data, owner);
}

template <class Scalar>
py::array tensor_view(py::handle owner, Scalar* flat, const Tensor& t) {
  if (t.vector) return view_of<Scalar>(owner, flat + t.offset, {t.rows});
  return view_of<Scalar>(owner, flat + t.offset, {t.rows, t.cols});
}

template <class Scalar>
py::array copy_of(Span<const Scalar> values, std::vector<py::ssize_t> shape) {
  auto out = empty<Scalar>(shape);
  if (static_cast<Index>(out.size()) != values.size())
    throw StateError("copy: expected " + std::to_string(out.size()) + " values, got " + std::to_string(values.size()) +
                     " (a bug in the bindings)");
  std::copy(values.begin(), values.end(), out.mutable_data());
  return out;
}

template <class Scalar>
void define_model_class(py::module_& m, const char* name) {
  using PM = PyModel<Scalar>;
  py::class_<PM>(m, name, "A stack of recurrent cells with BPTT over flat parameter/gradient buffers.")
      .def(py::init([](Index input_size, Index hidden_size, Index output_size, const std::string& activation, bool bias,
                       const std::string& cell, Index num_layers) {
             ModelConfig config;
             config.cell = cell_from_string(cell);
             config.num_layers = num_layers;
             config.input_size = input_size;
             config.hidden_size = hidden_size;
             config.output_size = output_size;
             config.activation = activation_from_string(activation);
             config.bias = bias;
             config.validate();
             return new PM(config);
           }),
           py::arg("input_size"), py::arg("hidden_size"), py::arg("output_size"), py::arg("activation") = "tanh",
           py::arg("bias") = true, py::arg("cell") = "elman", py::arg("num_layers") = 1)
      .def_property_readonly("cell", [](PM& s) { return std::string(to_string(s.model.config().cell)); })
      .def_property_readonly("num_layers", [](PM& s) { return s.model.config().num_layers; })
      .def_property_readonly("parameter_names",
                             [](PM& s) {
                               py::list names;  // the layout's order; biases only when they exist
                               for (const Tensor& t : s.model.layout().tensors)
                                 if (t.size() != 0) names.append(t.name);
                               return py::tuple(names);
                             })
      .def(
          "state_shape", [](PM& s, Index n) { return py::tuple(py::cast(state_shape(s.model.config(), n).sizes)); },
          py::arg("n"))
      .def_property_readonly("input_size", [](PM& s) { return s.model.config().input_size; })
      .def_property_readonly("hidden_size", [](PM& s) { return s.model.config().hidden_size; })
      .def_property_readonly("output_size", [](PM& s) { return s.model.config().output_size; })
      .def_property_readonly("activation", [](PM& s) { return std::string(to_string(s.model.config().activation)); })
      .def_property_readonly("bias", [](PM& s) { return s.model.config().bias; })
      .def_property_readonly(
          "config_json",
          [](PM& s) {
            return to_json(s.model.config(), std::is_same_v<Scalar, float> ? ScalarType::float32 : ScalarType::float64);
          })
      .def_property_readonly("forwards", [](PM& s) { return s.forwards; })
      .def_property_readonly("num_parameters", [](PM& s) { return s.model.num_parameters(); })
      .def_property_readonly("params",
                             [](py::object self) {
                               PM& s = self.cast<PM&>();
                               return view_of<Scalar>(self, s.model.parameters().data(), {s.model.num_parameters()});
                             })
      .def_property_readonly("grads",
                             [](py::object self) {
                               PM& s = self.cast<PM&>();
                               return view_of<Scalar>(self, s.model.gradients().data(), {s.model.num_parameters()});
                             })
      .def(
          "param",
          [](py::object self, const std::string& name) {
            PM& s = self.cast<PM&>();
            return tensor_view<Scalar>(self, s.model.parameters().data(), s.model.layout().find(name));
          },
          py::arg("name"))
      .def(
          "grad",
          [](py::object self, const std::string& name) {
            PM& s = self.cast<PM&>();
            return tensor_view<Scalar>(self, s.model.gradients().data(), s.model.layout().find(name));
          },
          py::arg("name"))
      .def(
          "init_uniform",
          [](PM& s, double bound, std::uint64_t seed) {
            BusyGuard guard(s.busy);
            s.model.init_uniform(bound, seed);
          },
          py::arg("bound"), py::arg("seed"))
      .def(
          "init_normal",
          [](PM& s, double init_std, std::uint64_t seed) {
            BusyGuard guard(s.busy);
            s.model.init_normal(init_std, seed);
          },
          py::arg("init_std"), py::arg("seed"))
      .def(
          "forward",
          [](PM& s, py::handle x, py::handle h0, bool return_states, py::handle resets,
             py::handle lengths) -> py::tuple {
            BusyGuard guard(s.busy);
            const ModelConfig& c = s.model.config();
            Input<Scalar> in = input_from<Scalar>(x, c.input_size);
            add_cuts(in, resets, lengths);
            const Index n = in.sequence.batch, h = c.hidden_size;
            const Shape state = state_shape(c, n);
            run_forward(s, in, h0);
            const Index T = in.sequence.steps;
            py::tuple out = py::make_tuple(copy_of<Scalar>(s.model.outputs(), {T, n, c.output_size}),
                                           copy_of<Scalar>(s.model.final_state(), state.sizes));
            if (!return_states) return out;
            return py::make_tuple(out[0], out[1], copy_of<Scalar>(s.model.states(), {T, n, h}));  // h_1 .. h_T
          },
          py::arg("x"), py::arg("h0") = py::none(), py::arg("return_states") = false, py::arg("resets") = py::none(),
          py::arg("lengths") = py::none())
      .def(
          "loss",
          [](PM& s, py::handle targets, py::handle weights) {
            BusyGuard guard(s.busy);
            if (s.input.is_none() || !s.model.workspace().has_forward)
              throw StateError("loss: expected a forward pass first, got none");
            check_forward_thread(s.forward_thread);
            const Index T = s.model.steps(), n = s.model.batch(), q = s.model.config().output_size;
            TargetArrays<Scalar> y = targets_from<Scalar>(targets, weights, T, n, q);
            py::gil_scoped_release release;
            return s.model.loss(y.targets);
          },
          py::arg("targets"), py::arg("weights") = py::none())
      .def(
          "set_output_gradient",
          [](PM& s, py::handle d_outputs) {
            BusyGuard guard(s.busy);
            if (s.input.is_none() || !s.model.workspace().has_forward)
              throw StateError("d_outputs: expected a forward pass first, got none");
            check_forward_thread(s.forward_thread);
            const Index T = s.model.steps(), n = s.model.batch(), q = s.model.config().output_size;
            py::array g = require<Scalar>(
                d_outputs, "d_outputs",
                Shape{{T, n, q}, {"T=" + std::to_string(T), "n=" + std::to_string(n), "q=" + std::to_string(q)}});
            py::gil_scoped_release release;
            s.model.set_output_gradient(span_of<Scalar>(g));
          },
          py::arg("d_outputs"))
      .def(
          "backward",
          [](PM& s, py::handle dh_T, const Truncation& truncation, std::int64_t step_offset, bool record_dh_norms,
             bool want_dx) {
            BusyGuard guard(s.busy);
            if (s.input.is_none() || !s.model.workspace().has_forward)
              throw StateError("backward: expected a forward pass first, got none");
            check_forward_thread(s.forward_thread);
            const ModelConfig& c = s.model.config();
            const Index T = s.model.steps(), n = s.model.batch();
            const Shape state = state_shape(c, n);
            BackwardOptions<Scalar> options;
            options.truncation = &truncation;
            options.step_offset = step_offset;
            options.record_dh_norms = record_dh_norms;
            py::array dh_T_array;
            if (!dh_T.is_none()) {
              dh_T_array = require<Scalar>(dh_T, "dh_T", state);
              options.dh_T = span_of<Scalar>(dh_T_array);
            }
            py::array dh0 = empty<Scalar>(state.sizes);
            options.dh0 = mutable_span_of<Scalar>(dh0);
            py::object dx = py::none();
            if (want_dx) {
              if (s.model.workspace().input.is_tokens())
                throw InvalidArgument(
                    "dx: expected dense input, got token ids (there is no "
                    "gradient with respect to an id)");
              py::array dx_array = empty<Scalar>({T, n, c.input_size});
              options.dx = mutable_span_of<Scalar>(dx_array);
              dx = dx_array;
            }
            {
              py::gil_scoped_release release;
              s.model.backward(options);
            }
            return py::make_tuple(dh0, dx);
          },
          py::arg("dh_T") = py::none(), py::arg("truncation") = Truncation::full(), py::arg("step_offset") = 0,
          py::arg("record_dh_norms") = false, py::arg("dx") = false)
      .def_property_readonly("flow",
                             [](PM& s) {
                               BusyGuard guard(s.busy);
                               const auto& ws = s.model.workspace();
                               if (!ws.has_schedule)
                                 throw StateError("flow: expected a backward pass after the last forward, got none");
                               return copy_of<Scalar>(Span<const Scalar>(ws.flow.data(), ws.steps), {ws.steps});
                             })
      .def_property_readonly("windows",
                             [](PM& s) {
                               BusyGuard guard(s.busy);
                               if (!s.model.workspace().has_schedule)
                                 throw StateError("windows: expected a backward pass after the last forward, got none");
                               return windows_list(s.model.workspace().windows);
                             })
      .def_property_readonly("dh_norms", [](PM& s) -> py::object {
        BusyGuard guard(s.busy);
        const auto& ws = s.model.workspace();
        if (!ws.has_dh_norms)
          throw StateError("dh_norms: expected a backward pass with record_dh_norms=True, got none");
        return copy_of<Scalar>(Span<const Scalar>(ws.dh_norms.data(), ws.steps), {ws.steps});
      });
}

}  // namespace

void define_model(py::module_& m) {
  py::tuple activations(std::size(kActivations));
  for (std::size_t i = 0; i < std::size(kActivations); ++i) activations[i] = to_string(kActivations[i]);
  m.attr("ACTIVATIONS") = activations;  // the one list of names (rnnbptt/core/config.hpp)
  py::tuple cells(std::size(kCells));
  for (std::size_t i = 0; i < std::size(kCells); ++i) cells[i] = to_string(kCells[i]);
  m.attr("CELLS") = cells;
  define_model_class<float>(m, "ModelFloat32");
  define_model_class<double>(m, "ModelFloat64");
}

}  // namespace rnnbptt::bindings
