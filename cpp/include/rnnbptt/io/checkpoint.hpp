/// @file checkpoint.hpp
/// @brief Checkpoints: safetensors files (format version 3, docs/checkpoints.md; versions 1, 2 and
/// 3 are read), written and read here for C++ and for Python (rnnbptt.checkpoint binds this).
///
/// A model trained by `rnnbptt train` loads here and gives the same outputs as in Python (on
/// the same SIMD variant), and a checkpoint saved here loads in Python (rnnbptt.checkpoint.load,
/// `rnnbptt generate --checkpoint`). The file: an 8-byte little-endian header length, a JSON
/// header (tensor dtypes, shapes and byte ranges, and `__metadata__` strings: format,
/// format_version, config, vocab, optimizer, trainer, sha256) and the raw little-endian tensor
/// bytes. The sha256 entry is a SHA-256 over every metadata entry and every tensor (the
/// byte string is in docs/checkpoints.md), so any change to the
/// file's meaning is detected.
///
/// Reading is strict: a file that is missing, truncated, corrupt (failing the digest), of
/// another format or format version, whose JSON does not parse, with tensors of an unknown
/// dtype, overlapping, out-of-range or not covering the data, tensors whose shape or dtype
/// disagree with the configuration, missing or unexpected tensors, throws CheckpointError
/// whose message starts with the file's path (or the name given to parse_checkpoint) and
/// names the problem (a missing file: "no such file: <path>"). No byte sequence makes the reader crash or read out of
/// bounds. Also refused: anything but a regular file (a FIFO is never opened for blocking reads), JSON entries nested
/// deeper than 64 levels, a runner state that is not finite or does not equal the last row of its history states, and
/// history token ids outside [0, input_size). A hostile file costs at most about its own size in memory before it is
/// refused: every tensor's shape is checked against the configuration before anything is converted.
///
/// Writing is atomic: the bytes go to `.<name>.<16 hex digits>.tmp` in the target's folder
/// (created if missing), are flushed and synced, the file is renamed over the target and the
/// folder synced; a failure removes the temporary file, and temporary files of the same
/// target left by killed processes are removed after the next successful save (so one process
/// at a time should write a given target). The new file gets the permissions of the file it
/// replaces, else 0666 minus the umask. POSIX systems only.
///
/// Thread safety: the functions keep no state; different threads may save different files and
/// read any files at once. A Checkpoint is a plain value.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "rnnbptt/bptt/model.hpp"
#include "rnnbptt/bptt/stream.hpp"
#include "rnnbptt/core/buffer.hpp"
#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/error.hpp"
#include "rnnbptt/core/export.hpp"
#include "rnnbptt/core/span.hpp"
#include "rnnbptt/io/text.hpp"
#include "rnnbptt/train/optim.hpp"

namespace rnnbptt {

/// The `format` entry of every checkpoint file.
inline constexpr const char* kCheckpointFormat = "rnnbptt-checkpoint";
/// The format version save_checkpoint writes; load_checkpoint reads versions 1, 2 and 3.
inline constexpr int kCheckpointVersion = 3;

/// The scalar type of a checkpoint's model (its config's "dtype").
enum class ScalarType { float32, float64 };

/// "float32" or "float64", as the checkpoint's config writes it.
RNNBPTT_EXPORT const char* to_string(ScalarType type);

/// The model configuration as a checkpoint's `config` entry writes it, the one place its JSON
/// form is written: {"input_size": d, "hidden_size": h, "output_size": q, "activation": "tanh",
/// "bias": true, "dtype": "float32"} (Python's json.dumps spacing; Python's RNN.config() is
/// this text parsed).
RNNBPTT_EXPORT std::string to_json(const ModelConfig& config, ScalarType dtype);

/// The settings of plain SGD (sgd_step), as Python's SGD.config() writes them in the
/// `optimizer` entry: {"name": "sgd", "lr": ..., "weight_decay": ...}.
struct SgdSettings {
  double lr = 1.0;            ///< finite > 0
  double weight_decay = 0.0;  ///< finite >= 0
};

/// Where a training stream stood when a sequential epoch was interrupted part-way (Python's
/// trainer.runner.* tensors): what StreamRunner::restore takes back, with the position
/// (steps consumed) coming from the trainer's step count.
template <class Scalar>
struct RunnerState {
  Index batch = 0;       ///< n >= 1; must equal the trainer entry's "batch_size"
  Buffer<Scalar> state;  ///< config.state_size(batch): the carried state
  /// Regular(k1 < k2) truncation also keeps history (the next members; the tensors
  /// trainer.runner.history_inputs and trainer.runner.history_states).
  bool has_history = false;
  Index history = 0;                         ///< k steps of history (0 <= k <= k2 - k1)
  std::vector<std::int64_t> history_tokens;  ///< a token stream's history x batch ids
  /// A dense stream's history x batch x d inputs instead (history_tokens empty then): the
  /// tensor trainer.runner.history_inputs in the model's dtype, shape (k, batch, d).
  Buffer<Scalar> history_inputs;
  Buffer<Scalar> history_states;  ///< history_rows(config, history) x batch x h (stream.hpp)

  /// Puts `runner` back where this state stood, `position` steps into its stream
  /// (StreamRunner::restore, or restore_dense for a dense history).
  void restore(StreamRunner<Scalar>& runner, std::int64_t position) const {
    if (!history_inputs.empty())
      runner.restore_dense(position, batch, state, history, history_inputs, history_states);
    else
      runner.restore(position, batch, state, history, history_tokens, history_states);
  }

