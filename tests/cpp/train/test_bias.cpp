// The truncation-bias meter (rnnbptt/train/bias.hpp) from C++ with no Python: its statistics
// against the same quantities computed here from the Model's own backward passes (Full, each
// Regular, every Randomized draw with seed + i), for every cell and a stack; the Full gradient
// left in the model bit for bit; clear errors for draws that do not fit the strategy.
#include <cmath>

#include "support.hpp"

namespace {

using rnnbptt::Cell;
using rnnbptt::Index;
using rnnbptt::InvalidArgument;
using rnnbptt::LossKind;
using rnnbptt::Truncation;
using support::InputKind;

struct Expected {
  double relative, cosine, standard_error;
};

// The statistics of docs/design.md section 4.7 over [begin, end) of the draws (N x P) and g_F.
Expected expected_over(const std::vector<std::vector<double>>& draws, const std::vector<double>& full, Index begin,
                       Index end) {
  const double N = static_cast<double>(draws.size());
  double ff = 0, mm = 0, dd = 0, mf = 0, var = 0;
  for (Index j = begin; j < end; ++j) {
    double mean = 0;
    for (const auto& g : draws) mean += g[j];
    mean /= N;
    double squares = 0;
    for (const auto& g : draws) squares += (g[j] - mean) * (g[j] - mean);
    if (draws.size() > 1) var += squares / (N - 1);
    ff += full[j] * full[j];
    mm += mean * mean;
    dd += (mean - full[j]) * (mean - full[j]);
    mf += mean * full[j];
  }
  return {std::sqrt(dd / ff), mf / std::sqrt(mm * ff), std::sqrt(var / N) / std::sqrt(ff)};
}

void expect_measure(const rnnbptt::BiasMeasure& m, const Expected& e, const std::string& what) {
  EXPECT_NEAR(m.relative, e.relative, 1e-10 * std::max(1.0, e.relative)) << what;
  EXPECT_NEAR(m.cosine, e.cosine, 1e-10) << what;
  EXPECT_NEAR(m.standard_error, e.standard_error, 1e-10 * std::max(1.0, e.standard_error)) << what;
}

void expect_meter_matches_backward(Cell cell, Index layers, const Truncation& truncation, Index draws) {
  SCOPED_TRACE(std::string(rnnbptt::to_string(cell)) + " x " + std::to_string(layers) + " " + truncation.to_string());
  rnnbptt::ModelConfig config = support::config_of(4, 5, 3);
  config.cell = cell;
  config.num_layers = layers;
  const auto p = support::make_problem<double>(config, 12, 3, InputKind::dense, LossKind::cross_entropy, true, 7);
  rnnbptt::Model<double> model(config), plain(config);
  model.set_parameters(p.params);
  plain.set_parameters(p.params);

  plain.forward(p.x());
  const double loss = plain.loss(p.y(0, p.T, p.weights));
  plain.backward();
  const std::vector<double> full = support::copy_of(plain.gradients());
  std::vector<std::vector<double>> gradients;
  const bool randomized = truncation.kind() == Truncation::Kind::randomized;
  for (Index i = 0; i < (randomized ? draws : 1); ++i) {
    const Truncation draw = randomized ? Truncation::randomized(truncation.keep_probability(),
                                                                truncation.seed() + static_cast<std::uint64_t>(i))
                                       : truncation;
    rnnbptt::BackwardOptions<double> options;
    options.truncation = &draw;
    plain.backward(options);
    gradients.push_back(support::copy_of(plain.gradients()));
  }

  rnnbptt::BiasOptions<double> options;
  options.draws = randomized ? draws : 0;
  const rnnbptt::TruncationBias result =
      rnnbptt::truncation_bias(model, p.x(), p.y(0, p.T, p.weights), truncation, options);
  EXPECT_EQ(result.truncation, truncation.to_string());
  EXPECT_EQ(result.draws, static_cast<Index>(gradients.size()));
  EXPECT_EQ(result.loss, loss);
  expect_measure(result.total, expected_over(gradients, full, 0, model.num_parameters()), "total");
  ASSERT_FALSE(result.parameters.empty());
  for (const rnnbptt::ParameterBias& part : result.parameters) {
    const rnnbptt::Tensor& t = model.layout().find(part.name);
    expect_measure(part.measure, expected_over(gradients, full, t.offset, t.offset + t.size()), part.name);
  }
  EXPECT_TRUE(support::same_bits(model.gradients(), full));
}

TEST(Bias, TheMeterMatchesTheModelsOwnBackwardPasses) {
  for (auto [cell, layers] : {std::pair{Cell::elman, Index(1)}, {Cell::gru, 1}, {Cell::lstm, 1}, {Cell::lstm, 2}}) {
    expect_meter_matches_backward(cell, layers, Truncation::regular(3), 1);
    expect_meter_matches_backward(cell, layers, Truncation::regular(2, 5), 1);
    expect_meter_matches_backward(cell, layers, Truncation::randomized(0.6, 9), 5);
  }
}

TEST(Bias, FullHasNoBiasAndTheDefaultDrawsAreUsed) {
  const auto p = support::make_problem<float>(support::config_of(4, 6, 3), 10, 2, InputKind::int32,
                                              LossKind::cross_entropy, false, 3);
  rnnbptt::Model<float> model(p.config);
  model.set_parameters(p.params);
  const auto full = rnnbptt::truncation_bias(model, p.x(), p.y(0, p.T, {}), Truncation::full());
  EXPECT_EQ(full.total.relative, 0.0);
  EXPECT_EQ(full.total.standard_error, 0.0);
  EXPECT_EQ(full.draws, 1);
  const auto random = rnnbptt::truncation_bias(model, p.x(), p.y(0, p.T, {}), Truncation::randomized(0.5, 1));
  EXPECT_EQ(random.draws, rnnbptt::kDefaultBiasDraws);
  EXPECT_GT(random.total.standard_error, 0.0);
  EXPECT_GE(random.draw_relative_mean, random.total.relative);
}

TEST(Bias, DrawsThatDoNotFitTheStrategyAreRefused) {
  const auto p = support::make_problem<double>(support::config_of(3, 4, 3), 6, 2, InputKind::int64,
                                               LossKind::cross_entropy, false, 1);
  rnnbptt::Model<double> model(p.config);
  const auto call = [&](const Truncation& t, Index draws) {
    return [&, t, draws] {
      rnnbptt::BiasOptions<double> options;
      options.draws = draws;
      rnnbptt::truncation_bias(model, p.x(), p.y(0, p.T, {}), t, options);
    };
  };
  EXPECT_TRUE(support::throws<InvalidArgument>(call(Truncation::randomized(0.5, 0), 1),
                                               {"draws: expected at least 2 draws of randomized:0.5", "got 1"}));
  EXPECT_TRUE(support::throws<InvalidArgument>(
      call(Truncation::regular(2), 4), {"draws: expected 1 for the deterministic strategy regular:2", "got 4"}));
  EXPECT_TRUE(support::throws<InvalidArgument>(call(Truncation::full(), -1), {"draws: expected 0", "got -1"}));
  rnnbptt::BiasOptions<double> options;
  options.step_offset = -3;
  EXPECT_TRUE(support::throws<InvalidArgument>(
      [&] { rnnbptt::truncation_bias(model, p.x(), p.y(0, p.T, {}), Truncation::regular(2), options); },
      {"step_offset: expected a global step index >= 0", "got -3"}));
}

}  // namespace
