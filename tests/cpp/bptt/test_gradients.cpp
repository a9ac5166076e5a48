// Gradients against central finite differences in double, for every activation, input kind,
// loss (with and without weights) and strategy, and for dL/dh_0, dL/dx and an injected dL/dh_T.
//
// A truncated gradient is the exact gradient of the truncated objective: every window of
// Regular(k1, k2) starts from a state held constant (computed once, unperturbed) and counts the
// losses of its own block only, with the block's share of the total weight. Finite differences
// of that objective are the oracle; Full is the case of one window.
#include "support.hpp"

#include <sstream>
#include <tuple>

namespace {

using rnnbptt::Activation;
using rnnbptt::Index;
using rnnbptt::LossKind;
using rnnbptt::Span;
using support::InputKind;
using support::Problem;

struct Strategy {
  const char* name;
  Index k1, k2;  // 0, 0: Full
};

constexpr Index kSteps = 7, kBatch = 2;
const Strategy kStrategies[] = {
    {"full", 0, 0}, {"regular_3", 3, 3}, {"regular_2_5", 2, 5}, {"regular_T", kSteps, kSteps}};

/// The truncated objective of Regular(k1, k2) (Full when k1 == 0): the sum over blocks of the
/// block's weighted mean loss times its share of the weight, each window run from the
/// unperturbed state at its first step (h0 itself for windows that start at step 0), plus
/// <dh_T, h_T> of the last window when dh_T is given.
double objective(rnnbptt::Model<double>& model, const Problem<double>& p, const std::vector<double>& params,
                 const std::vector<double>& h0, const std::vector<double>& dense, Index k1, Index k2,
                 const std::vector<std::vector<double>>& fixed_states, bool with_dh_T) {
  model.set_parameters(params);
  const Index T = p.T, n = p.n;
  if (k1 == 0) k1 = k2 = T;
  double total_weight = 0.0;
  for (Index r = 0; r < T * n; ++r) total_weight += p.weight(r);
  double total = 0.0;
  for (Index block = 0; block < T; block += k1) {
    const Index end = std::min(block + k1, T), first = std::max<Index>(0, block - (k2 - k1));
    const Index steps = end - first;
    std::vector<double> w(steps * n, 0.0);
    double block_weight = 0.0;
    for (Index t = block; t < end; ++t)
      for (Index b = 0; b < n; ++b) {
        w[(t - first) * n + b] = p.weight(t * n + b);
        block_weight += p.weight(t * n + b);
      }
    model.forward(p.x_from(dense, first, steps),
                  first == 0 ? Span<const double>(h0) : Span<const double>(fixed_states[first]));
    if (block_weight > 0) total += model.loss(p.y(first, steps, w)) * block_weight / total_weight;
    if (end == T && with_dh_T) {
      const auto h_T = model.final_state();
      for (Index i = 0; i < n * p.h(); ++i) total += p.dh_T[i] * h_T[i];
    }
  }
  return total;
}

/// d objective / d values[i] for every i, by central differences.
std::vector<double> central_differences(std::vector<double>& values, const std::function<double()>& f,
                                        double eps = 1e-6) {
  std::vector<double> out(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double keep = values[i];
    values[i] = keep + eps;
    const double plus = f();
    values[i] = keep - eps;
    const double minus = f();
    values[i] = keep;
    out[i] = (plus - minus) / (2 * eps);
  }
  return out;
}

/// A problem whose pre-activations all stay at least 1e-3 away from 0, so that relu is
/// differentiable everywhere finite differences look (their steps move a_t by ~1e-6).
Problem<double> problem_for(Activation activation, InputKind input, LossKind loss, bool weighted, bool bias = true) {
  for (std::uint64_t seed = 1; seed < 200; ++seed) {
    auto p = support::make_problem<double>(support::config_of(4, 5, 3, activation, bias), kSteps, kBatch, input, loss,
                                           weighted, seed);
    if (support::kink_margin(support::reference_forward(p, p.params, &p.h0)) >= 1e-3) return p;
  }
  ADD_FAILURE() << "no problem with a kink margin of 1e-3";
  return support::make_problem<double>(support::config_of(4, 5, 3, activation, bias), kSteps, kBatch, input, loss,
                                       weighted, 0);
}

using GradientCase = std::tuple<Activation, InputKind, LossKind, bool, int>;

class Gradients : public ::testing::TestWithParam<GradientCase> {};

TEST_P(Gradients, MatchCentralDifferencesOfTheTruncatedObjective) {
  const auto [activation, input, loss, weighted, strategy_index] = GetParam();
  const Strategy& strategy = kStrategies[strategy_index];
  Problem<double> p = problem_for(activation, input, loss, weighted);
  const Index T = p.T, n = p.n, h = p.h();
  rnnbptt::Model<double> model(p.config);
  model.set_parameters(p.params);

  // The states the windows start from, unperturbed: h_t after t steps from h0.
  std::vector<std::vector<double>> fixed(T + 1);
  fixed[0] = p.h0;
  for (Index t = 1; t <= T; ++t) {
    model.forward(p.x(0, t), p.h0);
    fixed[t] = support::copy_of(model.final_state());
  }

  // The library's gradients.
  const rnnbptt::Truncation truncation =
      strategy.k1 == 0 ? rnnbptt::Truncation::full() : rnnbptt::Truncation::regular(strategy.k1, strategy.k2);
  std::vector<double> dh0(n * h, -7.0), dx(input == InputKind::dense ? T * n * p.d() : 0, -7.0);
  for (bool with_dh_T : {false, true}) {
    model.set_parameters(p.params);
    model.forward(p.x(), p.h0);
    model.loss(p.y());
    rnnbptt::BackwardOptions<double> options;
    options.truncation = &truncation;
    if (with_dh_T) options.dh_T = p.dh_T;
    options.dh0 = dh0;
    if (input == InputKind::dense) options.dx = dx;
    model.backward(options);
    const std::vector<double> grads = support::copy_of(model.gradients());

    std::vector<double> params = p.params, h0 = p.h0, dense = p.dense;
    auto f = [&] { return objective(model, p, params, h0, dense, strategy.k1, strategy.k2, fixed, with_dh_T); };
    const std::string where = std::string(strategy.name) + (with_dh_T ? " with dh_T" : "");
    EXPECT_TRUE(support::close(grads, central_differences(params, f), 1e-6, 1e-8)) << where << ": dparams";
    EXPECT_TRUE(support::close(dh0, central_differences(h0, f), 1e-6, 1e-8)) << where << ": dh0";
    if (input == InputKind::dense) {
      EXPECT_TRUE(support::close(dx, central_differences(dense, f), 1e-6, 1e-8)) << where << ": dx";
    }
  }
}

std::string case_name(const ::testing::TestParamInfo<GradientCase>& info) {
  const auto [activation, input, loss, weighted, strategy] = info.param;
  std::ostringstream name;
  name << rnnbptt::to_string(activation) << "_" << support::name_of(input) << "_"
       << (loss == LossKind::cross_entropy ? "ce" : "se") << (weighted ? "_weighted_" : "_")
       << kStrategies[strategy].name;
  return name.str();
}

INSTANTIATE_TEST_SUITE_P(AllKinds, Gradients,
                         ::testing::Combine(::testing::Values(Activation::identity, Activation::tanh, Activation::relu),
                                            ::testing::Values(InputKind::dense, InputKind::int32, InputKind::int64),
                                            ::testing::Values(LossKind::cross_entropy, LossKind::squared_error),
                                            ::testing::Bool(),
                                            ::testing::Range(0, static_cast<int>(std::size(kStrategies)))),
                         case_name);

TEST(Gradients, LinearModelWithoutBiasMatchesCentralDifferences) {
  // The textbook's linear model (identity, no bias), whose gradient has a closed form.
  Problem<double> p = problem_for(Activation::identity, InputKind::dense, LossKind::squared_error, false, false);
  rnnbptt::Model<double> model(p.config);
  ASSERT_EQ(model.num_parameters(), 4 * 5 + 5 * 5 + 3 * 5);
  model.set_parameters(p.params);
  model.forward(p.x(), p.h0);
  model.loss(p.y());
  model.backward();
  std::vector<double> params = p.params;
  auto f = [&] {
    model.set_parameters(params);
    model.forward(p.x(), p.h0);
    return model.loss(p.y());
  };
  const std::vector<double> grads = support::copy_of(model.gradients());
  EXPECT_TRUE(support::close(grads, central_differences(params, f), 1e-6, 1e-8));
}

// The reference (written from the equations, no code shared) agrees with the library on
// outputs, loss and every gradient, to rounding, for every kind of problem.
TEST(Gradients, FullMatchesTheIndependentReference) {
  for (Activation activation : {Activation::identity, Activation::tanh, Activation::relu})
    for (InputKind input : {InputKind::dense, InputKind::int32, InputKind::int64})
      for (LossKind loss : {LossKind::cross_entropy, LossKind::squared_error})
        for (bool weighted : {false, true}) {
          SCOPED_TRACE(std::string(rnnbptt::to_string(activation)) + " " + support::name_of(input) +
                       (weighted ? " weighted" : ""));
          const auto p =
              support::make_problem<double>(support::config_of(6, 9, 4, activation), 11, 3, input, loss, weighted, 42);
          rnnbptt::Model<double> model(p.config);
          model.set_parameters(p.params);
          model.forward(p.x(), p.h0);
          const double L = model.loss(p.y());
          std::vector<double> dh0(p.n * p.h()), dx(input == InputKind::dense ? p.T * p.n * p.d() : 0);
          rnnbptt::BackwardOptions<double> options;
          options.dh_T = p.dh_T;
          options.dh0 = dh0;
          if (input == InputKind::dense) options.dx = dx;
          model.backward(options);

          const auto f = support::reference_forward(p, p.params, &p.h0);
          std::vector<std::vector<double>> dos;
          const double expected_loss = support::reference_loss(p, f, &dos);
          const auto g = support::reference_backward(p, p.params, f, dos, std::vector<double>(p.T, 1.0), &p.dh_T);
          std::vector<double> outputs;
          for (const auto& o : f.os) outputs.insert(outputs.end(), o.begin(), o.end());
          EXPECT_TRUE(support::close(model.outputs(), outputs, 1e-12, 1e-13));
          EXPECT_TRUE(support::close(model.final_state(), f.hs.back(), 1e-12, 1e-13));
          EXPECT_NEAR(L, expected_loss, 1e-12 * expected_loss);
          EXPECT_TRUE(support::close(model.gradients(), g.params, 1e-10, 1e-13));
          EXPECT_TRUE(support::close(dh0, g.dh0, 1e-10, 1e-13));
          if (input == InputKind::dense) {
            EXPECT_TRUE(support::close(dx, g.dx, 1e-10, 1e-13));
          }
        }
}

// float computes the same maths: its gradients agree with double's to float's precision.
TEST(Gradients, FloatAgreesWithDouble) {
  for (InputKind input : {InputKind::dense, InputKind::int64}) {
    const auto p =
        support::make_problem<double>(support::config_of(6, 9, 4), 11, 3, input, LossKind::cross_entropy, true, 5);
    auto p32 =
        support::make_problem<float>(support::config_of(6, 9, 4), 11, 3, input, LossKind::cross_entropy, true, 5);
    // The float problem holds the double one rounded: compare against double on those values.
    auto p64 = p;
    p64.params.assign(p32.params.begin(), p32.params.end());
    p64.dense.assign(p32.dense.begin(), p32.dense.end());
    p64.weights.assign(p32.weights.begin(), p32.weights.end());
    p64.h0.assign(p32.h0.begin(), p32.h0.end());
    rnnbptt::Model<double> m64(p64.config);
    rnnbptt::Model<float> m32(p32.config);
    m64.set_parameters(p64.params);
    m32.set_parameters(p32.params);
    m64.forward(p64.x(), p64.h0);
    m32.forward(p32.x(), p32.h0);
    EXPECT_NEAR(m32.loss(p32.y()), m64.loss(p64.y()), 1e-5);
    const auto regular = rnnbptt::Truncation::regular(3, 5);
    rnnbptt::BackwardOptions<double> o64;
    rnnbptt::BackwardOptions<float> o32;
    o64.truncation = o32.truncation = &regular;
    m64.backward(o64);
    m32.backward(o32);
    EXPECT_TRUE(support::close(m32.gradients(), m64.gradients(), 1e-3, 1e-5));
  }
}

}  // namespace
