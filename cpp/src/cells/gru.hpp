// The GRU cell, in PyTorch's conventions (nn.GRU): gate blocks r, z, n along the G h = 3h
// columns of p_t = x_t W_hx^T + b_hx and s_t = h_{t-1} W_hh^T + b_hh, with b_hn inside the
// reset gate's product:
//   r_t = sigma(p_r + s_r)   z_t = sigma(p_z + s_z)   n_t = tanh(p_n + r_t * s_n)
//   h_t = (1 - z_t) * n_t + z_t * h_{t-1}
// Backward (docs/design.md section 9), given the whole dh = dL/dh_t:
//   dp_n = (1 - n_t^2) * (1 - z_t) * dh      dp_z = z_t (1 - z_t) * (h_{t-1} - n_t) * dh
//   dp_r = r_t (1 - r_t) * s_n * dp_n
//   dp = [dp_r, dp_z, dp_n]   ds = [dp_r, dp_z, r_t * dp_n]   direct term to h_{t-1}: z_t * dh
// Forward keeps r_t, z_t, n_t in place of p_t and s_n apart (n x h).
#pragma once

#include "cells/step.hpp"

namespace rnnbptt::detail {

struct GruCell {
  static constexpr Index gates = 3;
  static constexpr bool cell_state = false;
  static constexpr bool separate_ds = true;
  static constexpr bool direct = true;
  static constexpr bool kept = true;

  template <class Scalar>
  static void forward(const StepForward<Scalar>& a) {
    const Index n = a.n, h = a.h;
    ArrayMap<Scalar> g(a.gates, n, 3 * h);
    ConstArrayMap<Scalar> s(a.s, n, 3 * h);
    ArrayMap<Scalar> s_n(a.kept, n, h);
    s_n = s.rightCols(h);
    g.leftCols(2 * h) = sigmoid(g.leftCols(2 * h) + s.leftCols(2 * h));
    g.rightCols(h) = (g.rightCols(h) + g.leftCols(h) * s_n).tanh();
    const auto z = g.middleCols(h, h);
    const auto n_t = g.rightCols(h);
    ArrayMap<Scalar>(a.h_out, n, h) = (Scalar(1) - z) * n_t + z * ConstArrayMap<Scalar>(a.h_prev, n, h);
  }

  template <class Scalar>
  static void backward(const StepBackward<Scalar>& a) {
    const Index n = a.n, h = a.h;
    ConstArrayMap<Scalar> g(a.gates, n, 3 * h), dh(a.dh, n, h), h_prev(a.h_prev, n, h), s_n(a.kept, n, h);
    const auto r = g.leftCols(h);
    const auto z = g.middleCols(h, h);
    const auto n_t = g.rightCols(h);
    ArrayMap<Scalar> dp(a.dp, n, 3 * h), ds(a.ds, n, 3 * h);
    dp.rightCols(h) = (Scalar(1) - n_t * n_t) * ((Scalar(1) - z) * dh);
    dp.middleCols(h, h) = z * (Scalar(1) - z) * ((h_prev - n_t) * dh);
    dp.leftCols(h) = r * (Scalar(1) - r) * (s_n * dp.rightCols(h));
    ds.leftCols(2 * h) = dp.leftCols(2 * h);
    ds.rightCols(h) = r * dp.rightCols(h);
    ArrayMap<Scalar>(a.dh_direct, n, h) = z * dh;
  }
};

}  // namespace rnnbptt::detail
