// The three truncation strategies of the seed's figure (DESIGN.md section 3).
//
// Every strategy is expressed through where the backward recursion may carry gradient from
// step t into h_{t-1}. Full and Randomized scale that flow by c_t (1, or xi_t); Regular(k1, k2)
// runs one backward window per block of k1 steps that reaches k2 steps back.
#pragma once

#include <cstdint>
#include <vector>

#include "rnnbptt/config.hpp"

namespace rnnbptt {

struct Truncation {
  enum class Kind { full, regular, randomized };

  Kind kind = Kind::full;
  Index k1 = 0;  // regular: a backward pass every k1 steps ...
  Index k2 = 0;  // ... reaching k2 >= k1 steps back
  // randomized: keep probability pi as a function of the current segment's length so far:
  // pi = keep_probability[min(length, size) - 1]. One entry means a constant pi.
  std::vector<double> keep_probability;
  std::uint64_t seed = 0;

  static Truncation full();
  static Truncation regular(Index k1, Index k2 = 0);  // k2 = 0 means k2 = k1
  static Truncation randomized(double pi, std::uint64_t seed);
  static Truncation randomized(std::vector<double> schedule, std::uint64_t seed);

  // Throws std::invalid_argument: k1 <= 0, k2 < k1, pi outside (0, 1] or not finite.
  void validate() const;
  // Regular(k1, k2) with k1 < k2 needs windows that overlap; the others are one pass.
  bool overlapping_windows() const { return kind == Kind::regular && k2 > k1; }
  // Steps of history a stream must keep so that windows can reach across a chunk boundary.
  Index history_steps() const { return overlapping_windows() ? k2 - k1 : 0; }
};

// The uniform variate in [0, 1) for global step t: a counter-based hash, so the draw at a step
// depends only on (seed, t), never on threads or on how a stream was cut into chunks.
double uniform_at(std::uint64_t seed, std::int64_t step);

// Fills c[0..T) with c_t for steps t = 1..T (c[0] is the flow from step 1 into h_0), given
// that the step before this sequence has global index step_offset. Full: 1. Regular(k, k): 0
// at every block start (global step a multiple of k), except the sequence start. Randomized:
// xi_t in {0, 1/pi_t}. The sequence start itself is never a cut (c[0] = 1).
template <class Scalar>
void fill_flow_scales(const Truncation& truncation, std::int64_t step_offset, Index steps, Scalar* c);

}  // namespace rnnbptt
