// The LSTM cell, in PyTorch's conventions (nn.LSTM): gate blocks i, f, g, o along the
// G h = 4h columns of a_t = x_t W_hx^T + b_hx + h_{t-1} W_hh^T + b_hh; the state is (h_t, c_t):
//   i = sigma(a_i)   f = sigma(a_f)   g = tanh(a_g)   o = sigma(a_o)
//   c_t = f * c_{t-1} + i * g          h_t = o * tanh(c_t)
// Backward (docs/design.md section 9), given dh = dL/dh_t and dc = dL/dc_t from step t + 1:
//   dc' = dc + o (1 - tanh(c_t)^2) dh
//   dp = ds = [i (1 - i) g dc', f (1 - f) c_{t-1} dc', (1 - g^2) i dc', o (1 - o) tanh(c_t) dh]
//   dL/dc_{t-1} = f * dc' (the flow factor is the driver's)
// Forward keeps i, f, g, o in place of p_t; tanh(c_t) is computed again from c_t (the same
// bits).
#pragma once

#include "cells/step.hpp"

namespace rnnbptt::detail {

struct LstmCell {
  static constexpr Index gates = 4;
  static constexpr bool cell_state = true;
  static constexpr bool separate_ds = false;
  static constexpr bool direct = false;
  static constexpr bool kept = false;

  template <class Scalar>
  static void forward(const StepForward<Scalar>& a) {
    const Index n = a.n, h = a.h;
    ArrayMap<Scalar> g(a.gates, n, 4 * h);
    g += ConstArrayMap<Scalar>(a.s, n, 4 * h);
    g.leftCols(2 * h) = sigmoid(g.leftCols(2 * h));
    g.middleCols(2 * h, h) = g.middleCols(2 * h, h).tanh();
    g.rightCols(h) = sigmoid(g.rightCols(h));
    ArrayMap<Scalar> c(a.c_out, n, h);
    c = g.middleCols(h, h) * ConstArrayMap<Scalar>(a.c_prev, n, h) + g.leftCols(h) * g.middleCols(2 * h, h);
    ArrayMap<Scalar>(a.h_out, n, h) = g.rightCols(h) * c.tanh();
  }

  template <class Scalar>
  static void backward(const StepBackward<Scalar>& a) {
    const Index n = a.n, h = a.h;
    ConstArrayMap<Scalar> g(a.gates, n, 4 * h), dh(a.dh, n, h), dc(a.dc, n, h);
    ConstArrayMap<Scalar> c_t(a.c_t, n, h), c_prev(a.c_prev, n, h);
    const auto i = g.leftCols(h);
    const auto f = g.middleCols(h, h);
    const auto gg = g.middleCols(2 * h, h);
    const auto o = g.rightCols(h);
    ArrayMap<Scalar> dp(a.dp, n, 4 * h);
    ArrayMap<Scalar> dc_prev(a.dc_prev, n, h);
    // dc' lands in dc_prev first (it is read four times), then becomes f * dc'.
    const auto tanh_c = c_t.tanh();
    dp.rightCols(h) = o * (Scalar(1) - o) * (tanh_c * dh);
    dc_prev = dc + o * (Scalar(1) - tanh_c * tanh_c) * dh;
    dp.leftCols(h) = i * (Scalar(1) - i) * (gg * dc_prev);
    dp.middleCols(h, h) = f * (Scalar(1) - f) * (c_prev * dc_prev);
    dp.middleCols(2 * h, h) = (Scalar(1) - gg * gg) * (i * dc_prev);
    dc_prev *= f;
  }
};

}  // namespace rnnbptt::detail
