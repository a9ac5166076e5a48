/// @file random.hpp
/// @brief The one random generator of rnnbptt, for everything that draws: initial weights
/// (Model::init_uniform, Model::init_normal), Randomized truncation's cuts (uniform_at) and
/// sampling (generate). A seed gives the same numbers on every platform, compiler and standard
/// library: the bits come from xoshiro256** seeded through splitmix64, and uniform and normal
/// variates are our own transforms of them using only +, -, *, /, sqrt and frexp (exactly rounded
/// in IEEE arithmetic; the library is compiled with -ffp-contract=off), never a
/// std::*_distribution, whose output the C++ standard leaves to each library.
///
/// Thread safety: a Random is used by one thread at a time; uniform_at is a pure function.
#pragma once

#include <cstdint>

#include "rnnbptt/core/export.hpp"

namespace rnnbptt {

/// Our own portable generator: xoshiro256** seeded through splitmix64.
class RNNBPTT_EXPORT Random {
 public:
  explicit Random(std::uint64_t seed);
  /// The next 64 random bits.
  std::uint64_t next();
  /// A double in [0, 1): the top 53 bits of next() times 2^-53.
  double uniform();
  /// A standard normal variate: Marsaglia's polar method on pairs of uniform() draws (the second
  /// variate of a pair is kept for the next call), with rnnbptt::detail::log_unit for the log.
  double normal();

 private:
  std::uint64_t s_[4];
  double spare_ = 0.0;
  bool has_spare_ = false;
};

/// A counter-based uniform draw in [0, 1) for (seed, step): two rounds of splitmix64 over
/// seed * golden + step, the top 53 bits times 2^-53. Distinct steps give independent-looking
/// draws without any state (Randomized truncation draws its cuts with it).
RNNBPTT_EXPORT double uniform_at(std::uint64_t seed, std::int64_t step);

namespace detail {

/// One step of splitmix64: advances `state` and returns the next 64 bits.
inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// The natural logarithm of x in (0, 1], from basic operations only (so the same bits
/// everywhere): x = m 2^e with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s) with
/// s = (m - 1) / (m + 1), |s| < 0.172, by 12 terms of its series, arranged so that only a small
/// correction is rounded. Within 1 ulp of log(x).
RNNBPTT_EXPORT double log_unit(double x);

}  // namespace detail

}  // namespace rnnbptt
