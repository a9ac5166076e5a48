/// @file data.hpp
/// @brief A token stream cut into parallel streams and chunks exactly as Python's
/// rnnbptt.data.sequential_batches (d2l's sequential partitioning; Python binds split_streams),
/// the same cut for a dense series (split_dense_streams), and the evaluation loss of a model
/// over a token stream with the hidden state carried, exactly as Python's Trainer.evaluate.
///
/// Errors: InvalidArgument naming the argument, what was expected and what was received
/// (rnnbptt/core/error.hpp); the model's own errors (ids out of range, ...); AllocationError.
#pragma once

#include <cstdint>
#include <vector>

#include "rnnbptt/bptt/model.hpp"
#include "rnnbptt/core/buffer.hpp"
#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/export.hpp"
#include "rnnbptt/core/span.hpp"

namespace rnnbptt {

/// `batch` parallel streams of a token corpus, time-major, with the targets shifted by one
/// token, holding a whole number of chunks of `num_steps` steps.
///
/// Chunk i (0 <= i < chunks()) is the batch Python's sequential_batches yields i-th for the
/// same corpus, batch size, number of steps and offset: its inputs are rows
/// [i * num_steps, (i + 1) * num_steps) of `inputs`, which are contiguous (num_steps x batch
/// values), and stream b carries on from chunk to chunk, so the hidden state can be carried.
///
/// A plain value: copies are independent; const members may be called from any thread.
struct RNNBPTT_EXPORT Streams {
  std::vector<std::int64_t> inputs;   ///< steps x batch, time-major: inputs[t * batch + b]
  std::vector<std::int64_t> targets;  ///< steps x batch: the token after each input
  Index steps = 0;                    ///< chunks() * num_steps
  Index batch = 0;                    ///< n, the number of parallel streams
  Index num_steps = 0;                ///< T, the steps of one chunk

  /// The number of whole chunks.
  Index chunks() const { return num_steps > 0 ? steps / num_steps : 0; }
  /// The inputs of chunk `i`: num_steps x batch ids, time-major; a view of `inputs`, valid
  /// while this Streams is alive and unchanged. InvalidArgument for i outside [0, chunks()).
  Span<const std::int64_t> chunk_inputs(Index i) const;
  /// The targets of chunk `i`, as chunk_inputs.
  Span<const std::int64_t> chunk_targets(Index i) const;
};

/// d2l's sequential partitioning, as python/rnnbptt/data.py's sequential_batches with the
/// offset it draws (`rng.integers(0, num_steps + 1)`) given here: after skipping `offset`
/// tokens, the next L * batch tokens (L = (size - offset - 1) / batch, rounded down) are cut
/// into `batch` contiguous streams of L tokens, stream b starting at token offset + b * L, and
/// the targets are the same streams one token later; only the first chunks() * num_steps
/// steps are kept (whole chunks).
/// batch >= 1, num_steps >= 1, 0 <= offset <= num_steps, and, as Python requires, the corpus
/// holds at least batch * num_steps + num_steps + 1 tokens (InvalidArgument naming the
/// argument otherwise). The ids are copied and not checked (the model checks them).
RNNBPTT_EXPORT Streams split_streams(Span<const std::int64_t> corpus, Index batch, Index num_steps, Index offset = 0);

/// `batch` parallel streams of a dense series, cut as split_streams cuts a token corpus: time-
/// major, a whole number of chunks of `num_steps` steps, stream b carrying on from chunk to
/// chunk (so a StreamRunner can carry the state). The series has `length` steps of
/// `input_size` input features and `output_size` target features, the target of step t being
/// what the model should output after reading input t (for forecasting, the next value).
///
/// A plain value: copies are independent; const members may be called from any thread.
template <class Scalar>
struct RNNBPTT_EXPORT DenseStreams {
  Buffer<Scalar> inputs;   ///< steps x batch x input_size, time-major
  Buffer<Scalar> targets;  ///< steps x batch x output_size
  Index steps = 0;         ///< chunks() * num_steps
  Index batch = 0;         ///< n, the number of parallel streams
  Index num_steps = 0;     ///< T, the steps of one chunk
  Index input_size = 0;    ///< d
  Index output_size = 0;   ///< q
  /// The number of whole chunks.
  Index chunks() const { return num_steps > 0 ? steps / num_steps : 0; }
  /// The inputs of chunk `i`: num_steps x batch x input_size values (a view of `inputs`, valid
  /// while this DenseStreams is alive and unchanged; SequenceInput::from_dense takes it).
  /// InvalidArgument for i outside [0, chunks()).
  Span<const Scalar> chunk_inputs(Index i) const;
  /// The targets of chunk `i`: num_steps x batch x output_size values (Targets::from_dense).
  Span<const Scalar> chunk_targets(Index i) const;
};

/// The dense series `inputs` (length x input_size values, row-major: step t's features at
/// [t * input_size, (t + 1) * input_size)) and `targets` (length x output_size), cut into
/// `batch` streams: after skipping `offset` steps, the next L * batch steps (L = (length -
/// offset) / batch, rounded down) form `batch` contiguous streams of L steps, stream b starting
/// at step offset + b * L; only the first chunks() * num_steps steps of each are kept.
/// input_size, output_size, batch and num_steps >= 1; 0 <= offset <= num_steps; inputs and
/// targets describe the same number of steps, at least batch * num_steps + offset (one chunk);
/// InvalidArgument naming the argument otherwise. The values are copied, not checked (the
/// model checks that they are finite).
template <class Scalar>
RNNBPTT_EXPORT DenseStreams<Scalar> split_dense_streams(Span<const Scalar> inputs, Index input_size,
                                                        Span<const Scalar> targets, Index output_size, Index batch,
                                                        Index num_steps, Index offset = 0);

/// The mean cross-entropy of predicting each next token of `corpus`, read as one stream with
/// the hidden state carried from chunk to chunk (chunks of `chunk` steps, the last one
/// shorter): python/rnnbptt/trainer.py's Trainer.evaluate, whose perplexity is the exp() of
/// this value (computed in the same order, so equal on the same SIMD variant).
/// The model takes token input and its output classes are token ids; corpus: at least 2 ids
/// in [0, input_size) (and targets in [0, output_size)); chunk >= 1. Runs forward() and
/// loss() on `model` (its outputs, final state and dL/do change; its parameters and
/// gradients do not).
template <class Scalar>
RNNBPTT_EXPORT double evaluate(Model<Scalar>& model, Span<const std::int64_t> corpus, Index chunk = 512);

/// The mean cross-entropy over every chunk of `streams` in order, the state (batch x h)
/// carried from chunk to chunk from zero: what training on these chunks sees, without
/// gradients. Each chunk's mean loss is weighted by its num_steps x batch tokens. Runs
/// forward() and loss() on `model` as above. InvalidArgument for streams without chunks.
template <class Scalar>
RNNBPTT_EXPORT double evaluate(Model<Scalar>& model, const Streams& streams);

}  // namespace rnnbptt
