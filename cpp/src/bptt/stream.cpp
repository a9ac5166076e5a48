#include "rnnbptt/bptt/stream.hpp"

#include <algorithm>
#include <limits>

#include "bptt/layers.hpp"
#include "core/checks.hpp"
#include "core/finite.hpp"
#include "rnnbptt/core/error.hpp"

namespace rnnbptt {

using detail::invalid;

Index history_rows(const ModelConfig& config, Index k) {
  if (k <= 0) return 0;
  const Index steps1 = detail::checked_add("history", "the history rows", k, 1);
  if (config.single_elman()) return steps1;
  // Per layer: h (and c) at the k + 1 state rows, then per step the kept gate blocks and s_n.
  Index per_layer = detail::checked_size("history", "the history rows", {steps1, config.state_parts()}, 0);
  if (config.cell != Cell::elman)
    per_layer = detail::checked_add("history", "the history rows", per_layer,
                                    detail::checked_size("history", "the history rows",
                                                         {k, config.gates() + (config.cell == Cell::gru ? 1 : 0)}, 0));
  return detail::checked_size("history", "the history rows", {config.num_layers, per_layer}, 0);
}

template <class Scalar>
bool history_matches_state(const ModelConfig& config, Index k, Index n, Span<const Scalar> state,
                           Span<const Scalar> history_states) {
  const Index part = n * config.hidden_size, L = config.num_layers;
  if (k <= 0 || state.size() != config.state_size(n) || history_states.size() != history_rows(config, k) * part)
    return false;
  const Index per_layer = history_rows(config, k) / L;
  for (Index l = 0; l < L; ++l)
    for (Index c = 0; c < config.state_parts(); ++c) {
      // Row k of the layer's h (c: row 2 k + 1, after the k + 1 rows of h) is the carried state.
      const Scalar* row = history_states.data() + (l * per_layer + c * (k + 1) + k) * part;
      const Scalar* carried = state.data() + (c * L + l) * part;
      if (!std::equal(row, row + part, carried)) return false;
    }
  return true;
}

template RNNBPTT_EXPORT bool history_matches_state<float>(const ModelConfig&, Index, Index, Span<const float>,
                                                          Span<const float>);
template RNNBPTT_EXPORT bool history_matches_state<double>(const ModelConfig&, Index, Index, Span<const double>,
                                                           Span<const double>);

namespace {

// The gate values of a stack's history are activations: sigmoids in [0, 1] (GRU r, z; LSTM i,
// f, o) and tanh in [-1, 1] (GRU n; LSTM g). A value outside its range cannot have come from a
// forward pass, and the backward pass would read it as one (InvalidArgument naming the first).
template <class Scalar>
void check_history_gates(const ModelConfig& config, Index k, Index n, const Scalar* rows) {
  if (config.cell == Cell::elman || k <= 0) return;
  const Index h = config.hidden_size, part = n * h, G = config.gates(), L = config.num_layers;
  const Index per_layer = history_rows(config, k) / L;
  static const char* const gru[] = {"r", "z", "n"};
  static const char* const lstm[] = {"i", "f", "g", "o"};
  constexpr Index tanh_gate = 2;  // n (gru: r, z, n), g (lstm: i, f, g, o)
  // A few ulp of slack: vectorized exp and tanh are approximations.
  const Scalar slack = 16 * std::numeric_limits<Scalar>::epsilon();
  for (Index l = 0; l < L; ++l) {
    const Scalar* gates = rows + (l * per_layer + config.state_parts() * (k + 1)) * part;
    for (Index s = 0; s < k; ++s)
      for (Index g = 0; g < G; ++g) {
        const Scalar low = (g == tanh_gate ? Scalar(-1) : Scalar(0)) - slack, high = Scalar(1) + slack;
        const Scalar* block = gates + (s * G + g) * part;
        for (Index i = 0; i < part; ++i)
          if (!(block[i] >= low && block[i] <= high))
            invalid("history states: expected gate ", config.cell == Cell::gru ? gru[g] : lstm[g], " of layer ", l,
                    " at history step ", s, " in [", g == tanh_gate ? -1 : 0, ", 1] (",
                    g == tanh_gate ? "a tanh" : "a sigmoid", "), got ", block[i], " at sequence ", i / h, ", unit ",
                    i % h);
      }
  }
}

}  // namespace

template <class Scalar>
StreamRunner<Scalar>::StreamRunner(const ModelConfig& config, Truncation truncation)
    : config_(config), layout_(config), truncation_(std::move(truncation)) {}

template <class Scalar>
void StreamRunner<Scalar>::check_model(const Model<Scalar>& model) const {
  const ModelConfig& c = model.config();
  if (c.input_size != config_.input_size || c.hidden_size != config_.hidden_size ||
      c.output_size != config_.output_size || c.activation != config_.activation || c.bias != config_.bias ||
      c.cell != config_.cell || c.num_layers != config_.num_layers)
    invalid("model: expected the configuration the runner was built for (", to_string(config_.cell), " x ",
            config_.num_layers, ", d=", config_.input_size, ", h=", config_.hidden_size, ", q=", config_.output_size,
            ", ", to_string(config_.activation), config_.bias ? "" : ", no bias", "), got ", to_string(c.cell), " x ",
            c.num_layers, ", d=", c.input_size, ", h=", c.hidden_size, ", q=", c.output_size, ", ",
            to_string(c.activation), c.bias ? "" : ", no bias");
}

template <class Scalar>
void StreamRunner<Scalar>::reset(std::int64_t position) {
  if (position < 0) invalid("position: expected a global step index >= 0, got ", position);
  truncation_.check_chunk(static_cast<Index>(position), "position");
  std::fill(state_.begin(), state_.end(), Scalar(0));
  history_ = 0;
  history_resets_ = false;
  batch_ = 0;
  input_kind_ = -1;
  position_ = position;
  ws_.has_forward = false;
  ws_.has_schedule = false;  // the last chunk's windows are not this stream's
}

template <class Scalar>
void StreamRunner<Scalar>::restore_from(std::int64_t position, Index batch, Span<const Scalar> state, Index history,
                                        const SequenceInput<Scalar>& history_inputs,
                                        Span<const Scalar> history_states) {
  // Everything is checked and every buffer grown before anything changes: a restore that
  // throws leaves the runner as it was.
  if (position < 0) invalid("position: expected a global step index >= 0, got ", position);
  truncation_.check_chunk(static_cast<Index>(position), "position");
  const Index h = config_.hidden_size, keep = truncation_.history_steps();
  if (batch < 1) invalid("state: expected at least one sequence (n >= 1), got n = ", batch);
  if (history < 0 || history > keep)
    invalid("history: expected 0 to ", keep, " steps for ", truncation_.to_string(), ", got ", history);
  if (history > position) invalid("history: expected at most the ", position, " steps consumed, got ", history);
  const Index state_size = detail::checked_size("state", "the carried state",
                                                {config_.state_parts(), config_.num_layers, batch, h}, sizeof(Scalar));
  if (!detail::check_state("state", state, config_, batch))
    invalid("state: expected the carried state of n = ", batch, " sequences, got none");
  detail::check_state_finite("state", state.data(), config_, batch);
  const bool tokens = history_inputs.token_input;
  const Index d = config_.input_size;
  if (history == 0) {
    if (tokens && history_inputs.tokens.size != 0)
      invalid("history inputs: expected no ids with history = 0, got ", history_inputs.tokens.size);
    if (!tokens && !history_inputs.dense.empty())
      invalid("history inputs: expected no values with history = 0, got ", history_inputs.dense.size());
    if (!history_states.empty())
      invalid("history states: expected no states with history = 0, got ", history_states.size(), " values");
    if (history_inputs.resets.size() != 0)
      invalid("history resets: expected no flags with history = 0, got ", history_inputs.resets.size());
  } else {
    const Index rows = history_rows(config_, history);
    if (history_inputs.steps != history || history_inputs.batch != batch)
      invalid("history inputs: expected ", history, " steps of ", batch, " sequences, got ", history_inputs.steps,
              " of ", history_inputs.batch);
    if (tokens)
      detail::check_ids("history inputs", history_inputs.tokens, {history, batch}, "history x n");
    else
      detail::check_span("history inputs", history_inputs.dense, {history, batch, d}, "history x n x d");
    if (config_.single_elman())
      detail::check_span("history states", history_states, {history + 1, batch, h}, "(history + 1) x n x h");
    else
      detail::check_span("history states", history_states, {rows, batch, h}, "history rows x n x h");
    detail::check_finite("history states", history_states.data(), {rows, batch, h});
    if (!history_matches_state(config_, history, batch, state, history_states))
      invalid(config_.single_elman()
                  ? "history states: expected the last row to equal state (the carried h_t), got another"
                  : "history states: expected the rows of the carried state to equal state, got others");
    check_history_gates(config_, history, batch, history_states.data());
    if (detail::check_optional_span("history resets", history_inputs.resets, {history, batch}, "history x n")) {
      for (Index i = 0; i < history * batch; ++i)
        if (history_inputs.resets[i] > 1)
          invalid("history resets: expected flags 0 or 1, got ", int(history_inputs.resets[i]), " at [", i / batch,
                  ", ", i % batch, "]");
      detail::grow_buffer(reset_history_, history * batch, "history", "the reset history");
    }
    if (tokens) {
      for (Index i = 0; i < history * batch; ++i)
        if (history_inputs.tokens[i] < 0 || history_inputs.tokens[i] >= config_.input_size)
          invalid("history inputs: expected token ids in [0, ", config_.input_size, "), got ", history_inputs.tokens[i],
                  " at [", i / batch, ", ", i % batch, "]");
      detail::grow_buffer(token_history_, detail::checked_size("history", "the token history", {history, batch}, 8),
                          "history", "the token history");
    } else {
      detail::check_finite("history inputs", history_inputs.dense.data(), {history, batch, d});
      detail::grow_buffer(dense_history_,
                          detail::checked_size("history", "the input history", {history, batch, d}, sizeof(Scalar)),
                          "history", "the input history");
    }
    detail::grow_buffer(ws_.H,
                        detail::checked_size("history", "the history states", {history + 1, batch, h}, sizeof(Scalar)),
                        "history", "the history states");
    if (!config_.single_elman()) {
      const Index values = detail::checked_size("history", "the history rows", {rows, batch, h}, sizeof(Scalar));
      detail::grow_buffer(history_rows_, values, "history", "the history rows");
      detail::stack_history_unpack(ws_, config_, history, batch, history_states.data());  // grows, then copies
    }
  }
  detail::grow_buffer(state_, state_size, "state", "the carried state n x h");

  reset(position);
  state_.resize(static_cast<std::size_t>(state_size));
  std::copy(state.begin(), state.end(), state_.begin());
  if (history > 0) {
    if (tokens)
      for (Index i = 0; i < history * batch; ++i) token_history_[i] = history_inputs.tokens[i];
    else
      std::copy(history_inputs.dense.begin(), history_inputs.dense.end(), dense_history_.begin());
    if (config_.single_elman())
      std::copy(history_states.begin(), history_states.end(), ws_.H.begin());
    else
      std::copy(history_states.begin(), history_states.end(), history_rows_.begin());
    input_kind_ = tokens ? 1 : 0;
    if (history_inputs.resets.size() != 0) {
      std::copy(history_inputs.resets.begin(), history_inputs.resets.end(), reset_history_.begin());
      history_resets_ = std::any_of(history_inputs.resets.begin(), history_inputs.resets.end(),
                                    [](std::uint8_t flag) { return flag != 0; });
    }
  }
  history_ = history;
  batch_ = batch;
  ws_.has_schedule = false;
}

template <class Scalar>
Span<const std::uint8_t> StreamRunner<Scalar>::history_resets() const {
  if (!history_resets_ || history_ == 0) return {};
  return {reset_history_.data(), history_ * batch_};
}

template <class Scalar>
Span<const std::int64_t> StreamRunner<Scalar>::history_tokens() const {
  if (input_kind_ != 1 || history_ == 0) return {};
  return {token_history_.data(), history_ * batch_};
}

template <class Scalar>
Span<const Scalar> StreamRunner<Scalar>::history_dense_inputs() const {
  if (input_kind_ != 0 || history_ == 0) return {};
  return {dense_history_.data(), history_ * batch_ * config_.input_size};
}

template <class Scalar>
Span<const Scalar> StreamRunner<Scalar>::history_states() const {
  if (history_ == 0) return {};
  if (!config_.single_elman())
    return {history_rows_.data(), history_rows(config_, history_) * batch_ * config_.hidden_size};
  return {ws_.H.data(), (history_ + 1) * batch_ * config_.hidden_size};
}

template <class Scalar>
Span<const Scalar> StreamRunner<Scalar>::state() const {
  if (batch_ == 0) return {};
  return {state_.data(), config_.state_size(batch_)};
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
  if (x.lengths.size() != 0)
    invalid("lengths: expected none for a stream's chunk, got ", x.lengths.size(),
            " (a stream's sequences end and start at resets)");

  const Index n = x.batch, h = config_.hidden_size, d = config_.input_size;
  // The chunk's lengths are checked before it is copied into the history.
  if (kind == 1)
    detail::check_ids("x", x.tokens, {x.steps, n}, "T x n");
  else
    detail::check_span("x", x.dense, {x.steps, n, d}, "T x n x d");
  const bool chunk_resets = detail::check_optional_span("resets", x.resets, {x.steps, n}, "T x n");
  for (Index i = 0; chunk_resets && i < x.steps * n; ++i)
    if (x.resets[i] > 1)
      invalid("resets: expected flags 0 or 1 (T x n), got ", int(x.resets[i]), " at [", i / n, ", ", i % n, "]");
  // Sizes checked before anything grows (the forward pass checks its own buffers).
  const Index state_size =
      detail::checked_size("x", "the carried state", {config_.state_parts(), config_.num_layers, n, h}, sizeof(Scalar));
  const Index keep = truncation_.history_steps();
  const Index total = detail::checked_add("x", "the history and chunk steps", history_, x.steps);
  const Index token_size =
      kind == 0 ? 0 : detail::checked_size("x", "the token history T x n", {total, n}, sizeof(std::int64_t));
  const Index dense_size =
      kind == 1 ? 0 : detail::checked_size("x", "the input history T x n x d", {total, n, d}, sizeof(Scalar));
  if (keep > 0 && !config_.single_elman()) {
    const Index rows = history_rows(config_, std::min(keep, total));
    detail::grow_buffer(history_rows_, detail::checked_size("x", "the history rows", {rows, n, h}, sizeof(Scalar)), "x",
                        "the history rows");
  }
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
  // Resets over the history and the chunk, kept while the history holds one.
  const bool resets = keep > 0 && (chunk_resets || history_resets_);
  if (resets) {
    detail::grow_buffer(reset_history_, detail::checked_size("x", "the reset history T x n", {total, n}, 1), "x",
                        "the reset history T x n");
    if (!history_resets_) std::fill_n(reset_history_.begin(), history_ * n, std::uint8_t(0));
    if (chunk_resets)
      std::copy(x.resets.begin(), x.resets.end(), reset_history_.begin() + history_ * n);
    else
      std::fill_n(reset_history_.begin() + history_ * n, x.steps * n, std::uint8_t(0));
    input.resets = Span<const std::uint8_t>(reset_history_.data(), total * n);
  }
  // A reset restarts a sequence from zeros, not from the carried state (h0 here).
  rnn_forward(ws_, config_, layout_, params, input,
              history_ == 0 ? Span<const Scalar>(state_.data(), state_size) : Span<const Scalar>(), history_,
              /*resets_to_zero=*/true);
  const double loss = loss_forward(ws_, config_, y);
  BackwardOptions<Scalar> options;
  options.truncation = &truncation_;
  options.step_offset = position_ - history_;
  rnn_backward(dparams, ws_, config_, layout_, params, options);

  // Commit: carry the state, keep the last `keep` steps of history at the buffers' front.
  if (config_.single_elman())
    std::copy(ws_.H.begin() + total * n * h, ws_.H.begin() + (total + 1) * n * h, state_.begin());
  else
    std::copy(ws_.state_T.begin(), ws_.state_T.begin() + state_size, state_.begin());
  const Index kept = std::min(keep, total);
  if (kept > 0 && total > kept) {  // else the history already sits at the front
    const Index from = total - kept;
    if (config_.single_elman())
      std::copy(ws_.H.begin() + from * n * h, ws_.H.begin() + (total + 1) * n * h, ws_.H.begin());
    else
      detail::stack_history_shift(ws_, config_, from, kept, n);
    if (kind == 1)
      std::copy(token_history_.begin() + from * n, token_history_.begin() + total * n, token_history_.begin());
    else
      std::copy(dense_history_.begin() + from * n * d, dense_history_.begin() + total * n * d, dense_history_.begin());
    if (resets)
      std::copy(reset_history_.begin() + from * n, reset_history_.begin() + total * n, reset_history_.begin());
  }
  history_resets_ = resets && std::any_of(reset_history_.begin(), reset_history_.begin() + kept * n,
                                          [](std::uint8_t flag) { return flag != 0; });
  if (kept > 0 && !config_.single_elman())
    detail::stack_history_pack(ws_, config_, kept, n, history_rows_.data());  // sized before the forward pass
  history_ = kept;
  batch_ = n;
  input_kind_ = kind;
  position_ += x.steps;
  return loss;
}

template <class Scalar>
std::size_t StreamRunner<Scalar>::memory_bytes() const {
  return ws_.bytes() + state_.capacity() * sizeof(Scalar) + dense_history_.capacity() * sizeof(Scalar) +
         token_history_.capacity() * sizeof(std::int64_t) + history_rows_.capacity() * sizeof(Scalar) +
         reset_history_.capacity();
}

template class RNNBPTT_EXPORT StreamRunner<float>;
template class RNNBPTT_EXPORT StreamRunner<double>;

}  // namespace rnnbptt
