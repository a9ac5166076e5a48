// Inference: a Predictor that carries one sequence's state from call to call, the pieces of
// decoding (softmax with a temperature, argmax, a portable generator, sampling) and generate(),
// which makes the same forward calls as python/rnnbptt/generate.py.
#include "rnnbptt/io/inference.hpp"

#include <algorithm>
#include <cmath>
#include <new>

#include "core/checks.hpp"
#include "core/finite.hpp"
#include "rnnbptt/core/error.hpp"

namespace rnnbptt {

using detail::invalid;

// ---- Predictor ----------------------------------------------------------------------------

template <class Scalar>
Predictor<Scalar>::Predictor(const Model<Scalar>& model) : model_(&model) {
  const ModelConfig& c = model.config();
  detail::grow_buffer(
      state_,
      detail::checked_size("model", "the state", {c.state_parts(), c.num_layers, c.hidden_size}, sizeof(Scalar)),
      "model", "the state");
  std::fill(state_.begin(), state_.end(), Scalar(0));
  // The buffers of a one-step forward, so that step() does not allocate.
  ws_.reserve(c, 1, 1, 0);
  detail::grow_buffer(ws_.ids, 1, "model", "the token id of one step");
}

template <class Scalar>
void Predictor<Scalar>::reset() {
  std::fill(state_.begin(), state_.end(), Scalar(0));
}

template <class Scalar>
void Predictor<Scalar>::set_state(Span<const Scalar> h) {
  const ModelConfig& c = model_->config();
  detail::check_span("h", h, {c.state_size(1)}, "the state of one sequence");
  detail::check_state_finite("h", h.data(), c, 1);
  std::copy(h.begin(), h.end(), state_.begin());
}

template <class Scalar>
Span<const Scalar> Predictor<Scalar>::state() const {
  return {state_.data(), model_->config().state_size(1)};
}

template <class Scalar>
Span<const Scalar> Predictor<Scalar>::run(const SequenceInput<Scalar>& x) {
  const ModelConfig& c = model_->config();
  const Index h = c.hidden_size, q = c.output_size, T = x.steps, size = c.state_size(1);
  rnn_forward(ws_, c, model_->layout(), model_->parameters(), x, Span<const Scalar>(state_.data(), size), 0);
  // n = 1: one Elman layer's h_T is row T of the states; a stack's whole state is ws.state_T.
  // o_T is row T - 1 of the outputs.
  const Scalar* last = c.single_elman() ? ws_.H.data() + T * h : ws_.state_T.data();
  std::copy(last, last + size, state_.begin());
  return {ws_.O.data() + (T - 1) * q, q};
}

template <class Scalar>
Span<const Scalar> Predictor<Scalar>::feed(Span<const std::int64_t> tokens) {
  if (tokens.size() < 0) invalid("tokens: expected at least one token id, got a negative length ", tokens.size());
  if (tokens.size() == 0) invalid("tokens: expected at least one token id, got none");
  detail::check_span("tokens", tokens, {tokens.size()}, "T");
  const Index d = model_->config().input_size;
  for (Index i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= d)
      invalid("tokens: expected token ids in [0, ", d, "), got ", tokens[i], " at [", i, "]");
  return run(SequenceInput<Scalar>::from_tokens(tokens, tokens.size(), 1));
}

template <class Scalar>
Span<const Scalar> Predictor<Scalar>::step(std::int64_t token) {
  const Index d = model_->config().input_size;
  if (token < 0 || token >= d) invalid("token: expected a token id in [0, ", d, "), got ", token);
  token_ = token;
  return run(SequenceInput<Scalar>::from_tokens(Span<const std::int64_t>(&token_, 1), 1, 1));
}

template <class Scalar>
Span<const Scalar> Predictor<Scalar>::step_dense(Span<const Scalar> x) {
  const Index d = model_->config().input_size;
  detail::check_span("x", x, {d}, "input_size");
  detail::check_finite("x", x.data(), {d});
  return run(SequenceInput<Scalar>::from_dense(x, 1, 1));
}

// ---- softmax, argmax, Random, sample ---------------------------------------------------------

namespace {

template <class Scalar>
void check_values(const char* name, Span<const Scalar> values) {
  if (values.size() < 0) invalid(name, ": expected at least one value, got a negative length ", values.size());
  if (values.size() == 0) invalid(name, ": expected at least one value, got none");
  detail::check_span(name, values, {values.size()}, "size");
}

}  // namespace

template <class Scalar>
void softmax(Span<const Scalar> logits, double temperature, Span<Scalar> out) {
  check_values("logits", logits);
  const Index q = logits.size();
  detail::check_span("out", out, {q}, "the length of logits");
  if (!(temperature > 0.0) || !std::isfinite(temperature))
    invalid("temperature: expected a finite value > 0, got ", temperature);
  detail::check_finite("logits", logits.data(), {q});
  // exp((l_i - max l) / temperature): every exponent <= 0 (the largest exactly 0), so nothing
  // overflows whatever the temperature; -inf differences (doubles far apart) give 0.
  double top = static_cast<double>(logits[0]);
  for (Index i = 1; i < q; ++i) top = std::max(top, static_cast<double>(logits[i]));
  double sum = 0.0;
  for (Index i = 0; i < q; ++i) sum += std::exp((static_cast<double>(logits[i]) - top) / temperature);
  // Second pass: out may be the logits' own memory (each value is read before it is written).
  for (Index i = 0; i < q; ++i)
    out[i] = static_cast<Scalar>(std::exp((static_cast<double>(logits[i]) - top) / temperature) / sum);
}

template <class Scalar>
Index argmax(Span<const Scalar> logits) {
  check_values("logits", logits);
  Index best = 0;
  for (Index i = 0; i < logits.size(); ++i) {
    if (std::isnan(logits[i])) return i;  // numpy.argmax: the first NaN is the maximum
    if (logits[i] > logits[best]) best = i;
  }
  return best;
}

template <class Scalar>
Index sample(Span<const Scalar> probabilities, Random& rng) {
  check_values("probabilities", probabilities);
  const Index q = probabilities.size();
  // Used as p / max(p) in double: no overflow of the sum, whatever the scale.
  double top = 0.0;
  for (Index i = 0; i < q; ++i) {
    const Scalar p = probabilities[i];
    if (!(p >= 0) || !std::isfinite(p)) invalid("probabilities: expected finite values >= 0, got ", p, " at [", i, "]");
    top = std::max(top, static_cast<double>(p));
  }
  if (!(top > 0.0)) invalid("probabilities: expected a positive sum, got 0");
  double sum = 0.0;
  for (Index i = 0; i < q; ++i) sum += static_cast<double>(probabilities[i]) / top;
  const double u = rng.uniform() * sum;
  double running = 0.0;
  Index last = 0;  // the last index with a positive probability: where rounding ends up
  for (Index i = 0; i < q; ++i) {
    const double p = static_cast<double>(probabilities[i]) / top;
    if (p <= 0.0) continue;
    running += p;
    last = i;
    if (u < running) return i;
  }
  return last;
}

// ---- generate ------------------------------------------------------------------------------

template <class Scalar>
std::vector<std::int64_t> generate(const Model<Scalar>& model, Span<const std::int64_t> prefix, Index count,
                                   const GenerateOptions& options) {
  const ModelConfig& c = model.config();
  const Index d = c.input_size, q = c.output_size;
  if (d != q)
    invalid(
        "model: expected token input and logits over the same vocabulary (input_size == output_size), got "
        "input_size = ",
        d, ", output_size = ", q);
  if (prefix.size() < 0) invalid("prefix: expected at least one token id, got a negative length ", prefix.size());
  if (prefix.size() == 0) invalid("prefix: expected at least one token id, got none");
  detail::check_span("prefix", prefix, {prefix.size()}, "size");
  for (Index i = 0; i < prefix.size(); ++i)
    if (prefix[i] < 0 || prefix[i] >= d)
      invalid("prefix: expected token ids in [0, ", d, "), got ", prefix[i], " at [", i, "]");
  if (count < 0) invalid("count: expected a number of tokens >= 0, got ", count);
  const double temperature = options.temperature;
  if (!(temperature >= 0.0) || !std::isfinite(temperature))
    invalid("temperature: expected a finite value >= 0, got ", temperature);
  // As Python's generate: parameters must be finite (the first bad value and its tensor).
  const Span<const Scalar> params = model.parameters();
  for (const Tensor& t : model.layout().tensors)
    for (Index i = 0; i < t.size(); ++i)
      if (!std::isfinite(params[t.offset + i]))
        invalid("model: expected finite parameters, got ", params[t.offset + i], " in ", t.name);

  std::vector<std::int64_t> produced;
  Buffer<double> logits, probabilities;  // q each, for sampling
  const std::size_t element = sizeof(std::int64_t);
  detail::checked_size("count", "the produced ids", {count}, element);
  try {
    produced.reserve(static_cast<std::size_t>(count));
  } catch (const std::bad_alloc&) {
    throw AllocationError(detail::concat("count: cannot allocate ", static_cast<std::size_t>(count) * element,
                                         " bytes for ", count, " token ids"));
  }
  if (temperature > 0.0) {
    const Index size = detail::checked_size("output_size", "the logits q", {q}, sizeof(double));
    detail::grow_buffer(logits, size, "output_size", "the logits q");
    detail::grow_buffer(probabilities, size, "output_size", "the probabilities q");
  }
  Random rng(options.seed);
  Predictor<Scalar> predictor(model);
  Span<const Scalar> out = predictor.feed(prefix);  // warm the state up on the prefix
  for (Index i = 0; i < count; ++i) {
    std::int64_t token;
    if (temperature == 0.0) {
      token = argmax(out);
    } else {
      for (Index j = 0; j < q; ++j) logits[j] = static_cast<double>(out[j]);
      softmax<double>(logits, temperature, probabilities);
      token = sample<double>(probabilities, rng);
    }
    produced.push_back(token);
    out = predictor.step(token);  // as Python, one step after every produced token
  }
  return produced;
}

#define RNNBPTT_INSTANTIATE(Scalar)                                                                                  \
  template class RNNBPTT_EXPORT Predictor<Scalar>;                                                                   \
  template RNNBPTT_EXPORT void softmax<Scalar>(Span<const Scalar>, double, Span<Scalar>);                            \
  template RNNBPTT_EXPORT Index argmax<Scalar>(Span<const Scalar>);                                                  \
  template RNNBPTT_EXPORT Index sample<Scalar>(Span<const Scalar>, Random&);                                         \
  template RNNBPTT_EXPORT std::vector<std::int64_t> generate<Scalar>(const Model<Scalar>&, Span<const std::int64_t>, \
                                                                     Index, const GenerateOptions&);
RNNBPTT_INSTANTIATE(float)
RNNBPTT_INSTANTIATE(double)
#undef RNNBPTT_INSTANTIATE

}  // namespace rnnbptt
