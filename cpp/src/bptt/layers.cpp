// A stack of L cells (docs/design.md section 9), forward and BPTT, with the cell a compile-time
// parameter of the driver (cells/step.hpp): no virtual call per step.
//
// Forward, layer by layer: p_t = x_t W_hx^T + b_hx for all T steps is one product (a gather of
// W_hx's columns for token ids), then step by step s_t = h_{t-1} W_hh^T + b_hh (one product of
// n rows) and the cell's elementwise step. Layer l + 1 reads layer l's h_1 .. h_T.
//
// Backward runs the truncation's schedule (ws.windows, ws.flow, ws.lanes; truncation.cpp) as
// backward.cpp does, one lane at a time and in each lane one layer at a time from the top:
//   dL/dh_t = (from above) + xi_{t+1} dL/dh_t|from t + 1       (and dL/dc_t = xi_{t+1} ...)
// where "from above" is W_qh^T dL/do_t for the top layer (inside a window's injecting steps)
// and the lane's W_hx^T dp_t of the layer above otherwise, a product over all T steps made
// once per layer and lane. The flow factor scales the whole state's gradient (h and c, and the
// GRU's direct term) of every layer alike: no cell knows the strategy. The cell leaves dp_t and
// ds_t in buffers, so every weight gradient is one product over all T n rows after the loops:
//   dW_hx = dP^T X   dW_hh = dS^T H_{0..T-1}   db_hx = sum dP   db_hh = sum dS
// Lanes add their dp and ds into the layer's totals (the gradients are linear in them).
// Every product is detail::gemm and every elementwise step runs on one thread in a fixed
// order, so the results do not depend on the thread count.
#include "bptt/layers.hpp"

#include <algorithm>
#include <new>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "bptt/resets.hpp"
#include "cells/elman.hpp"
#include "cells/gru.hpp"
#include "cells/lstm.hpp"
#include "core/checks.hpp"
#include "kernels/gemm.hpp"
#include "kernels/recurrence.hpp"
#include "rnnbptt/core/error.hpp"

namespace rnnbptt::detail {

namespace {

template <class Cell, class Scalar>
class Stack {
 public:
  Stack(Workspace<Scalar>& ws, const ModelConfig& config, const ParameterLayout& layout)
      : ws_(ws),
        config_(config),
        layout_(layout),
        T_(ws.steps),
        n_(ws.batch),
        h_(config.hidden_size),
        G_(Cell::gates * config.hidden_size),
        L_(config.num_layers),
        plan_(recurrence_plan<Scalar>(ws.batch, config.hidden_size, Cell::gates)) {}

