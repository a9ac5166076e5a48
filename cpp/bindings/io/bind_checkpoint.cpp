// rnnbptt/io/checkpoint.hpp for Python: the one reader and writer of checkpoint files.
// python/rnnbptt/checkpoint.py is its docstrings and the Checkpoint dataclass; every check
// and every byte of the format is here, in C++.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "arrays.hpp"
#include "bindings.hpp"
#include "rnnbptt/io/checkpoint.hpp"
#include "rnnbptt/train/optim.hpp"

namespace rnnbptt::bindings {

namespace {

// Python's messages start with "checkpoint: " (the C++ ones with the file's name).
[[noreturn]] void rethrow_for_python(const CheckpointError& error) {
  throw CheckpointError(std::string("checkpoint: ") + error.what());
}

template <class Scalar>
py::array copy_array(const Scalar* data, std::vector<py::ssize_t> shape) {
  py::array_t<Scalar> out(shape);
  std::copy(data, data + out.size(), out.mutable_data());
  return std::move(out);
}

// ---- reading -------------------------------------------------------------------------------

template <class Scalar>
py::dict to_python(Checkpoint<Scalar>&& ck) {
  py::dict out;
  auto model = std::make_unique<PyModel<Scalar>>(ck.config);
  std::copy(ck.parameters.begin(), ck.parameters.end(), model->model.parameters().begin());
  out["model"] = py::cast(std::move(model));
  out["vocab"] = ck.vocab ? py::cast(std::move(*ck.vocab)) : py::none();
  py::dict optimizer, optimizer_state;
  if (const SgdSettings* sgd = ck.sgd()) {
    optimizer["name"] = "sgd";
    optimizer["lr"] = sgd->lr;
    optimizer["weight_decay"] = sgd->weight_decay;
  }
  if (const Adam<Scalar>* adam = ck.adam()) {
    // The keys and order of Python's Adam.config().
    optimizer["name"] = "adam";
    optimizer["lr"] = adam->lr;
    optimizer["beta1"] = adam->beta1;
    optimizer["beta2"] = adam->beta2;
    optimizer["eps"] = adam->eps;
    optimizer["weight_decay"] = adam->weight_decay;
    optimizer["step_count"] = adam->step_count;
    const auto P = static_cast<py::ssize_t>(adam->m.size());
    optimizer_state["m"] = copy_array<Scalar>(adam->m.data(), {P});
    optimizer_state["v"] = copy_array<Scalar>(adam->v.data(), {P});
  }
  out["optimizer"] = optimizer;
  out["optimizer_state"] = optimizer_state;
  out["trainer"] = ck.trainer_json;
  py::dict trainer_state;
  if (ck.runner) {
    const RunnerState<Scalar>& r = *ck.runner;
    const auto n = static_cast<py::ssize_t>(r.batch);
    const auto h = static_cast<py::ssize_t>(ck.config.hidden_size);
    trainer_state["runner.state"] = copy_array<Scalar>(r.state.data(), state_shape(ck.config, n).sizes);
    if (r.has_history) {
      const auto k = static_cast<py::ssize_t>(r.history);
      trainer_state["runner.history_inputs"] =
          r.history_inputs.empty()
              ? copy_array<std::int64_t>(r.history_tokens.data(), {k, n})
              : copy_array<Scalar>(r.history_inputs.data(), {k, n, static_cast<py::ssize_t>(ck.config.input_size)});
      trainer_state["runner.history_states"] =
          copy_array<Scalar>(r.history_states.data(), {history_rows(ck.config, r.history), n, h});
    }
  }
  out["trainer_state"] = trainer_state;
  return out;
}

py::dict load(const std::string& path) {
  AnyCheckpoint ck;
  try {
    py::gil_scoped_release release;
    ck = load_any_checkpoint(path);
  } catch (const CheckpointError& error) {
    rethrow_for_python(error);
  }
  return std::visit([](auto& c) { return to_python(std::move(c)); }, ck);
}

// ---- writing -------------------------------------------------------------------------------

[[noreturn]] void cannot_save(const std::string& path, const std::string& why) {
  // The path's bytes as Python shows them (a file name that is not UTF-8 gets \xNN escapes).
  const std::string shown = py::bytes(path).attr("decode")("utf-8", "backslashreplace").cast<std::string>();
  throw CheckpointError("checkpoint: " + shown + ": cannot save: " + why);
}

// A number of the optimizer entry: a Python int or float (not a bool).
double setting(const std::string& path, const py::dict& optimizer, const char* key) {
  if (!optimizer.contains(key)) cannot_save(path, std::string("optimizer: expected a number '") + key + "', got none");
  py::object value = optimizer[key];
  if (py::isinstance<py::bool_>(value) || !(py::isinstance<py::int_>(value) || py::isinstance<py::float_>(value)))
    cannot_save(path, std::string("optimizer: expected '") + key + "' to be a number, got " +
                          py::repr(value).cast<std::string>());
  try {
    return py::float_(value).cast<double>();
  } catch (const py::error_already_set&) {  // an int beyond a double's range
    cannot_save(path, std::string("optimizer: expected '") + key + "' to be a finite number, got " +
                          py::repr(value).cast<std::string>());
  }
}

template <class Scalar>
py::array tensor(const std::string& path, const py::dict& tensors, const char* group, const char* key,
                 const Shape& shape) {
  try {
    return require<Scalar>(tensors[key], (std::string(group) + "." + key).c_str(), shape);
  } catch (const std::exception& error) {
    cannot_save(path, error.what());
  }
}

template <class Scalar>
void save(const std::string& path, PyModel<Scalar>& py_model, const py::object& vocab, const py::dict& optimizer,
          const py::dict& optimizer_state, const std::string& trainer, const py::dict& trainer_state) {
  BusyGuard busy(py_model.busy);
  Checkpoint<Scalar> ck = Checkpoint<Scalar>::from_model(py_model.model);
  if (!vocab.is_none()) ck.vocab = vocab.cast<const Vocab&>();
  const auto P = static_cast<py::ssize_t>(py_model.model.num_parameters());
  const Shape moments{{P}, {"num_parameters=" + std::to_string(P)}};
  {
    // Nothing passed is dropped silently: the keys of the optimizer entry and its arrays.
    const std::string kind = optimizer.contains("name") && py::isinstance<py::str>(optimizer["name"])
                                 ? py::str(optimizer["name"]).cast<std::string>()
                                 : std::string();
    const std::vector<std::string> known =
        kind == "adam" ? std::vector<std::string>{"name", "lr", "beta1", "beta2", "eps", "weight_decay", "step_count"}
                       : std::vector<std::string>{"name", "lr", "weight_decay"};
    for (auto item : optimizer) {
      const std::string key = py::str(item.first);
      if ((kind == "sgd" || kind == "adam") && std::find(known.begin(), known.end(), key) == known.end())
        cannot_save(path, "optimizer: unexpected key '" + key + "' (it would not be saved)");
    }
    const bool named = kind == "sgd" || kind == "adam" || optimizer.empty();  // else the name is the error
    for (auto item : optimizer_state) {
      const std::string key = py::str(item.first);
      if (named && (kind != "adam" || (key != "m" && key != "v")))
        cannot_save(path, "optimizer_state: unexpected array '" + key + "' (" +
                              (kind == "adam" ? "Adam's are 'm' and 'v'" : "only Adam has arrays") + ")");
    }
  }
  if (!optimizer.empty()) {
    const std::string name = optimizer.contains("name") ? py::str(optimizer["name"]).cast<std::string>() : "";
    if (name == "sgd") {
      ck.optimizer = SgdSettings{setting(path, optimizer, "lr"), setting(path, optimizer, "weight_decay")};
    } else if (name == "adam") {
      Adam<Scalar> adam;
      adam.lr = setting(path, optimizer, "lr");
      adam.beta1 = setting(path, optimizer, "beta1");
      adam.beta2 = setting(path, optimizer, "beta2");
      adam.eps = setting(path, optimizer, "eps");
      adam.weight_decay = setting(path, optimizer, "weight_decay");
      const py::object count = optimizer.contains("step_count") ? py::object(optimizer["step_count"]) : py::none();
      if (!py::isinstance<py::int_>(count) || py::isinstance<py::bool_>(count) || count < py::int_(0) ||
          count >= py::int_(kAdamMaxSteps))
        cannot_save(path, "optimizer: expected 'step_count' to be an integer in [0, 2**62), got " +
                              py::repr(count).cast<std::string>());
      adam.step_count = count.cast<std::int64_t>();
      for (const char* key : {"m", "v"}) {
        if (!optimizer_state.contains(key))
          cannot_save(path, std::string("optimizer_state: expected Adam's moment '") + key + "', got none");
        const py::array a = tensor<Scalar>(path, optimizer_state, "optimizer_state", key, moments);
        (std::string(key) == "m" ? adam.m : adam.v).assign(span_of<Scalar>(a).begin(), span_of<Scalar>(a).end());
      }
      ck.optimizer = std::move(adam);
    } else {
      cannot_save(path,
                  "optimizer: expected {} or 'name' \"sgd\" or \"adam\", got " +
                      py::repr(optimizer.contains("name") ? py::object(optimizer["name"]) : py::object(py::none()))
                          .cast<std::string>());
    }
  }
  ck.trainer_json = trainer;
  for (auto item : trainer_state) {
    const std::string key = py::str(item.first);
    if (key != "runner.state" && key != "runner.history_inputs" && key != "runner.history_states")
      cannot_save(path,
                  "trainer_state: expected 'runner.state', 'runner.history_inputs' and "
                  "'runner.history_states', got '" +
                      key + "'");
  }
  if (trainer_state.contains("runner.state")) {
    RunnerState<Scalar> r;
    const auto h = static_cast<py::ssize_t>(ck.config.hidden_size);
    const py::array state =
        tensor<Scalar>(path, trainer_state, "trainer_state", "runner.state", state_shape(ck.config, -1));
    r.batch = state.shape(static_cast<py::ssize_t>(n_axis(ck.config)));
    r.state.assign(span_of<Scalar>(state).begin(), span_of<Scalar>(state).end());
    const bool inputs = trainer_state.contains("runner.history_inputs");
    if (inputs != trainer_state.contains("runner.history_states"))
      cannot_save(path, "trainer_state: expected 'runner.history_inputs' and 'runner.history_states' together");
    if (inputs) {
      const auto n = static_cast<py::ssize_t>(r.batch);
      // Token ids (k, n), or a dense stream's inputs (k, n, d) of the model's dtype.
      const py::handle given = trainer_state["runner.history_inputs"];
      const bool dense = py::isinstance<py::array>(given) && given.cast<py::array>().ndim() == 3;
      const auto d = static_cast<py::ssize_t>(ck.config.input_size);
      const py::array ids =
          dense ? tensor<Scalar>(path, trainer_state, "trainer_state", "runner.history_inputs",
                                 Shape{{-1, n, d}, {"k", "n=" + std::to_string(n), "d=" + std::to_string(d)}})
                : tensor<std::int64_t>(path, trainer_state, "trainer_state", "runner.history_inputs",
                                       Shape{{-1, n}, {"k", "n=" + std::to_string(n)}});
      const py::ssize_t k = ids.shape(0);
      // One Elman layer: its k + 1 states; a stack: history_rows (rnnbptt/bptt/stream.hpp).
      const py::ssize_t rows = ck.config.single_elman() ? k + 1 : history_rows(ck.config, k);
      const py::array states = tensor<Scalar>(
          path, trainer_state, "trainer_state", "runner.history_states",
          Shape{{rows, n, h},
                {(ck.config.single_elman() ? "k+1=" : "rows=") + std::to_string(rows), "n=" + std::to_string(n), "h"}});
      r.has_history = true;
      r.history = k;
      if (dense)
        r.history_inputs.assign(span_of<Scalar>(ids).begin(), span_of<Scalar>(ids).end());
      else
        r.history_tokens.assign(span_of<std::int64_t>(ids).begin(), span_of<std::int64_t>(ids).end());
      r.history_states.assign(span_of<Scalar>(states).begin(), span_of<Scalar>(states).end());
    }
    ck.runner = std::move(r);
  } else if (trainer_state.size() > 0) {
    cannot_save(path, "trainer_state: expected 'runner.state' with the runner's history");
  }
  try {
    py::gil_scoped_release release;
    save_checkpoint(path, ck);
  } catch (const CheckpointError& error) {
    rethrow_for_python(error);
  }
}

}  // namespace

void define_checkpoint(py::module_& m) {
  py::register_local_exception<CheckpointError>(m, "CheckpointError", PyExc_ValueError);
  m.def("load_checkpoint", &load, py::arg("path"),
        "The contents of a checkpoint file as a dict (model, vocab, optimizer, optimizer_state, trainer JSON "
        "text, trainer_state); CheckpointError for any file it refuses.");
  m.def("save_checkpoint", &save<float>, py::arg("path"), py::arg("model"), py::arg("vocab"), py::arg("optimizer"),
        py::arg("optimizer_state"), py::arg("trainer"), py::arg("trainer_state"));
  m.def("save_checkpoint", &save<double>, py::arg("path"), py::arg("model"), py::arg("vocab"), py::arg("optimizer"),
        py::arg("optimizer_state"), py::arg("trainer"), py::arg("trainer_state"));
  m.attr("CHECKPOINT_FORMAT") = kCheckpointFormat;
  m.attr("CHECKPOINT_VERSION") = kCheckpointVersion;
  m.attr("MAX_JSON_DEPTH") = kMaxJsonDepth;
}

}  // namespace rnnbptt::bindings
