// Every activation and scratch buffer of one forward/backward pair. Buffers grow when a call
// needs more room and are reused afterwards: the time loops never allocate.
#pragma once

#include <vector>

#include "rnnbptt/buffer.hpp"

#include "rnnbptt/config.hpp"
#include "rnnbptt/sequence.hpp"

namespace rnnbptt {

// Steps [begin, end) (0-based) joined by an uncut gradient path: the seed's figure, measured.
struct Segment {
  Index begin;
  Index end;
};

template <class Scalar>
struct Workspace {
  // Shape of the sequence held: context_steps of history (streaming only, no loss) followed
  // by the steps of this call; steps counts both.
  Index steps = 0;
  Index batch = 0;
  Index context_steps = 0;

  Buffer<Scalar> H;         // (steps + 1) x n x h: h_0 .. h_T
  Buffer<Scalar> O;         // steps x n x q: o_1 .. o_T
  Buffer<Scalar> dO;        // steps x n x q: dL/do_t
  Buffer<Scalar> dA;        // steps x n x h: g^a_t = dL/da_t
  Buffer<Scalar> dH;        // steps x n x h: W_qh^T g^o_t (overlapping windows only)
  Buffer<Scalar> carry;     // n x h: gradient flowing into the previous step
  Buffer<Scalar> scratch;   // n x h
  Buffer<Scalar> W_hh_T;    // h x h: W_hh transposed, read in place by the recurrence
  Buffer<Scalar> W_hx_T;    // d x h: W_hx transposed, rows gathered by token input
  Buffer<Scalar> dW_hx_T;   // d x h: scatter-add target for token input
  Buffer<Scalar> flow;      // steps: c_t of DESIGN.md section 2, as applied last
  Buffer<Scalar> dh_norms;  // steps: ||dL/dh_t|| over the batch, when recorded
  Buffer<double> row_loss;  // steps x n: l(o_t, y_t) * w_t before the reduction
  Buffer<double> norm_parts; // steps x panels: pieces of ||dL/dh_t||^2 per column panel
  std::vector<Segment> segments; // where the gradient paths ran in the last backward

  // Input of the last forward, kept (not copied) for the backward pass.
  SequenceInput<Scalar> input;
  bool has_forward = false;
  bool has_output_gradient = false;
  bool has_dh_norms = false;

  // Sizes every buffer for (context + steps) x batch. Allocates only when growing. (dH is
  // sized by the backward pass that needs it: only overlapping Regular windows do.)
  void reserve(const ModelConfig& config, Index total_steps, Index batch_size, Index context);
};

}  // namespace rnnbptt
