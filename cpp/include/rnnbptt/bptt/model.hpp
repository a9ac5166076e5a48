/// @file rnn.hpp
/// @brief The Elman RNN of docs/design.md section 2 and its exact BPTT (section 3), as
/// forward/backward pairs over a flat parameter buffer, plus a Model that owns parameters,
/// gradients and a workspace.
///
///   a_t = W_hx x_t + W_hh h_{t-1} + b_h,  h_t = phi(a_t),  o_t = W_qh h_t + b_q
///   L   = sum_{t,b} w_tb l(o_tb, y_tb) / sum_{t,b} w_tb
///
/// Every buffer enters and leaves as a Span whose length is checked: a length that disagrees
/// with the shapes throws InvalidArgument naming the argument, what it expected and what it
/// got ("h0: expected 8 values (n x h = 2 x 4), got a buffer of 6"); a negative length or a
/// null pointer with a positive length is refused the same way. Errors: InvalidArgument (bad
/// values, lengths, ids, non-finite inputs), SizeError (sizes whose product overflows),
/// StateError (a call out of order), AllocationError (memory), all from rnnbptt/core/error.hpp.
///
/// Thread safety: one Model per thread. A Model (and a Workspace) is not synchronized: calls on
/// one object from two threads at once are a data race. Different objects may be used from
/// different threads at the same time, and calls may move from thread to thread when the
/// caller orders them. Each call may itself use several threads (rnnbptt/kernels/threads.hpp).
#pragma once

#include <cstdint>
#include <vector>

#include "rnnbptt/core/buffer.hpp"

#include "rnnbptt/bptt/truncation.hpp"
#include "rnnbptt/bptt/workspace.hpp"
#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/export.hpp"
#include "rnnbptt/core/params.hpp"
#include "rnnbptt/core/sequence.hpp"
#include "rnnbptt/core/span.hpp"

