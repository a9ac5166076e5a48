/// @file clip.hpp
/// @brief Gradient clipping over the flat gradient buffer (docs/design.md section 6):
///   g <- min(1, theta / ||g||) g,  ||g|| the L2 norm of all parameter gradients as one vector.
///
/// At ||g|| == theta the gradient is left exactly as it is (the factor is 1). PyTorch's
/// clip_grad_norm_ instead scales by theta / (||g|| + 1e-6) whenever that is below 1, so it
/// shrinks a gradient at the boundary by a relative 1e-6 / theta; away from the boundary the
/// two agree to that relative 1e-6 / ||g||.
///
/// The buffers are Spans read or written during the call only (a negative length, or a null
/// pointer with a positive length, is InvalidArgument naming `grads`). Thread safety: nothing
/// else may use the buffer during the call.
#pragma once

#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/export.hpp"
#include "rnnbptt/core/span.hpp"

namespace rnnbptt {

/// What clip_grad_norm does when ||g|| is NaN or infinite.
enum class NonFinitePolicy {
  raise,   ///< throw NonFiniteError, gradient untouched
  report,  ///< return finite = false, gradient untouched
};

/// What clip_grad_norm saw and did.
struct ClipReport {
  double norm = 0.0;   ///< ||g|| before clipping
  double scale = 1.0;  ///< max_norm / norm when clipped, else 1 (a double: it can underflow to 0
                       ///< for a huge norm and a tiny max_norm; the gradient is still scaled right)
  bool finite = true;  ///< false when ||g|| is NaN or infinite (nothing was scaled)
};

/// L2 norm accumulated in double, in one fixed order (element i into partial sum i % 16, then
/// the 16 sums in order): the same bits for any thread count, and for float on every SIMD
/// variant (a float's square is exact in double). Double elements whose squares leave double's
/// range (above about 1e154, or all below about 1e-154) are summed again in the same order
/// scaled by a power of two, so the norm is right wherever it is itself a finite double (and
/// infinite only when it exceeds DBL_MAX or an element is infinite; NaN when one is NaN).
template <class Scalar>
RNNBPTT_EXPORT double global_norm(Span<const Scalar> g);

/// theta (max_norm) must be finite and > 0 (InvalidArgument naming max_norm).
template <class Scalar>
RNNBPTT_EXPORT ClipReport clip_grad_norm(Span<Scalar> g, double max_norm,
                                         NonFinitePolicy policy = NonFinitePolicy::raise);

/// g <- clamp(g, -limit, limit) elementwise; limit must be finite and > 0. Returns how many
/// were clipped.
template <class Scalar>
RNNBPTT_EXPORT Index clip_grad_value(Span<Scalar> g, double limit);

/// Overloads for float and double buffers, so that arguments convert (std::vector, Span<T> to
/// Span<const T>) where template deduction would not.
inline double global_norm(Span<const float> g) { return global_norm<float>(g); }
inline double global_norm(Span<const double> g) { return global_norm<double>(g); }
inline ClipReport clip_grad_norm(Span<float> g, double max_norm, NonFinitePolicy policy = NonFinitePolicy::raise) {
  return clip_grad_norm<float>(g, max_norm, policy);
}
inline ClipReport clip_grad_norm(Span<double> g, double max_norm, NonFinitePolicy policy = NonFinitePolicy::raise) {
  return clip_grad_norm<double>(g, max_norm, policy);
}
inline Index clip_grad_value(Span<float> g, double limit) { return clip_grad_value<float>(g, limit); }
inline Index clip_grad_value(Span<double> g, double limit) { return clip_grad_value<double>(g, limit); }

}  // namespace rnnbptt
