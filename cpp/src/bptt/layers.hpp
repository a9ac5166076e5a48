// The drivers of a stack of cells: every configuration but one Elman layer (whose fused
// kernels are forward.cpp and backward.cpp). Called by rnn_forward and rnn_backward after
// their checks; see layers.cpp.
#pragma once

#include "rnnbptt/bptt/model.hpp"

namespace rnnbptt::detail {

// Forward pass of the stack over ws.steps x ws.batch (already reserved by rnn_forward): fills
// every layer's states and gate values, ws.H with the top layer's h_0 .. h_T, ws.O and
// ws.state_T. h0: nullptr (zeros) or config.state_size(n) values. With ws.context_steps = P > 0
// (a stream's history) the first P steps' states and kept values are already in the layers'
// caches (StreamRunner put them there) and only steps P + 1 .. T are computed.
template <class Scalar>
void stack_forward(Workspace<Scalar>& ws, const ModelConfig& config, const ParameterLayout& layout,
                   const Scalar* params, const SequenceInput<Scalar>& x, const Scalar* h0);

// BPTT through the stack over the schedule already in ws.windows / ws.flow / ws.lanes.
template <class Scalar>
void stack_backward(Scalar* dparams, Workspace<Scalar>& ws, const ModelConfig& config, const ParameterLayout& layout,
                    const Scalar* params, const BackwardOptions<Scalar>& options);

// A stream's history of a stack (StreamRunner; history_rows() in rnnbptt/bptt/stream.hpp
// gives the layout of `rows`, history_rows(config, k) x n x h values):
// stack_history_shift moves the caches' steps [from, from + k) (and the states after them) to
// the front, where the next chunk's forward pass finds them as its context; stack_history_pack
// copies the k steps at the front into `rows`; stack_history_unpack puts `rows` there, growing
// the caches (checked sizes: SizeError, AllocationError).
template <class Scalar>
void stack_history_shift(Workspace<Scalar>& ws, const ModelConfig& config, Index from, Index k, Index n);
template <class Scalar>
void stack_history_pack(const Workspace<Scalar>& ws, const ModelConfig& config, Index k, Index n, Scalar* rows);
template <class Scalar>
void stack_history_unpack(Workspace<Scalar>& ws, const ModelConfig& config, Index k, Index n, const Scalar* rows);

}  // namespace rnnbptt::detail
