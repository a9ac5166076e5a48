// SGD and Adam against updates written out by hand for a few values.
#include "support.hpp"

namespace {

template <class Scalar>
void expect_sgd() {
  const double tolerance = sizeof(Scalar) == 4 ? 1e-7 : 1e-15;
  std::vector<Scalar> p{Scalar(1), Scalar(-2), Scalar(0.5)};
  const std::vector<Scalar> g{Scalar(0.5), Scalar(0.25), Scalar(-1)};
  // p - lr g with lr = 0.1.
  rnnbptt::sgd_step(p, g, 0.1);
  EXPECT_TRUE(support::close(p, std::vector<double>{0.95, -2.025, 0.6}, tolerance));
  // p - lr (g + wd p) with lr = 0.1, wd = 0.01, from (1, -2, 0.5):
  //   1 - 0.1 (0.5 + 0.01) = 0.949,  -2 - 0.1 (0.25 - 0.02) = -2.023,  0.5 - 0.1 (-1 + 0.005) = 0.5995
  p = {Scalar(1), Scalar(-2), Scalar(0.5)};
  rnnbptt::sgd_step(p, g, 0.1, 0.01);
  EXPECT_TRUE(support::close(p, std::vector<double>{0.949, -2.023, 0.5995}, tolerance));
  // Empty buffers are a no-op.
  std::vector<Scalar> none;
  rnnbptt::sgd_step(none, none, 0.1);
}

TEST(Optim, SgdMatchesHandComputedSteps) {
  expect_sgd<float>();
  expect_sgd<double>();
}

// torch.optim.Adam's update, one parameter at a time, in double:
//   g <- g + wd p;  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
//   p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
struct HandAdam {
  double lr, b1, b2, eps, wd, m = 0, v = 0;
  int t = 0;
  double step(double p, double g) {
    ++t;
    g += wd * p;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double m_hat = m / (1 - std::pow(b1, t)), v_hat = v / (1 - std::pow(b2, t));
    return p - lr * m_hat / (std::sqrt(v_hat) + eps);
  }
};

template <class Scalar>
void expect_adam(double weight_decay) {
  const double tolerance = sizeof(Scalar) == 4 ? 2e-6 : 1e-12;
  const std::vector<double> start{1.0, -2.0, 0.5, 0.0};
  const std::vector<std::vector<double>> grads{{0.5, 0.25, -1.0, 0.0}, {0.1, -0.3, -0.5, 2.0}, {-0.2, 0.0, 0.3, 1e-3}};
  rnnbptt::Adam<Scalar> adam(4, 0.01, 0.9, 0.999, 1e-8, weight_decay);
  std::vector<Scalar> p(start.begin(), start.end());
  std::vector<HandAdam> hand(4, HandAdam{0.01, 0.9, 0.999, 1e-8, weight_decay});
  std::vector<double> expected = start;
  for (const auto& g64 : grads) {
    const std::vector<Scalar> g(g64.begin(), g64.end());
    adam.step(p, g);
    for (int i = 0; i < 4; ++i) expected[i] = hand[i].step(expected[i], g64[i]);
    EXPECT_TRUE(support::close(p, expected, tolerance, tolerance));
  }
  EXPECT_EQ(adam.step_count, 3);
  std::vector<double> m, v;
  for (const auto& h : hand) {
    m.push_back(h.m);
    v.push_back(h.v);
  }
  // In float, 1 - beta2 is 1 - float(0.999), 1.3e-5 away from 0.001 (relative): the moments
  // carry that rounding (the update divides it out to first order).
  const double moments = sizeof(Scalar) == 4 ? 5e-5 : 1e-12;
  EXPECT_TRUE(support::close(adam.m, m, moments, 1e-12));
  EXPECT_TRUE(support::close(adam.v, v, moments, 1e-12));
}

TEST(Optim, AdamMatchesHandComputedSteps) {
  // The first step moves each parameter by lr against the sign of its gradient:
  //   m_hat = g, v_hat = g^2, so p <- p - lr g / (|g| + eps).
  rnnbptt::Adam<double> adam(2, 0.01);
  std::vector<double> p{1.0, -2.0};
  const std::vector<double> g{0.5, -4.0};
  adam.step(p, g);
  EXPECT_NEAR(p[0], 1.0 - 0.01 * 0.5 / (0.5 + 1e-8), 1e-15);
  EXPECT_NEAR(p[1], -2.0 + 0.01 * 4.0 / (4.0 + 1e-8), 1e-15);
  for (double weight_decay : {0.0, 0.1}) {
    expect_adam<float>(weight_decay);
    expect_adam<double>(weight_decay);
  }
}

TEST(Optim, AdamTrainsAModelDownhill) {
  const auto p = support::make_problem<float>(support::config_of(5, 8, 5), 12, 4, support::InputKind::int64,
                                              rnnbptt::LossKind::cross_entropy, false, 2);
  rnnbptt::Model<float> model(p.config);
  model.set_parameters(p.params);
  rnnbptt::Adam<float> adam(model.num_parameters(), 0.05);
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    model.forward(p.x());
    last = model.loss(p.y());
    if (step == 0) first = last;
    model.backward();
    rnnbptt::clip_grad_norm(model.gradients(), 5.0);
    adam.step(model.parameters(), model.gradients());
  }
  EXPECT_LT(last, 0.5 * first);
}

}  // namespace

