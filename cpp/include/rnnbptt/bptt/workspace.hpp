/// @file workspace.hpp
/// @brief Every activation and scratch buffer of one forward/backward pair.
///
/// Buffers grow when a call needs more room and are reused afterwards: the time loops never
/// allocate. The buffers may be larger than the last call needed (they never shrink): the
/// sizes that count are the shapes in the comments with steps, batch and the model's sizes.
/// Everything here is owned by the workspace and changed by the next rnn_forward /
/// loss_forward / rnn_backward on it. Thread safety: one thread at a time (as its Model).
#pragma once

#include <vector>

#include "rnnbptt/core/buffer.hpp"

#include "rnnbptt/bptt/truncation.hpp"
#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/export.hpp"
#include "rnnbptt/core/sequence.hpp"

namespace rnnbptt {

/// What a stack of cells keeps per layer (bptt/layers.cpp): every configuration but one Elman
/// layer. G = config.gates(); the top layer's h lives in Workspace::H.
template <class Scalar>
struct LayerCache {
  Buffer<Scalar> H;      // (steps + 1) x n x h: h_0 .. h_T of a layer below the top
  Buffer<Scalar> C;      // (steps + 1) x n x h: c_0 .. c_T (lstm)
  Buffer<Scalar> gates;  // steps x n x G h: the cell's kept gate values (elman: a_t)
  Buffer<Scalar> kept;   // steps x n x h: extra kept values (gru: s_n)
  Buffer<Scalar> dP;     // steps x n x G h: dL/dp_t, input side, summed over lanes
  Buffer<Scalar> dS;     // steps x n x G h: dL/ds_t, recurrent side (gru; else dP)
};

/// Activations and scratch of one model (or one stream runner), reused from call to call.
template <class Scalar>
struct RNNBPTT_EXPORT Workspace {
  // Shape of the sequence held: context_steps of history (streaming only, no loss) followed
  // by the steps of this call; steps counts both.
  Index steps = 0;
  Index batch = 0;
  Index context_steps = 0;

  Buffer<Scalar> H;             // (steps + 1) x n x h: h_0 .. h_T
  Buffer<Scalar> O;             // steps x n x q: o_1 .. o_T
  Buffer<Scalar> dO;            // steps x n x q: dL/do_t
  Buffer<Scalar> dA;            // steps x n x h: g^a_t = dL/da_t
  Buffer<Scalar> dH;            // steps x n x h: W_qh^T g^o_t, when windows run in lanes
  Buffer<Scalar> lane_g;        // 2 x n x h: g^a of the current and the later step of one lane
  Buffer<Scalar> W_hh_T;        // h x G h: W_hh transposed, read by the forward recurrence (packed per thread)
  Buffer<Scalar> W_hx_T;        // d x h: W_hx transposed, rows gathered by token input
  Buffer<Scalar> dW_hx_T;       // d x h: scatter-add target for token input
  Buffer<Scalar> flow;          // steps: xi_t of the last backward (flow[t] = xi_{t+1})
  Buffer<Scalar> dh_norms;      // steps: ||dL/dh_t|| over the batch, when recorded
  Buffer<double> row_loss;      // steps x n: l(o_t, y_t) * w_t before the reduction
  Buffer<double> norm_parts;    // steps x n x panels: pieces of ||dL/dh_t||^2 per row and column panel
  Buffer<Index> lane_owner;     // steps: the window of the running lane that holds step t, or -1
  std::vector<Window> windows;  // the last backward's schedule
  // A stack of cells (every configuration but one Elman layer; bptt/layers.cpp):
  std::vector<LayerCache<Scalar>> layers;  // one per layer
  Buffer<Scalar> state_T;                  // state_size(n): the final state of every layer
  Buffer<Scalar> step_s;                   // n x G h: s_t of the running step
  Buffer<Scalar> carry;                    // 2 x n x h: dL/dh_{t-1}, dL/dc_{t-1} (unscaled)
  Buffer<Scalar> step_in;                  // 2 x n x h: the whole dL/dh_t, dL/dc_t of the step
  Buffer<Scalar> lane_dP, lane_dS;         // steps x n x G h: one lane's dL/dp, dL/ds
  Buffer<Scalar> from_above;               // steps x n x h: a lane's gradient into the layer below
  Buffer<double> step_norms;               // steps x n: pieces of ||dL/dstate_t||^2, summed over the layers
  Index lanes = 0;                         // lanes of that schedule

  // Input of the last forward, for the backward pass: dense values are the caller's memory,
  // kept (not copied: the caller keeps them alive until the last backward), token ids view
  // `ids`, the workspace's checked copy.
  SequenceInput<Scalar> input;
  Buffer<std::int64_t> ids;  // steps x n: token ids of the last forward
  // Resets and lengths of the last forward (bptt/resets.hpp), checked copies: steps x n flags,
  // n lengths, and the state a reset restores (config.state_size(n) values).
  Buffer<std::uint8_t> resets;
  Buffer<Index> lengths;
  Buffer<Scalar> reset_state;
  bool has_resets = false;
  bool has_lengths = false;
  bool resets_to_zero = false;  // the resets restored zeros whatever h0 was (a stream's chunk)
  bool has_forward = false;
  bool has_output_gradient = false;
  bool has_dh_norms = false;
  bool has_schedule = false;  // flow, windows and lanes describe a backward of the last forward

  /// Sizes every buffer for (context + steps) x batch. Allocates only when growing. (dH is
  /// sized by the backward pass that needs it: only schedules that run in lanes do.)
  /// SizeError for sizes that overflow, AllocationError for memory that cannot be had.
  void reserve(const ModelConfig& config, Index total_steps, Index batch_size, Index context);
  /// Bytes held by every buffer (capacity, not size).
  std::size_t bytes() const;
};

}  // namespace rnnbptt
