// Writing: the bytes Python's checkpoint.save writes, in format version 3 (format.hpp).
#include "io/checkpoint/format.hpp"

#include <cmath>

#include "io/python_json.hpp"
#include "rnnbptt/core/params.hpp"

namespace rnnbptt::checkpoint_format {

namespace {

struct OutTensor {
  DType dtype;
  std::vector<std::uint64_t> shape;
  const void* values;  // host-order values
  std::uint64_t count;
};

}  // namespace

template <class Scalar>
std::vector<std::uint8_t> serialize(const Checkpoint<Scalar>& ckpt, std::string_view name) {
  try {
    ckpt.config.validate();
  } catch (const Error& error) {
    cannot_save(name, "config: ", error.what());
  }
  const ParameterLayout layout(ckpt.config);
  const Index P = layout.total;
  if (static_cast<Index>(ckpt.parameters.size()) != P)
    cannot_save(name, "parameters: expected ", P, " values (the layout of the config), got ", ckpt.parameters.size());
  const DType scalar = std::is_same_v<Scalar, float> ? DType::f32 : DType::f64;
  const auto h = static_cast<std::uint64_t>(ckpt.config.hidden_size);

  std::map<std::string, OutTensor> tensors;
  for (const Tensor& t : layout.tensors) {
    if (t.size() == 0) continue;
    std::vector<std::uint64_t> shape{static_cast<std::uint64_t>(t.rows)};
    if (!t.vector) shape.push_back(static_cast<std::uint64_t>(t.cols));
    tensors[t.name] = {scalar, shape, ckpt.parameters.data() + t.offset, static_cast<std::uint64_t>(t.size())};
  }

  std::string optimizer = "{}";
  if (const SgdSettings* sgd = ckpt.sgd()) {
    const SgdSettings& s = *sgd;
    if (!(std::isfinite(s.lr) && s.lr > 0)) cannot_save(name, "sgd.lr: expected a finite value > 0, got ", s.lr);
    if (!(std::isfinite(s.weight_decay) && s.weight_decay >= 0))
      cannot_save(name, "sgd.weight_decay: expected a finite value >= 0, got ", s.weight_decay);
    optimizer = "{\"name\": \"sgd\", \"lr\": " + python_float(s.lr) +
                ", \"weight_decay\": " + python_float(s.weight_decay) + "}";
  }
  if (const Adam<Scalar>* adam = ckpt.adam()) {
    const Adam<Scalar>& a = *adam;
    try {
      a.validate();
    } catch (const Error& error) {
      cannot_save(name, "adam: ", error.what());
    }
    if (static_cast<Index>(a.m.size()) != P || static_cast<Index>(a.v.size()) != P)
      cannot_save(name, "adam: expected moments m and v of ", P, " values (the parameters), got ", a.m.size(), " and ",
                  a.v.size());
    optimizer = "{\"name\": \"adam\", \"lr\": " + python_float(a.lr) + ", \"beta1\": " + python_float(a.beta1) +
                ", \"beta2\": " + python_float(a.beta2) + ", \"eps\": " + python_float(a.eps) +
                ", \"weight_decay\": " + python_float(a.weight_decay) +
                ", \"step_count\": " + std::to_string(a.step_count) + "}";
    tensors["optimizer.m"] = {scalar, {static_cast<std::uint64_t>(P)}, a.m.data(), static_cast<std::uint64_t>(P)};
    tensors["optimizer.v"] = {scalar, {static_cast<std::uint64_t>(P)}, a.v.data(), static_cast<std::uint64_t>(P)};
  }

  if (const int depth = detail::json_depth(ckpt.trainer_json); depth > kMaxJsonDepth)
    cannot_save(name, "trainer_json: expected JSON nested at most ", kMaxJsonDepth, " deep, got ", depth);
  json trainer;
  try {
    trainer = json::parse(without_python_constants(ckpt.trainer_json));
  } catch (const json::exception& error) {
    cannot_save(name, "trainer_json: expected a JSON object, got text that does not parse (", error.what(), ")");
  }
  if (!trainer.is_object()) cannot_save(name, "trainer_json: expected a JSON object, got a JSON ", trainer.type_name());
  if (ckpt.runner) {
    const RunnerState<Scalar>& r = *ckpt.runner;
    if (r.batch < 1) cannot_save(name, "runner.batch: expected a batch size >= 1, got ", r.batch);
    const auto batch = trainer.find("batch_size");
    if (batch == trainer.end() || !batch->is_number_integer() || *batch != r.batch)
      cannot_save(name, "trainer_json: expected \"batch_size\": ", r.batch,
                  " (the runner's batch, which Python checks), got ",
                  batch == trainer.end() ? std::string("none") : batch->dump());
    Index state_size = 0, token_count = 0, states_size = 0, dense_count = 0;
    const bool dense = !r.history_inputs.empty();
    try {
      state_size = detail::checked_size(
          "runner.state", "the state of batch sequences",
          {ckpt.config.state_parts(), ckpt.config.num_layers, r.batch, ckpt.config.hidden_size}, sizeof(Scalar));
      if (r.has_history) {
        if (r.history < 0) cannot_save(name, "runner.history: expected a number of steps >= 0, got ", r.history);
        token_count = detail::checked_size("runner.history_tokens", "history x batch", {r.history, r.batch}, 8);
        dense_count = detail::checked_size("runner.history_inputs", "history x batch x d",
                                           {r.history, r.batch, ckpt.config.input_size}, sizeof(Scalar));
        states_size = detail::checked_size("runner.history_states", "history rows x batch x h",
                                           {history_rows(ckpt.config, r.history), r.batch, ckpt.config.hidden_size},
                                           sizeof(Scalar));
      }
    } catch (const SizeError& error) {
      cannot_save(name, error.what());
    }
    if (static_cast<Index>(r.state.size()) != state_size)
      cannot_save(name, "runner.state: expected ", state_size, " values (the state of batch = ", r.batch,
                  " sequences of h = ", h, "), got ", r.state.size());
    const auto n = static_cast<std::uint64_t>(r.batch);
    tensors["trainer.runner.state"] = {scalar, state_dims(ckpt.config, r.batch), r.state.data(),
                                       static_cast<std::uint64_t>(state_size)};
    if (r.has_history) {
      if (dense && !r.history_tokens.empty())
        cannot_save(name, "runner.history_tokens: expected no ids with dense history inputs, got ",
                    r.history_tokens.size());
      if (dense && static_cast<Index>(r.history_inputs.size()) != dense_count)
        cannot_save(name, "runner.history_inputs: expected ", dense_count, " values (history x batch x d = ", r.history,
                    " x ", r.batch, " x ", ckpt.config.input_size, "), got ", r.history_inputs.size());
      if (!dense && static_cast<Index>(r.history_tokens.size()) != token_count)
        cannot_save(name, "runner.history_tokens: expected ", token_count, " ids (history x batch = ", r.history, " x ",
                    r.batch, "), got ", r.history_tokens.size());
      if (static_cast<Index>(r.history_states.size()) != states_size)
        cannot_save(name, "runner.history_states: expected ", states_size,
                    " values (history rows x batch x h = ", history_rows(ckpt.config, r.history), " x ", r.batch, " x ",
                    h, "), got ", r.history_states.size());
      const auto k = static_cast<std::uint64_t>(r.history);
      if (dense)
        tensors["trainer.runner.history_inputs"] = {scalar,
                                                    {k, n, static_cast<std::uint64_t>(ckpt.config.input_size)},
                                                    r.history_inputs.data(),
                                                    static_cast<std::uint64_t>(dense_count)};
      else
        tensors["trainer.runner.history_inputs"] = {
            DType::i64, {k, n}, r.history_tokens.data(), static_cast<std::uint64_t>(token_count)};
      tensors["trainer.runner.history_states"] = {
          scalar,
          {static_cast<std::uint64_t>(history_rows(ckpt.config, r.history)), n, h},
          r.history_states.data(),
          static_cast<std::uint64_t>(states_size)};
    } else if (r.history != 0 || !r.history_tokens.empty() || !r.history_inputs.empty() || !r.history_states.empty()) {
      cannot_save(name, "runner: history given but has_history is false");
    }
    try {  // what load would refuse is never written
      check_runner(r, ckpt.config, "");
    } catch (const CheckpointError& error) {
      cannot_save(name, "runner: ", std::string(error.what()).substr(2));  // without the empty name's ": "
    }
  } else {
    // Python's load reads no runner tensors then, and nothing here writes any.
  }

  std::map<std::string, std::string> metadata;
  metadata["format"] = kFormat;
  metadata["format_version"] = kFormatVersion;
  metadata["config"] = config_json(ckpt.config, scalar_type<Scalar>());
  metadata["optimizer"] = optimizer;
  metadata["trainer"] = ckpt.trainer_json;
  if (ckpt.vocab) metadata["vocab"] = ckpt.vocab->to_json();

  try {
    // The data section, tensors in name order; then the digest over the written bytes.
    std::vector<std::uint8_t> data;
    std::map<std::string, TensorRef> refs;
    for (const auto& [key, t] : tensors) {
      TensorRef ref;
      ref.dtype = t.dtype;
      ref.shape = t.shape;
      ref.begin = data.size();
      ref.count = t.count;
      if (t.dtype == DType::f32)
        append_values(data, static_cast<const float*>(t.values), static_cast<std::size_t>(t.count));
      else if (t.dtype == DType::f64)
        append_values(data, static_cast<const double*>(t.values), static_cast<std::size_t>(t.count));
      else
        append_values(data, static_cast<const std::int64_t*>(t.values), static_cast<std::size_t>(t.count));
      ref.end = data.size();
      refs[key] = std::move(ref);
    }
    for (auto& entry : refs) entry.second.data = data.data() + entry.second.begin;
    metadata["sha256"] = digest_v2(metadata, refs);

    json header = json::object();
    header["__metadata__"] = metadata;
    for (const auto& [key, ref] : refs)
      header[key] = {{"dtype", dtype_name(ref.dtype)}, {"shape", ref.shape}, {"data_offsets", {ref.begin, ref.end}}};
    std::string text;
    try {
      text = header.dump();
    } catch (const json::exception& error) {
      cannot_save(name, "the header cannot be written as JSON (", error.what(), ")");
    }
    text.append((8 - text.size() % 8) % 8, ' ');  // as safetensors: the data starts 8-aligned
    std::vector<std::uint8_t> out;
    out.reserve(8 + text.size() + data.size());
    append_u64(out, text.size());
    out.insert(out.end(), text.begin(), text.end());
    out.insert(out.end(), data.begin(), data.end());
    return out;
  } catch (const std::bad_alloc&) {
    cannot_save(name, "cannot allocate memory for the file's bytes");
  }
}

template std::vector<std::uint8_t> serialize<float>(const Checkpoint<float>&, std::string_view);
template std::vector<std::uint8_t> serialize<double>(const Checkpoint<double>&, std::string_view);

}  // namespace rnnbptt::checkpoint_format

namespace rnnbptt {

using namespace checkpoint_format;

template <class Scalar>
std::vector<std::uint8_t> serialize_checkpoint(const Checkpoint<Scalar>& checkpoint, std::string_view name) {
  return guarded(name, [&] { return serialize(checkpoint, name); });
}

template RNNBPTT_EXPORT std::vector<std::uint8_t> serialize_checkpoint<float>(const Checkpoint<float>&,
                                                                              std::string_view);
template RNNBPTT_EXPORT std::vector<std::uint8_t> serialize_checkpoint<double>(const Checkpoint<double>&,
                                                                               std::string_view);

}  // namespace rnnbptt