  void forward(const Scalar* params, const SequenceInput<Scalar>& x, const Scalar* h0) {
    reserve_forward();
    const Index T = T_, n = n_, h = h_, G = G_, d = config_.input_size, q = config_.output_size;
    const Index P = ws_.context_steps, rows = (T - P) * n;  // history steps are kept, not computed
    for (Index l = 0; l < L_; ++l) {
      const LayerViews<const Scalar> p(params, layout_, l);
      LayerCache<Scalar>& cache = ws_.layers[l];
      MatrixMap<Scalar> H(states(l), (T + 1) * n, h);
      MatrixMap<Scalar> Pg(cache.gates.data(), T * n, G);  // p_t, then the kept gate values
      if (P == 0 && h0 != nullptr)
        H.topRows(n) = ConstMatrixMap<Scalar>(h0 + l * n * h, n, h);
      else if (P == 0)
        H.topRows(n).setZero();
      if constexpr (Cell::cell_state) {
        MatrixMap<Scalar> C(cache.C.data(), n, h);
        if (P == 0 && h0 != nullptr)
          C = ConstMatrixMap<Scalar>(h0 + (L_ + l) * n * h, n, h);
        else if (P == 0)
          C.setZero();
      }
      auto Pc = Pg.middleRows(P * n, rows);  // p_t of the computed steps
      // x_t is one-hot for token ids: x_t W_hx^T is a row of W_hx^T, gathered in the step below
      // (on every thread, for its rows); dense inputs are one product here. The bias b_hx is
      // added in the step too (the same one addition either way).
      const bool tokens = l == 0 && x.is_tokens();
      MatrixMap<Scalar> W_hx_T(ws_.W_hx_T.data(), tokens ? d : 0, G);
      if (tokens)
        W_hx_T = p.W_hx.transpose();
      else if (l == 0)
        gemm(Pc, ConstMatrixMap<Scalar>(x.dense.data() + P * n * d, rows, d), p.W_hx.transpose());
      else
        gemm(Pc, ConstMatrixMap<Scalar>(states(l - 1) + (P + 1) * n * h, rows, h), p.W_hx.transpose());
      const Scalar* b_hx = config_.bias ? p.b_hx.data() : nullptr;
      // s_t = h_{t-1} W_hh^T (+ b_hh) by the recurrence kernel, which packs W_hh^T once per
      // thread for the whole loop, then the cell's step row by row.
      MatrixMap<Scalar> W_hh_T(ws_.W_hh_T.data(), h, G);
      W_hh_T = p.W_hh.transpose();
      Scalar* S = ws_.step_s.data();
      Scalar* C = Cell::cell_state ? cache.C.data() : nullptr;
      const Scalar* b_hh = p.b_hh.size() != 0 ? p.b_hh.data() : nullptr;
      const std::uint8_t* resets = ws_.has_resets ? ws_.resets.data() : nullptr;
      run_recurrence<Scalar>(plan_, n, G, P, T - P, +1, [&](Index t, const Band& band) {
        for (Index r = band.row; r < band.row + band.rows; ++r) {
          Scalar* s = S + r * G;
          if (b_hh != nullptr)
            std::copy(b_hh + band.begin, b_hh + band.end, s + band.begin);
          else
            std::fill(s + band.begin, s + band.end, Scalar(0));
        }
        if (resets == nullptr)
          gemm_columns(band.rows, h, H.data() + (t * n + band.row) * h, h, W_hh_T.data(), G, S + band.row * G, G,
                       band.begin, band.end);
        else  // a reset row reads its reset state instead of h_{t-1}
          for_each_run(
              band.row, band.row + band.rows, [&](Index r) { return resets[t * n + r] != 0; },
              [&](bool reset, Index r, Index rows) {
                const Scalar* prev = reset ? reset_state(l, false, r) : H.data() + (t * n + r) * h;
                gemm_columns(rows, h, prev, h, W_hh_T.data(), G, S + r * G, G, band.begin, band.end);
              });
        each_row(band, [&](Index r) {
          const Index at = (t * n + r) * h;
          Scalar* p_t = Pg.data() + (t * n + r) * G;
          if (tokens) {
            const Scalar* row = W_hx_T.data() + x.tokens[t * n + r] * G;
            if (b_hx != nullptr)
              for (Index j = 0; j < G; ++j) p_t[j] = row[j] + b_hx[j];
            else
              std::copy(row, row + G, p_t);
          } else if (b_hx != nullptr) {
            for (Index j = 0; j < G; ++j) p_t[j] += b_hx[j];
          }
          const bool reset = resets != nullptr && resets[t * n + r] != 0;
          Cell::forward(StepForward<Scalar>{1, h, config_.activation, p_t, S + r * G,
                                            reset ? reset_state(l, false, r) : H.data() + at,
                                            C == nullptr ? nullptr
                                            : reset      ? reset_state(l, true, r)
                                                         : C + at,
                                            H.data() + at + n * h, C != nullptr ? C + at + n * h : nullptr,
                                            Cell::kept ? cache.kept.data() + at : nullptr});
        });
      });
    }
    const ParameterViews<const Scalar> top(params, layout_);
    auto O = MatrixMap<Scalar>(ws_.O.data(), T * n, q).middleRows(P * n, rows);
    gemm(O, ConstMatrixMap<Scalar>(states(L_ - 1) + (P + 1) * n * h, rows, h), top.W_qh.transpose());
    if (config_.bias) O.rowwise() += top.b_q;
    // The final state: after step T, or with lengths after each sequence's own last step.
    for (Index l = 0; l < L_; ++l)
      for (Index r = 0; r < n; ++r) {
        const Index last = ws_.has_lengths ? ws_.lengths[r] : T;
        std::copy_n(states(l) + (last * n + r) * h, h, ws_.state_T.data() + (l * n + r) * h);
        if constexpr (Cell::cell_state)
          std::copy_n(ws_.layers[l].C.data() + (last * n + r) * h, h, ws_.state_T.data() + ((L_ + l) * n + r) * h);
      }
  }

