/// @file truncation.hpp
/// @brief The three truncation strategies (docs/design.md section 4) and the schedule they
/// produce.
///
/// Thread safety: a Truncation is immutable once built; it may be read (schedule, to_string,
/// used by backward passes) from several threads at once. Errors: InvalidArgument.
//
// A Truncation says where backward may carry gradient through the recurrence. It is turned
// into a schedule here, and only here: a list of windows and the per-step factor xi_t (the
// flow). The backward driver (rnn_backward.cpp) runs the schedule and knows no strategy.
//
//   window  steps [first, end) of one backward pass, injecting the losses of [begin, end)
//   flow    xi_t for t = 1..T: the factor on the gradient flowing from step t into h_{t-1}
//           inside a window that holds both (a window's first step is a cut, except that a
//           window starting at step 0 hands its gradient on to h_0)
//   lane    a set of windows that do not overlap: one pass of the recurrence runs a lane
//
// Full is one window. Randomized and Regular(k, k) are windows that tile the sequence (one
// lane). Regular(k1 < k2) is one window per block of k1 steps reaching k2 - k1 steps further
// back, so windows overlap; they are dealt into lanes and the lanes' gradients add up.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/export.hpp"
#include "rnnbptt/core/random.hpp"  // uniform_at: the draw at global step t depends only on (seed, t)
#include "rnnbptt/core/span.hpp"

namespace rnnbptt {

/// One backward pass: steps [first, end) (0-based), losses of steps [begin, end) injected.
struct Window {
  Index first;
  Index begin;
  Index end;
  Index lane;  ///< windows of the same lane never overlap
};

/// A strategy, validated once when it is built; immutable afterwards.
class RNNBPTT_EXPORT Truncation {
 public:
  enum class Kind { full, regular, randomized };

  /// Full BPTT: xi_t = 1, one window.
  static Truncation full();
  /// Regular(k) = Regular(k, k): detach the state every k steps.
  static Truncation regular(Index k);
  /// Williams & Peng's TBPTT(k1, k2): every k1 steps a backward pass reaches k2 >= k1 steps
  /// back and injects the losses of the last k1 steps.
  /// Throws InvalidArgument: k1 < 1, k2 < k1.
  static Truncation regular(Index k1, Index k2);
  /// xi_t = 1/pi with probability pi, else 0 (a cut).
  /// Throws InvalidArgument: pi outside (0, 1] (NaN included), an empty schedule.
  static Truncation randomized(double pi, std::uint64_t seed);
  /// pi_t = schedule[min(length, size) - 1], length = steps the current segment already holds.
  static Truncation randomized(std::vector<double> schedule, std::uint64_t seed);
  /// The string form, for command lines, logs and checkpoints: "full", "regular:K",
  /// "regular:K1,K2", "randomized:PI[,PI...][,seed=S]" (seed 0 when absent). parse(to_string())
  /// gives back an equal Truncation. Throws InvalidArgument naming `truncation`.
  static Truncation parse(const std::string& spec);
  std::string to_string() const;

  Kind kind() const { return kind_; }
  Index k1() const { return k1_; }  ///< regular only, else 0
  Index k2() const { return k2_; }  ///< regular only, else 0
  const std::vector<double>& keep_probability() const { return keep_probability_; }
  std::uint64_t seed() const { return seed_; }
  bool operator==(const Truncation& other) const;
  bool operator!=(const Truncation& other) const { return !(*this == other); }

  /// Steps of history a stream keeps so that windows reach across a chunk boundary.
  Index history_steps() const { return kind_ == Kind::regular ? k2_ - k1_ : 0; }
  /// Throws InvalidArgument naming `argument` unless a chunk of `steps` steps is a whole
  /// number of blocks (Regular: a multiple of k1), so that blocks never straddle chunks.
  void check_chunk(Index steps, const char* argument) const;

  /// The schedule of a sequence of `steps` >= 1 steps whose step before the first has global
  /// index step_offset (>= 0), the first `context` (0 <= context < steps) of them history (no
  /// losses). Blocks are aligned to the global index, Randomized draws are keyed by it, so the
  /// schedule of a chunk does not depend on how a stream was cut. Fills `flow`, which must
  /// hold exactly `steps` values (flow[t] = xi_{t+1}), and `windows` (cleared first; no
  /// allocation once it has capacity). Returns the number of lanes. InvalidArgument naming the
  /// argument that does not fit.
  template <class Scalar>
  Index schedule(std::int64_t step_offset, Index steps, Index context, Span<Scalar> flow,
                 std::vector<Window>& windows) const;
  /// The same for float and double flows given as any container (std::vector, Buffer).
  Index schedule(std::int64_t step_offset, Index steps, Index context, Span<float> flow,
                 std::vector<Window>& windows) const {
    return schedule<float>(step_offset, steps, context, flow, windows);
  }
  Index schedule(std::int64_t step_offset, Index steps, Index context, Span<double> flow,
                 std::vector<Window>& windows) const {
    return schedule<double>(step_offset, steps, context, flow, windows);
  }

 private:
  Kind kind_ = Kind::full;
  Index k1_ = 0;
  Index k2_ = 0;
  std::vector<double> keep_probability_;
  std::uint64_t seed_ = 0;
};

}  // namespace rnnbptt
