#include "rnnbptt/truncation.hpp"

#include <algorithm>
#include <cmath>

#include "rnnbptt/error.hpp"

namespace rnnbptt {

using detail::invalid;

Truncation Truncation::full() { return Truncation{}; }

Truncation Truncation::regular(Index k1, Index k2) {
  Truncation t;
  t.kind = Kind::regular;
  t.k1 = k1;
  t.k2 = k2 == 0 ? k1 : k2;
  t.validate();
  return t;
}

Truncation Truncation::randomized(double pi, std::uint64_t seed) {
  return randomized(std::vector<double>{pi}, seed);
}

Truncation Truncation::randomized(std::vector<double> schedule, std::uint64_t seed) {
  Truncation t;
  t.kind = Kind::randomized;
  t.keep_probability = std::move(schedule);
  t.seed = seed;
  t.validate();
  return t;
}

void Truncation::validate() const {
  switch (kind) {
    case Kind::full: return;
    case Kind::regular:
      if (k1 <= 0) invalid("k1: expected a positive number of steps, got ", k1);
      if (k2 < k1) invalid("k2: expected k2 >= k1 = ", k1, ", got ", k2);
      return;
    case Kind::randomized:
      if (keep_probability.empty())
        invalid("pi: expected a probability or a non-empty schedule, got an empty schedule");
      for (std::size_t i = 0; i < keep_probability.size(); ++i) {
        const double pi = keep_probability[i];
        if (!(pi > 0.0 && pi <= 1.0))
          invalid("pi: expected every keep probability in (0, 1], got ", pi, " at index ", i);
      }
      return;
  }
}

double uniform_at(std::uint64_t seed, std::int64_t step) {
  // splitmix64 of (seed, step): a bijective mixer, so distinct steps give independent-looking
  // draws; the top 53 bits become a double in [0, 1).
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(step);
  for (int round = 0; round < 2; ++round) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
  }
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

template <class Scalar>
void fill_flow_scales(const Truncation& truncation, std::int64_t step_offset, Index steps,
                      Scalar* c) {
  std::fill(c, c + steps, Scalar(1));
  switch (truncation.kind) {
    case Truncation::Kind::full: return;
    case Truncation::Kind::regular:
      // Blocks start where the global step index is 1 + a multiple of k1 (k1 == k2 here).
      for (Index t = 2; t <= steps; ++t)
        if ((step_offset + t - 1) % truncation.k1 == 0) c[t - 1] = Scalar(0);
      return;
    case Truncation::Kind::randomized: {
      const auto& schedule = truncation.keep_probability;
      const Index last = static_cast<Index>(schedule.size()) - 1;
      Index length = 1;  // steps in the current segment before step t
      for (Index t = 2; t <= steps; ++t) {
        const double pi = schedule[std::min(length, last + 1) - 1];
        if (uniform_at(truncation.seed, step_offset + t) < pi) {
          c[t - 1] = static_cast<Scalar>(1.0 / pi);
          ++length;
        } else {
          c[t - 1] = Scalar(0);
          length = 1;
        }
      }
      return;
    }
  }
}

template void fill_flow_scales<float>(const Truncation&, std::int64_t, Index, float*);
template void fill_flow_scales<double>(const Truncation&, std::int64_t, Index, double*);

}  // namespace rnnbptt