namespace rnnbptt {

namespace detail {
// T, in a position template deduction skips: the pairs deduce Scalar from the workspace only,
// so that a Span<float> converts to Span<const float> and a std::vector to a Span.
template <class T>
struct identity {
  using type = T;
};
template <class T>
using identity_t = typename identity<T>::type;
}  // namespace detail

// ---- The pairs (llm.c style: outputs first, gradients prefixed d) ----

/// Forward pass into `ws`. `params` holds layout.total values. x holds T = x.steps steps of n
/// = x.batch sequences (T >= 1, n >= 1): dense T x n x d values or T x n ids in [0, d).
/// The first `context_steps` steps are history (a stream's last steps, no loss): their states
/// h_1 .. h_context (for a stack, everything its layers keep: ws.layers) are already in the
/// workspace and are kept, and steps context+1 .. T are computed from h_context (StreamRunner
/// arranges this). With no history the run starts from `h0` (empty: zeros; else the whole
/// state, config.state_size(n) values: n x h for one Elman layer; must be empty when
/// context_steps > 0). Fills ws.H (the top layer's h_0 .. h_T, (T+1) x n x h), ws.O (o_t,
/// T x n x q; rows of history steps are not written) and, for a stack, ws.layers and
/// ws.state_T.
/// x.resets and x.lengths (optional) restart or end sequences inside the batch: a reset
/// restores h0's row (zeros without h0; always zeros with `resets_to_zero`, which a
/// StreamRunner sets since its h0 is the carried state), and with lengths ws.state_T holds
/// every sequence's state after its own last step (see SequenceInput).
/// Validates x (lengths against config and steps/batch, finite values, ids in [0, d), resets
/// and lengths) and h0.
/// Lifetime: dense x is kept by reference in ws.input and read again by rnn_backward, so it
/// must stay alive and unchanged until the last rnn_backward of this forward; token ids are
/// copied into ws.ids (the caller's ids may go once this returns); params and h0 are read
/// during the call only.
template <class Scalar>
RNNBPTT_EXPORT void rnn_forward(Workspace<Scalar>& ws, const ModelConfig& config, const ParameterLayout& layout,
                                Span<const detail::identity_t<Scalar>> params,
                                const SequenceInput<detail::identity_t<Scalar>>& x,
                                Span<const detail::identity_t<Scalar>> h0, Index context_steps = 0,
                                bool resets_to_zero = false);

/// Loss of the outputs in ws.O against y over the non-context steps; writes dL/do_t into ws.dO
/// (fused: softmax, cross-entropy and its gradient in one pass per row). Returns L.
/// y's lengths are checked against the last forward: (T - context) x n class ids in [0, q), or
/// (T - context) x n x q finite values; weights empty or (T - context) x n. y is read during
/// the call only. StateError without a forward.
template <class Scalar>
RNNBPTT_EXPORT double loss_forward(Workspace<Scalar>& ws, const ModelConfig& config,
                                   const Targets<detail::identity_t<Scalar>>& y);

/// The optional inputs and outputs of a backward pass. An empty Span means "not given". The
/// views are read or written during the backward call only.
template <class Scalar>
struct BackwardOptions {
  /// In, empty or n x h: dL/dh_T from a later chunk (empty: 0). Must be finite. With
  /// x.lengths it is the gradient of each sequence's own final state, entering at its last step.
  Span<const Scalar> dh_T;
  /// The strategy (nullptr: Full). Pointed to, not copied (copying a randomized schedule would
  /// allocate in every training step): it must outlive the backward call.
  const Truncation* truncation = nullptr;
  /// Global index of the step before this sequence (>= 0): aligns Regular blocks and keys
  /// Randomized draws.
  std::int64_t step_offset = 0;
  /// Out, empty or n x h: dL/dh_0 (overwritten), including what flows into the rows that x.resets
  /// restored from h0. Refused after a forward whose resets restored zeros (resets_to_zero).
  Span<Scalar> dh0;
  /// Out, empty or T x n x d: dL/dx_t for dense input (overwritten); token input refuses it.
  Span<Scalar> dx;
  /// Fill ws.dh_norms with ||dL/dh_t|| (Full, Randomized or Regular(k, k) only).
  bool record_dh_norms = false;
};

/// BPTT from ws.dO. Overwrites dparams (layout.total values, same layout as params, which must
/// be the parameters of the forward) with dL/dparams, and dh0 / dx when given. Afterwards
/// ws.flow (xi_t) and ws.windows hold the schedule that was run.
/// Throws StateError with no forward or no dL/do yet; InvalidArgument for a length that
/// disagrees, step_offset < 0, dx for token input, record_dh_norms for overlapping windows.
template <class Scalar>
RNNBPTT_EXPORT void rnn_backward(Span<detail::identity_t<Scalar>> dparams, Workspace<Scalar>& ws,
                                 const ModelConfig& config, const ParameterLayout& layout,
                                 Span<const detail::identity_t<Scalar>> params,
                                 const BackwardOptions<detail::identity_t<Scalar>>& options);

// ---- The Model: what most C++ users want ----

/// Parameters, gradients and a workspace, with forward / loss / backward.
///
/// Results and lifetimes: outputs() and final_state() are views of the workspace, valid until
/// the next forward() (or the Model's destruction); parameters() and gradients() are views
/// valid as long as the Model (their length never changes); gradients() is overwritten by
/// backward(). Dense input given to forward() must stay alive and unchanged until the last
/// backward() after it; token ids, targets, h0, d_outputs and the options' views are read
/// during their call only.
///
/// Thread safety: one Model per thread (no call on one Model may overlap another call on it,
/// including const ones during a non-const one). Const calls alone may run concurrently.
/// A Predictor reading a Model counts as a const call.
template <class Scalar>
class RNNBPTT_EXPORT Model {
 public:
  /// Validates `config` (InvalidArgument, SizeError) and allocates the parameters and
  /// gradients (AllocationError), zero-initialized.
  explicit Model(const ModelConfig& config);

