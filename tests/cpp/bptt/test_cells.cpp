// The GRU, LSTM and stacked layers from C++ alone: gradients of every parameter, of the whole
// initial state and of dense input against central finite differences in double (Full, and the
// injected dL/dstate_T; with resets and lengths too), the identities that must hold bit for bit (Regular(T) = Full, any
// thread count), and a stream restored mid-way, history included, continuing bit for bit.
#include <gtest/gtest.h>

#include <rnnbptt/rnnbptt.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using rnnbptt::Cell;
using rnnbptt::Index;
using rnnbptt::Span;

constexpr Index kT = 6, kN = 2, kD = 3, kH = 4, kQ = 3;

rnnbptt::ModelConfig config_of(Cell cell, Index layers) {
  rnnbptt::ModelConfig c;
  c.input_size = kD;
  c.hidden_size = kH;
  c.output_size = kQ;
  c.cell = cell;
  c.num_layers = layers;
  return c;
}

std::vector<double> pattern(Index count, double scale, int seed) {
  std::vector<double> out(static_cast<std::size_t>(count));
  for (Index i = 0; i < count; ++i) out[i] = scale * std::sin(0.7 * static_cast<double>(i) + seed);
  return out;
}

struct Case {
  rnnbptt::Model<double> model;
  std::vector<double> x, h0, dh_T;
  std::vector<std::int64_t> y;
  std::vector<std::uint8_t> resets;   // empty: none
  std::vector<std::int64_t> lengths;  // empty: none
  explicit Case(Cell cell, Index layers)
      : model(config_of(cell, layers)),
        x(pattern(kT * kN * kD, 1.0, 1)),
        h0(pattern(config_of(cell, layers).state_size(kN), 0.5, 2)),
        dh_T(pattern(config_of(cell, layers).state_size(kN), 0.3, 3)) {
    model.init_uniform(0.6, 5);
    for (Index i = 0; i < kT * kN; ++i) y.push_back((3 * i + 1) % kQ);
  }
  // L + <dh_T, state_T>: the objective whose gradient backward(dh_T) computes.
  double objective() {
    auto input = rnnbptt::SequenceInput<double>::from_dense(x, kT, kN);
    input.resets = resets;
    input.lengths = lengths;
    model.forward(input, h0);
    double value = model.loss(rnnbptt::Targets<double>::from_classes(y));
    const Span<const double> state = model.final_state();
    for (Index i = 0; i < state.size(); ++i) value += dh_T[i] * state[i];
    return value;
  }
};

double central(const std::function<double()>& f, double& v) {
  const double eps = 1e-6, saved = v;
  v = saved + eps;
  const double up = f();
  v = saved - eps;
  const double down = f();
  v = saved;
  return (up - down) / (2 * eps);
}

// The gradients of c.objective() (parameters, the whole initial state, dense input) against
// central differences.
void expect_finite_differences(Case& c) {
  c.objective();
  std::vector<double> dh0(c.h0.size()), dx(c.x.size());
  rnnbptt::BackwardOptions<double> options;
  options.dh_T = c.dh_T;
  options.dh0 = dh0;
  options.dx = dx;
  c.model.backward(options);
  const std::vector<double> grads(c.model.gradients().begin(), c.model.gradients().end());
  const auto f = [&] { return c.objective(); };
  for (Index i = 0; i < c.model.num_parameters(); ++i)
    EXPECT_NEAR(grads[i], central(f, c.model.parameters()[i]), 1e-7) << "parameter " << i;
  for (std::size_t i = 0; i < c.h0.size(); ++i) EXPECT_NEAR(dh0[i], central(f, c.h0[i]), 1e-7) << "state " << i;
  for (std::size_t i = 0; i < c.x.size(); ++i) EXPECT_NEAR(dx[i], central(f, c.x[i]), 1e-7) << "x " << i;
}

class Cells : public ::testing::TestWithParam<std::tuple<Cell, Index>> {};

