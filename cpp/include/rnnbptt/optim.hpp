// Optimizers as single loops over the flat parameter and gradient buffers.
#pragma once

#include <cstdint>
#include <vector>

#include "rnnbptt/buffer.hpp"

#include "rnnbptt/config.hpp"

namespace rnnbptt {

// p <- p - lr * (g + weight_decay * p), d2l's minibatch SGD when weight_decay = 0.
template <class Scalar>
void sgd_step(Scalar* params, const Scalar* grads, Index size, double lr, double weight_decay = 0.0);

// Adam (Kingma & Ba) with bias correction, as torch.optim.Adam (L2 weight decay added to g).
template <class Scalar>
struct Adam {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  std::int64_t step_count = 0;
  Buffer<Scalar> m;  // first moment, same layout as the parameters
  Buffer<Scalar> v;  // second moment

  Adam() = default;
  Adam(Index size, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
       double weight_decay = 0.0);
  // Throws std::invalid_argument for lr <= 0, betas outside [0, 1), eps <= 0, decay < 0, or
  // any of them NaN or infinite. step() calls it too (the members are public).
  void validate() const;
  void step(Scalar* params, const Scalar* grads, Index size);
};

}  // namespace rnnbptt
