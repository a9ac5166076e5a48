/// @file diagnostics.hpp
/// @brief The vanishing/exploding analysis of docs/design.md section 3.4, made measurable.
///
/// dL/dh_t contains powers of W_hh^T: its spectral radius says whether they vanish or blow up
/// in the long run, and its largest singular value bounds how much one step can amplify a
/// gradient. W is read during the call only; it must hold exactly h x h finite values
/// (InvalidArgument naming W_hh otherwise; h >= 1). Safe to call from several threads at once.
#pragma once

#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/export.hpp"
#include "rnnbptt/core/span.hpp"

namespace rnnbptt {

/// max |lambda_i(W)| for a square h x h row-major matrix.
template <class Scalar>
RNNBPTT_EXPORT double spectral_radius(Span<const Scalar> W, Index h);

/// sigma_max(W) = ||W||_2 for a square h x h row-major matrix.
template <class Scalar>
RNNBPTT_EXPORT double largest_singular_value(Span<const Scalar> W, Index h);

/// Overloads for float and double, so that arguments convert where deduction would not.
inline double spectral_radius(Span<const float> W, Index h) { return spectral_radius<float>(W, h); }
inline double spectral_radius(Span<const double> W, Index h) { return spectral_radius<double>(W, h); }
inline double largest_singular_value(Span<const float> W, Index h) { return largest_singular_value<float>(W, h); }
inline double largest_singular_value(Span<const double> W, Index h) { return largest_singular_value<double>(W, h); }

}  // namespace rnnbptt