TEST_P(Cells, GradientsMatchFiniteDifferences) {
  const auto [cell, layers] = GetParam();
  Case c(cell, layers);
  expect_finite_differences(c);
}

// Resets (rows restart from h0's row before a step, no gradient across) and lengths (later
// positions out of the loss, the final state at each row's length): the same finite
// differences, h0's gradient collecting every reset's share (docs/design.md section 4.8).
TEST_P(Cells, GradientsWithResetsAndLengthsMatchFiniteDifferences) {
  const auto [cell, layers] = GetParam();
  Case c(cell, layers);
  c.resets.assign(kT * kN, 0);
  c.resets[2 * kN + 0] = 1;  // row 0 restarts before step 2 and step 4
  c.resets[4 * kN + 0] = 1;
  c.resets[3 * kN + 1] = 1;  // row 1 before step 3, then ends after step 5
  c.lengths = {kT, 5};
  expect_finite_differences(c);
  // Flags are 0 or 1, lengths in [0, T]: anything else is refused, naming the argument.
  c.resets[1] = 2;
  EXPECT_THROW(c.objective(), rnnbptt::InvalidArgument);
  c.resets[1] = 0;
  c.lengths = {kT + 1, 0};
  EXPECT_THROW(c.objective(), rnnbptt::InvalidArgument);
}

// A forward whose resets restore zeros (a stream's chunk, whose h0 is the carried state) has no
// dL/dh0 to give for the rows it reset: the backward refuses to compute one.
TEST(Resets, ResetsToZeroRefuseDh0) {
  const rnnbptt::ModelConfig config = config_of(Cell::gru, 1);
  const rnnbptt::ParameterLayout layout(config);
  std::vector<double> params(static_cast<std::size_t>(layout.total), 0.1), grads(params.size());
  const std::vector<double> x = pattern(kT * kN * kD, 1.0, 1), h0 = pattern(config.state_size(kN), 0.5, 2);
  std::vector<std::uint8_t> resets(kT * kN, 0);
  resets[3 * kN] = 1;
  auto input = rnnbptt::SequenceInput<double>::from_dense(x, kT, kN);
  input.resets = resets;
  std::vector<std::int64_t> y(kT * kN, 1);
  rnnbptt::Workspace<double> ws;
  std::vector<double> dh0(h0.size());
  rnnbptt::BackwardOptions<double> options;
  options.dh0 = dh0;
  for (const bool to_zero : {false, true}) {
    rnnbptt::rnn_forward(ws, config, layout, params, input, h0, 0, to_zero);
    rnnbptt::loss_forward(ws, config, rnnbptt::Targets<double>::from_classes(y));
    if (to_zero)
      EXPECT_THROW(rnnbptt::rnn_backward(grads, ws, config, layout, params, options), rnnbptt::InvalidArgument);
    else
      EXPECT_NO_THROW(rnnbptt::rnn_backward(grads, ws, config, layout, params, options));
  }
}

TEST_P(Cells, RegularOfTheWholeSequenceIsFullAndThreadsDoNotMatter) {
  const auto [cell, layers] = GetParam();
  Case c(cell, layers);
  const auto run = [&](const rnnbptt::Truncation& truncation, int threads) {
    rnnbptt::set_num_threads(threads);
    c.objective();
    rnnbptt::BackwardOptions<double> options;
    options.truncation = &truncation;
    c.model.backward(options);
    return std::vector<double>(c.model.gradients().begin(), c.model.gradients().end());
  };
  const int before = rnnbptt::get_num_threads();
  const auto full = run(rnnbptt::Truncation::full(), 1);
  EXPECT_EQ(run(rnnbptt::Truncation::regular(kT, kT), 1), full);
  EXPECT_EQ(run(rnnbptt::Truncation::randomized(1.0, 3), 2), full);
  EXPECT_EQ(run(rnnbptt::Truncation::regular(2, 5), 2), run(rnnbptt::Truncation::regular(2, 5), 1));
  rnnbptt::set_num_threads(before);
}

