/// @file config.hpp
/// @brief Model configuration: sizes, activation, bias switch. Shared by every other header.
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

/// The shape of a model. Validated by validate(), which every constructor taking a config calls.

struct RNNBPTT_EXPORT ModelConfig {
  Index input_size = 0;   ///< d: features per step, or the vocabulary size for token input
  Index hidden_size = 0;  ///< h
  Index output_size = 0;  ///< q
  Activation activation = Activation::tanh;
  bool bias = true;  ///< b_h and b_q exist (false: the textbook's linear model has none)

  /// Throws InvalidArgument naming the offending field (a size < 1), or SizeError when the
  /// parameter count overflows std::ptrdiff_t.
  void validate() const;
  /// "input_size", "hidden_size" or "output_size": the largest size (hidden_size on a tie),
  /// named by errors about a size product that is too large.
  const char* largest_size_name() const;
};

}  // namespace rnnbptt
