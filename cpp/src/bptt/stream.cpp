#include "rnnbptt/bptt/stream.hpp"

#include <algorithm>

#include "core/checks.hpp"
#include "core/finite.hpp"
#include "rnnbptt/core/error.hpp"

namespace rnnbptt {

using detail::invalid;

template <class Scalar>
StreamRunner<Scalar>::StreamRunner(const ModelConfig& config, Truncation truncation)
    : config_(config), layout_(config), truncation_(std::move(truncation)) {}

template <class Scalar>
void StreamRunner<Scalar>::check_model(const Model<Scalar>& model) const {
  const ModelConfig& c = model.config();
  if (c.input_size != config_.input_size || c.hidden_size != config_.hidden_size ||
      c.output_size != config_.output_size || c.activation != config_.activation || c.bias != config_.bias)
    invalid("model: expected the configuration the runner was built for (d=", config_.input_size,
            ", h=", config_.hidden_size, ", q=", config_.output_size, "), got d=", c.input_size, ", h=", c.hidden_size,
            ", q=", c.output_size);
}

template <class Scalar>
void StreamRunner<Scalar>::reset(std::int64_t position) {
  if (position < 0) invalid("position: expected a global step index >= 0, got ", position);
  truncation_.check_chunk(static_cast<Index>(position), "position");
  std::fill(state_.begin(), state_.end(), Scalar(0));
  history_ = 0;
  batch_ = 0;
  input_kind_ = -1;
  position_ = position;
  ws_.has_forward = false;
}

template <class Scalar>
void StreamRunner<Scalar>::restore(std::int64_t position, Index batch, Span<const Scalar> state, Index history,
                                   Span<const std::int64_t> history_tokens, Span<const Scalar> history_states) {
  // Everything is checked and every buffer grown before anything changes: a restore that
  // throws leaves the runner as it was.
  if (position < 0) invalid("position: expected a global step index >= 0, got ", position);
  truncation_.check_chunk(static_cast<Index>(position), "position");
  const Index h = config_.hidden_size, keep = truncation_.history_steps();
  if (batch < 1) invalid("state: expected at least one sequence (n >= 1), got n = ", batch);
  if (history < 0 || history > keep)
    invalid("history: expected 0 to ", keep, " steps for ", truncation_.to_string(), ", got ", history);
  if (history > position) invalid("history: expected at most the ", position, " steps consumed, got ", history);
  const Index state_size = detail::checked_size("state", "the carried state n x h", {batch, h}, sizeof(Scalar));
  detail::check_span("state", state, {batch, h}, "n x h");
  detail::check_finite("state", state.data(), {batch, h});
  if (history == 0) {
    if (!history_tokens.empty())
      invalid("history inputs: expected no ids with history = 0, got ", history_tokens.size());
    if (!history_states.empty())
      invalid("history states: expected no states with history = 0, got ", history_states.size(), " values");
  } else {
    detail::check_span("history inputs", history_tokens, {history, batch}, "history x n");
    detail::check_span("history states", history_states, {history + 1, batch, h}, "(history + 1) x n x h");
    detail::check_finite("history states", history_states.data(), {history + 1, batch, h});
    if (!std::equal(state.begin(), state.end(), history_states.begin() + history * batch * h))
      invalid("history states: expected the last row to equal state (the carried h_t), got another");
    for (Index i = 0; i < history * batch; ++i)
      if (history_tokens[i] < 0 || history_tokens[i] >= config_.input_size)
        invalid("history inputs: expected token ids in [0, ", config_.input_size, "), got ", history_tokens[i], " at [",
                i / batch, ", ", i % batch, "]");
    detail::grow_buffer(token_history_, detail::checked_size("history", "the token history", {history, batch}, 8),
                        "history", "the token history");
    detail::grow_buffer(ws_.H,
                        detail::checked_size("history", "the history states", {history + 1, batch, h}, sizeof(Scalar)),
                        "history", "the history states");
  }
  detail::grow_buffer(state_, state_size, "state", "the carried state n x h");

  reset(position);
  state_.resize(static_cast<std::size_t>(state_size));
  std::copy(state.begin(), state.end(), state_.begin());
  if (history > 0) {
    std::copy(history_tokens.begin(), history_tokens.end(), token_history_.begin());
    std::copy(history_states.begin(), history_states.end(), ws_.H.begin());
    input_kind_ = 1;
  }
  history_ = history;
  batch_ = batch;
}

template <class Scalar>
Span<const std::int64_t> StreamRunner<Scalar>::history_tokens() const {
  if (input_kind_ != 1 || history_ == 0) return {};
  return {token_history_.data(), history_ * batch_};
}

template <class Scalar>
Span<const Scalar> StreamRunner<Scalar>::history_states() const {
  if (history_ == 0) return {};
  return {ws_.H.data(), (history_ + 1) * batch_ * config_.hidden_size};
}

template <class Scalar>
Span<const Scalar> StreamRunner<Scalar>::state() const {
  if (batch_ == 0) return {};
  return {state_.data(), batch_ * config_.hidden_size};
}

template <class Scalar>
double StreamRunner<Scalar>::step(Span<const Scalar> params, Span<Scalar> dparams, const SequenceInput<Scalar>& x,
                                  const Targets<Scalar>& y) {
  detail::check_span("params", params, {layout_.total}, "num_parameters");
  detail::check_span("dparams", dparams, {layout_.total}, "num_parameters");
  if (x.steps <= 0) invalid("x: expected at least one time step (T >= 1), got T = ", x.steps);
  if (x.batch <= 0) invalid("x: expected at least one sequence (n >= 1), got n = ", x.batch);
  if (batch_ != 0 && x.batch != batch_)
    invalid("x: expected the stream's batch size n = ", batch_, ", got n = ", x.batch,
            " (reset() starts a new stream)");
  const int kind = x.is_tokens() ? 1 : 0;
  if (input_kind_ >= 0 && kind != input_kind_)
    invalid("x: expected ", input_kind_ == 1 ? "token ids" : "dense values", " as in the stream's earlier chunks, got ",
            kind == 1 ? "token ids" : "dense values");
  truncation_.check_chunk(x.steps, "x: the chunk length T");

  const Index n = x.batch, h = config_.hidden_size, d = config_.input_size;
  // The chunk's lengths are checked before it is copied into the history.
  if (kind == 1)
    detail::check_ids("x", x.tokens, {x.steps, n}, "T x n");
  else
    detail::check_span("x", x.dense, {x.steps, n, d}, "T x n x d");
  // Sizes checked before anything grows (the forward pass checks its own buffers).
  const Index state_size = detail::checked_size("x", "the carried state n x h", {n, h}, sizeof(Scalar));
  const Index keep = truncation_.history_steps();
  const Index total = detail::checked_add("x", "the history and chunk steps", history_, x.steps);
  const Index token_size =
      kind == 0 ? 0 : detail::checked_size("x", "the token history T x n", {total, n}, sizeof(std::int64_t));
  const Index dense_size =
      kind == 1 ? 0 : detail::checked_size("x", "the input history T x n x d", {total, n, d}, sizeof(Scalar));
  if (state_.size() != static_cast<std::size_t>(state_size)) {
    detail::grow_buffer(state_, state_size, "x", "the carried state n x h");
    state_.resize(static_cast<std::size_t>(state_size));
    std::fill(state_.begin(), state_.end(), Scalar(0));
  }

  SequenceInput<Scalar> input = x;
  if (keep > 0) {
    // History (already at the front of the buffer) followed by this chunk.
    if (kind == 1) {
      detail::grow_buffer(token_history_, token_size, "x", "the token history T x n");
      for (Index i = 0; i < x.steps * n; ++i) token_history_[history_ * n + i] = x.tokens[i];
      input = SequenceInput<Scalar>::from_tokens(Span<const std::int64_t>(token_history_.data(), total * n), total, n);
    } else {
      detail::grow_buffer(dense_history_, dense_size, "x", "the input history T x n x d");
      std::copy(x.dense.begin(), x.dense.end(), dense_history_.begin() + history_ * n * d);
      input = SequenceInput<Scalar>::from_dense(Span<const Scalar>(dense_history_.data(), total * n * d), total, n);
    }
  }
  rnn_forward(ws_, config_, layout_, params, input,
              history_ == 0 ? Span<const Scalar>(state_.data(), state_size) : Span<const Scalar>(), history_);
  const double loss = loss_forward(ws_, config_, y);
  BackwardOptions<Scalar> options;
  options.truncation = &truncation_;
  options.step_offset = position_ - history_;
  rnn_backward(dparams, ws_, config_, layout_, params, options);

  // Commit: carry the state, keep the last `keep` steps of history at the buffers' front.
  std::copy(ws_.H.begin() + total * n * h, ws_.H.begin() + (total + 1) * n * h, state_.begin());
  const Index kept = std::min(keep, total);
  if (kept > 0 && total > kept) {  // else the history already sits at the front
    const Index from = total - kept;
    std::copy(ws_.H.begin() + from * n * h, ws_.H.begin() + (total + 1) * n * h, ws_.H.begin());
    if (kind == 1)
      std::copy(token_history_.begin() + from * n, token_history_.begin() + total * n, token_history_.begin());
    else
      std::copy(dense_history_.begin() + from * n * d, dense_history_.begin() + total * n * d, dense_history_.begin());
  }
  history_ = kept;
  batch_ = n;
  input_kind_ = kind;
  position_ += x.steps;
  return loss;
}

template <class Scalar>
std::size_t StreamRunner<Scalar>::memory_bytes() const {
  return ws_.bytes() + state_.capacity() * sizeof(Scalar) + dense_history_.capacity() * sizeof(Scalar) +
         token_history_.capacity() * sizeof(std::int64_t);
}

template class RNNBPTT_EXPORT StreamRunner<float>;
template class RNNBPTT_EXPORT StreamRunner<double>;

}  // namespace rnnbptt