  const ModelConfig& config() const { return config_; }
  const ParameterLayout& layout() const { return layout_; }
  Index num_parameters() const { return layout_.total; }
  /// num_parameters() values in the layout of ParameterLayout; valid as long as the Model.
  Span<Scalar> parameters() { return {params_.data(), layout_.total}; }
  Span<const Scalar> parameters() const { return {params_.data(), layout_.total}; }
  /// num_parameters() values: dL/dparams of the last backward(); valid as long as the Model.
  Span<Scalar> gradients() { return {grads_.data(), layout_.total}; }
  Span<const Scalar> gradients() const { return {grads_.data(), layout_.total}; }
  ParameterViews<Scalar> parameter_views() { return {params_.data(), layout_}; }
  ParameterViews<Scalar> gradient_views() { return {grads_.data(), layout_}; }
  /// Copies `values` (exactly num_parameters() values) into the parameters. Non-finite values
  /// are accepted as they are (a caller may study them); generate() refuses them.
  void set_parameters(Span<const Scalar> values);

  /// Weights ~ U(-bound, bound) (PyTorch's nn.RNN default is bound = 1/sqrt(h)); biases too:
  /// (2 u - 1) bound for u = Random(seed).uniform() in the flat order, so a seed gives the same
  /// weights everywhere (rnnbptt/core/random.hpp). bound must be finite, >= 0 and at most the
  /// largest finite Scalar (InvalidArgument).
  void init_uniform(double bound, std::uint64_t seed);
  /// Weights ~ N(0, init_std^2), biases 0 (d2l's initialization with std = 0.01): init_std
  /// times Random(seed).normal() for each weight in the flat order, so a seed gives the same
  /// weights everywhere. init_std must be finite and >= 0, and every draw finite in Scalar
  /// (else nothing is changed).
  void init_normal(double init_std, std::uint64_t seed);

  /// Runs the sequence from h0 (empty: zeros; else n x h finite values). See rnn_forward for
  /// the checks. Invalidates the previous outputs(), final_state() and dL/do.
  void forward(const SequenceInput<Scalar>& x, Span<const Scalar> h0 = {});
  Index steps() const { return ws_.steps; }  ///< T of the last forward
  Index batch() const { return ws_.batch; }  ///< n of the last forward
  /// T x n x q outputs of the last forward; valid until the next forward(). StateError before
  /// any forward.
  Span<const Scalar> outputs() const;
  /// The whole final state (config.state_size(n) values: n x h for one Elman layer) of the
  /// last forward: h_T, or with x.lengths each sequence's state after its own last step; valid
  /// until the next forward(). StateError before any.
  Span<const Scalar> final_state() const;
  /// T x n x h: h_1 .. h_T of the last forward (every step's hidden state, time-major, of the
  /// top layer; without lengths the last n x h values are one Elman layer's final_state(); a
  /// sequence's steps past its length continue from its last step and are not used); valid
  /// until the next forward(). StateError before any.
  Span<const Scalar> states() const;
  /// L for the last forward; prepares dL/do for backward(). See loss_forward.
  double loss(const Targets<Scalar>& y);
  /// For a loss computed elsewhere: dL/do_t, T x n x q finite values (copied).
  void set_output_gradient(Span<const Scalar> d_outputs);
  /// Overwrites gradients() with dL/dparams. See rnn_backward.
  void backward(const BackwardOptions<Scalar>& options = BackwardOptions<Scalar>());

  /// The activations and scratch of the last calls (read-only; valid until the next call).
  const Workspace<Scalar>& workspace() const { return ws_; }

 private:
  ModelConfig config_;
  ParameterLayout layout_;
  Buffer<Scalar> params_;
  Buffer<Scalar> grads_;
  Workspace<Scalar> ws_;
};

}  // namespace rnnbptt
