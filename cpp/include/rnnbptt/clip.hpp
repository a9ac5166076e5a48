// Gradient clipping over the flat gradient buffer (docs/design.md section 6):
//   g <- min(1, theta / ||g||) g,  ||g|| the L2 norm of all parameter gradients as one vector.
// At ||g|| == theta the gradient is left exactly as it is (the factor is 1). PyTorch's
// clip_grad_norm_ instead scales by theta / (||g|| + 1e-6) whenever that is below 1, so it
// shrinks a gradient at the boundary by a relative 1e-6 / theta; away from the boundary the
// two agree to that relative 1e-6 / ||g||.
#pragma once

#include "rnnbptt/config.hpp"

namespace rnnbptt {

enum class NonFinitePolicy {
  raise,   // throw NonFiniteError, gradient untouched
  report,  // return finite = false, gradient untouched
};

struct ClipReport {
  double norm = 0.0;   // ||g|| before clipping
  double scale = 1.0;  // the factor applied
  bool finite = true;  // false when ||g|| is NaN or infinite (nothing was scaled)
};

// L2 norm accumulated in double, in one fixed order: the same bits for any thread count.
template <class Scalar>
double global_norm(const Scalar* g, Index size);

// theta (max_norm) must be > 0.
template <class Scalar>
ClipReport clip_grad_norm(Scalar* g, Index size, double max_norm,
                          NonFinitePolicy policy = NonFinitePolicy::raise);

// g <- clamp(g, -limit, limit) elementwise; limit must be > 0. Returns how many were clipped.
template <class Scalar>
Index clip_grad_value(Scalar* g, Index size, double limit);

}  // namespace rnnbptt