  void backward(Scalar* dparams, const Scalar* params, const BackwardOptions<Scalar>& options) {
    const Index T = T_, n = n_, h = h_, G = G_, d = config_.input_size, q = config_.output_size;
    const Index lanes = ws_.lanes;
    reserve_backward(lanes, options.record_dh_norms);
    const ParameterViews<const Scalar> top(params, layout_);
    ParameterViews<Scalar> dtop(dparams, layout_);
    ConstMatrixMap<Scalar> dO(ws_.dO.data(), T * n, q);
    // W_qh^T dL/do_t for every step: what the top layer receives from above.
    gemm(MatrixMap<Scalar>(ws_.dH.data(), T * n, h), dO, top.W_qh);
    for (LayerCache<Scalar>& cache : ws_.layers) {
      MatrixMap<Scalar>(cache.dP.data(), T * n, G).setZero();
      if constexpr (Cell::separate_ds) MatrixMap<Scalar>(cache.dS.data(), T * n, G).setZero();
    }
    if (options.dh0.size() != 0) std::fill(options.dh0.begin(), options.dh0.end(), Scalar(0));
    if (options.record_dh_norms) std::fill_n(ws_.step_norms.data(), T * n, 0.0);
    for (Index lane = 0; lane < lanes; ++lane) {
      assign_owners(lane);
      for (Index l = L_ - 1; l >= 0; --l) {
        LayerCache<Scalar>& cache = ws_.layers[l];
        Scalar* dP = lanes == 1 ? cache.dP.data() : ws_.lane_dP.data();
        Scalar* dS = Cell::separate_ds ? (lanes == 1 ? cache.dS.data() : ws_.lane_dS.data()) : dP;
        if (lanes > 1) {
          MatrixMap<Scalar>(dP, T * n, G).setZero();
          if constexpr (Cell::separate_ds) MatrixMap<Scalar>(dS, T * n, G).setZero();
        }
        recursion(params, l, l == L_ - 1 ? ws_.dH.data() : ws_.from_above.data(), dP, dS, options);
        if (lanes > 1) {
          MatrixMap<Scalar>(cache.dP.data(), T * n, G) += ConstMatrixMap<Scalar>(dP, T * n, G);
          if constexpr (Cell::separate_ds)
            MatrixMap<Scalar>(cache.dS.data(), T * n, G) += ConstMatrixMap<Scalar>(dS, T * n, G);
        }
        // The lane's gradient into the layer below: W_hx^T dp_t at every step.
        if (l > 0)
          gemm(MatrixMap<Scalar>(ws_.from_above.data(), T * n, h), ConstMatrixMap<Scalar>(dP, T * n, G),
               LayerViews<const Scalar>(params, layout_, l).W_hx);
      }
    }
    // A sequence of length 0 ends in its initial state: dL/dh_T is dL/dh0.
    if (options.dh0.size() != 0 && options.dh_T.size() != 0 && ws_.has_lengths)
      for (Index r = 0; r < n; ++r)
        if (ws_.lengths[r] == 0)
          for (Index part = 0; part < config_.state_parts() * L_; ++part)
            for (Index j = 0; j < h; ++j) options.dh0[(part * n + r) * h + j] += options.dh_T[(part * n + r) * h + j];
    if (options.record_dh_norms)
      for (Index t = 0; t < T; ++t) {
        double sum = 0.0;  // rows in order: the same value for any thread count
        for (Index r = 0; r < n; ++r) sum += ws_.step_norms[t * n + r];
        ws_.dh_norms[t] = static_cast<Scalar>(std::sqrt(sum));
      }

    // The weight gradients, one product per tensor over all T n rows.
    gemm(dtop.W_qh, dO.transpose(), ConstMatrixMap<Scalar>(states(L_ - 1) + n * h, T * n, h));
    if (config_.bias) dtop.b_q = dO.colwise().sum();
    for (Index l = 0; l < L_; ++l) {
      LayerViews<Scalar> dp(dparams, layout_, l);
      const LayerCache<Scalar>& cache = ws_.layers[l];
      ConstMatrixMap<Scalar> dP(cache.dP.data(), T * n, G);
      ConstMatrixMap<Scalar> dS(Cell::separate_ds ? cache.dS.data() : cache.dP.data(), T * n, G);
      if (l == 0 && ws_.input.is_tokens()) {
        MatrixMap<Scalar> dW_hx_T(ws_.dW_hx_T.data(), d, G);
        dW_hx_T.setZero();
        for (Index r = 0; r < T * n; ++r) dW_hx_T.row(ws_.input.tokens[r]) += dP.row(r);
        dp.W_hx = dW_hx_T.transpose();
      } else if (l == 0) {
        gemm(dp.W_hx, dP.transpose(), ConstMatrixMap<Scalar>(ws_.input.dense.data(), T * n, d));
      } else {
        gemm(dp.W_hx, dP.transpose(), ConstMatrixMap<Scalar>(states(l - 1) + n * h, T * n, h));
      }
      gemm(dp.W_hh, dS.transpose(), ConstMatrixMap<Scalar>(states(l), T * n, h));
      // A row reset at step t read its reset state, not h_{t-1}: the product is corrected there.
      if (ws_.has_resets)
        for (Index t = 0; t < T; ++t)
          for (Index r = 0; r < n; ++r)
            if (ws_.resets[t * n + r] != 0)
              dp.W_hh.noalias() +=
                  dS.row(t * n + r).transpose() * (ConstRowVectorMap<Scalar>(reset_state(l, false, r), h) -
                                                   ConstRowVectorMap<Scalar>(states(l) + (t * n + r) * h, h));
      if (config_.bias) {
        dp.b_hx = dP.colwise().sum();
        if (dp.b_hh.size() != 0) dp.b_hh = dS.colwise().sum();
      }
    }
    if (options.dx.size() != 0)
      gemm(MatrixMap<Scalar>(options.dx.data(), T * n, d), ConstMatrixMap<Scalar>(ws_.layers[0].dP.data(), T * n, G),
           LayerViews<const Scalar>(params, layout_, 0).W_hx);
  }

