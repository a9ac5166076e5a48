/// @file params.hpp
/// @brief Parameters and gradients: one flat buffer each, with named views in a fixed layout
/// (W_hx, W_hh, b_h, W_qh, b_q), so that norms, clipping and optimizers are single loops.
///
/// ParameterLayout is an immutable value (safe to share between threads). ParameterViews are
/// Eigen maps of a flat buffer of layout.total values that the caller owns and keeps alive
/// while the views are used; building views of a buffer of another length is not checked
/// here: take them from Model::parameter_views() / gradient_views(), or check the length.
#pragma once

#include <Eigen/Core>

#include <array>
#include <string>
#include <type_traits>

#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/export.hpp"

namespace rnnbptt {

template <class Scalar>
using RowMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class Scalar>
using MatrixMap = Eigen::Map<RowMatrix<Scalar>>;
template <class Scalar>
using ConstMatrixMap = Eigen::Map<const RowMatrix<Scalar>>;
template <class Scalar>
using RowVectorMap = Eigen::Map<Eigen::Matrix<Scalar, 1, Eigen::Dynamic>>;
template <class Scalar>
using ConstRowVectorMap = Eigen::Map<const Eigen::Matrix<Scalar, 1, Eigen::Dynamic>>;

/// One named block of the flat buffer: a row-major rows x cols matrix, or a vector of `rows`
/// (a bias: cols == 1). Which one is stated, not guessed from the shape: W_hx is h x 1 when
/// d = 1 and is still a matrix.
struct Tensor {
  const char* name;
  Index offset;
  Index rows;
  Index cols;
  bool vector;
  Index size() const { return rows * cols; }
};

/// Offsets of every parameter in the flat buffer. Biases have size 0 when switched off.
struct RNNBPTT_EXPORT ParameterLayout {
  static constexpr int count = 5;
  std::array<Tensor, count> tensors;  // W_hx (h x d), W_hh (h x h), b_h (h), W_qh (q x h), b_q (q)
  Index total = 0;

  /// Validates `config` (InvalidArgument, SizeError).
  explicit ParameterLayout(const ModelConfig& config);
  const Tensor& W_hx() const { return tensors[0]; }
  const Tensor& W_hh() const { return tensors[1]; }
  const Tensor& b_h() const { return tensors[2]; }
  const Tensor& W_qh() const { return tensors[3]; }
  const Tensor& b_q() const { return tensors[4]; }
  /// Throws InvalidArgument naming `name` for an unknown name.
  const Tensor& find(const std::string& name) const;
};

/// Eigen views of a flat buffer laid out by ParameterLayout: ParameterViews<Scalar> writes,
/// ParameterViews<const Scalar> only reads. `flat` must hold layout.total values.
template <class Scalar>
struct ParameterViews {
  using Plain = std::remove_const_t<Scalar>;
  using Matrix = std::conditional_t<std::is_const_v<Scalar>, ConstMatrixMap<Plain>, MatrixMap<Plain>>;
  using Vector = std::conditional_t<std::is_const_v<Scalar>, ConstRowVectorMap<Plain>, RowVectorMap<Plain>>;

  Matrix W_hx, W_hh;
  Vector b_h;
  Matrix W_qh;
  Vector b_q;

  ParameterViews(Scalar* flat, const ParameterLayout& layout)
      : W_hx(flat + layout.W_hx().offset, layout.W_hx().rows, layout.W_hx().cols),
        W_hh(flat + layout.W_hh().offset, layout.W_hh().rows, layout.W_hh().cols),
        b_h(flat + layout.b_h().offset, layout.b_h().size()),
        W_qh(flat + layout.W_qh().offset, layout.W_qh().rows, layout.W_qh().cols),
        b_q(flat + layout.b_q().offset, layout.b_q().size()) {}
};

}  // namespace rnnbptt
