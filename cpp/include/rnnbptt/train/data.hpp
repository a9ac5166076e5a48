/// @file data.hpp
/// @brief A token stream cut into parallel streams and chunks exactly as Python's
/// rnnbptt.data.sequential_batches (d2l's sequential partitioning), and the evaluation loss of
/// a model over a token stream with the hidden state carried, exactly as Python's
/// Trainer.evaluate.
///
/// Errors: InvalidArgument naming the argument, what was expected and what was received
/// (rnnbptt/core/error.hpp); the model's own errors (ids out of range, ...); AllocationError.
#pragma once

#include <cstdint>
#include <vector>

#include "rnnbptt/bptt/model.hpp"
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