 private:
  // h_0 .. h_T of layer l: the top layer's are ws.H (Model::states() reads them there).
  Scalar* states(Index l) { return l == L_ - 1 ? ws_.H.data() : ws_.layers[l].H.data(); }
  // Row r of the state a reset restores in layer l: its h, or its c (lstm).
  const Scalar* reset_state(Index l, bool c, Index r) const {
    return ws_.reset_state.data() + ((c ? L_ + l : l) * n_ + r) * h_;
  }

  void reserve_forward() {
    const Index T = T_, n = n_, h = h_, G = G_, d = config_.input_size;
    const std::size_t s = sizeof(Scalar);
    const Index steps1 = checked_add("x", "the time steps T + 1", T, 1);
    const Index states = checked_size("x", "the hidden states (T+1) x n x h", {steps1, n, h}, s);
    const Index gate_values = checked_size("x", "the gate values T x n x gates x h", {T, n, G}, s);
    const Index hidden = checked_size("x", "the kept values T x n x h", {T, n, h}, s);
    const Index step = checked_size("x", "the step's products n x gates x h", {n, G}, s);
    const Index input = checked_size(d > h ? "input_size" : "hidden_size", "W_hx transposed d x gates x h", {d, G}, s);
    const Index state = checked_size("x", "the final state", {config_.state_parts(), L_, n, h}, s);
    if (ws_.layers.size() != static_cast<std::size_t>(L_)) {
      try {
        ws_.layers.resize(static_cast<std::size_t>(L_));
      } catch (const std::bad_alloc&) {
        throw AllocationError(concat("num_layers: cannot allocate the caches of ", L_, " layers"));
      }
    }
    for (Index l = 0; l < L_; ++l) {
      LayerCache<Scalar>& cache = ws_.layers[l];
      if (l != L_ - 1) grow_buffer(cache.H, states, "x", "the hidden states (T+1) x n x h");
      if (Cell::cell_state) grow_buffer(cache.C, states, "x", "the cell states (T+1) x n x h");
      grow_buffer(cache.gates, gate_values, "x", "the gate values T x n x gates x h");
      if (Cell::kept) grow_buffer(cache.kept, hidden, "x", "the kept values T x n x h");
    }
    grow_buffer(ws_.step_s, step, "x", "the step's products n x gates x h");
    grow_buffer(ws_.W_hx_T, input, d > h ? "input_size" : "hidden_size", "W_hx transposed d x gates x h");
    grow_buffer(ws_.W_hh_T, checked_size("hidden_size", "W_hh transposed h x gates x h", {h, G}, s), "hidden_size",
                "W_hh transposed h x gates x h");
    grow_buffer(ws_.state_T, state, "x", "the final state");
  }

