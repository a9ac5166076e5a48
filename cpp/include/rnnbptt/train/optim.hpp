/// @file optim.hpp
/// @brief Optimizers as single loops over the flat parameter and gradient buffers.
///
/// Both take the buffers as Spans of equal length (InvalidArgument naming `grads` or `params`
/// otherwise) and read or write them during the call only. Hyper-parameters must be finite,
/// and representable in Scalar when the step rounds them to it (a float lr above 3.4e38 would
/// be inf, one below 1.4e-45 would be 0): InvalidArgument naming them, and nothing is changed.
/// Thread safety: an Adam is used by one thread at a time;
/// nothing else may use the buffers during a step.
#pragma once

#include <cstdint>
#include <vector>

#include "rnnbptt/core/buffer.hpp"

#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/export.hpp"
#include "rnnbptt/core/span.hpp"

namespace rnnbptt {

/// p <- p - lr * (g + weight_decay * p), d2l's minibatch SGD when weight_decay = 0.
/// params and grads hold the same number of values; lr finite > 0, weight_decay finite >= 0,
/// both representable in Scalar (a nonzero value does not round to 0 or to inf).
template <class Scalar>
RNNBPTT_EXPORT void sgd_step(Span<Scalar> params, Span<const Scalar> grads, double lr, double weight_decay = 0.0);
/// The same for float and double buffers (any container converting to a Span): these
/// overloads let the arguments convert (std::vector, Span<T> to Span<const T>).
inline void sgd_step(Span<float> params, Span<const float> grads, double lr, double weight_decay = 0.0) {
  sgd_step<float>(params, grads, lr, weight_decay);
}
inline void sgd_step(Span<double> params, Span<const double> grads, double lr, double weight_decay = 0.0) {
  sgd_step<double>(params, grads, lr, weight_decay);
}

/// Adam's step count stays below this (2^62): step() adds 1 and raises the betas to it, and the
/// count must survive that in int64 and in a double exponent. Python: rnnbptt._core.ADAM_MAX_STEPS.
inline constexpr std::int64_t kAdamMaxSteps = std::int64_t(1) << 62;

/// Adam's hyper-parameters and step count: everything of Adam but its moments (what a
/// checkpoint's optimizer entry holds).
struct RNNBPTT_EXPORT AdamSettings {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  std::int64_t step_count = 0;
  /// Throws InvalidArgument for lr <= 0, betas outside [0, 1), eps <= 0, decay < 0, any of
  /// them NaN or infinite, or step_count outside [0, kAdamMaxSteps).
  void validate() const;
};

/// Adam (Kingma & Ba) with bias correction, as torch.optim.Adam (L2 weight decay added to g).
template <class Scalar>
struct RNNBPTT_EXPORT Adam : AdamSettings {
  Buffer<Scalar> m;  ///< first moment, same layout as the parameters (size values)
  Buffer<Scalar> v;  ///< second moment (size values)

  Adam() = default;
  /// State for `size` >= 0 parameters, zero moments. Throws InvalidArgument for a bad
  /// hyper-parameter or size < 0, SizeError / AllocationError for a size that does not fit.
  Adam(Index size, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0.0);
  /// One update; params and grads hold m.size() values each (InvalidArgument otherwise, and
  /// when m and v differ in size). Also InvalidArgument, before anything is changed or the step
  /// counted, when lr, eps, weight_decay or the bias-corrected step lr / (1 - beta1^t) are not
  /// representable in Scalar, or when the count would reach kAdamMaxSteps. It calls validate()
  /// first (the settings are public members).
  void step(Span<Scalar> params, Span<const Scalar> grads);
};

}  // namespace rnnbptt
