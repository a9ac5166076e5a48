// The rnnbptt layer of reading: every entry and tensor checked against the config, then the
// conversion into a Checkpoint (format.hpp).
#include "io/checkpoint/format.hpp"

#include <algorithm>

#include <cmath>
#include <limits>
#include <optional>

#include "io/python_json.hpp"
#include "rnnbptt/bptt/stream.hpp"
#include "rnnbptt/core/params.hpp"

namespace rnnbptt::checkpoint_format {

namespace {

const std::string& metadata_entry(std::string_view name, const Container& c, const char* key) {
  const auto found = c.metadata.find(key);
  if (found == c.metadata.end()) fail(name, "inconsistent contents: no '", key, "' entry in its metadata");
  return found->second;
}

Index json_size(std::string_view name, const json& object, const char* key, const char* entry, Index minimum) {
  const auto found = object.find(key);
  if (found == object.end()) fail(name, entry, ": expected an integer '", key, "', got none");
  if (!found->is_number_integer() ||
      (found->is_number_unsigned() && found->get<std::uint64_t>() > static_cast<std::uint64_t>(PTRDIFF_MAX)) ||
      (!found->is_number_unsigned() && found->get<std::int64_t>() < minimum) ||
      (found->is_number_unsigned() && found->get<std::uint64_t>() < static_cast<std::uint64_t>(minimum)))
    fail(name, entry, ": expected '", key, "' to be an integer >= ", minimum, ", got ", found->dump());
  return static_cast<Index>(found->is_number_unsigned() ? static_cast<std::int64_t>(found->get<std::uint64_t>())
                                                        : found->get<std::int64_t>());
}

double json_number(std::string_view name, const json& object, const char* key, const char* entry) {
  const auto found = object.find(key);
  if (found == object.end()) fail(name, entry, ": expected a number '", key, "', got none");
  if (!found->is_number()) fail(name, entry, ": expected '", key, "' to be a number, got ", found->dump());
  return found->get<double>();
}

// Takes the tensor `key` out of `tensors` after checking its shape and dtype.
TensorRef take_tensor(std::string_view name, std::map<std::string, TensorRef>& tensors, const std::string& key,
                      const std::vector<std::uint64_t>& shape, DType dtype) {
  const auto found = tensors.find(key);
  if (found == tensors.end())
    fail(name, "lacks tensor '", key, "' (expected shape ", shape_text(shape), ", dtype ", numpy_name(dtype), ")");
  if (found->second.dtype != dtype || found->second.shape != shape)
    fail(name, "tensor '", key, "' in the file: expected shape ", shape_text(shape), " and dtype ", numpy_name(dtype),
         ", got shape ", shape_text(found->second.shape), " and dtype ", numpy_name(found->second.dtype));
  TensorRef out = std::move(found->second);
  tensors.erase(found);
  return out;
}

ModelConfig parse_config(std::string_view name, const json& c, ScalarType& dtype, int version,
                         std::size_t tensor_count) {
  ModelConfig config;
  config.input_size = json_size(name, c, "input_size", "config", 1);
  config.hidden_size = json_size(name, c, "hidden_size", "config", 1);
  config.output_size = json_size(name, c, "output_size", "config", 1);
  const auto activation = c.find("activation");
  if (activation == c.end() || !activation->is_string())
    fail(name, "config: expected 'activation' to be ", activation_choices('"'), ", got ",
         activation == c.end() ? std::string("none") : activation->dump());
  try {
    config.activation = activation_from_string(activation->get<std::string>());
  } catch (const Error&) {
    fail(name, "config: expected 'activation' to be ", activation_choices('"'), ", got ", activation->dump());
  }
  const auto bias = c.find("bias");
  if (bias == c.end() || !bias->is_boolean())
    fail(name, "config: expected 'bias' to be true or false, got ",
         bias == c.end() ? std::string("none") : bias->dump());
  config.bias = bias->get<bool>();
  // Format version 3 names the cell and the layers; earlier files hold one Elman layer.
  const auto cell = c.find("cell");
  if (version >= 3) {
    // Strict: a key this version does not know (a setting of another rnnbptt) is not ignored.
    for (const auto& entry : c.items()) {
      static const char* const known[] = {"input_size", "hidden_size", "output_size", "activation",
                                          "bias",       "dtype",       "cell",        "num_layers"};
      if (std::find(std::begin(known), std::end(known), entry.key()) == std::end(known))
        fail(name,
             "config: expected the keys of format version 3 (input_size, hidden_size, output_size, activation, "
             "bias, dtype, cell, num_layers), got also '",
             entry.key(), "'");
    }
    if (cell == c.end() || !cell->is_string())
      fail(name, "config: expected 'cell' to be ", cell_choices('"'), ", got ",
           cell == c.end() ? std::string("none") : cell->dump());
    try {
      config.cell = cell_from_string(cell->get<std::string>());
    } catch (const Error&) {
      fail(name, "config: expected 'cell' to be ", cell_choices('"'), ", got ", cell->dump());
    }
    config.num_layers = json_size(name, c, "num_layers", "config", 1);
    // Each layer is at least two tensors of the file: more layers than that cannot be in it
    // (and are not worth allocating a layout for).
    if (config.num_layers > static_cast<Index>(tensor_count / 2))
      fail(name, "config: expected 'num_layers' to be at most the ", tensor_count / 2,
           " layers the file's tensors can hold, got ", config.num_layers);
  } else if (cell != c.end() || c.find("num_layers") != c.end()) {
    fail(name, "config: expected no 'cell' or 'num_layers' in format version ", version, " (one Elman layer), got ",
         c.dump());
  }
  const auto type = c.find("dtype");
  if (type != c.end() && type->is_string() && type->get<std::string>() == "float32") {
    dtype = ScalarType::float32;
  } else if (type != c.end() && type->is_string() && type->get<std::string>() == "float64") {
    dtype = ScalarType::float64;
  } else {
    fail(name, "config: expected 'dtype' to be \"float32\" or \"float64\", got ",
         type == c.end() ? std::string("none") : type->dump());
  }
  try {
    config.validate();
  } catch (const Error& error) {
    fail(name, "config: ", error.what());
  }
  return config;
}

// history_rows for the k steps a file's history inputs hold, refused when it overflows.
std::uint64_t stored_history_rows(std::string_view name, const ModelConfig& config, std::uint64_t k) {
  try {
    return static_cast<std::uint64_t>(history_rows(config, static_cast<Index>(k)));
  } catch (const SizeError&) {
    fail(name,
         "tensor 'trainer.runner.history_inputs' in the file: expected at most the steps a history can hold, got ", k);
  }
}

template <class Scalar>
void check_runner_tensors(const Validated& v, std::string_view name) {
  RunnerState<Scalar> r;
  r.batch = v.runner_batch;
  r.has_history = v.has_history;
  r.history = v.history;
  read_values<Scalar>(v.tensors.at("trainer.runner.state").data,
                      static_cast<std::size_t>(v.tensors.at("trainer.runner.state").count), r.state);
  if (v.has_history) {
    const TensorRef& ids = v.tensors.at("trainer.runner.history_inputs");
    const TensorRef& states = v.tensors.at("trainer.runner.history_states");
    if (v.dense_history)
      read_values<Scalar>(ids.data, static_cast<std::size_t>(ids.count), r.history_inputs);
    else
      read_values<std::int64_t>(ids.data, static_cast<std::size_t>(ids.count), r.history_tokens);
    read_values<Scalar>(states.data, static_cast<std::size_t>(states.count), r.history_states);
  }
  check_runner(r, v.config, name);
}

}  // namespace

// What StreamRunner::restore will require of a runner state, checked here so that a forged file
// is refused when it is loaded (naming the file), not at the first step of the resumed run.
template <class Scalar>
void check_runner(const RunnerState<Scalar>& r, const ModelConfig& config, std::string_view name) {
  const auto finite = [](const Buffer<Scalar>& values) {
    return std::all_of(values.begin(), values.end(), [](Scalar x) { return std::isfinite(x); });
  };
  if (!finite(r.state)) fail(name, "tensor 'trainer.runner.state' in the file: expected finite values, got NaN or inf");
  if (!r.has_history) return;
  if (!finite(r.history_inputs))
    fail(name, "tensor 'trainer.runner.history_inputs' in the file: expected finite values, got NaN or inf");
  for (std::size_t i = 0; i < r.history_tokens.size(); ++i) {
    const std::int64_t id = r.history_tokens[i];
    if (id < 0 || id >= config.input_size)
      fail(name, "tensor 'trainer.runner.history_inputs' in the file: expected token ids in [0, ", config.input_size,
           "), got ", id, " at [", static_cast<Index>(i) / r.batch, ", ", static_cast<Index>(i) % r.batch, "]");
  }
  if (!finite(r.history_states))
    fail(name, "tensor 'trainer.runner.history_states' in the file: expected finite values, got NaN or inf");
  if (!history_matches_state<Scalar>(config, r.history, r.batch, {r.state.data(), static_cast<Index>(r.state.size())},
                                     {r.history_states.data(), static_cast<Index>(r.history_states.size())}))
    fail(name, "tensor 'trainer.runner.history_states' in the file: expected ",
         config.single_elman() ? "its last row" : "the rows of every layer's carried state",
         " to equal 'trainer.runner.state' (the carried state), got ", config.single_elman() ? "another" : "others");
}

template void check_runner<float>(const RunnerState<float>&, const ModelConfig&, std::string_view);
template void check_runner<double>(const RunnerState<double>&, const ModelConfig&, std::string_view);

Validated validate(Span<const std::uint8_t> bytes, std::string_view name) {
  Container c = parse_container(bytes, name);
  const auto format = c.metadata.find("format");
  if (format == c.metadata.end() || format->second != kFormat)
    fail(name, "not an rnnbptt checkpoint: expected format 'rnnbptt-checkpoint', got ",
         format == c.metadata.end() ? std::string("no format entry") : shown_string(format->second));
  const auto version = c.metadata.find("format_version");
  if (version == c.metadata.end() || (version->second != "1" && version->second != "2" && version->second != "3"))
    fail(name, "expected format version 1, 2 or 3 in the file, got ",
         version == c.metadata.end() ? std::string("none")
         : !version->second.empty() && version->second.size() < 10 &&
                 version->second.find_first_not_of("0123456789") == std::string::npos
             ? version->second
             : shown_string(version->second),
         " (written by another version of rnnbptt)");
  const bool v1 = version->second == "1";
  const auto stored = c.metadata.find("sha256");
  const std::string digest = v1 ? digest_v1(c.tensors) : digest_v2(c.metadata, c.tensors);
  if (stored == c.metadata.end() || stored->second != digest)
    fail_is(name, "is corrupt (", v1 ? "its tensors fail" : "its header or tensors fail", " the SHA-256 check",
            stored == c.metadata.end() ? "; it has no sha256 entry" : "", ")");

  Validated out;
  const json config = parse_object(name, "config", metadata_entry(name, c, "config"));
  out.config = parse_config(name, config, out.dtype, std::stoi(version->second), c.tensors.size());
  const DType scalar = out.dtype == ScalarType::float32 ? DType::f32 : DType::f64;

  const ParameterLayout layout(out.config);
  for (const Tensor& t : layout.tensors) {
    if (t.size() == 0) continue;  // a bias that is switched off
    std::vector<std::uint64_t> shape{static_cast<std::uint64_t>(t.rows)};
    if (!t.vector) shape.push_back(static_cast<std::uint64_t>(t.cols));
    out.tensors[t.name] = take_tensor(name, c.tensors, t.name, shape, scalar);
  }

  const auto vocab = c.metadata.find("vocab");
  if (vocab != c.metadata.end()) {
    try {
      out.vocab = Vocab::from_json(vocab->second);
    } catch (const Error& error) {
      fail(name, "the 'vocab' entry of the file: ", error.what());
    }
  }

  const json optimizer = parse_object(name, "optimizer", metadata_entry(name, c, "optimizer"));
  const auto optimizer_name = optimizer.find("name");
  if (optimizer_name == optimizer.end()) {
    if (!optimizer.empty())
      fail(name, "optimizer: expected {} or an object with a \"name\" (\"sgd\" or \"adam\"), got one without");
  } else if (*optimizer_name == "sgd") {
    SgdSettings sgd;
    sgd.lr = json_number(name, optimizer, "lr", "optimizer");
    sgd.weight_decay = json_number(name, optimizer, "weight_decay", "optimizer");
    if (!(std::isfinite(sgd.lr) && sgd.lr > 0)) fail(name, "optimizer: expected 'lr' finite > 0, got ", sgd.lr);
    if (!(std::isfinite(sgd.weight_decay) && sgd.weight_decay >= 0))
      fail(name, "optimizer: expected 'weight_decay' finite >= 0, got ", sgd.weight_decay);
    out.optimizer = sgd;
  } else if (*optimizer_name == "adam") {
    AdamSettings adam;
    adam.lr = json_number(name, optimizer, "lr", "optimizer");
    adam.beta1 = json_number(name, optimizer, "beta1", "optimizer");
    adam.beta2 = json_number(name, optimizer, "beta2", "optimizer");
    adam.eps = json_number(name, optimizer, "eps", "optimizer");
    adam.weight_decay = json_number(name, optimizer, "weight_decay", "optimizer");
    adam.step_count = json_size(name, optimizer, "step_count", "optimizer", 0);
    try {
      adam.validate();
    } catch (const Error& error) {
      fail(name, "optimizer: ", error.what());
    }
    out.optimizer = adam;
    const std::vector<std::uint64_t> shape{static_cast<std::uint64_t>(layout.total)};
    out.tensors["optimizer.m"] = take_tensor(name, c.tensors, "optimizer.m", shape, scalar);
    out.tensors["optimizer.v"] = take_tensor(name, c.tensors, "optimizer.v", shape, scalar);
  } else {
    fail(name, "optimizer: expected \"name\" to be \"sgd\" or \"adam\", got ", optimizer_name->dump());
  }

  out.trainer_json = metadata_entry(name, c, "trainer");
  const json trainer = parse_object(name, "trainer", out.trainer_json);
  const bool has_state = c.tensors.count("trainer.runner.state") > 0;
  const bool has_inputs = c.tensors.count("trainer.runner.history_inputs") > 0;
  const bool has_states = c.tensors.count("trainer.runner.history_states") > 0;
  if (!has_state && (has_inputs || has_states))
    fail(name, "has '", has_inputs ? "trainer.runner.history_inputs" : "trainer.runner.history_states",
         "' without 'trainer.runner.state'");
  if (has_state) {
    const Index n = json_size(name, trainer, "batch_size", "trainer (with a runner state)", 1);
    const auto h = static_cast<std::uint64_t>(out.config.hidden_size);
    const auto un = static_cast<std::uint64_t>(n);
    out.runner_batch = n;
    out.tensors["trainer.runner.state"] =
        take_tensor(name, c.tensors, "trainer.runner.state", state_dims(out.config, n), scalar);
    if (has_inputs || has_states) {
      out.has_history = true;
      std::uint64_t k = 0;
      const auto inputs = c.tensors.find("trainer.runner.history_inputs");
      // Token ids (k, n) int64, or a dense stream's inputs (k, n, d) in the model's dtype.
      const bool dense = inputs != c.tensors.end() && inputs->second.shape.size() == 3;
      if (inputs != c.tensors.end() && (inputs->second.shape.size() == 2 || dense)) k = inputs->second.shape[0];
      if (k > static_cast<std::uint64_t>(PTRDIFF_MAX) - 1) k = 0;  // refused by the shape check below
      const auto d = static_cast<std::uint64_t>(out.config.input_size);
      out.dense_history = dense;
      out.tensors["trainer.runner.history_inputs"] =
          dense ? take_tensor(name, c.tensors, "trainer.runner.history_inputs", {k, un, d}, scalar)
                : take_tensor(name, c.tensors, "trainer.runner.history_inputs", {k, un}, DType::i64);
      out.tensors["trainer.runner.history_states"] = take_tensor(
          name, c.tensors, "trainer.runner.history_states", {stored_history_rows(name, out.config, k), un, h}, scalar);
      out.history = static_cast<Index>(k);
    }
  }
  if (out.runner_batch > 0) {
    if (out.dtype == ScalarType::float32)
      check_runner_tensors<float>(out, name);
    else
      check_runner_tensors<double>(out, name);
  }
  if (!c.tensors.empty()) {
    std::string names;
    for (const auto& entry : c.tensors) {
      // 'name' as Python's repr shows a plain name; JSON's quoting for anything else.
      const std::string& key = entry.first;
      const bool plain = std::all_of(key.begin(), key.end(), [](char ch) {
        return static_cast<unsigned char>(ch) >= 0x20 && ch != '\'' && ch != '\\' && ch != 0x7f;
      });
      names += (names.empty() ? "" : ", ") + (plain ? "'" + key + "'" : shown_string(key));
    }
    fail(name, "holds unexpected tensors [", names, "]");
  }
  return out;
}
template <class Scalar>
Checkpoint<Scalar> to_checkpoint(Validated&& v, std::string_view name) {
  if (v.dtype != scalar_type<Scalar>())
    fail(name, "holds a ", to_string(v.dtype), " model, asked to load it as ", to_string(scalar_type<Scalar>()),
         " (checkpoint_dtype() tells which to load)");
  try {
    Checkpoint<Scalar> out;
    out.config = v.config;
    const ParameterLayout layout(v.config);
    out.parameters.resize(static_cast<std::size_t>(layout.total));
    for (const Tensor& t : layout.tensors) {
      if (t.size() == 0) continue;
      Buffer<Scalar> values;
      convert<Scalar>(v.tensors.at(t.name), values);
      std::copy(values.begin(), values.end(), out.parameters.begin() + t.offset);
    }
    out.vocab = std::move(v.vocab);
    if (const auto* sgd = std::get_if<SgdSettings>(&v.optimizer)) out.optimizer = *sgd;
    if (const auto* settings = std::get_if<AdamSettings>(&v.optimizer)) {
      Adam<Scalar> adam;
      static_cast<AdamSettings&>(adam) = *settings;  // the settings, copied once
      convert<Scalar>(v.tensors.at("optimizer.m"), adam.m);
      convert<Scalar>(v.tensors.at("optimizer.v"), adam.v);
      out.optimizer = std::move(adam);
    }
    out.trainer_json = std::move(v.trainer_json);
    if (v.runner_batch > 0) {
      RunnerState<Scalar> runner;
      runner.batch = v.runner_batch;
      convert<Scalar>(v.tensors.at("trainer.runner.state"), runner.state);
      runner.has_history = v.has_history;
      runner.history = v.history;
      if (v.has_history) {
        if (v.dense_history)
          convert<Scalar>(v.tensors.at("trainer.runner.history_inputs"), runner.history_inputs);
        else
          convert<std::int64_t>(v.tensors.at("trainer.runner.history_inputs"), runner.history_tokens);
        convert<Scalar>(v.tensors.at("trainer.runner.history_states"), runner.history_states);
      }
      out.runner = std::move(runner);
    }
    return out;
  } catch (const std::bad_alloc&) {
    fail(name, "cannot allocate memory for its tensors");
  }
}

template Checkpoint<float> to_checkpoint<float>(Validated&&, std::string_view);
template Checkpoint<double> to_checkpoint<double>(Validated&&, std::string_view);

}  // namespace rnnbptt::checkpoint_format

