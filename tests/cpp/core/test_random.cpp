// The portable generator (rnnbptt/core/random.hpp): xoshiro256** seeded by splitmix64, whose
// first output for seed 0 is published; our logarithm within 1 ulp of the C library's; normal
// variates with a standard normal's moments; uniform_at equal to two rounds of splitmix64 written
// out here; and initial weights drawn from it in the flat order (tests/test_random.py compares
// them bit for bit with an independent Python implementation).
#include "support.hpp"

#include <rnnbptt/core/random.hpp>

#include <cmath>
#include <limits>

namespace {

TEST(Random, IsXoshiro256StarStarSeededBySplitmix64) {
  std::uint64_t state = 0;
  EXPECT_EQ(rnnbptt::detail::splitmix64(state), 0xE220A8397B1DCDAFULL);  // splitmix64's published start
  rnnbptt::Random rng(0);
  EXPECT_EQ(rng.next(), 0x99EC5F36CB75F2B4ULL);
  rnnbptt::Random a(12345), b(12345);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(a.uniform(), b.uniform());
}

TEST(Random, LogIsWithinOneUlp) {
  rnnbptt::Random rng(3);
  for (int i = 0; i < 200000; ++i) {
    const double x =
        i < 1000 ? std::ldexp(1.0 - rng.uniform(), -static_cast<int>(rng.next() % 1070)) : 1.0 - rng.uniform();
    const double expected = std::log(x);
    const double ulp = std::nextafter(std::abs(expected), std::numeric_limits<double>::infinity()) - std::abs(expected);
    ASSERT_LE(std::abs(rnnbptt::detail::log_unit(x) - expected), ulp) << x;
  }
  EXPECT_EQ(rnnbptt::detail::log_unit(1.0), 0.0);
}

TEST(Random, NormalHasAStandardNormalsMoments) {
  rnnbptt::Random rng(7);
  const int count = 200000;
  double sum = 0, squares = 0, fourth = 0;
  for (int i = 0; i < count; ++i) {
    const double z = rng.normal();
    sum += z;
    squares += z * z;
    fourth += z * z * z * z;
  }
  EXPECT_NEAR(sum / count, 0.0, 0.01);
  EXPECT_NEAR(squares / count, 1.0, 0.01);
  EXPECT_NEAR(fourth / count, 3.0, 0.06);
}

TEST(Random, UniformAtIsTwoRoundsOfSplitmix64) {
  const auto mix = [](std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  };
  for (const auto& [seed, step] : std::vector<std::pair<std::uint64_t, std::int64_t>>{
           {0, 0}, {5, 17}, {~0ULL, std::numeric_limits<std::int64_t>::max()}}) {
    std::uint64_t z = seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(step);
    z = mix(z + 0x9E3779B97F4A7C15ULL);
    z = mix(z + 0x9E3779B97F4A7C15ULL);
    EXPECT_EQ(rnnbptt::uniform_at(seed, step), static_cast<double>(z >> 11) * 0x1.0p-53);
  }
}

TEST(Random, InitialWeightsAreTheGeneratorsDraws) {
  rnnbptt::Model<double> model(support::config_of(3, 4, 2));
  model.init_uniform(0.5, 9);
  rnnbptt::Random rng(9);
  for (const double w : model.parameters()) ASSERT_EQ(w, (2.0 * rng.uniform() - 1.0) * 0.5);
  model.init_normal(0.1, 9);
  rnnbptt::Random again(9);
  const rnnbptt::ParameterLayout layout(model.config());
  for (const rnnbptt::Tensor& t : layout.tensors)
    for (rnnbptt::Index i = 0; i < t.size(); ++i)
      ASSERT_EQ(model.parameters()[t.offset + i], t.vector ? 0.0 : 0.1 * again.normal()) << t.name;
}

}  // namespace
