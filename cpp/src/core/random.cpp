// The portable generator (rnnbptt/core/random.hpp, docs/design.md section 8.3).
#include "rnnbptt/core/random.hpp"

#include <cmath>

namespace rnnbptt {

namespace {

constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Random::Random(std::uint64_t seed) {
  // splitmix64 never gives four zero words, the one state xoshiro must avoid.
  for (std::uint64_t& word : s_) word = detail::splitmix64(seed);
}

std::uint64_t Random::next() {
  // xoshiro256**
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Random::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double Random::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u = 0.0, v = 0.0, s = 0.0;
  do {  // a point uniform in the unit disc, not its centre: accepted with probability pi / 4
    u = 2.0 * uniform() - 1.0;
    v = 2.0 * uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  const double factor = std::sqrt(-2.0 * detail::log_unit(s) / s);
  spare_ = v * factor;
  has_spare_ = true;
  return u * factor;
}

double uniform_at(std::uint64_t seed, std::int64_t step) {
  // splitmix64 of (seed, step): a bijective mixer, so distinct steps give independent-looking
  // draws; the top 53 bits become a double in [0, 1).
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(step);
  for (int round = 0; round < 2; ++round) {
    std::uint64_t state = z;
    z = detail::splitmix64(state);  // the mix of z + golden
  }
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

namespace detail {

double log_unit(double x) {
  int e = 0;
  double m = std::frexp(x, &e);    // x = m 2^e, m in [0.5, 1): exact
  if (m < 0x1.6a09e667f3bcdp-1) {  // sqrt(1/2): m into [sqrt(1/2), sqrt(2))
    m *= 2.0;
    e -= 1;
  }
  // log m = log(1 + f) = 2 atanh(s) = 2 s + s R with f = m - 1 (exact), s = f / (2 + f) and
  // R = 2 (s^2 / 3 + s^4 / 5 + ... + s^24 / 25) (the next term is below 2^-80); and 2 s = f - s f,
  // so log m = f - s (f - R), where only the small correction s (f - R) carries rounding.
  const double f = m - 1.0, s = f / (2.0 + f), s2 = s * s;
  double series = 2.0 / 25.0;
  for (int k = 11; k >= 1; --k) series = series * s2 + 2.0 / (2 * k + 1);
  const double R = s2 * series;
  constexpr double ln2_hi = 0x1.62e42fefa3800p-1, ln2_lo = 0x1.ef35793c76730p-45;  // ln 2 = hi + lo
  const double exponent = static_cast<double>(e);
  return exponent * ln2_hi + ((f - s * (f - R)) + exponent * ln2_lo);
}

}  // namespace detail

}  // namespace rnnbptt