TEST_P(Cells, ARestoredStreamContinuesBitForBit) {
  const auto [cell, layers] = GetParam();
  const rnnbptt::ModelConfig config = config_of(cell, layers);
  rnnbptt::Model<float> model(config);
  model.init_uniform(0.5, 2);
  const auto truncation = rnnbptt::Truncation::regular(3, 8);
  std::vector<std::int64_t> ids, targets;
  for (Index i = 0; i < 4 * 6 * kN; ++i) {
    ids.push_back((5 * i + 2) % kD);
    targets.push_back((7 * i + 1) % kQ);
  }
  const auto chunk = [&](Index c) {
    const Span<const std::int64_t> x(ids.data() + c * 6 * kN, 6 * kN), y(targets.data() + c * 6 * kN, 6 * kN);
    return std::make_pair(rnnbptt::SequenceInput<float>::from_tokens(x, 6, kN),
                          rnnbptt::Targets<float>::from_classes(y));
  };
  rnnbptt::StreamRunner<float> first(config, truncation);
  for (Index c = 0; c < 3; ++c) {
    const auto [x, y] = chunk(c);
    first.step(model, x, y);
    rnnbptt::sgd_step(model.parameters(), model.gradients(), 0.1);
  }
  ASSERT_EQ(first.history_steps(), 5);
  EXPECT_EQ(first.history_states().size(), rnnbptt::history_rows(config, 5) * kN * kH);
  rnnbptt::StreamRunner<float> second(config, truncation);
  second.restore(first.position(), kN, first.state(), first.history_steps(), first.history_tokens(),
                 first.history_states());
  const auto [x, y] = chunk(3);
  const double loss1 = first.step(model, x, y);
  const std::vector<float> g1(model.gradients().begin(), model.gradients().end());
  const double loss2 = second.step(model, x, y);
  const std::vector<float> g2(model.gradients().begin(), model.gradients().end());
  EXPECT_EQ(loss1, loss2);
  EXPECT_EQ(g1, g2);
  EXPECT_TRUE(std::equal(first.state().begin(), first.state().end(), second.state().begin()));

  // A history whose rows of the carried state disagree with the state is refused.
  std::vector<float> bad(first.state().begin(), first.state().end());
  bad.back() += 1.0f;
  rnnbptt::StreamRunner<float> third(config, truncation);
  EXPECT_THROW(
      third.restore(first.position(), kN, bad, first.history_steps(), first.history_tokens(), first.history_states()),
      rnnbptt::InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(EveryCell, Cells,
                         ::testing::Combine(::testing::Values(Cell::elman, Cell::gru, Cell::lstm),
                                            ::testing::Values(Index(1), Index(2), Index(3))),
                         [](const auto& info) {
                           return std::string(rnnbptt::to_string(std::get<0>(info.param))) + "_x" +
                                  std::to_string(std::get<1>(info.param));
                         });

TEST(CellConfig, BadConfigurationsNameTheField) {
  rnnbptt::ModelConfig c = config_of(Cell::gru, 0);
  try {
    c.validate();
    FAIL() << "num_layers = 0 accepted";
  } catch (const rnnbptt::InvalidArgument& error) {
    EXPECT_EQ(std::string(error.what()), "num_layers: expected a positive integer, got 0");
  }
  c.num_layers = 1;
  c.activation = rnnbptt::Activation::relu;
  EXPECT_THROW(c.validate(), rnnbptt::InvalidArgument);
  EXPECT_EQ(rnnbptt::cell_from_string("lstm"), Cell::lstm);
  EXPECT_THROW(rnnbptt::cell_from_string("rnn"), rnnbptt::InvalidArgument);
  const rnnbptt::ParameterLayout layout(config_of(Cell::lstm, 2));
  EXPECT_EQ(layout.W_hx(1).name, "W_hx_l1");
  EXPECT_EQ(layout.W_hx(1).rows, 4 * kH);
  EXPECT_EQ(layout.W_hx(1).cols, kH);
  EXPECT_EQ(layout.b_hh(0).name, "b_hh");
}

}  // namespace
