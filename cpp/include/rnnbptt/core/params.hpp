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

#include <string>
#include <type_traits>
#include <vector>

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
  std::string name;
  Index offset;
  Index rows;
  Index cols;
  bool vector;
  Index size() const { return rows * cols; }
};

/// Offsets of every parameter in the flat buffer, layer by layer (layer 0 first), then the
/// output layer. Layer l holds, in PyTorch's order for its cell,
///   elman: W_hx (h x d_l), W_hh (h x h), b_h (h)
///   gru, lstm: W_hx (G h x d_l), W_hh (G h x h), b_hx (G h), b_hh (G h)
/// with G = config.gates() gate blocks stacked along the rows (r, z, n or i, f, g, o) and
/// d_0 = d, d_l = h above; then W_qh (q x h) and b_q (q). Layer 0's names carry no suffix,
/// layer l >= 1's end with "_l<l>" (W_hx_l1). One Elman layer is therefore the original
/// W_hx, W_hh, b_h, W_qh, b_q. Biases are listed with size 0 when switched off.
struct RNNBPTT_EXPORT ParameterLayout {
  /// The tensors of one recurrent layer, as indices into `tensors`.
  struct Layer {
    int W_hx, W_hh;
    int input_bias;      ///< b_h (elman) or b_hx (gru, lstm)
    int recurrent_bias;  ///< b_hh (gru, lstm); -1 for elman, whose one bias is input_bias
  };
  std::vector<Tensor> tensors;
  std::vector<Layer> layers;
  int output_weight = 0, output_bias = 0;  // W_qh, b_q
  Index total = 0;

  /// Validates `config` (InvalidArgument, SizeError).
  explicit ParameterLayout(const ModelConfig& config);
  const Tensor& W_hx(Index layer = 0) const { return tensors[layers[layer].W_hx]; }
  const Tensor& W_hh(Index layer = 0) const { return tensors[layers[layer].W_hh]; }
  /// b_h of an Elman layer, b_hx of a gated one.
  const Tensor& b_h(Index layer = 0) const { return tensors[layers[layer].input_bias]; }
  /// b_hh of a gated layer; an Elman layer has none (its one bias is b_h).
  const Tensor& b_hh(Index layer = 0) const { return tensors[layers[layer].recurrent_bias]; }
  const Tensor& W_qh() const { return tensors[output_weight]; }
  const Tensor& b_q() const { return tensors[output_bias]; }
  /// Throws InvalidArgument naming `name` for an unknown name.
  const Tensor& find(const std::string& name) const;
};

/// Eigen views of a flat buffer laid out by ParameterLayout: ParameterViews<Scalar> writes,
/// ParameterViews<const Scalar> only reads. `flat` must hold layout.total values. W_hx, W_hh
/// and b_h are layer 0's (b_h is b_hx for a gated cell); layer(l) views any layer.
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

/// Eigen views of one recurrent layer's tensors: W_hx (G h x d_l), W_hh (G h x h), the input
/// bias b_h / b_hx and the recurrent bias b_hh (G h each; size 0 when switched off, and for
/// an Elman layer b_hh is always empty).
template <class Scalar>
struct LayerViews {
  using Plain = std::remove_const_t<Scalar>;
  using Matrix = std::conditional_t<std::is_const_v<Scalar>, ConstMatrixMap<Plain>, MatrixMap<Plain>>;
  using Vector = std::conditional_t<std::is_const_v<Scalar>, ConstRowVectorMap<Plain>, RowVectorMap<Plain>>;

  Matrix W_hx, W_hh;
  Vector b_hx, b_hh;

  LayerViews(Scalar* flat, const ParameterLayout& layout, Index l)
      : W_hx(flat + layout.W_hx(l).offset, layout.W_hx(l).rows, layout.W_hx(l).cols),
        W_hh(flat + layout.W_hh(l).offset, layout.W_hh(l).rows, layout.W_hh(l).cols),
        b_hx(flat + layout.b_h(l).offset, layout.b_h(l).size()),
        b_hh(flat + (layout.layers[l].recurrent_bias < 0 ? 0 : layout.b_hh(l).offset),
             layout.layers[l].recurrent_bias < 0 ? 0 : layout.b_hh(l).size()) {}
};

}  // namespace rnnbptt
