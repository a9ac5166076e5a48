/// @file stream.hpp
/// @brief Training over a stream far longer than memory: chunks arrive one after another, the
/// hidden state is carried across them, and memory depends on the chunk and the truncation
/// window, never on the stream's length.
///
/// Regular(k1, k2) windows reach across chunk boundaries exactly: the runner keeps the last
/// k2 - k1 steps (inputs and states) of history, so a stream cut into chunks gives the same
/// gradients as the unchunked sequence with the same parameters. Chunk lengths must then be
/// multiples of k1. For Full and Randomized a chunk boundary is a cut (the state is carried,
/// the gradient is not): reaching further back would need the whole stream in memory.
/// Randomized draws depend on the global step index, so cuts do not depend on the chunking.
///
/// Lifetimes: the inputs of step() and restore() are read (or copied) during the call only.
/// state(), history_tokens() and history_states() are views of the runner's buffers, valid
/// until the next step(), reset() or restore() (or the runner's destruction).
///
/// Thread safety: one StreamRunner per thread, and nothing else may use the parameters and
/// gradients given to step() while it runs. Errors: InvalidArgument (lengths, values, ids,
/// chunk lengths), SizeError, AllocationError (rnnbptt/core/error.hpp).
#pragma once
#include "rnnbptt/core/export.hpp"

#include <cstdint>
#include <vector>

#include "rnnbptt/core/buffer.hpp"

#include "rnnbptt/bptt/model.hpp"
#include "rnnbptt/bptt/truncation.hpp"
#include "rnnbptt/bptt/workspace.hpp"
#include "rnnbptt/core/params.hpp"
#include "rnnbptt/core/sequence.hpp"
#include "rnnbptt/core/span.hpp"

namespace rnnbptt {

/// Rows of n x h values in a stream's history of k steps (StreamRunner::history_states): 0
/// when k = 0; for one Elman layer k + 1 (h at the k history steps' starts and the carried
/// h_t); for a stack, per layer (layer 0 first): k + 1 rows of h, k + 1 rows of c (lstm), then
/// each history step's kept gate values gate by gate (gru: r, z, n; lstm: i, f, g, o), then
/// k rows of s_n (gru). An Elman layer in a stack keeps only its k + 1 rows of h. SizeError
/// when the count overflows.
RNNBPTT_EXPORT Index history_rows(const ModelConfig& config, Index k);

/// Whether the rows of `history_states` (history_rows(config, k) x n x h values) that hold the
/// carried state (the last row of every layer's h, and c) equal `state` (config.state_size(n)
/// values), bit for bit: what StreamRunner::restore requires of a saved history.
template <class Scalar>
RNNBPTT_EXPORT bool history_matches_state(const ModelConfig& config, Index k, Index n, Span<const Scalar> state,
                                          Span<const Scalar> history_states);

/// Forward, loss and backward chunk after chunk with a carried state.
template <class Scalar>
class RNNBPTT_EXPORT StreamRunner {
 public:
  /// Validates `config` (InvalidArgument, SizeError); the truncation is copied.
  StreamRunner(const ModelConfig& config, Truncation truncation);

  /// Forward, loss and backward over the next chunk (T x n), starting from the carried state
  /// (x.resets restart sequences from zeros: before any step of a chunk, or at its first to
  /// start a new sequence there; x.lengths is refused);
  /// overwrites dparams with this chunk's gradient and returns its loss. params and dparams
  /// hold the model's parameter count each (InvalidArgument otherwise); x and y are checked as
  /// by Model::forward and Model::loss (T x n targets for the chunk), and the chunk must keep
  /// the stream's batch size and input kind (dense or tokens). Parameters may change between
  /// chunks (that is training); history states keep the values they were computed with.
  double step(Span<const Scalar> params, Span<Scalar> dparams, const SequenceInput<Scalar>& x,
              const Targets<Scalar>& y);
  /// The same with a Model's parameters and gradients; its configuration must be the
  /// runner's (InvalidArgument).
  double step(Model<Scalar>& model, const SequenceInput<Scalar>& x, const Targets<Scalar>& y) {
    check_model(model);
    return step(Span<const Scalar>(model.parameters()), model.gradients(), x, y);
  }

