/// @file inference.hpp
/// @brief Running a trained model: a stateful Predictor for one sequence, softmax with a
/// temperature, argmax, a portable random generator, sampling, and generate(), which continues
/// a prefix of token ids exactly as Python's rnnbptt.generate does.
///
/// Reproducibility: generate() makes the same forward calls as python/rnnbptt/generate.py
/// (the prefix as one forward with n = 1, then one-step forwards carrying the state) and picks
/// greedy tokens by argmax of the logits, so its greedy ids equal Python's bit for bit on the
/// same SIMD variant. Sampling uses Random, our own generator: the same numbers on every
/// platform and compiler, but not NumPy's, so sampled ids differ from Python's.
///
/// Errors: InvalidArgument naming the argument (ids out of range, empty prefix, a bad
/// temperature, non-finite parameters or logits, lengths that disagree), SizeError,
/// AllocationError (rnnbptt/core/error.hpp).
///
/// Thread safety: one Predictor per thread. A Predictor only reads its Model: several
/// Predictors (on several threads) may read one Model at once, but no call that changes the
/// Model (forward, backward, an optimizer step on its parameters, set_parameters, init_*) may
/// overlap a Predictor call on it. softmax, argmax and sample are safe from any thread; a
/// Random is used by one thread at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "rnnbptt/bptt/model.hpp"
#include "rnnbptt/bptt/workspace.hpp"
#include "rnnbptt/core/buffer.hpp"
#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/export.hpp"
#include "rnnbptt/core/random.hpp"
#include "rnnbptt/core/span.hpp"

namespace rnnbptt {

/// One sequence (batch 1) run step by step from a carried state: the model's output logits
/// after each input. Logits are o_t = W_qh h_t + b_q (no softmax).
///
/// Lifetimes: the Predictor keeps a reference to the Model and reads model.parameters() at
/// every call, so the Model must outlive it (and parameter changes between calls are seen by
/// the next call). Every returned Span (feed, step, step_dense, state) is a view of the
/// Predictor's buffers, valid until the next call on this Predictor that changes its state
/// (feed, step, step_dense, reset, set_state) or its destruction.
template <class Scalar>
class RNNBPTT_EXPORT Predictor {
 public:
  /// State zero. Allocates the buffers of a one-step forward (AllocationError).
  explicit Predictor(const Model<Scalar>& model);

  /// State <- 0.
  void reset();
  /// State <- h: exactly config.state_size(1) finite values (copied): h for one Elman layer,
  /// every layer's h (then every c, for the LSTM) for stacks.
  void set_state(Span<const Scalar> h);
  /// The carried state: config.state_size(1) values.
  Span<const Scalar> state() const;

  /// Runs `tokens` (at least one, each in [0, input_size)) as ONE forward (T = tokens.size(),
  /// n = 1) from the carried state, carries the final state, and returns the last step's
  /// logits (output_size values). The ids are read during the call only.
  Span<const Scalar> feed(Span<const std::int64_t> tokens);
  /// = feed of one token.
  Span<const Scalar> step(std::int64_t token);
  /// One dense step: x holds input_size finite values. Returns the logits (output_size).
  Span<const Scalar> step_dense(Span<const Scalar> x);

 private:
  Span<const Scalar> run(const SequenceInput<Scalar>& x);

  const Model<Scalar>* model_;
  Workspace<Scalar> ws_;
  Buffer<Scalar> state_;    // h
  std::int64_t token_ = 0;  // the id of step(), viewed as a one-id sequence
};

/// out = softmax(logits / temperature), computed in double and rounded once to Scalar.
/// logits: at least one finite value; temperature finite > 0; out: as many values as logits
/// (it may not overlap logits unless it is the same memory).
template <class Scalar>
RNNBPTT_EXPORT void softmax(Span<const Scalar> logits, double temperature, Span<Scalar> out);

/// The index of the first maximum, as numpy.argmax (a NaN counts as the maximum: the first NaN
/// wins). logits: at least one value.
template <class Scalar>
RNNBPTT_EXPORT Index argmax(Span<const Scalar> logits);

/// An index drawn with probability proportional to `probabilities` (at least one value, all
/// finite and >= 0, with a positive sum; they need not sum to 1): one uniform() draw u, the
/// first index whose running sum (in double) exceeds u * sum.
template <class Scalar>
RNNBPTT_EXPORT Index sample(Span<const Scalar> probabilities, Random& rng);

/// How generate() picks each token.
struct GenerateOptions {
  double temperature = 0.0;  ///< 0: greedy (argmax); > 0: sample softmax(o / temperature)
  std::uint64_t seed = 0;    ///< the Random seed of sampling (unused when greedy)
};

/// `count` (>= 0) token ids continuing `prefix`, exactly as Python's rnnbptt.generate: the
/// whole prefix as one forward from a zero state, then one step per produced token; greedy =
/// argmax of the logits (so greedy ids equal Python's bit for bit on the same SIMD variant).
/// The model must take tokens and produce logits over the same vocabulary (input_size ==
/// output_size) and have finite parameters; prefix: at least one id, each in [0, input_size);
/// temperature finite >= 0. Returns the produced ids only (not the prefix). The model is read
/// during the call only (see the thread-safety note above).
template <class Scalar>
RNNBPTT_EXPORT std::vector<std::int64_t> generate(const Model<Scalar>& model, Span<const std::int64_t> prefix,
                                                  Index count, const GenerateOptions& options = {});

/// Overloads for float and double, so that arguments convert (std::vector, Span<T> to
/// Span<const T>) where template deduction would not.
inline void softmax(Span<const float> logits, double temperature, Span<float> out) {
  softmax<float>(logits, temperature, out);
}
inline void softmax(Span<const double> logits, double temperature, Span<double> out) {
  softmax<double>(logits, temperature, out);
}
inline Index argmax(Span<const float> logits) { return argmax<float>(logits); }
inline Index argmax(Span<const double> logits) { return argmax<double>(logits); }
inline Index sample(Span<const float> probabilities, Random& rng) { return sample<float>(probabilities, rng); }
inline Index sample(Span<const double> probabilities, Random& rng) { return sample<double>(probabilities, rng); }

}  // namespace rnnbptt
