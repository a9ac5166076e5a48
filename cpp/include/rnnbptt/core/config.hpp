/// @file config.hpp
/// @brief Model configuration: cell, layers, sizes, activation, bias switch. Shared by every
/// other header.
///
/// Plain values: copy them freely, read them from any thread.
#pragma once

#include <cstddef>
#include <string>

#include "rnnbptt/core/export.hpp"

namespace rnnbptt {

/// Sizes, counts and positions: signed, as Eigen's. A negative size is refused where it is used.
using Index = std::ptrdiff_t;

/// phi in h_t = phi(a_t). identity with no bias is the linear model of docs/design.md section 3.3.
enum class Activation { identity, tanh, relu };

/// l(o_t, y_t). cross_entropy: softmax cross-entropy against integer class ids.
/// squared_error: 0.5 * ||o_t - y_t||^2 against dense targets.
enum class LossKind { cross_entropy, squared_error };

/// Every Activation, in the enum's order: the one list of the names (the bindings give it to
/// Python as rnnbptt._core.ACTIVATIONS, from which the model's checks and the CLI's choices come).
inline constexpr Activation kActivations[] = {Activation::identity, Activation::tanh, Activation::relu};

/// "identity", "tanh" or "relu".
RNNBPTT_EXPORT const char* to_string(Activation a);
/// The inverse of to_string; throws InvalidArgument naming `activation` for any other name.
RNNBPTT_EXPORT Activation activation_from_string(const std::string& name);
/// The names of kActivations for a message, each in `quote`: "'identity', 'tanh' or 'relu'".
RNNBPTT_EXPORT std::string activation_choices(char quote = '\'');

/// The recurrent cell of every layer (docs/design.md section 9), in PyTorch's conventions:
/// elman  h_t = phi(W_hx x_t + W_hh h_{t-1} + b_h)                       (nn.RNN)
/// gru    gates r, z, n; n_t = tanh(p_n + r_t * (W_hn h_{t-1} + b_hn))   (nn.GRU)
/// lstm   gates i, f, g, o; state (h_t, c_t)                            (nn.LSTM)
enum class Cell { elman, gru, lstm };

/// Every Cell, in the enum's order (rnnbptt._core.CELLS in Python).
inline constexpr Cell kCells[] = {Cell::elman, Cell::gru, Cell::lstm};

/// "elman", "gru" or "lstm".
RNNBPTT_EXPORT const char* to_string(Cell c);
/// The inverse of to_string; throws InvalidArgument naming `cell` for any other name.
RNNBPTT_EXPORT Cell cell_from_string(const std::string& name);
/// "'elman', 'gru' or 'lstm'", each name in `quote`.
RNNBPTT_EXPORT std::string cell_choices(char quote = '\'');

/// The shape of a model. Validated by validate(), which every constructor taking a config calls.

struct RNNBPTT_EXPORT ModelConfig {
  Index input_size = 0;   ///< d: features per step, or the vocabulary size for token input
  Index hidden_size = 0;  ///< h
  Index output_size = 0;  ///< q
  Activation activation = Activation::tanh;
  bool bias = true;         ///< every b_* exists (false: the textbook's linear model has none)
  Cell cell = Cell::elman;  ///< the cell of every layer
  Index num_layers = 1;     ///< L >= 1 stacked layers; layer l >= 1 reads layer l - 1's h_t

  /// Rows of W_hx and W_hh per hidden unit: 1 (elman), 3 (gru: r, z, n), 4 (lstm: i, f, g, o).
  Index gates() const { return cell == Cell::gru ? 3 : cell == Cell::lstm ? 4 : 1; }
  /// Parts of one layer's state: 2 for the LSTM's (h, c), else 1.
  Index state_parts() const { return cell == Cell::lstm ? 2 : 1; }
  /// Values of the whole state of n sequences: state_parts() x L x n x h, every layer's h
  /// (layer 0 first), then every layer's c for the LSTM. For one Elman layer, n x h.
  Index state_size(Index n) const { return state_parts() * num_layers * n * hidden_size; }
  /// One Elman layer: the original model, run by its own fused kernels (forward.cpp,
  /// backward.cpp); every other configuration runs the cell drivers (layers.cpp).
  bool single_elman() const { return cell == Cell::elman && num_layers == 1; }

  /// Throws InvalidArgument naming the offending field (a size < 1, num_layers < 1, a cell
  /// that is not one of kCells, an activation other than tanh for gru and lstm, whose gates
  /// fix their nonlinearities), or SizeError when the parameter count overflows
  /// std::ptrdiff_t.
  void validate() const;
  /// "input_size", "hidden_size" or "output_size": the largest size (hidden_size on a tie),
  /// named by errors about a size product that is too large.
  const char* largest_size_name() const;
};

}  // namespace rnnbptt