  void reserve_backward(Index lanes, bool norms) {
    const Index T = T_, n = n_, h = h_, G = G_, d = config_.input_size;
    const std::size_t s = sizeof(Scalar);
    const Index gate_values = checked_size("x", "the gate gradients T x n x gates x h", {T, n, G}, s);
    const Index hidden = checked_size("x", "the state gradients T x n x h", {T, n, h}, s);
    const Index carry = checked_size("x", "the carried gradients 2 x n x h", {2, n, h}, s);
    const Index input = checked_size(d > h ? "input_size" : "hidden_size", "dW_hx transposed d x gates x h", {d, G}, s);
    for (LayerCache<Scalar>& cache : ws_.layers) {
      grow_buffer(cache.dP, gate_values, "x", "the gate gradients T x n x gates x h");
      if (Cell::separate_ds) grow_buffer(cache.dS, gate_values, "x", "the gate gradients T x n x gates x h");
    }
    grow_buffer(ws_.dH, hidden, "x", "the injected gradients T x n x h");
    if (L_ > 1) grow_buffer(ws_.from_above, hidden, "x", "the gradients from above T x n x h");
    if (lanes > 1) {
      grow_buffer(ws_.lane_dP, gate_values, "x", "the lane's gate gradients T x n x gates x h");
      if (Cell::separate_ds) grow_buffer(ws_.lane_dS, gate_values, "x", "the lane's gate gradients T x n x gates x h");
    }
    grow_buffer(ws_.carry, carry, "x", "the carried gradients 2 x n x h");
    grow_buffer(ws_.step_in, carry, "x", "the step's gradients 2 x n x h");
    if (ws_.input.is_tokens())
      grow_buffer(ws_.dW_hx_T, input, d > h ? "input_size" : "hidden_size", "dW_hx transposed d x gates x h");
    if (norms)
      grow_buffer(ws_.step_norms, checked_size("x", "the norm pieces T x n", {T, n}, sizeof(double)), "x",
                  "the norm pieces T x n");
  }

  void assign_owners(Index lane) {
    Index* owner = ws_.lane_owner.data();
    std::fill(owner, owner + T_, Index(-1));
    for (std::size_t w = 0; w < ws_.windows.size(); ++w)
      if (ws_.windows[w].lane == lane)
        std::fill(owner + ws_.windows[w].first, owner + ws_.windows[w].end, static_cast<Index>(w));
  }

