// The Elman cell as a layer of a stack: h_t = phi(p_t + s_t), p_t = W_hx x_t + b_h,
// s_t = W_hh h_{t-1}. One Elman layer alone runs the fused kernels of forward.cpp and
// backward.cpp instead; this is the same arithmetic for stacks.
//   backward: dp_t = ds_t = phi'(a_t) * dh_t, phi' read off h_t.
#pragma once

#include "cells/step.hpp"
#include "kernels/recurrence.hpp"

namespace rnnbptt::detail {

struct ElmanCell {
  static constexpr Index gates = 1;
  static constexpr bool cell_state = false;
  static constexpr bool separate_ds = false;
  static constexpr bool direct = false;
  static constexpr bool kept = false;

  template <class Scalar>
  static void forward(const StepForward<Scalar>& a) {
    ArrayMap<Scalar>(a.h_out, a.n, a.h) =
        ConstArrayMap<Scalar>(a.gates, a.n, a.h) + ConstArrayMap<Scalar>(a.s, a.n, a.h);
    activate_band(a.activation, a.h_out, a.n, a.h, Index(0), a.h);
  }

  template <class Scalar>
  static void backward(const StepBackward<Scalar>& a) {
    ArrayMap<Scalar>(a.dp, a.n, a.h) = ConstArrayMap<Scalar>(a.dh, a.n, a.h);
    derivative_band(a.activation, a.dp, a.h_t, a.n, a.h, Index(0), a.h);
  }
};

}  // namespace rnnbptt::detail