namespace rnnbptt {

using namespace checkpoint_format;

const char* to_string(ScalarType type) { return type == ScalarType::float32 ? "float32" : "float64"; }

template <class Scalar>
Checkpoint<Scalar> Checkpoint<Scalar>::from_model(const Model<Scalar>& model) {
  Checkpoint out;
  out.config = model.config();
  const Span<const Scalar> values = model.parameters();
  try {
    out.parameters.assign(values.begin(), values.end());
  } catch (const std::bad_alloc&) {
    throw AllocationError(detail::concat("Checkpoint::from_model: cannot allocate ",
                                         values.size() * Index(sizeof(Scalar)), " bytes for the parameters"));
  }
  return out;
}

template <class Scalar>
Model<Scalar> Checkpoint<Scalar>::model() const {
  Model<Scalar> out(config);
  out.set_parameters(Span<const Scalar>(parameters.data(), static_cast<Index>(parameters.size())));
  return out;
}

template <class Scalar>
Checkpoint<Scalar> parse_checkpoint(Span<const std::uint8_t> bytes, std::string_view name) {
  return guarded(name, [&] { return to_checkpoint<Scalar>(validate(bytes, name), name); });
}

ScalarType checkpoint_dtype(Span<const std::uint8_t> bytes, std::string_view name) {
  return guarded(name, [&] { return validate(bytes, name).dtype; });
}

template struct Checkpoint<float>;
template struct Checkpoint<double>;
template RNNBPTT_EXPORT Checkpoint<float> parse_checkpoint<float>(Span<const std::uint8_t>, std::string_view);
template RNNBPTT_EXPORT Checkpoint<double> parse_checkpoint<double>(Span<const std::uint8_t>, std::string_view);

}  // namespace rnnbptt
