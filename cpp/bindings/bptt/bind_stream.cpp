#include "arrays.hpp"
#include "bindings.hpp"
#include "input.hpp"
#include "rnnbptt/bptt/stream.hpp"

namespace rnnbptt::bindings {

namespace {

// The runner works on one model's parameters and gradients; it holds the Python model so that
// those buffers outlive it.
template <class Scalar>
struct PyStream {
  PyStream(py::object model_object, const Truncation& truncation)
      : model(std::move(model_object)), runner(model.template cast<PyModel<Scalar>&>().model.config(), truncation) {}
  py::object model;
  StreamRunner<Scalar> runner;
};

template <class Scalar>
void define_stream_class(py::module_& m, const char* name, const char* model_name) {
  using PS = PyStream<Scalar>;
  py::class_<PS>(m, name, "Chunk-by-chunk BPTT over a long stream with a carried state.")
      .def(py::init([model_name](py::object model, const Truncation& truncation) {
             if (!py::isinstance<PyModel<Scalar>>(model))
               throw py::type_error(std::string("model: expected a ") + model_name + ", got " + describe(model));
             return new PS(model, truncation);
           }),
           py::arg("model"), py::arg("truncation"))
      .def(
          "step",
          [](PS& s, py::handle x, py::handle targets, py::handle weights, py::handle resets) {
            PyModel<Scalar>& pm = s.model.template cast<PyModel<Scalar>&>();
            BusyGuard guard(pm.busy);
            const ModelConfig& c = pm.model.config();
            Input<Scalar> in = input_from<Scalar>(x, c.input_size);
            add_cuts(in, resets, py::none());
            TargetArrays<Scalar> y =
                targets_from<Scalar>(targets, weights, in.sequence.steps, in.sequence.batch, c.output_size);
            py::gil_scoped_release release;
            return s.runner.step(pm.model, in.sequence, y.targets);
          },
          py::arg("x"), py::arg("targets"), py::arg("weights") = py::none(), py::arg("resets") = py::none(),
          "Forward, loss and backward over the next chunk; overwrites model.grads; returns the loss.")
      .def(
          "reset",
          [](PS& s, std::int64_t position, py::handle state, py::handle history) {
            PyModel<Scalar>& pm = s.model.template cast<PyModel<Scalar>&>();
            BusyGuard guard(pm.busy);
            if (state.is_none()) {
              if (!history.is_none()) throw InvalidArgument("history: expected None without a state, got a history");
              s.runner.reset(position);
              return;
            }
            const ModelConfig& c = pm.model.config();
            const Index h = c.hidden_size;
            py::array state_array = require<Scalar>(state, "state", state_shape(c, -1));
            const Index n = state_array.shape(static_cast<py::ssize_t>(n_axis(c)));
            const Span<const Scalar> state_data = span_of<Scalar>(state_array);
            if (history.is_none()) {
              s.runner.restore(position, n, state_data, 0, {}, {});
              return;
            }
            if (!py::isinstance<py::tuple>(history))
              throw py::type_error("history: expected a tuple (inputs, states[, resets]), got " + describe(history));
            if (py::len(history) != 2 && py::len(history) != 3)
              throw py::type_error(
                  "history: expected a tuple (inputs, states[, resets]) of 2 or 3 arrays, got a tuple of " +
                  std::to_string(py::len(history)));
            const py::tuple pair = history.cast<py::tuple>();
            // A dense stream's history inputs: (k, n, d) values of the model's dtype.
            const bool dense = py::isinstance<py::array>(pair[0]) && pair[0].cast<py::array>().ndim() == 3;
            const Index d = c.input_size;
            py::array dense_inputs;
            Ids inputs;
            if (dense)
              dense_inputs =
                  require<Scalar>(pair[0], "history inputs",
                                  Shape{{-1, n, d}, {"k", "n=" + std::to_string(n), "d=" + std::to_string(d)}});
            else
              inputs = require_ids(pair[0], "history inputs", Shape{{-1, n}, {"k", "n=" + std::to_string(n)}});
            const Index k = dense ? dense_inputs.shape(0) : inputs.array.shape(0);
            // One Elman layer: its k + 1 states; a stack: history_rows (rnnbptt/bptt/stream.hpp).
            const Index rows = c.single_elman() ? k + 1 : history_rows(c, k);
            py::array states = require<Scalar>(pair[1], "history states",
                                               Shape{{rows, n, h},
                                                     {(c.single_elman() ? "k+1=" : "rows=") + std::to_string(rows),
                                                      "n=" + std::to_string(n), "h=" + std::to_string(h)}});
            // The history's reset flags, when it holds any: bool (k, n).
            py::array flags;
            Span<const std::uint8_t> resets;
            if (py::len(history) == 3) {
              flags = require<bool>(pair[2], "history resets",
                                    Shape{{k, n}, {"k=" + std::to_string(k), "n=" + std::to_string(n)}});
              resets = {static_cast<const std::uint8_t*>(flags.data()), static_cast<Index>(flags.size())};
            }
            if (k == 0) {  // an empty history: nothing to restore but the state
              s.runner.restore(position, n, state_data, 0, {}, {});
              return;
            }
            if (dense) {
              s.runner.restore_dense(position, n, state_data, k, span_of<Scalar>(dense_inputs), span_of<Scalar>(states),
                                     resets);
              return;
            }
            if (inputs.view.type == IdType::int64) {
              s.runner.restore(position, n, state_data, k, span_of<std::int64_t>(inputs.array), span_of<Scalar>(states),
                               resets);
              return;
            }
            // int32 history ids: widened (k x n ids, once per restore), as the runner keeps int64.
            std::vector<std::int64_t> ids(static_cast<std::size_t>(k * n));
            for (Index i = 0; i < k * n; ++i) ids[static_cast<std::size_t>(i)] = inputs.view[i];
            s.runner.restore(position, n, state_data, k, ids, span_of<Scalar>(states), resets);
          },
          py::arg("position") = 0, py::arg("state") = py::none(), py::arg("history") = py::none(),
          "Start a new stream at global step `position`: zero state and no history, or the carried "
          "state (the model's state_shape(n)) and history (token ids (k, n) or dense inputs (k, n, d), states "
          "(rows, n, h): k + 1 rows for one "
          "Elman layer, and the reset flags (k, n) bool when it held any) of a saved run.")
      .def_property_readonly(
          "history",
          [](PS& s) -> py::object {
            BusyGuard guard(s.model.template cast<PyModel<Scalar>&>().busy);
            const Index k = s.runner.history_steps(), n = s.runner.batch();
            const Span<const std::int64_t> tokens = s.runner.history_tokens();
            const Span<const Scalar> values = s.runner.history_dense_inputs();
            if (k == 0 || (tokens.empty() && values.empty())) return py::none();
            const Span<const Scalar> history_states = s.runner.history_states();
            const ModelConfig& c = s.model.template cast<PyModel<Scalar>&>().model.config();
            auto states = empty<Scalar>({history_rows(c, k), n, c.hidden_size});
            if (history_states.size() != static_cast<Index>(states.size()))
              throw StateError("history: expected history rows x n x h states, got another length (a bug)");
            std::copy(history_states.begin(), history_states.end(), states.mutable_data());
            py::array inputs;
            if (!values.empty()) {  // a dense stream: (k, n, d) values
              auto dense = empty<Scalar>({k, n, c.input_size});
              if (values.size() != static_cast<Index>(dense.size()))
                throw StateError("history: expected k x n x d inputs, got another length (a bug)");
              std::copy(values.begin(), values.end(), dense.mutable_data());
              inputs = dense;
            } else {
              auto ids = empty<std::int64_t>({k, n});
              if (tokens.size() != static_cast<Index>(ids.size()))
                throw StateError("history: expected k x n ids, got another length (a bug)");
              std::copy(tokens.begin(), tokens.end(), ids.mutable_data());
              inputs = ids;
            }
            const Span<const std::uint8_t> resets = s.runner.history_resets();
            if (resets.empty()) return py::make_tuple(inputs, states);
            auto flags = empty<bool>({k, n});
            std::copy(resets.begin(), resets.end(), reinterpret_cast<std::uint8_t*>(flags.mutable_data()));
            return py::make_tuple(inputs, states, flags);
          })
      .def_property_readonly("truncation", [](PS& s) { return s.runner.truncation(); })
      .def_property_readonly("position", [](PS& s) { return s.runner.position(); })
      .def_property_readonly("memory_bytes",
                             [](PS& s) {
                               BusyGuard guard(s.model.template cast<PyModel<Scalar>&>().busy);
                               return s.runner.memory_bytes();
                             })
      .def_property_readonly(
          "state",
          [](PS& s) -> py::object {
            BusyGuard guard(s.model.template cast<PyModel<Scalar>&>().busy);
            const Index n = s.runner.batch();
            const Span<const Scalar> state = s.runner.state();
            if (n == 0 || state.empty()) return py::none();
            auto out = empty<Scalar>(state_shape(s.model.template cast<PyModel<Scalar>&>().model.config(), n).sizes);
            if (state.size() != static_cast<Index>(out.size()))
              throw StateError("state: expected the state's values, got another length (a bug)");
            std::copy(state.begin(), state.end(), out.mutable_data());
            return out;
          })
      .def_property_readonly("windows", [](PS& s) {
        BusyGuard guard(s.model.template cast<PyModel<Scalar>&>().busy);
        if (!s.runner.workspace().has_schedule)
          throw StateError(
              "windows: expected a step since the runner's last reset or restore and the model's last forward, "
              "got none");
        return windows_list(s.runner.workspace().windows);
      });
}

}  // namespace

void define_stream(py::module_& m) {
  define_stream_class<float>(m, "StreamFloat32", "ModelFloat32");
  define_stream_class<double>(m, "StreamFloat64", "ModelFloat64");
}

}  // namespace rnnbptt::bindings
