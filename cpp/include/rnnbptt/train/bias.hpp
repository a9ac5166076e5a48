/// @file bias.hpp
/// @brief The truncation-bias meter (docs/design.md section 4.7): how far a truncated gradient
/// lies from the Full one, on given data.
///
/// Truncation trades bias for cost. truncation_bias runs one forward pass and one loss, then
/// the Full backward pass (g_F) and the truncated one (g_T) on the same activations, and
/// compares them over all parameters and tensor by tensor. Randomized truncation is a random
/// estimate of g_F: the meter runs it `draws` times (draw i with seed seed + i, wrapping modulo
/// 2^64), compares the mean of the draws with g_F, and reports the standard error of that mean,
/// so that "unbiased" can be tested: for an unbiased estimate, `relative` is of the order of
/// `standard_error` and shrinks as 1/sqrt(draws).
///
/// Every statistic is accumulated in double. Deterministic strategies (Full, Regular) run one
/// draw. Cost: one forward and 1 + draws backward passes of the Model, whose workspace it uses.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rnnbptt/bptt/model.hpp"
#include "rnnbptt/bptt/truncation.hpp"
#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/export.hpp"
#include "rnnbptt/core/sequence.hpp"
#include "rnnbptt/core/span.hpp"

namespace rnnbptt {

/// Draws of a Randomized strategy when BiasOptions::draws is 0.
inline constexpr Index kDefaultBiasDraws = 32;

/// The truncated gradient against the Full one over some parameters (all of them, or one
/// tensor). With N draws g_1 .. g_N (N = 1 for a deterministic strategy) and their mean g:
struct BiasMeasure {
  double full_norm = 0.0;        ///< ||g_F||
  double mean_norm = 0.0;        ///< ||g||
  double difference_norm = 0.0;  ///< ||g - g_F||
  /// ||g - g_F|| / ||g_F||: the relative bias (NaN when g_F is 0 there).
  double relative = 0.0;
  /// <g, g_F> / (||g|| ||g_F||) (NaN when either is 0).
  double cosine = 0.0;
  /// sqrt(sum_j s_j^2 / N) / ||g_F||, s_j^2 the draws' sample variance of parameter j: the
  /// relative norm that g - g_F has from the draws' noise alone, when the estimate is unbiased.
  /// 0 for one draw (NaN when g_F is 0 there).
  double standard_error = 0.0;
};

/// One tensor of the layout (W_hx, W_hh, ..., W_qh, b_q, with the layer suffix of a stack).
struct ParameterBias {
  std::string name;
  BiasMeasure measure;
};

/// What truncation_bias measured.
struct TruncationBias {
  std::string truncation;  ///< the strategy's string form (its own seed for Randomized)
  Index draws = 1;         ///< N
  double loss = 0.0;       ///< the loss of the data (what both gradients differentiate)
  BiasMeasure total;       ///< over every parameter
  /// Mean and sample variance over the draws of ||g_i - g_F|| / ||g_F||, each draw's own
  /// relative error (for one draw: that draw's, and 0).
  double draw_relative_mean = 0.0;
  double draw_relative_variance = 0.0;
  /// Every tensor that has values, in the layout's order.
  std::vector<ParameterBias> parameters;
};

/// The optional inputs of truncation_bias.
template <class Scalar>
struct BiasOptions {
  /// Initial state (empty: zeros), as Model::forward takes it.
  Span<const Scalar> h0;
  /// 0: kDefaultBiasDraws for Randomized, 1 otherwise. Randomized needs at least 2 (the
  /// variance needs two); a deterministic strategy exactly 1.
  Index draws = 0;
  /// Global index of the step before the sequence, as BackwardOptions::step_offset.
  std::int64_t step_offset = 0;
};

/// The number of draws truncation_bias runs for `truncation` when asked for `draws` (0: the
/// default). Throws InvalidArgument naming `draws` when they do not fit the strategy.
RNNBPTT_EXPORT Index truncation_bias_draws(const Truncation& truncation, Index draws);

/// Measures the bias of `truncation`'s gradient of the loss of (x, y) against the Full
/// gradient, for the model's current parameters. Checks the draws, then runs
/// model.forward(x, h0), model.loss(y) and the backward passes: afterwards the model holds that
/// forward and loss, and gradients() holds the Full gradient. Throws InvalidArgument for draws
/// that do not fit the strategy (before anything runs), and whatever forward, loss and backward
/// throw for their inputs (nothing is changed then beyond what they change).
template <class Scalar>
RNNBPTT_EXPORT TruncationBias truncation_bias(Model<Scalar>& model, const SequenceInput<Scalar>& x,
                                              const Targets<Scalar>& y, const Truncation& truncation,
                                              const BiasOptions<Scalar>& options = BiasOptions<Scalar>());

/// The same at the model's last forward pass (options.h0 is not used): runs model.loss(y) and
/// the backward passes. StateError without a forward.
template <class Scalar>
RNNBPTT_EXPORT TruncationBias truncation_bias(Model<Scalar>& model, const Targets<Scalar>& y,
                                              const Truncation& truncation,
                                              const BiasOptions<Scalar>& options = BiasOptions<Scalar>());

}  // namespace rnnbptt
