// The vanishing/exploding analysis of docs/design.md section 3.4, made measurable. dL/dh_t
// contains powers of W_hh^T: its spectral radius says whether they vanish or blow up in the long
// run, and its largest singular value bounds how much one step can amplify a gradient.
#pragma once

#include "rnnbptt/config.hpp"

namespace rnnbptt {

// max |lambda_i(W)| for a square h x h row-major matrix.
template <class Scalar>
double spectral_radius(const Scalar* W, Index h);

// sigma_max(W) = ||W||_2 for a square h x h row-major matrix.
template <class Scalar>
double largest_singular_value(const Scalar* W, Index h);

}  // namespace rnnbptt
