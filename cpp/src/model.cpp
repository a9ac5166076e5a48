#include <random>

#include "rnnbptt/error.hpp"
#include "rnnbptt/rnn.hpp"

namespace rnnbptt {

using detail::invalid;

template <class Scalar>
Model<Scalar>::Model(const ModelConfig& config)
    : config_(config), layout_(config), params_(layout_.total), grads_(layout_.total) {}

template <class Scalar>
void Model<Scalar>::init_uniform(double bound, std::uint64_t seed) {
  if (!(bound >= 0.0)) invalid("bound: expected a finite value >= 0, got ", bound);
  std::mt19937_64 engine(seed);
  std::uniform_real_distribution<double> dist(-bound, bound);
  for (Scalar& v : params_) v = static_cast<Scalar>(dist(engine));
}

template <class Scalar>
void Model<Scalar>::init_normal(double std, std::uint64_t seed) {
  if (!(std >= 0.0)) invalid("std: expected a finite value >= 0, got ", std);
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> dist(0.0, std);
  for (const Tensor& t : layout_.tensors) {
    for (Index i = 0; i < t.size(); ++i)
      params_[t.offset + i] = t.vector ? Scalar(0) : static_cast<Scalar>(dist(engine));
  }
}

template <class Scalar>
void Model<Scalar>::forward(const SequenceInput<Scalar>& x, const Scalar* h0) {
  ws_.has_forward = false;
  rnn_forward(ws_, config_, layout_, params_.data(), x, h0, 0);
}

template <class Scalar>
const Scalar* Model<Scalar>::outputs() const {
  if (!ws_.has_forward) invalid("outputs: expected a forward pass first, got none");
  return ws_.O.data();
}

template <class Scalar>
const Scalar* Model<Scalar>::final_state() const {
  if (!ws_.has_forward) invalid("final_state: expected a forward pass first, got none");
  return ws_.H.data() + ws_.steps * ws_.batch * config_.hidden_size;
}

template <class Scalar>
double Model<Scalar>::loss(const Targets<Scalar>& y) {
  return loss_forward(ws_, config_, y);
}

template <class Scalar>
void Model<Scalar>::set_output_gradient(const Scalar* d_outputs) {
  if (!ws_.has_forward) invalid("d_outputs: expected a forward pass first, got none");
  const Index size = ws_.steps * ws_.batch * config_.output_size;
  Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>> g(d_outputs, size);
  if (!g.allFinite()) invalid("d_outputs: expected finite values, got a NaN or infinity");
  Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>(ws_.dO.data(), size) = g;
  ws_.has_output_gradient = true;
}

template <class Scalar>
void Model<Scalar>::backward(const BackwardOptions<Scalar>& options) {
  rnn_backward(grads_.data(), ws_, config_, layout_, params_.data(), options);
}

template class Model<float>;
template class Model<double>;

}  // namespace rnnbptt