  // One layer's backward recursion over one lane's windows, from the last step to the first.
  // Per step: the cell's step row by row (each row's dL/dh_t = from above + xi carried), then
  // dL/dh_{t-1} = direct term + ds_t W_hh by the recurrence kernel.
  void recursion(const Scalar* params, Index l, const Scalar* above, Scalar* dP, Scalar* dS,
                 const BackwardOptions<Scalar>& options) {
    const Index T = T_, n = n_, h = h_, G = G_, part = n * h;
    const bool top = l == L_ - 1;
    const LayerViews<const Scalar> p(params, layout_, l);
    const LayerCache<Scalar>& cache = ws_.layers[l];
    const Scalar* H = states(l);
    const Scalar* C = Cell::cell_state ? cache.C.data() : nullptr;
    const Scalar* flow = ws_.flow.data();
    Scalar* carry_h = ws_.carry.data();
    Scalar* carry_c = ws_.carry.data() + part;
    Scalar* dh = ws_.step_in.data();
    Scalar* dc = ws_.step_in.data() + part;
    const Scalar* dh_T = options.dh_T.size() != 0 ? options.dh_T.data() : nullptr;
    Scalar* dh0 = options.dh0.size() != 0 && flow[0] != Scalar(0) ? options.dh0.data() : nullptr;
    Scalar* dh0_reset = options.dh0.size() != 0 ? options.dh0.data() : nullptr;  // a reset's share
    const Cuts cuts(ws_);
    run_recurrence<Scalar>(plan_, n, h, T, T, -1, [&](Index step, const Band& band) {
      const Index t = step - 1;  // 0-based row
      const Index w = ws_.lane_owner[t];
      if (w < 0) return;  // between this lane's windows (every thread alike)
      const Window& window = ws_.windows[static_cast<std::size_t>(w)];
      const bool injected = !top || t >= window.begin;
      const bool carried_step = t + 1 < T && t + 1 < window.end && flow[t + 1] != Scalar(0);
      const Scalar xi = carried_step ? flow[t + 1] : Scalar(0);
      each_row(band, [&](Index r) {
        const Index at = r * h;
        // dL/dh_T enters at the last step (with lengths, each row's own, in the window that
        // injects there); nothing is carried into a row cut at t + 1, whose share goes to
        // dL/dh0 when a reset cut it.
        const bool seeded = cuts.lengths != nullptr ? cuts.last(t, r) && t >= window.begin : t + 1 == T;
        const bool cut = carried_step && cuts.any() && cuts.cut(t, r);
        const bool carried = carried_step && !cut;
        if (cut && dh0_reset != nullptr && cuts.reset(t + 1, r)) {
          ArrayMap<Scalar>(dh0_reset + l * part + at, 1, h) += xi * ConstArrayMap<Scalar>(carry_h + at, 1, h);
          if constexpr (Cell::cell_state)
            ArrayMap<Scalar>(dh0_reset + (L_ + l) * part + at, 1, h) += xi * ConstArrayMap<Scalar>(carry_c + at, 1, h);
        }
        ArrayMap<Scalar> dh_r(dh + at, 1, h), dc_r(dc + at, 1, h);
        if (injected)
          dh_r = ConstArrayMap<Scalar>(above + t * part + at, 1, h);
        else
          dh_r.setZero();
        if (seeded && dh_T != nullptr) dh_r += ConstArrayMap<Scalar>(dh_T + l * part + at, 1, h);
        if (carried) dh_r += xi * ConstArrayMap<Scalar>(carry_h + at, 1, h);
        if constexpr (Cell::cell_state) {
          dc_r.setZero();
          if (seeded && dh_T != nullptr) dc_r = ConstArrayMap<Scalar>(dh_T + (L_ + l) * part + at, 1, h);
          if (carried) dc_r += xi * ConstArrayMap<Scalar>(carry_c + at, 1, h);
        }
        if (options.record_dh_norms) {
          double norm = dh_r.template cast<double>().square().sum();
          if constexpr (Cell::cell_state) norm += dc_r.template cast<double>().square().sum();
          ws_.step_norms[t * n + r] += norm;
        }
        const Index state_at = t * part + at;
        const bool reset = cuts.reset(t, r);  // the step read its reset state
        Cell::backward(StepBackward<Scalar>{1, h, config_.activation, cache.gates.data() + (t * n + r) * G,
                                            Cell::kept ? cache.kept.data() + state_at : nullptr,
                                            reset ? reset_state(l, false, r) : H + state_at, H + state_at + part,
                                            C == nullptr ? nullptr
                                            : reset      ? reset_state(l, true, r)
                                                         : C + state_at,
                                            C != nullptr ? C + state_at + part : nullptr, dh + at, dc + at,
                                            dP + (t * n + r) * G, dS + (t * n + r) * G, carry_h + at, carry_c + at});
        if constexpr (!Cell::direct) std::fill(carry_h + at, carry_h + at + h, Scalar(0));
        if constexpr (Cell::cell_state)
          if (t == 0 && dh0 != nullptr)
            ArrayMap<Scalar>(dh0 + (L_ + l) * part + at, 1, h) += flow[0] * ConstArrayMap<Scalar>(carry_c + at, 1, h);
      });
      // Every row's ds_t is complete before the product reads it (column bands share the rows).
      if (!plan_.by_rows && plan_.threads > 1) {
#pragma omp barrier
      }
      gemm_columns(band.rows, G, dS + (t * n + band.row) * G, G, p.W_hh.data(), h, carry_h + band.row * h, h,
                   band.begin, band.end);
      if (t == 0 && dh0 != nullptr)
        for (Index r = band.row; r < band.row + band.rows; ++r)
          for (Index j = band.begin; j < band.end; ++j) dh0[l * part + r * h + j] += flow[0] * carry_h[r * h + j];
    });
  }

