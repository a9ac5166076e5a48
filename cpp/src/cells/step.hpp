// The seam between the layer drivers (bptt/layers.cpp) and the cells (elman.hpp, gru.hpp,
// lstm.hpp): what one step of one layer reads and writes, on all n rows of the batch at once.
// Rows are sequences (row-major, as everywhere in the core), so a column of the notes is a
// row here and W x becomes x W^T.
//
// A cell is a struct with
//   static constexpr Index gates;          G: blocks of h columns in p_t, s_t, dp_t, ds_t
//   static constexpr bool cell_state;       the state is (h, c) (lstm), else h alone
//   static constexpr bool separate_ds;      ds_t differs from dp_t (gru: r_t * dp_n), so the
//                                           driver keeps both; else ds_t = dp_t
//   static constexpr bool direct;           part of dL/dh_{t-1} bypasses W_hh (gru: z_t * dh_t)
//   static constexpr bool kept;             the cell keeps n x h extra values per step (gru: s_n)
//   static void forward(const StepForward<Scalar>&);
//   static void backward(const StepBackward<Scalar>&);
// Neither the cell nor the driver knows the truncation: the driver hands each step its whole
// dL/dh_t (and dL/dc_t), already scaled by the flow.
#pragma once

#include <Eigen/Core>

#include "rnnbptt/core/config.hpp"

namespace rnnbptt::detail {

template <class Scalar>
using ArrayMap = Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
template <class Scalar>
using ConstArrayMap = Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

// sigma(a) = 1 / (1 + exp(-a)): exp(-a) = inf gives 0, never NaN.
template <class Derived>
auto sigmoid(const Eigen::ArrayBase<Derived>& a) {
  using Scalar = typename Derived::Scalar;
  return (Scalar(1) + (-a).exp()).inverse();
}

template <class Scalar>
struct StepForward {
  Index n, h;
  Activation activation;  // phi of the Elman cell
  Scalar* gates;          // n x G h: in, p_t = x_t W_hx^T + b_hx; out, what backward reads
  Scalar* s;              // n x G h: in, s_t = h_{t-1} W_hh^T + b_hh; scratch afterwards
  const Scalar* h_prev;   // n x h
  const Scalar* c_prev;   // n x h (lstm)
  Scalar* h_out;          // n x h: h_t
  Scalar* c_out;          // n x h: c_t (lstm)
  Scalar* kept;           // n x h (gru: s_n = W_hn h_{t-1} + b_hn)
};

template <class Scalar>
struct StepBackward {
  Index n, h;
  Activation activation;
  const Scalar* gates;   // n x G h: what forward left
  const Scalar* kept;    // n x h (gru)
  const Scalar* h_prev;  // n x h
  const Scalar* h_t;     // n x h
  const Scalar* c_prev;  // n x h (lstm)
  const Scalar* c_t;     // n x h (lstm)
  const Scalar* dh;      // n x h: the whole dL/dh_t
  const Scalar* dc;      // n x h: dL/dc_t from step t + 1, scaled (lstm)
  Scalar* dp;            // n x G h out: dL/dp_t (overwritten)
  Scalar* ds;            // n x G h out: dL/ds_t (separate_ds cells; overwritten)
  Scalar* dh_direct;     // n x h out: the part of dL/dh_{t-1} not through W_hh (direct cells)
  Scalar* dc_prev;       // n x h out: dL/dc_{t-1} (lstm)
};

}  // namespace rnnbptt::detail
