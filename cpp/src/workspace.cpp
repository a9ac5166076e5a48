#include "rnnbptt/workspace.hpp"

namespace rnnbptt {

namespace {
template <class T>
void grow(Buffer<T>& buffer, Index size) {
  if (buffer.size() < static_cast<std::size_t>(size)) buffer.resize(static_cast<std::size_t>(size));
}
}  // namespace

template <class Scalar>
void Workspace<Scalar>::reserve(const ModelConfig& config, Index total_steps, Index batch_size,
                                Index context) {
  const Index T = total_steps, n = batch_size;
  const Index d = config.input_size, h = config.hidden_size, q = config.output_size;
  grow(H, (T + 1) * n * h);
  grow(O, T * n * q);
  grow(dO, T * n * q);
  grow(dA, T * n * h);
  grow(lane_g, 2 * n * h);
  grow(W_hh_T, h * h);
  grow(W_hx_T, d * h);
  grow(dW_hx_T, d * h);
  grow(flow, T);
  grow(dh_norms, T);
  grow(lane_owner, T);
  grow(row_loss, T * n);
  if (windows.capacity() < static_cast<std::size_t>(T)) windows.reserve(static_cast<std::size_t>(T));
  steps = T;
  batch = n;
  context_steps = context;
}

template <class Scalar>
std::size_t Workspace<Scalar>::bytes() const {
  const std::size_t scalars = H.capacity() + O.capacity() + dO.capacity() + dA.capacity() +
                              dH.capacity() + lane_g.capacity() + W_hh_T.capacity() +
                              W_hx_T.capacity() + dW_hx_T.capacity() + flow.capacity() +
                              dh_norms.capacity();
  return scalars * sizeof(Scalar) + lane_owner.capacity() * sizeof(Index) +
         row_loss.capacity() * sizeof(double) + norm_parts.capacity() * sizeof(double) +
         windows.capacity() * sizeof(Window);
}

template struct Workspace<float>;
template struct Workspace<double>;

}  // namespace rnnbptt
