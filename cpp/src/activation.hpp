// phi and phi' for the three activations. phi' is taken from h_t = phi(a_t), so a_t is never
// stored: tanh' = 1 - h^2, relu' = [h > 0], identity' = 1.
#pragma once

#include <Eigen/Core>

#include "rnnbptt/config.hpp"

namespace rnnbptt::detail {

template <class Block>
void activate(Activation activation, Block&& a) {
  using Scalar = typename std::decay_t<Block>::Scalar;
  switch (activation) {
    case Activation::identity: break;
    case Activation::tanh: a = a.array().tanh().matrix(); break;
    case Activation::relu: a = a.cwiseMax(Scalar(0)); break;
  }
}

// g <- phi'(a) * g, elementwise, with phi' read off h = phi(a).
template <class Gradient, class State>
void multiply_by_derivative(Activation activation, Gradient&& g, const State& h) {
  using Scalar = typename std::decay_t<Gradient>::Scalar;
  switch (activation) {
    case Activation::identity: break;
    case Activation::tanh: g.array() *= Scalar(1) - h.array().square(); break;
    case Activation::relu: g.array() *= (h.array() > Scalar(0)).template cast<Scalar>(); break;
  }
}

}  // namespace rnnbptt::detail