  /// What `runner` carries (copied), as Python's Trainer saves it: the state, and the history
  /// when the runner holds one (Regular(k1 < k2) after its first chunk), token ids or dense
  /// inputs. Throws StateError for a runner before its first chunk.
  static RunnerState from_runner(const StreamRunner<Scalar>& runner) {
    if (runner.batch() == 0 || runner.state().empty())
      throw StateError("runner: expected a runner that has consumed a chunk, got one with no state");
    RunnerState out;
    out.batch = runner.batch();
    out.state.assign(runner.state().begin(), runner.state().end());
    if (runner.history_steps() > 0) {
      out.has_history = true;
      out.history = runner.history_steps();
      out.history_tokens.assign(runner.history_tokens().begin(), runner.history_tokens().end());
      out.history_inputs.assign(runner.history_dense_inputs().begin(), runner.history_dense_inputs().end());
      out.history_states.assign(runner.history_states().begin(), runner.history_states().end());
    }
    return out;
  }
};

/// Everything a checkpoint file holds, for a model of scalar type Scalar (float: "float32",
/// double: "float64").
template <class Scalar>
struct RNNBPTT_EXPORT Checkpoint {
  ModelConfig config;          ///< the model's configuration
  Buffer<Scalar> parameters;   ///< ParameterLayout(config).total values, the flat layout of Model
  std::optional<Vocab> vocab;  ///< the vocabulary of a character model, if any
  /// The optimizer: none (the entry is `{}`), SGD's settings, or Adam, whose hyper-parameters,
  /// step_count and moments m, v (num_parameters values each) are saved as Python's
  /// Adam.config() and the optimizer.m / optimizer.v tensors.
  std::variant<std::monostate, SgdSettings, Adam<Scalar>> optimizer;
  /// The optimizer's SGD settings, or nullptr when it is not SGD.
  const SgdSettings* sgd() const { return std::get_if<SgdSettings>(&optimizer); }
  /// The optimizer's Adam state, or nullptr when it is not Adam.
  const Adam<Scalar>* adam() const { return std::get_if<Adam<Scalar>>(&optimizer); }
  /// The trainer entry as JSON text: a JSON object (Python's Trainer.state(): epoch, step,
  /// random-generator state, history, ...), kept as it is, byte for byte. Python's NaN,
  /// Infinity and -Infinity literals are accepted. C++ code that trains writes what it wants
  /// here; Python's Trainer.resume needs its own keys, checkpoint.load only an object.
  std::string trainer_json = "{}";
  /// The stream runner of an epoch interrupted part-way (requires trainer_json to hold
  /// "batch_size" equal to runner->batch, as Python checks).
  std::optional<RunnerState<Scalar>> runner;

  /// A checkpoint of `model`'s configuration and parameters (copied); nothing else set.
  static Checkpoint from_model(const Model<Scalar>& model);
  /// A Model of this configuration with these parameters (InvalidArgument if `parameters`
  /// does not hold num_parameters values).
  Model<Scalar> model() const;
};

/// Writes `checkpoint` to `path` atomically (see above) in format version 3. Throws
/// CheckpointError ("<path>: cannot save: ...") for contents Python could not load back (a
/// config that does not validate, parameters or Adam moments of the wrong length, both sgd and
/// adam set, bad hyper-parameters, trainer_json that is not a JSON object, a runner state
/// whose sizes disagree) and for every system error (naming the call and the error).
template <class Scalar>
RNNBPTT_EXPORT void save_checkpoint(const std::filesystem::path& path, const Checkpoint<Scalar>& checkpoint);

/// Reads the checkpoint at `path` (format version 1, 2 or 3), whose model must be of type
/// Scalar (use checkpoint_dtype() to choose). Throws CheckpointError ("<path>: ...").
template <class Scalar>
RNNBPTT_EXPORT Checkpoint<Scalar> load_checkpoint(const std::filesystem::path& path);

/// The scalar type of the model in the checkpoint at `path`, after the same checks as
/// load_checkpoint (CheckpointError for a file load_checkpoint would refuse).
RNNBPTT_EXPORT ScalarType checkpoint_dtype(const std::filesystem::path& path);

/// A checkpoint of either scalar type, as the file says: Checkpoint<float> for "float32",
/// Checkpoint<double> for "float64".
using AnyCheckpoint = std::variant<Checkpoint<float>, Checkpoint<double>>;

/// Reads the checkpoint at `path` (format version 1, 2 or 3) once, whatever its model's scalar
/// type (load_checkpoint's checks and errors).
RNNBPTT_EXPORT AnyCheckpoint load_any_checkpoint(const std::filesystem::path& path);

/// The bytes save_checkpoint writes, in memory (CheckpointError "<name>: cannot save: ...").
template <class Scalar>
RNNBPTT_EXPORT std::vector<std::uint8_t> serialize_checkpoint(const Checkpoint<Scalar>& checkpoint,
                                                              std::string_view name = "<memory>");

/// load_checkpoint from bytes in memory; errors start with `name` instead of a path. The
/// bytes are read during the call only.
template <class Scalar>
RNNBPTT_EXPORT Checkpoint<Scalar> parse_checkpoint(Span<const std::uint8_t> bytes, std::string_view name = "<memory>");

/// checkpoint_dtype from bytes in memory.
RNNBPTT_EXPORT ScalarType checkpoint_dtype(Span<const std::uint8_t> bytes, std::string_view name = "<memory>");

}  // namespace rnnbptt
