#include "rnnbptt/bptt/workspace.hpp"

namespace rnnbptt {

template <class Scalar>
void Workspace<Scalar>::reserve(const ModelConfig& config, Index total_steps, Index batch_size, Index context) {
  using detail::checked_size;
  using detail::grow_buffer;
  const Index T = total_steps, n = batch_size;
  const Index d = config.input_size, h = config.hidden_size, q = config.output_size;
  // Every size is checked before anything grows: the sequence's buffers are named after x
  // (T and n come from it), the transposed weights after the model's sizes.
  const std::size_t s = sizeof(Scalar);
  const Index steps1 = detail::checked_add("x", "the time steps T + 1", T, 1);
  const Index states = checked_size("x", "the hidden states (T+1) x n x h", {steps1, n, h}, s);
  const Index outputs = checked_size("x", "the outputs T x n x q", {T, n, q}, s);
  const Index hidden = checked_size("x", "the state gradients T x n x h", {T, n, h}, s);
  const Index lane = checked_size("x", "the lane gradients 2 x n x h", {2, n, h}, s);
  const Index square = checked_size("hidden_size", "W_hh transposed h x h", {h, h}, s);
  const char* input_name = d > h ? "input_size" : "hidden_size";
  const Index input = checked_size(input_name, "W_hx transposed d x h", {d, h}, s);
  const Index rows = checked_size("x", "the row losses T x n", {T, n}, sizeof(double));
  checked_size("x", "the schedule of T steps", {T}, sizeof(Window) + sizeof(Index) + s);
  grow_buffer(H, states, "x", "the hidden states (T+1) x n x h");
  grow_buffer(O, outputs, "x", "the outputs T x n x q");
  grow_buffer(dO, outputs, "x", "the output gradients T x n x q");
  grow_buffer(dA, hidden, "x", "the state gradients T x n x h");
  grow_buffer(lane_g, lane, "x", "the lane gradients 2 x n x h");
  grow_buffer(W_hh_T, square, "hidden_size", "W_hh transposed h x h");
  grow_buffer(W_hx_T, input, input_name, "W_hx transposed d x h");
  grow_buffer(dW_hx_T, input, input_name, "dW_hx transposed d x h");
  grow_buffer(flow, T, "x", "the flow of T steps");
  grow_buffer(dh_norms, T, "x", "the gradient norms of T steps");
  grow_buffer(lane_owner, T, "x", "the lane owners of T steps");
  grow_buffer(row_loss, rows, "x", "the row losses T x n");
  if (windows.capacity() < static_cast<std::size_t>(T)) {
    try {
      windows.reserve(static_cast<std::size_t>(T));
    } catch (const std::bad_alloc&) {
      throw AllocationError(
          detail::concat("x: cannot allocate ", T * sizeof(Window), " bytes for the windows of T = ", T, " steps"));
    }
  }
  steps = T;
  batch = n;
  context_steps = context;
}

template <class Scalar>
std::size_t Workspace<Scalar>::bytes() const {
  const std::size_t scalars = H.capacity() + O.capacity() + dO.capacity() + dA.capacity() + dH.capacity() +
                              lane_g.capacity() + W_hh_T.capacity() + W_hx_T.capacity() + dW_hx_T.capacity() +
                              flow.capacity() + dh_norms.capacity();
  std::size_t stack = state_T.capacity() + step_s.capacity() + carry.capacity() + step_in.capacity() +
                      lane_dP.capacity() + lane_dS.capacity() + from_above.capacity() + reset_state.capacity();
  for (const LayerCache<Scalar>& layer : layers)
    stack += layer.H.capacity() + layer.C.capacity() + layer.gates.capacity() + layer.kept.capacity() +
             layer.dP.capacity() + layer.dS.capacity();
  return (scalars + stack) * sizeof(Scalar) + step_norms.capacity() * sizeof(double) +
         lane_owner.capacity() * sizeof(Index) + ids.capacity() * sizeof(std::int64_t) +
         row_loss.capacity() * sizeof(double) + norm_parts.capacity() * sizeof(double) +
         windows.capacity() * sizeof(Window) + resets.capacity() + lengths.capacity() * sizeof(Index);
}

template struct RNNBPTT_EXPORT Workspace<float>;
template struct RNNBPTT_EXPORT Workspace<double>;

}  // namespace rnnbptt
