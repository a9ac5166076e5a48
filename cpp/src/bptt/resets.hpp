// Resets and lengths inside a batch (SequenceInput::resets, ::lengths; docs/design.md section
// 4.8), shared by the fused Elman driver (forward.cpp, backward.cpp) and the stack
// (layers.cpp). rnn_forward checks and copies them into the workspace; the drivers read the
// copies:
//   forward   before step t, a row whose flag is set starts again from its reset state: the
//             recurrent product reads that row instead of h_{t-1}, the cell its h and c;
//   backward  nothing is carried from step t + 1 into a row cut there (a reset at t + 1, or
//             t + 1 past the row's length); a reset's share goes to dL/dh0 instead, the
//             length's seed dL/dh_T enters at the row's last step; and dW_hh, one product over
//             h_{t-1}, is corrected at the reset rows by ds_t^T (state_0 - h_{t-1}).
#pragma once

#include <cstdint>

#include "rnnbptt/bptt/workspace.hpp"
#include "rnnbptt/core/config.hpp"

namespace rnnbptt::detail {

// f(set, first, count) for the runs of rows [begin, end) on which flag(r) agrees.
template <class Flag, class F>
void for_each_run(Index begin, Index end, Flag&& flag, F&& f) {
  Index r = begin;
  while (r < end) {
    const bool set = flag(r);
    Index stop = r + 1;
    while (stop < end && flag(stop) == set) ++stop;
    f(set, r, stop - r);
    r = stop;
  }
}

// What the backward pass asks of the resets and lengths of the last forward.
struct Cuts {
  const std::uint8_t* resets = nullptr;  // steps x n, or nullptr
  const Index* lengths = nullptr;        // n, or nullptr
  Index n = 0;

  template <class Scalar>
  explicit Cuts(const Workspace<Scalar>& ws)
      : resets(ws.has_resets ? ws.resets.data() : nullptr),
        lengths(ws.has_lengths ? ws.lengths.data() : nullptr),
        n(ws.batch) {}

  bool any() const { return resets != nullptr || lengths != nullptr; }
  // Row r starts again from its reset state at step t (0-based).
  bool reset(Index t, Index r) const { return resets != nullptr && resets[t * n + r] != 0; }
  // Nothing flows from step t + 1 into row r of step t.
  bool cut(Index t, Index r) const { return reset(t + 1, r) || (lengths != nullptr && t + 1 >= lengths[r]); }
  // dL/dh_T of row r enters at step t (its last step), when it has lengths.
  bool last(Index t, Index r) const { return lengths != nullptr && t + 1 == lengths[r]; }
};

// Checks x.resets and x.lengths against x (T x n flags, each 0 or 1; n lengths in [0, T], none
// with context steps) and copies them into ws with the state a reset restores: `initial` (h0,
// config.state_size(n) values) or zeros when it is empty. InvalidArgument naming the argument.
template <class Scalar>
void take_resets(Workspace<Scalar>& ws, const ModelConfig& config, const SequenceInput<Scalar>& x, Index context_steps,
                 Span<const Scalar> initial);

}  // namespace rnnbptt::detail
