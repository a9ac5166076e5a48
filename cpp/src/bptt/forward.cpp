// Forward pass and loss: everything that does not depend on the recurrence is a GEMM over many
// rows at once (all T*n, or chunks of steps: overlap.hpp); only h_t = phi(a_t + h_{t-1} W_hh^T)
// runs step by step.
#include <algorithm>
#include <cmath>

#include "bptt/layers.hpp"
#include "bptt/resets.hpp"
#include "core/checks.hpp"
#include "core/finite.hpp"
#include "kernels/gemm.hpp"
#include "kernels/overlap.hpp"
#include "kernels/recurrence.hpp"
#include "rnnbptt/bptt/model.hpp"
#include "rnnbptt/core/error.hpp"
#include "rnnbptt/kernels/threads.hpp"

namespace rnnbptt {

using detail::invalid;

namespace {

template <class Scalar>
void check_input(const SequenceInput<Scalar>& x, const ModelConfig& config) {
  if (x.steps <= 0) invalid("x: expected at least one time step (T >= 1), got T = ", x.steps);
  if (x.batch <= 0) invalid("x: expected at least one sequence (n >= 1), got n = ", x.batch);
  // Sizes of memory the caller holds, checked before anything is read.
  const Index d = config.input_size;
  if (x.is_tokens()) {
    detail::check_ids("x", x.tokens, {x.steps, x.batch}, "T x n");
    return;  // the ids are checked on the workspace's copy (rnn_forward)
  }
  detail::checked_size("x", "the input values T x n x d", {x.steps, x.batch, d}, sizeof(Scalar));
  detail::check_span("x", x.dense, {x.steps, x.batch, d}, "T x n x d");
  detail::check_finite("x", x.dense.data(), {x.steps, x.batch, d});
}

}  // namespace

namespace detail {
template <class Scalar>
void take_resets(Workspace<Scalar>& ws, const ModelConfig& config, const SequenceInput<Scalar>& x, Index context_steps,
                 Span<const Scalar> initial) {
  const Index T = x.steps, n = x.batch;
  ws.has_resets = false;
  ws.has_lengths = false;
  const bool resets = check_optional_span("resets", x.resets, {T, n}, "T x n");
  const bool lengths = check_optional_span("lengths", x.lengths, {n}, "n");
  if (lengths && context_steps > 0)
    invalid("lengths: expected none for a chunk of a stream (context_steps = ", context_steps,
            "): lengths end whole sequences, resets restart them within a stream");
  // Checked on the copies, as the token ids are: what the drivers read was checked.
  if (resets) {
    grow_buffer(ws.resets, T * n, "resets", "the reset flags T x n");
    std::copy(x.resets.begin(), x.resets.end(), ws.resets.begin());
    for (Index i = 0; i < T * n; ++i)
      if (ws.resets[i] > 1)
        invalid("resets: expected flags 0 or 1 (T x n), got ", int(ws.resets[i]), " at [", i / n, ", ", i % n, "]");
  }
  if (lengths) {
    grow_buffer(ws.lengths, n, "lengths", "the sequence lengths n");
    std::copy(x.lengths.begin(), x.lengths.end(), ws.lengths.begin());
    for (Index i = 0; i < n; ++i)
      if (ws.lengths[i] < 0 || ws.lengths[i] > T)
        invalid("lengths: expected values in [0, T = ", T, "], got ", ws.lengths[i], " at [", i, "]");
  }
  if (resets || lengths) {
    const Index size = config.state_size(n);
    grow_buffer(ws.reset_state, size, "x", "the state a reset restores");
    if (initial.size() != 0)
      std::copy(initial.begin(), initial.end(), ws.reset_state.begin());
    else
      std::fill_n(ws.reset_state.begin(), size, Scalar(0));
  }
  ws.has_resets = resets;
  ws.has_lengths = lengths;
}
}  // namespace detail

template <class Scalar>
void rnn_forward(Workspace<Scalar>& ws, const ModelConfig& config, const ParameterLayout& layout,
                 Span<const detail::identity_t<Scalar>> params, const SequenceInput<detail::identity_t<Scalar>>& x,
                 Span<const detail::identity_t<Scalar>> h0, Index context_steps, bool resets_to_zero) {
  detail::check_span("params", params, {layout.total}, "num_parameters");
  check_input(x, config);
  const Index T = x.steps, n = x.batch, P = context_steps;
  const Index d = config.input_size, h = config.hidden_size, q = config.output_size;
  if (P < 0 || P >= T) invalid("context_steps: expected 0 <= context < T = ", T, ", got ", P);
  const bool stack = !config.single_elman();
  const bool has_h0 = detail::check_state("h0", h0, config, n);
  if (has_h0 && P > 0)
    invalid("h0: expected no initial state with context_steps = ", P,
            " > 0 (the history's states are in the workspace), got ", h0.size(), " values");
  if (has_h0) detail::check_state_finite("h0", h0.data(), config, n);
  ws.has_forward = false;
  detail::take_resets(ws, config, x, P, resets_to_zero ? Span<const Scalar>() : h0);
  ws.resets_to_zero = resets_to_zero;
  SequenceInput<Scalar> input = x;
  if (x.is_tokens()) {
    // Token ids are copied (8 T n bytes, next to T n h activations) and checked on the copy:
    // whatever the caller does to its array afterwards, even from another thread while this
    // runs, forward and backward read ids that were checked.
    const Index positions = T * n;
    detail::grow_buffer(ws.ids, detail::checked_size("x", "the token ids T x n", {T, n}, sizeof(std::int64_t)), "x",
                        "the token ids T x n");
    for (Index i = 0; i < positions; ++i) ws.ids[i] = x.tokens[i];
    for (Index i = 0; i < positions; ++i)
      if (ws.ids[i] < 0 || ws.ids[i] >= d)
        invalid("x: expected token ids in [0, ", d, "), got ", ws.ids[i], " at [", i / n, ", ", i % n, "]");
    input = SequenceInput<Scalar>::from_tokens(Span<const std::int64_t>(ws.ids.data(), positions), T, n);
  }
  ws.reserve(config, T, n, P);
  if (stack) {
    detail::stack_forward(ws, config, layout, params.data(), input, has_h0 ? h0.data() : nullptr);
    ws.input = input;
    ws.has_forward = true;
    ws.has_output_gradient = false;
    ws.has_dh_norms = false;
    ws.has_schedule = false;
    return;
  }
  const ParameterViews<const Scalar> p(params.data(), layout);

  MatrixMap<Scalar> H(ws.H.data(), (T + 1) * n, h);  // h_0 .. h_T
  if (P == 0) {
    if (has_h0) {
      H.topRows(n) = ConstMatrixMap<Scalar>(h0.data(), n, h);
    } else {
      H.topRows(n).setZero();
    }
  }
  const Index rows = (T - P) * n;
  auto A = H.middleRows((P + 1) * n, rows);  // a_t, then h_t in place
  // Row-parallel passes over (T - P) n x h (the gather and the bias) and h x h (the transpose): one
  // thread when small. Each number is one copy or one addition, whoever computes it.
  const int row_threads = rows * h > 65536 ? get_num_threads() : 1;
  if (x.is_tokens()) {
    // x_t is one-hot: W_hx x_t is a column of W_hx, a contiguous row of its transpose.
    MatrixMap<Scalar> W_hx_T(ws.W_hx_T.data(), d, h);
    W_hx_T = p.W_hx.transpose();
    const IdView ids = input.tokens;
    detail::parallel_for(row_threads, rows, [&](Index r) {
      A.row(r) = W_hx_T.row(ids[P * n + r]);
      if (config.bias) A.row(r) += p.b_h;
    });
  } else {
    detail::gemm(A, ConstMatrixMap<Scalar>(x.dense.data() + P * n * d, rows, d), p.W_hx.transpose());
    if (config.bias) detail::parallel_for(row_threads, rows, [&](Index r) { A.row(r) += p.b_h; });
  }
  // h_t = phi(a_t + h_{t-1} W_hh^T), each thread on its own block of rows or hidden units
  // (recurrence.hpp); then o_t = W_qh h_t chunk by chunk (overlap.hpp), overlapped with the recurrence
  // when its steps are small.
  MatrixMap<Scalar> W_hh_T(ws.W_hh_T.data(), h, h);
  constexpr Index transpose_block = 64;  // rows of W_hh^T per task
  detail::parallel_for(h * h >= 65536 ? get_num_threads() : 1, (h + transpose_block - 1) / transpose_block,
                       [&](Index b) {
                         const Index i = b * transpose_block, count = std::min(transpose_block, h - i);
                         W_hh_T.middleRows(i, count) = p.W_hh.middleCols(i, count).transpose();
                       });
  Scalar* states = ws.H.data();
  const std::uint8_t* resets = ws.has_resets ? ws.resets.data() : nullptr;
  const auto step = [&](Index t, const detail::Band& band) {
    Scalar* h_t = states + (t * n + band.row) * h;
    if (resets == nullptr) {
      detail::gemm_columns(band.rows, h, h_t - n * h, h, W_hh_T.data(), h, h_t, h, band.begin, band.end);
    } else {  // a reset row reads its reset state instead of h_{t-1} (rows t n .. hold step t - 1's flags)
      const std::uint8_t* reset_at = resets + (t - 1) * n;
      detail::for_each_run(
          band.row, band.row + band.rows, [&](Index r) { return reset_at[r] != 0; },
          [&](bool reset, Index r, Index rows) {
            const Scalar* prev = reset ? ws.reset_state.data() + r * h : states + ((t - 1) * n + r) * h;
            detail::gemm_columns(rows, h, prev, h, W_hh_T.data(), h, states + (t * n + r) * h, h, band.begin, band.end);
          });
    }
    detail::activate_band(config.activation, h_t, band.rows, h, band.begin, band.end);
  };
  MatrixMap<Scalar> O(ws.O.data(), T * n, q);
  const detail::TimeChunks chunks(P + 1, T + 1, n, h);  // steps t = P + 1 .. T (rows of H)
  const auto output_chunk = [&](Index chunk, int threads) {
    const Index t0 = chunks.begin(chunk), len = chunks.stop(chunk) - t0;
    detail::gemm(O.middleRows((t0 - 1) * n, len * n), H.middleRows(t0 * n, len * n), p.W_qh.transpose(), false,
                 threads);
  };
  bool done = false;
  if (detail::overlap_products(chunks, h, q)) {
    detail::StepCounter finished(P);  // h_1 .. h_finished are final
    done = detail::run_overlapped(
        [&] {
          detail::run_recurrence<Scalar>(detail::RecurrencePlan{}, n, h, P + 1, T - P, +1,
                                         [&](Index t, const detail::Band& band) {
                                           step(t, band);
                                           finished.publish(t);
                                         });
        },
        [&] {
          for (Index chunk = 0; chunk < chunks.count(); ++chunk) {
            finished.wait([&](Index t) { return t >= chunks.stop(chunk) - 1; });
            output_chunk(chunk, 1);
          }
        },
        [&] { finished.publish(T); });
  }
  if (!done) {
    detail::run_recurrence<Scalar>(detail::recurrence_plan<Scalar>(n, h), n, h, P + 1, T - P, +1, step);
    for (Index chunk = 0; chunk < chunks.count(); ++chunk) output_chunk(chunk, 0);
  }
  auto O_loss = O.middleRows(P * n, rows);
  if (config.bias) O_loss.rowwise() += p.b_q;
  if (ws.has_lengths) {  // each sequence's state after its own last step
    detail::grow_buffer(ws.state_T, n * h, "x", "the final state");
    for (Index i = 0; i < n; ++i) std::copy_n(states + (ws.lengths[i] * n + i) * h, h, ws.state_T.data() + i * h);
  }

  ws.input = input;
  ws.has_forward = true;
  ws.has_output_gradient = false;
  ws.has_dh_norms = false;
  ws.has_schedule = false;
}

template <class Scalar>
double loss_forward(Workspace<Scalar>& ws, const ModelConfig& config, const Targets<detail::identity_t<Scalar>>& y) {
  if (!ws.has_forward) throw StateError("loss: expected a forward pass first, got none");
  const Index n = ws.batch, P = ws.context_steps, q = config.output_size;
  const Index rows = (ws.steps - P) * n, T = ws.steps - P;
  // With lengths (never with context steps), positions past a sequence's length are not
  // read: their targets may be anything (padding), their weight is 0.
  const Index* lengths = ws.has_lengths ? ws.lengths.data() : nullptr;
  const auto used = [&](Index r) { return lengths == nullptr || r / n < lengths[r % n]; };
  if (y.kind == LossKind::cross_entropy) {
    detail::check_ids("targets", y.classes, {T, n}, "T x n");
    for (Index r = 0; r < rows; ++r) {
      const std::int64_t c = y.classes[r];
      if ((c < 0 || c >= q) && used(r))
        invalid("targets: expected class ids in [0, ", q, "), got ", c, " at [", r / n, ", ", r % n, "]");
    }
  } else if (y.kind == LossKind::squared_error) {
    detail::check_span("targets", y.dense, {T, n, q}, "T x n x q");
    if (lengths == nullptr) {
      detail::check_finite("targets", y.dense.data(), {T, n, q});
    } else {
      for (Index r = 0; r < rows; ++r)
        for (Index j = 0; j < q && used(r); ++j)
          if (!std::isfinite(y.dense[r * q + j]))
            invalid("targets: expected finite values, got ", y.dense[r * q + j], " at [", r / n, ", ", r % n, ", ", j,
                    "]");
    }
  } else {
    invalid("targets: expected class ids or dense values, got an unknown LossKind ", static_cast<int>(y.kind));
  }
  const bool given = detail::check_optional_span("weights", y.weights, {T, n}, "T x n");
  const bool weighted = given || lengths != nullptr;
  const auto weight = [&](Index r) { return used(r) ? (given ? y.weights[r] : Scalar(1)) : Scalar(0); };
  // The weighted mean sum(w l) / sum(w) does not depend on the weights' scale, so they are
  // used as w / max(w) (in double): weights of 1e308 or subnormal ones give the loss and
  // gradients of any other multiple of them (to rounding), with no overflow or underflow.
  double weight_sum = static_cast<double>(rows), weight_max = 1.0;
  if (weighted) {
    weight_max = 0.0;
    for (Index r = 0; r < rows && given; ++r) {
      const Scalar w = y.weights[r];
      if (!(w >= 0) || !std::isfinite(w))
        invalid("weights: expected finite values >= 0, got ", w, " at [", r / n, ", ", r % n, "]");
    }
    for (Index r = 0; r < rows; ++r) weight_max = std::max(weight_max, static_cast<double>(weight(r)));
    if (!(weight_max > 0)) {
      if (lengths != nullptr && std::all_of(lengths, lengths + n, [](Index length) { return length == 0; }))
        invalid("lengths: expected at least one sequence with steps, got all 0");
      invalid(lengths != nullptr ? "weights: expected a positive sum within the lengths, got 0"
                                 : "weights: expected a positive sum, got 0");
    }
    weight_sum = 0.0;
    for (Index r = 0; r < rows; ++r) weight_sum += static_cast<double>(weight(r)) / weight_max;
  }

  MatrixMap<Scalar> O(ws.O.data(), ws.steps * n, q);
  MatrixMap<Scalar> dO(ws.dO.data(), ws.steps * n, q);
  dO.topRows(P * n).setZero();
  const Scalar inv_sum = static_cast<Scalar>(1.0 / weight_sum);
  // An exp per element (about 4 ns): from 8,192 elements a second thread saves more than the
  // parallel region costs (S, 1,120 x 28, ran this on one thread at 0.14 ms of a 5 ms step).
  detail::parallel_for(rows * q >= 8192 ? get_num_threads() : 1, rows, [&](Index r) {
    // w l in double for the loss; w / sum(w) rounded once to Scalar for the gradient.
    const double w = weighted ? static_cast<double>(weight(r)) / weight_max : 1.0;
    const Scalar w_inv_sum = weighted ? static_cast<Scalar>(w / weight_sum) : inv_sum;
    auto o = O.row(P * n + r);
    auto g = dO.row(P * n + r);
    if (!used(r)) {  // past the sequence's length: no loss, no gradient, the target unread
      g.setZero();
      ws.row_loss[r] = 0.0;
      return;
    }
    if (y.kind == LossKind::cross_entropy) {
      // Softmax, cross-entropy and (softmax - onehot) * w / sum(w) in one pass over the row.
      const Scalar m = o.maxCoeff();
      g = (o.array() - m).exp().matrix();
      const Scalar s = g.sum();
      const std::int64_t c = y.classes[r];
      // (m - o_c) + log s, not m + log s - o_c: with logits of 1e16 and more, m + log s rounds
      // to m and the loss to 0 instead of log s.
      ws.row_loss[r] = w * ((static_cast<double>(m) - static_cast<double>(o[c])) + std::log(static_cast<double>(s)));
      g *= w_inv_sum / s;
      g[c] -= w_inv_sum;
    } else {
      ConstRowVectorMap<Scalar> target(y.dense.data() + r * q, q);
      g = o - target;
      // In double: a float row of (2e19) has a loss of 2e38 but a float square of inf.
      ws.row_loss[r] = w * 0.5 * g.template cast<double>().squaredNorm();
      g *= w_inv_sum;
    }
  });
  // Sequential sum: the same value for any thread count.
  double total = 0.0;
  for (Index r = 0; r < rows; ++r) total += ws.row_loss[r];
  ws.has_output_gradient = true;
  return total / weight_sum;
}

#define RNNBPTT_INSTANTIATE(Scalar)                                                                                \
  template RNNBPTT_EXPORT void rnn_forward<Scalar>(Workspace<Scalar>&, const ModelConfig&, const ParameterLayout&, \
                                                   Span<const Scalar>, const SequenceInput<Scalar>&,               \
                                                   Span<const Scalar>, Index, bool);                               \
  template RNNBPTT_EXPORT double loss_forward<Scalar>(Workspace<Scalar>&, const ModelConfig&, const Targets<Scalar>&);
RNNBPTT_INSTANTIATE(float)
RNNBPTT_INSTANTIATE(double)
#undef RNNBPTT_INSTANTIATE

}  // namespace rnnbptt