namespace {

// Hyper-parameters outside float's range were rounded to inf or 0 inside a float step (NaN
// parameters, no update, a division by 0): refused, naming the argument, with nothing changed.
TEST(Optim, FloatHyperParametersOutsideFloatsRangeAreRefused) {
  std::vector<float> p{1.0f}, g{1e38f};
  EXPECT_TRUE(support::throws<rnnbptt::InvalidArgument>([&] { rnnbptt::sgd_step(p, g, 1e39); },
                                                        {"lr: expected a value representable", "32-bit", "got 1e+39"}));
  EXPECT_TRUE(support::throws<rnnbptt::InvalidArgument>([&] { rnnbptt::sgd_step(p, g, 1e-46); },
                                                        {"lr: expected a value representable"}));
  EXPECT_TRUE(support::throws<rnnbptt::InvalidArgument>([&] { rnnbptt::sgd_step(p, g, 0.1, 1e39); },
                                                        {"weight_decay: expected a value representable"}));
  EXPECT_EQ(p[0], 1.0f);
  rnnbptt::Adam<float> adam(1, 1e-3, 0.9, 0.999, 1e-50);
  EXPECT_TRUE(
      support::throws<rnnbptt::InvalidArgument>([&] { adam.step(p, g); }, {"eps: expected a value representable"}));
  EXPECT_EQ(adam.step_count, 0);
  EXPECT_EQ(p[0], 1.0f);
  // The same lr is a double: accepted (1 - 1e-261 rounds to 1).
  std::vector<double> pd{1.0}, gd{1e-300};
  rnnbptt::sgd_step(pd, gd, 1e39);
  EXPECT_EQ(pd[0], 1.0);
  // The count stops short of 2^62: the step that would reach it is refused and not counted.
  rnnbptt::Adam<double> adam_d(1, 1e-3);
  adam_d.step_count = (rnnbptt::Index(1) << 62) - 1;
  EXPECT_TRUE(support::throws<rnnbptt::InvalidArgument>([&] { adam_d.step(pd, gd); }, {"step_count: expected"}));
  EXPECT_EQ(adam_d.step_count, (rnnbptt::Index(1) << 62) - 1);
}

TEST(Optim, AdamStepCountOutsideItsRangeIsRefused) {
  rnnbptt::Adam<double> adam(1, 1e-3);
  std::vector<double> p{0.0}, g{1.0};
  for (rnnbptt::Index bad : {rnnbptt::Index(-1), std::numeric_limits<rnnbptt::Index>::max()}) {
    adam.step_count = bad;
    EXPECT_TRUE(support::throws<rnnbptt::InvalidArgument>(
        [&] { adam.step(p, g); }, {"step_count: expected a number of steps taken in [0, 2^62)"}));
    EXPECT_EQ(p[0], 0.0);
  }
}

}  // namespace