  // f(r) for the rows of this thread's block: its band's rows, or (column bands, which hold
  // every row) an even share of the rows, after a barrier that makes the step's products whole.
  template <class F>
  void each_row(const Band& band, F&& f) const {
    Index first = band.row, last = band.row + band.rows;
#ifdef _OPENMP
    if (!plan_.by_rows && plan_.threads > 1) {
#pragma omp barrier
      const Index thread = omp_get_thread_num(), team = omp_get_num_threads();
      first = n_ * thread / team;
      last = n_ * (thread + 1) / team;
    }
#endif
    for (Index r = first; r < last; ++r) f(r);
  }

  Workspace<Scalar>& ws_;
  const ModelConfig& config_;
  const ParameterLayout& layout_;
  const Index T_, n_, h_, G_, L_;
  const RecurrencePlan plan_;
};

template <class Scalar, class Run>
void with_cell(const ModelConfig& config, Run&& run) {
  switch (config.cell) {
    case Cell::elman:
      return run(ElmanCell{});
    case Cell::gru:
      return run(GruCell{});
    case Cell::lstm:
      return run(LstmCell{});
  }
  invalid("cell: expected ", cell_choices(), ", got an unknown Cell ", static_cast<int>(config.cell));
}

}  // namespace

template <class Scalar>
void stack_forward(Workspace<Scalar>& ws, const ModelConfig& config, const ParameterLayout& layout,
                   const Scalar* params, const SequenceInput<Scalar>& x, const Scalar* h0) {
  with_cell<Scalar>(config,
                    [&](auto cell) { Stack<decltype(cell), Scalar>(ws, config, layout).forward(params, x, h0); });
}

template <class Scalar>
void stack_backward(Scalar* dparams, Workspace<Scalar>& ws, const ModelConfig& config, const ParameterLayout& layout,
                    const Scalar* params, const BackwardOptions<Scalar>& options) {
  with_cell<Scalar>(
      config, [&](auto cell) { Stack<decltype(cell), Scalar>(ws, config, layout).backward(dparams, params, options); });
}

namespace {

template <class Scalar>
Scalar* layer_states(Workspace<Scalar>& ws, const ModelConfig& config, Index l) {
  return l == config.num_layers - 1 ? ws.H.data() : ws.layers[l].H.data();
}

}  // namespace

template <class Scalar>
void stack_history_shift(Workspace<Scalar>& ws, const ModelConfig& config, Index from, Index k, Index n) {
  const Index h = config.hidden_size, G = config.gates() * h, part = n * h;
  for (Index l = 0; l < config.num_layers; ++l) {
    LayerCache<Scalar>& cache = ws.layers[l];
    Scalar* H = layer_states(ws, config, l);
    std::copy(H + from * part, H + (from + k + 1) * part, H);
    if (config.cell == Cell::lstm)
      std::copy(cache.C.begin() + from * part, cache.C.begin() + (from + k + 1) * part, cache.C.begin());
    if (config.cell != Cell::elman)
      std::copy(cache.gates.begin() + from * n * G, cache.gates.begin() + (from + k) * n * G, cache.gates.begin());
    if (config.cell == Cell::gru)
      std::copy(cache.kept.begin() + from * part, cache.kept.begin() + (from + k) * part, cache.kept.begin());
  }
}

// The two directions of the history's layout, one loop: from a const workspace into `rows`
// (pack), or from const `rows` into the workspace (unpack).
template <class Caches, class Row>
void history_copy(Caches& ws, const ModelConfig& config, Index k, Index n, Row* rows) {
  constexpr bool pack = std::is_const_v<Caches>;
  const Index h = config.hidden_size, G = config.gates(), part = n * h, L = config.num_layers;
  const auto copy = [&](auto* cache, Index count) {
    if constexpr (pack)
      std::copy(cache, cache + count, rows);
    else
      std::copy(rows, rows + count, cache);
    rows += count;
  };
  for (Index l = 0; l < L; ++l) {
    auto& cache = ws.layers[l];
    copy(l == L - 1 ? ws.H.data() : cache.H.data(), (k + 1) * part);
    if (config.cell == Cell::lstm) copy(cache.C.data(), (k + 1) * part);
    if (config.cell != Cell::elman) {
      // Each step's gates: row-major n x G h in the cache, gate by gate (G rows of n x h) here.
      for (Index s = 0; s < k; ++s)
        for (Index g = 0; g < G; ++g)
          for (Index i = 0; i < n; ++i) copy(cache.gates.data() + (s * n + i) * G * h + g * h, h);
    }
    if (config.cell == Cell::gru) copy(cache.kept.data(), k * part);
  }
}

template <class Scalar>
void stack_history_pack(const Workspace<Scalar>& ws, const ModelConfig& config, Index k, Index n, Scalar* rows) {
  history_copy(ws, config, k, n, rows);
}

template <class Scalar>
void stack_history_unpack(Workspace<Scalar>& ws, const ModelConfig& config, Index k, Index n, const Scalar* rows) {
  const Index h = config.hidden_size, G = config.gates() * h;
  const std::size_t s = sizeof(Scalar);
  const Index states = checked_size("history", "the history states", {k + 1, n, h}, s);
  const Index gate_values = checked_size("history", "the history's gate values", {k, n, G}, s);
  const Index kept = checked_size("history", "the history's kept values", {k, n, h}, s);
  if (ws.layers.size() != static_cast<std::size_t>(config.num_layers)) {
    try {
      ws.layers.resize(static_cast<std::size_t>(config.num_layers));
    } catch (const std::bad_alloc&) {
      throw AllocationError(concat("num_layers: cannot allocate the caches of ", config.num_layers, " layers"));
    }
  }
  grow_buffer(ws.H, states, "history", "the history states");
  for (Index l = 0; l < config.num_layers; ++l) {
    LayerCache<Scalar>& cache = ws.layers[l];
    if (l != config.num_layers - 1) grow_buffer(cache.H, states, "history", "the history states");
    if (config.cell == Cell::lstm) grow_buffer(cache.C, states, "history", "the history's cell states");
    if (config.cell != Cell::elman) grow_buffer(cache.gates, gate_values, "history", "the history's gate values");
    if (config.cell == Cell::gru) grow_buffer(cache.kept, kept, "history", "the history's kept values");
  }
  history_copy(ws, config, k, n, rows);
}

template void stack_history_shift<float>(Workspace<float>&, const ModelConfig&, Index, Index, Index);
template void stack_history_pack<float>(const Workspace<float>&, const ModelConfig&, Index, Index, float*);
template void stack_history_unpack<float>(Workspace<float>&, const ModelConfig&, Index, Index, const float*);
template void stack_forward<float>(Workspace<float>&, const ModelConfig&, const ParameterLayout&, const float*,
                                   const SequenceInput<float>&, const float*);
template void stack_backward<float>(float*, Workspace<float>&, const ModelConfig&, const ParameterLayout&, const float*,
                                    const BackwardOptions<float>&);
template void stack_history_shift<double>(Workspace<double>&, const ModelConfig&, Index, Index, Index);
template void stack_history_pack<double>(const Workspace<double>&, const ModelConfig&, Index, Index, double*);
template void stack_history_unpack<double>(Workspace<double>&, const ModelConfig&, Index, Index, const double*);
template void stack_forward<double>(Workspace<double>&, const ModelConfig&, const ParameterLayout&, const double*,
                                    const SequenceInput<double>&, const double*);
template void stack_backward<double>(double*, Workspace<double>&, const ModelConfig&, const ParameterLayout&,
                                     const double*, const BackwardOptions<double>&);

}  // namespace rnnbptt::detail
