// Clipping (docs/design.md section 6) against hand-computed values: the norm, the scale, the
// boundary (left exactly as it is), non-finite norms under both policies (gradient untouched),
// value clipping, and the same bits for any thread count.
#include "support.hpp"

namespace {

using rnnbptt::ClipReport;
using rnnbptt::NonFinitePolicy;

template <class Scalar>
void expect_norm_clipping() {
  // ||(3, 4)|| = 5.
  std::vector<Scalar> g{Scalar(3), Scalar(4)};
  EXPECT_EQ(rnnbptt::global_norm(g), 5.0);
  ClipReport report = rnnbptt::clip_grad_norm(g, 1.0);
  EXPECT_EQ(report.norm, 5.0);
  EXPECT_EQ(report.scale, 0.2);
  EXPECT_TRUE(report.finite);
  const double tolerance = sizeof(Scalar) == 4 ? 1e-6 : 1e-15;
  EXPECT_TRUE(support::close(g, std::vector<double>{0.6, 0.8}, tolerance));
  EXPECT_NEAR(rnnbptt::global_norm(g), 1.0, tolerance);

  // At the boundary and below it the gradient is left exactly as it is.
  for (double theta : {5.0, 5.5, 1e30}) {
    std::vector<Scalar> same{Scalar(3), Scalar(4)};
    report = rnnbptt::clip_grad_norm(same, theta);
    EXPECT_EQ(report.scale, 1.0);
    EXPECT_EQ(report.norm, 5.0);
    EXPECT_TRUE(support::same_bits(same, std::vector<Scalar>{Scalar(3), Scalar(4)}));
  }

  // The norm is accumulated in double: squares of large floats do not overflow.
  std::vector<Scalar> large{Scalar(3e30), Scalar(-4e30)};
  EXPECT_NEAR(rnnbptt::global_norm(large), 5e30, 5e30 * tolerance);
  // An empty buffer has norm 0 and is never scaled.
  std::vector<Scalar> none;
  EXPECT_EQ(rnnbptt::global_norm(none), 0.0);
  EXPECT_EQ(rnnbptt::clip_grad_norm(none, 1.0).scale, 1.0);
}

TEST(Clip, NormClippingMatchesHandComputedValues) {
  expect_norm_clipping<float>();
  expect_norm_clipping<double>();
}

// Doubles whose squares overflow (above about 1e154) or leave the normal range (below about
// 1e-154): 3 x 2^k and 4 x 2^k have norm 5 x 2^k exactly, and the rescaled sum in powers of two
// gets it exactly. The single sum of squares gave inf (so clip_grad_norm raised on finite
// gradients) or 0 / a subnormal-rounded value.
TEST(Clip, DoubleNormsWhereTheSquaresLeaveDoublesRange) {
  for (int k : {600, 1000, -600, -1000, -1070}) {
    std::vector<double> g{std::ldexp(3.0, k), 0.0, -std::ldexp(4.0, k)};
    EXPECT_EQ(rnnbptt::global_norm(g), std::ldexp(5.0, k)) << "k = " << k;
    const ClipReport report = rnnbptt::clip_grad_norm(g, 1.0);
    EXPECT_TRUE(report.finite) << "k = " << k;
    EXPECT_EQ(report.norm, std::ldexp(5.0, k)) << "k = " << k;
  }
  // Clipping a gradient of norm 5 x 2^600 to 1: (0.6, 0, -0.8).
  std::vector<double> g{std::ldexp(3.0, 600), 0.0, -std::ldexp(4.0, 600)};
  rnnbptt::clip_grad_norm(g, 1.0);
  EXPECT_TRUE(support::close(g, std::vector<double>{0.6, 0.0, -0.8}, 1e-15));
  // A norm beyond the largest double is infinite, and clipping raises.
  std::vector<double> huge(4, 1.5e308);
  EXPECT_TRUE(std::isinf(rnnbptt::global_norm(huge)));
  EXPECT_THROW(rnnbptt::clip_grad_norm(huge, 1.0), rnnbptt::NonFiniteError);
  // The smallest subnormal, alone and with 0s: its own magnitude.
  std::vector<double> tiny{0.0, std::numeric_limits<double>::denorm_min(), 0.0};
  EXPECT_EQ(rnnbptt::global_norm(tiny), std::numeric_limits<double>::denorm_min());
}

template <class Scalar>
void expect_non_finite_policies() {
  for (Scalar bad : {std::numeric_limits<Scalar>::infinity(), -std::numeric_limits<Scalar>::infinity(),
                     std::numeric_limits<Scalar>::quiet_NaN()}) {
    const std::vector<Scalar> original{Scalar(1), bad, Scalar(2)};
    std::vector<Scalar> g = original;
    EXPECT_TRUE(support::throws<rnnbptt::NonFiniteError>([&] { rnnbptt::clip_grad_norm(g, 1.0); },
                                                         {"gradient norm", "expected a finite value"}));
    EXPECT_TRUE(support::same_bits(g, original)) << "raise leaves the gradient untouched";
    const ClipReport report = rnnbptt::clip_grad_norm(g, 1.0, NonFinitePolicy::report);
    EXPECT_FALSE(report.finite);
    EXPECT_FALSE(std::isfinite(report.norm));
    EXPECT_EQ(report.scale, 1.0);
    EXPECT_TRUE(support::same_bits(g, original)) << "report leaves the gradient untouched";
  }
  // NonFiniteError is one of ours.
  std::vector<Scalar> g{std::numeric_limits<Scalar>::infinity()};
  EXPECT_THROW(rnnbptt::clip_grad_norm(g, 1.0), rnnbptt::Error);
}

TEST(Clip, NonFiniteNormsRaiseOrReportAndLeaveTheGradientUntouched) {
  expect_non_finite_policies<float>();
  expect_non_finite_policies<double>();
}

template <class Scalar>
void expect_value_clipping() {
  std::vector<Scalar> g{Scalar(-3), Scalar(0.5), Scalar(2), Scalar(-0.25), Scalar(1)};
  EXPECT_EQ(rnnbptt::clip_grad_value(g, 1.0), 2);  // 1.0 itself is inside [-1, 1]
  EXPECT_TRUE(support::same_bits(g, std::vector<Scalar>{Scalar(-1), Scalar(0.5), Scalar(1), Scalar(-0.25), Scalar(1)}));
  EXPECT_EQ(rnnbptt::clip_grad_value(g, 0.5), 3);
  EXPECT_TRUE(
      support::same_bits(g, std::vector<Scalar>{Scalar(-0.5), Scalar(0.5), Scalar(0.5), Scalar(-0.25), Scalar(0.5)}));
}

TEST(Clip, ValueClippingClampsAndCounts) {
  expect_value_clipping<float>();
  expect_value_clipping<double>();
}

TEST(Clip, TheNormIsTheSameForAnyThreadCount) {
  std::vector<float> g(100003);
  support::Draw draw(5);
  for (float& v : g) v = static_cast<float>(draw.uniform(-1, 1));
  const int threads = rnnbptt::get_num_threads();
  rnnbptt::set_num_threads(1);
  const double one = rnnbptt::global_norm(g);
  rnnbptt::set_num_threads(2);
  const double two = rnnbptt::global_norm(g);
  rnnbptt::set_num_threads(threads);
  EXPECT_EQ(one, two);
  double sum = 0.0;
  for (float v : g) sum += static_cast<double>(v) * v;
  EXPECT_NEAR(one, std::sqrt(sum), 1e-12 * one);
}

}  // namespace
