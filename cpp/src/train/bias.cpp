#include "rnnbptt/train/bias.hpp"

#include <cmath>
#include <limits>

#include "rnnbptt/core/buffer.hpp"
#include "rnnbptt/core/error.hpp"
#include "rnnbptt/core/params.hpp"

namespace rnnbptt {

using detail::invalid;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

Index truncation_bias_draws(const Truncation& truncation, Index asked) {
  const bool randomized = truncation.kind() == Truncation::Kind::randomized;
  if (asked < 0) invalid("draws: expected 0 (the default) or a positive count, got ", asked);
  if (asked == 0) return randomized ? kDefaultBiasDraws : 1;
  if (randomized && asked < 2)
    invalid("draws: expected at least 2 draws of ", truncation.to_string(), " (the standard error needs two), got ",
            asked);
  if (!randomized && asked != 1)
    invalid("draws: expected 1 for the deterministic strategy ", truncation.to_string(), ", got ", asked);
  return asked;
}

namespace {

// The sums over [begin, end) that one BiasMeasure needs.
struct Sums {
  double full = 0.0, mean = 0.0, difference = 0.0, dot = 0.0, variance = 0.0;
};

Sums sums_over(const Buffer<double>& full, const Buffer<double>& mean, const Buffer<double>& m2, Index draws,
               Index begin, Index end) {
  Sums s;
  for (Index j = begin; j < end; ++j) {
    const double f = full[j], g = mean[j], d = g - f;
    s.full += f * f;
    s.mean += g * g;
    s.difference += d * d;
    s.dot += g * f;
    if (draws > 1) s.variance += m2[j] / static_cast<double>(draws - 1);
  }
  return s;
}

BiasMeasure measure_of(const Sums& s, Index draws) {
  BiasMeasure m;
  m.full_norm = std::sqrt(s.full);
  m.mean_norm = std::sqrt(s.mean);
  m.difference_norm = std::sqrt(s.difference);
  m.relative = m.full_norm > 0.0 ? m.difference_norm / m.full_norm : kNaN;
  m.cosine = m.full_norm > 0.0 && m.mean_norm > 0.0 ? s.dot / (m.mean_norm * m.full_norm) : kNaN;
  const double noise = draws > 1 ? std::sqrt(s.variance / static_cast<double>(draws)) : 0.0;
  m.standard_error = m.full_norm > 0.0 ? noise / m.full_norm : kNaN;
  return m;
}

}  // namespace

template <class Scalar>
TruncationBias truncation_bias(Model<Scalar>& model, const SequenceInput<Scalar>& x, const Targets<Scalar>& y,
                               const Truncation& truncation, const BiasOptions<Scalar>& options) {
  truncation_bias_draws(truncation, options.draws);  // before anything runs
  if (options.step_offset < 0) invalid("step_offset: expected a global step index >= 0, got ", options.step_offset);
  model.forward(x, options.h0);
  return truncation_bias(model, y, truncation, options);
}

template <class Scalar>
TruncationBias truncation_bias(Model<Scalar>& model, const Targets<Scalar>& y, const Truncation& truncation,
                               const BiasOptions<Scalar>& options) {
  const Index draws = truncation_bias_draws(truncation, options.draws);
  if (options.step_offset < 0) invalid("step_offset: expected a global step index >= 0, got ", options.step_offset);
  const Index P = model.num_parameters();
  Buffer<double> full, mean, m2;
  detail::grow_buffer(full, P, "truncation_bias", "the Full gradient in double");
  detail::grow_buffer(mean, P, "truncation_bias", "the mean of the draws in double");
  if (draws > 1) detail::grow_buffer(m2, P, "truncation_bias", "the draws' squared deviations in double");

  TruncationBias result;
  result.truncation = truncation.to_string();
  result.draws = draws;
  result.loss = model.loss(y);
  BackwardOptions<Scalar> backward;  // Full: no truncation
  backward.step_offset = options.step_offset;
  model.backward(backward);
  const Span<const Scalar> g = model.gradients();
  for (Index j = 0; j < P; ++j) full[j] = static_cast<double>(g[j]);

  // Welford's update per parameter (mean, m2) and for the draws' own relative errors.
  double relative_mean = 0.0, relative_m2 = 0.0;
  double full_squares = 0.0;
  for (Index j = 0; j < P; ++j) full_squares += full[j] * full[j];
  const double full_norm = std::sqrt(full_squares);
  for (Index i = 0; i < draws; ++i) {
    // Draw i of a Randomized strategy uses seed + i (unsigned: wraps modulo 2^64).
    const Truncation draw =
        truncation.kind() == Truncation::Kind::randomized
            ? Truncation::randomized(truncation.keep_probability(), truncation.seed() + static_cast<std::uint64_t>(i))
            : truncation;
    backward.truncation = &draw;
    model.backward(backward);
    const double count = static_cast<double>(i + 1);
    double difference = 0.0;
    for (Index j = 0; j < P; ++j) {
      const double value = static_cast<double>(g[j]);
      const double d = value - full[j];
      difference += d * d;
      const double delta = value - mean[j];
      mean[j] += delta / count;
      if (draws > 1) m2[j] += delta * (value - mean[j]);
    }
    const double relative = full_norm > 0.0 ? std::sqrt(difference) / full_norm : kNaN;
    const double delta = relative - relative_mean;
    relative_mean += delta / count;
    relative_m2 += delta * (relative - relative_mean);
  }
  result.draw_relative_mean = relative_mean;
  result.draw_relative_variance = draws > 1 ? relative_m2 / static_cast<double>(draws - 1) : 0.0;

  result.total = measure_of(sums_over(full, mean, m2, draws, 0, P), draws);
  for (const Tensor& t : model.layout().tensors) {
    if (t.size() == 0) continue;  // a bias the model does not have
    result.parameters.push_back(
        {t.name, measure_of(sums_over(full, mean, m2, draws, t.offset, t.offset + t.size()), draws)});
  }
  // Leave the Full gradient in the model, exactly (every Scalar is a double).
  Span<Scalar> out = model.gradients();
  for (Index j = 0; j < P; ++j) out[j] = static_cast<Scalar>(full[j]);
  return result;
}

template RNNBPTT_EXPORT TruncationBias truncation_bias<float>(Model<float>&, const SequenceInput<float>&,
                                                              const Targets<float>&, const Truncation&,
                                                              const BiasOptions<float>&);
template RNNBPTT_EXPORT TruncationBias truncation_bias<double>(Model<double>&, const SequenceInput<double>&,
                                                               const Targets<double>&, const Truncation&,
                                                               const BiasOptions<double>&);
template RNNBPTT_EXPORT TruncationBias truncation_bias<float>(Model<float>&, const Targets<float>&, const Truncation&,
                                                              const BiasOptions<float>&);
template RNNBPTT_EXPORT TruncationBias truncation_bias<double>(Model<double>&, const Targets<double>&,
                                                               const Truncation&, const BiasOptions<double>&);

}  // namespace rnnbptt
