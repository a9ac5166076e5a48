#include <pybind11/stl.h>

#include <cstdint>
#include <string>

#include "arrays.hpp"
#include "bindings.hpp"
#include "input.hpp"
#include "rnnbptt/train/bias.hpp"

namespace rnnbptt::bindings {

namespace {

std::string measure_repr(const BiasMeasure& m) {
  return "relative=" + std::to_string(m.relative) + ", cosine=" + std::to_string(m.cosine) +
         ", standard_error=" + std::to_string(m.standard_error);
}

template <class Scalar>
void define_bias_for(py::module_& m) {
  m.def(
      "truncation_bias",
      [](PyModel<Scalar>& s, py::handle x, py::handle targets, const Truncation& truncation, py::handle weights,
         py::handle h0, Index draws, std::int64_t step_offset, py::handle resets, py::handle lengths) {
        BusyGuard guard(s.busy);
        const ModelConfig& c = s.model.config();
        truncation_bias_draws(truncation, draws);  // refused before the model changes
        if (step_offset < 0)
          throw InvalidArgument("step_offset: expected a global step index >= 0, got " + std::to_string(step_offset));
        Input<Scalar> in = input_from<Scalar>(x, c.input_size);
        add_cuts(in, resets, lengths);
        const Index T = in.sequence.steps, n = in.sequence.batch;
        TargetArrays<Scalar> y = targets_from<Scalar>(targets, weights, T, n, c.output_size);
        BiasOptions<Scalar> options;
        options.draws = draws;
        options.step_offset = step_offset;
        // The model holds this forward, as after Model.forward, whatever the loss and the
        // backward passes do next.
        run_forward(s, in, h0);
        py::gil_scoped_release release;
        return truncation_bias(s.model, y.targets, truncation, options);
      },
      py::arg("model"), py::arg("x"), py::arg("targets"), py::arg("truncation"), py::arg("weights") = py::none(),
      py::arg("h0") = py::none(), py::arg("draws") = 0, py::arg("step_offset") = 0, py::arg("resets") = py::none(),
      py::arg("lengths") = py::none());
}

}  // namespace

void define_bias(py::module_& m) {
  m.attr("DEFAULT_BIAS_DRAWS") = kDefaultBiasDraws;
  py::class_<BiasMeasure>(m, "BiasMeasure",
                          "The truncated gradient (the mean of its draws) against the Full gradient over some "
                          "parameters.")
      .def_readonly("full_norm", &BiasMeasure::full_norm)
      .def_readonly("mean_norm", &BiasMeasure::mean_norm)
      .def_readonly("difference_norm", &BiasMeasure::difference_norm)
      .def_readonly("relative", &BiasMeasure::relative)
      .def_readonly("cosine", &BiasMeasure::cosine)
      .def_readonly("standard_error", &BiasMeasure::standard_error)
      .def("__repr__", [](const BiasMeasure& b) { return "BiasMeasure(" + measure_repr(b) + ")"; });
  py::class_<ParameterBias>(m, "ParameterBias", "One tensor's BiasMeasure.")
      .def_readonly("name", &ParameterBias::name)
      .def_readonly("measure", &ParameterBias::measure)
      .def("__repr__",
           [](const ParameterBias& p) { return "ParameterBias(" + p.name + ": " + measure_repr(p.measure) + ")"; });
  py::class_<TruncationBias>(m, "TruncationBias", "What truncation_bias measured.")
      .def_readonly("truncation", &TruncationBias::truncation)
      .def_readonly("draws", &TruncationBias::draws)
      .def_readonly("loss", &TruncationBias::loss)
      .def_readonly("total", &TruncationBias::total)
      .def_readonly("draw_relative_mean", &TruncationBias::draw_relative_mean)
      .def_readonly("draw_relative_variance", &TruncationBias::draw_relative_variance)
      .def_readonly("parameters", &TruncationBias::parameters)
      .def("__repr__", [](const TruncationBias& b) {
        return "TruncationBias(" + b.truncation + ", draws=" + std::to_string(b.draws) + ": " + measure_repr(b.total) +
               ")";
      });
  define_bias_for<float>(m);
  define_bias_for<double>(m);
}

}  // namespace rnnbptt::bindings