  /// Start a new stream: zero state, no history. Its first step has global index
  /// position + 1 (Regular blocks are aligned to it, Randomized draws keyed by it): a trainer
  /// that restarts streams keeps counting (reset(position())) so that draws never repeat.
  void reset(std::int64_t position = 0);
  /// Puts the runner back where a saved run was (a checkpoint taken between chunks): `position`
  /// steps consumed, the carried state (config.state_size(batch) values), and the last `history` steps the
  /// truncation keeps (0 <= history <= k2 - k1): their token ids (history x batch ids, empty
  /// when history == 0; restore_dense takes a dense stream's history x batch x d finite
  /// values instead) and what the backward pass reads of them, history_rows(config,
  /// history) rows of batch x h values (for one Elman layer the states h at those steps and
  /// the step after; empty when history == 0; the rows of the carried state equal `state`,
  /// history_matches_state; a stack's gate values in their activation's range, [0, 1] or
  /// [-1, 1], to a few ulp). Everything is copied. Throws InvalidArgument naming the argument
  /// that does not fit; a restore that throws leaves the runner as it was.
  /// `history_resets`: the history's reset flags (history x batch, 0 or 1) when
  /// history_resets() gave any, else empty.
  void restore(std::int64_t position, Index batch, Span<const Scalar> state, Index history,
               Span<const std::int64_t> history_tokens, Span<const Scalar> history_states,
               Span<const std::uint8_t> history_resets = {}) {
    SequenceInput<Scalar> inputs = SequenceInput<Scalar>::from_tokens(history_tokens, history, batch);
    inputs.resets = history_resets;
    restore_from(position, batch, state, history, inputs, history_states);
  }
  /// The same for a dense stream: `history_inputs` holds history x batch x d values.
  void restore_dense(std::int64_t position, Index batch, Span<const Scalar> state, Index history,
                     Span<const Scalar> history_inputs, Span<const Scalar> history_states,
                     Span<const std::uint8_t> history_resets = {}) {
    SequenceInput<Scalar> inputs = SequenceInput<Scalar>::from_dense(history_inputs, history, batch);
    inputs.resets = history_resets;
    restore_from(position, batch, state, history, inputs, history_states);
  }
  /// The reset flags of the history (history_steps() x batch(), 0 or 1) when any is set, else
  /// empty: a checkpoint saves them with the history. Valid until the next step(), reset() or
  /// restore().
  Span<const std::uint8_t> history_resets() const;

  /// The history held between chunks, for saving: token ids (history_steps() x batch()); empty
  /// for a dense stream or with no history. Valid until the next step(), reset() or restore().
  Span<const std::int64_t> history_tokens() const;
  /// The same for a dense stream: its inputs (history_steps() x batch() x d values); empty for
  /// a token stream or with no history.
  Span<const Scalar> history_dense_inputs() const;
  /// What the backward pass reads of the history: history_rows(config, history_steps()) x
  /// batch() x h values (for one Elman layer its (history_steps() + 1) states); empty with no
  /// history. Valid until the next step(), reset() or restore().
  Span<const Scalar> history_states() const;
  const Truncation& truncation() const { return truncation_; }
  std::int64_t position() const { return position_; }  ///< steps consumed so far
  Index batch() const { return batch_; }               ///< n of the stream (0 before its first chunk)
  /// batch() x h: h_t after the last chunk (empty before the first chunk). Valid until the
  /// next step(), reset() or restore().
  Span<const Scalar> state() const;
  Index history_steps() const { return history_; }
  const Workspace<Scalar>& workspace() const { return ws_; }
  /// Bytes held by the runner's buffers (workspace, history, state).
  std::size_t memory_bytes() const;

 private:
  void check_model(const Model<Scalar>& model) const;
  void restore_from(std::int64_t position, Index batch, Span<const Scalar> state, Index history,
                    const SequenceInput<Scalar>& history_inputs, Span<const Scalar> history_states);

  ModelConfig config_;
  ParameterLayout layout_;
  Truncation truncation_;
  Workspace<Scalar> ws_;
  Buffer<Scalar> state_;                // config.state_size(n): the carried state
  Buffer<Scalar> dense_history_;        // (history + T) x n x d
  Buffer<std::int64_t> token_history_;  // (history + T) x n
  Buffer<Scalar> history_rows_;         // a stack's history as history_states() gives it
  Buffer<std::uint8_t> reset_history_;  // (history + T) x n: reset flags, while the history holds one
  bool history_resets_ = false;         // some flag of the history's steps is set
  Index history_ = 0;                   // steps of history currently held
  Index batch_ = 0;
  int input_kind_ = -1;  // -1 none yet, 0 dense, 1 tokens
  std::int64_t position_ = 0;
};

}  // namespace rnnbptt
