#include "rnnbptt/stream.hpp"

#include <algorithm>

#include "rnnbptt/error.hpp"

namespace rnnbptt {

using detail::invalid;

template <class Scalar>
StreamRunner<Scalar>::StreamRunner(const ModelConfig& config, Truncation truncation)
    : config_(config), layout_(config), truncation_(std::move(truncation)) {}

template <class Scalar>
void StreamRunner<Scalar>::check_model(const Model<Scalar>& model) const {
  const ModelConfig& c = model.config();
  if (c.input_size != config_.input_size || c.hidden_size != config_.hidden_size ||
      c.output_size != config_.output_size || c.activation != config_.activation ||
      c.bias != config_.bias)
    invalid("model: expected the configuration the runner was built for (d=", config_.input_size,
            ", h=", config_.hidden_size, ", q=", config_.output_size, "), got d=", c.input_size,
            ", h=", c.hidden_size, ", q=", c.output_size);
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
double StreamRunner<Scalar>::step(const Scalar* params, Scalar* dparams,
                                  const SequenceInput<Scalar>& x, const Targets<Scalar>& y) {
  if (x.steps <= 0) invalid("x: expected at least one time step (T >= 1), got T = ", x.steps);
  if (x.batch <= 0) invalid("x: expected at least one sequence (n >= 1), got n = ", x.batch);
  if (batch_ != 0 && x.batch != batch_)
    invalid("x: expected the stream's batch size n = ", batch_, ", got n = ", x.batch,
            " (reset() starts a new stream)");
  const int kind = x.is_tokens() ? 1 : 0;
  if (input_kind_ >= 0 && kind != input_kind_)
    invalid("x: expected ", input_kind_ == 1 ? "token ids" : "dense values",
            " as in the stream's earlier chunks, got ", kind == 1 ? "token ids" : "dense values");
  truncation_.check_chunk(x.steps, "x: the chunk length T");

  const Index n = x.batch, h = config_.hidden_size, d = config_.input_size;
  if (state_.size() != static_cast<std::size_t>(n * h)) state_.assign(n * h, Scalar(0));
  const Index keep = truncation_.history_steps();
  const Index total = history_ + x.steps;

  SequenceInput<Scalar> input = x;
  if (keep > 0) {
    // History (already at the front of the buffer) followed by this chunk.
    if (kind == 1) {
      if (token_history_.size() < static_cast<std::size_t>(total * n)) token_history_.resize(total * n);
      for (Index i = 0; i < x.steps * n; ++i) token_history_[history_ * n + i] = x.tokens[i];
      input = SequenceInput<Scalar>::from_tokens(token_history_.data(), IdType::int64, total, n);
    } else {
      if (dense_history_.size() < static_cast<std::size_t>(total * n * d))
        dense_history_.resize(total * n * d);
      std::copy(x.dense, x.dense + x.steps * n * d, dense_history_.begin() + history_ * n * d);
      input = SequenceInput<Scalar>::from_dense(dense_history_.data(), total, n);
    }
  }
  rnn_forward(ws_, config_, layout_, params, input, history_ == 0 ? state_.data() : nullptr,
              history_);
  const double loss = loss_forward(ws_, config_, y);
  BackwardOptions<Scalar> options;
  options.truncation = &truncation_;
  options.step_offset = position_ - history_;
  rnn_backward(dparams, ws_, config_, layout_, params, options);

  // Commit: carry the state, keep the last `keep` steps of history at the buffers' front.
  std::copy(ws_.H.begin() + total * n * h, ws_.H.begin() + (total + 1) * n * h, state_.begin());
  const Index kept = std::min(keep, total);
  if (kept > 0) {
    const Index from = total - kept;
    std::copy(ws_.H.begin() + from * n * h, ws_.H.begin() + (total + 1) * n * h, ws_.H.begin());
    if (kind == 1)
      std::copy(token_history_.begin() + from * n, token_history_.begin() + total * n,
                token_history_.begin());
    else
      std::copy(dense_history_.begin() + from * n * d, dense_history_.begin() + total * n * d,
                dense_history_.begin());
  }
  history_ = kept;
  batch_ = n;
  input_kind_ = kind;
  position_ += x.steps;
  return loss;
}

template <class Scalar>
std::size_t StreamRunner<Scalar>::memory_bytes() const {
  return ws_.bytes() + state_.capacity() * sizeof(Scalar) +
         dense_history_.capacity() * sizeof(Scalar) + token_history_.capacity() * sizeof(std::int64_t);
}

template class StreamRunner<float>;
template class StreamRunner<double>;

}  // namespace rnnbptt
