// The Elman RNN of docs/design.md section 2 and its exact BPTT (section 3), as forward/backward
// pairs over a flat parameter buffer, plus a Model that owns parameters, gradients and a
// workspace.
//
//   a_t = W_hx x_t + W_hh h_{t-1} + b_h,  h_t = phi(a_t),  o_t = W_qh h_t + b_q
//   L   = sum_{t,b} w_tb l(o_tb, y_tb) / sum_{t,b} w_tb
#pragma once

#include <cstdint>
#include <vector>

#include "rnnbptt/buffer.hpp"

#include "rnnbptt/config.hpp"
#include "rnnbptt/params.hpp"
#include "rnnbptt/sequence.hpp"
#include "rnnbptt/truncation.hpp"
#include "rnnbptt/workspace.hpp"

namespace rnnbptt {

// ---- The pairs (llm.c style: outputs first, gradients prefixed d) ----

// x holds T = x.steps steps, the first `context_steps` of them history (a stream's last
// steps, no loss): their states h_1 .. h_context are already in ws.H and are kept, and steps
// context+1 .. T are computed from h_context. With no history the run starts from h_0 (h0,
// nullptr: zeros). Fills ws.H (h_0 .. h_T, (T+1) x n x h) and ws.O (o_t, T x n x q; rows of
// history steps are not written). Validates x: shape against config, finite values, ids in
// [0, d).
template <class Scalar>
void rnn_forward(Workspace<Scalar>& ws, const ModelConfig& config, const ParameterLayout& layout,
                 const Scalar* params, const SequenceInput<Scalar>& x, const Scalar* h0,
                 Index context_steps = 0);

// Loss of the outputs in ws.O against y over the non-context steps; writes dL/do_t into ws.dO
// (fused: softmax, cross-entropy and its gradient in one pass per row). Returns L.
template <class Scalar>
double loss_forward(Workspace<Scalar>& ws, const ModelConfig& config, const Targets<Scalar>& y);

template <class Scalar>
struct BackwardOptions {
  const Scalar* dh_T = nullptr;       // n x h: dL/dh_T from a later chunk (nullptr: 0)
  // The strategy (nullptr: Full). Pointed to, not copied: copying a randomized schedule would
  // allocate in every training step.
  const Truncation* truncation = nullptr;
  std::int64_t step_offset = 0;       // global index of the step before this sequence
  Scalar* dh0 = nullptr;              // out, n x h: dL/dh_0 (overwritten), may be nullptr
  Scalar* dx = nullptr;               // out, T x n x d: dL/dx_t for dense input (overwritten)
  bool record_dh_norms = false;       // fill ws.dh_norms with ||dL/dh_t||
};

// BPTT from ws.dO. Overwrites dparams (same layout as params) with dL/dparams, and dh0 / dx
// when given. Afterwards ws.flow (c_t) and ws.windows hold the schedule that was run.
// Throws std::invalid_argument: no forward or no dL/do yet, step_offset < 0, dx for token
// input, record_dh_norms for overlapping windows.
template <class Scalar>
void rnn_backward(Scalar* dparams, Workspace<Scalar>& ws, const ModelConfig& config,
                  const ParameterLayout& layout, const Scalar* params,
                  const BackwardOptions<Scalar>& options);

// ---- The Model: what most C++ users want ----

template <class Scalar>
class Model {
 public:
  explicit Model(const ModelConfig& config);

  const ModelConfig& config() const { return config_; }
  const ParameterLayout& layout() const { return layout_; }
  Index num_parameters() const { return layout_.total; }
  Scalar* parameters() { return params_.data(); }
  const Scalar* parameters() const { return params_.data(); }
  Scalar* gradients() { return grads_.data(); }
  const Scalar* gradients() const { return grads_.data(); }
  ParameterViews<Scalar> parameter_views() { return {params_.data(), layout_}; }
  ParameterViews<Scalar> gradient_views() { return {grads_.data(), layout_}; }

  // Weights ~ U(-bound, bound) (PyTorch's nn.RNN default is bound = 1/sqrt(h)); biases too.
  // bound must be finite, >= 0 and at most the largest finite Scalar.
  void init_uniform(double bound, std::uint64_t seed);
  // Weights ~ N(0, init_std^2), biases 0 (d2l's initialization with std = 0.01). init_std
  // must be finite and >= 0, and every draw finite in Scalar (else nothing is changed).
  void init_normal(double init_std, std::uint64_t seed);

  // Runs the sequence; x must stay alive until backward() returns.
  void forward(const SequenceInput<Scalar>& x, const Scalar* h0 = nullptr);
  Index steps() const { return ws_.steps; }
  Index batch() const { return ws_.batch; }
  const Scalar* outputs() const;      // T x n x q
  const Scalar* final_state() const;  // n x h
  // L for the last forward; prepares dL/do for backward().
  double loss(const Targets<Scalar>& y);
  // For a loss computed elsewhere: dL/do_t, T x n x q.
  void set_output_gradient(const Scalar* d_outputs);
  // Overwrites gradients() with dL/dparams.
  void backward(const BackwardOptions<Scalar>& options = BackwardOptions<Scalar>());

  const Workspace<Scalar>& workspace() const { return ws_; }

 private:
  ModelConfig config_;
  ParameterLayout layout_;
  Buffer<Scalar> params_;
  Buffer<Scalar> grads_;
  Workspace<Scalar> ws_;
};

}  // namespace rnnbptt
