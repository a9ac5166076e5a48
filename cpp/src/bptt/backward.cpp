// BPTT (docs/design.md section 3). The recurrence
//   g^h_t = W_qh^T g^o_t + c_{t+1} W_hh^T g^a_{t+1},   g^a_t = phi'(a_t) * g^h_t
// is the only sequential part; the weight gradients are GEMMs over all T*n rows (dW_hh chunk by
// chunk, pipeline.hpp).
// Rows here are samples, so W_hh^T g becomes g W_hh. Which steps the recurrence joins is the
// truncation's schedule (truncation.cpp); this file runs any schedule the same way.
#include <algorithm>
#include <cmath>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/checks.hpp"
#include "core/finite.hpp"
#include "kernels/gemm.hpp"
#include "kernels/overlap.hpp"
#include "kernels/recurrence.hpp"
#include "rnnbptt/core/error.hpp"
#include "rnnbptt/bptt/model.hpp"
#include "rnnbptt/kernels/threads.hpp"

namespace rnnbptt {

using detail::invalid;

namespace {

// The recurrence over the schedule in ws.windows / ws.flow, for every strategy. Within one
// lane, the windows do not overlap, so one pass over the steps runs them all:
//   g_t = [t injects] W_qh^T g^o_t + c_{t+1} g_{t+1} W_hh   (c_{t+1} only inside a window)
//   g_t <- phi'(a_t) * g_t,  then dA_t += g_t
// and each thread owns a block of every step: some sequences or a band of hidden units
// (recurrence.hpp). A single lane whose windows inject at every
// step (Full, Randomized, Regular(k, k)) runs in place in ws.dA, which holds W_qh^T g^o_t on
// entry; otherwise W_qh^T g^o_t is in ws.dH and each lane keeps its last two steps in
// ws.lane_g, adding into ws.dA (the weight gradients are linear in g^a).
// With `beside` (one lane, in place; pipeline.hpp), the recurrence runs on this thread alone:
// before row t it waits until `injected` says row t holds W_qh^T g^o_t, and after row t it
// publishes t on `finished`.
struct Beside {
  const detail::Progress* injected = nullptr;  // rows >= value hold W_qh^T g^o_t
  detail::Progress* finished = nullptr;        // rows >= value are final g^a
};

template <class Scalar>
void recur(Workspace<Scalar>& ws, const ModelConfig& config, const Scalar* W, bool in_place,
           const BackwardOptions<Scalar>& options, const Beside* beside = nullptr) {
  const Index T = ws.steps, n = ws.batch, h = config.hidden_size;
  const Scalar* c = ws.flow.data();  // c[t] = c_{t+1}, the flow from row t into row t - 1
  const Scalar* injected = in_place ? ws.dA.data() : ws.dH.data();
  Scalar* dA = ws.dA.data();
  const detail::RecurrencePlan plan = beside != nullptr ? detail::RecurrencePlan{} : detail::recurrence_plan<Scalar>(n, h);
  // ||dL/dh_t||^2 in pieces per row and panel of the fixed column grid (not per thread), summed
  // in order: the same value for any thread count and either kind of band. One lane only
  // (checked by the caller).
  constexpr Index panel = detail::Simd<Scalar>::panel;
  const Index panels = (h + panel - 1) / panel;
  if (options.record_dh_norms) {  // sized by rnn_backward, before any parallel region
    std::fill(ws.norm_parts.begin(), ws.norm_parts.begin() + T * n * panels, 0.0);  // rows no window holds
  }
  const bool want_dh0 = options.dh0.size() != 0;  // length checked by rnn_backward
  const bool has_dh_T = options.dh_T.size() != 0;
  if (want_dh0) MatrixMap<Scalar>(options.dh0.data(), n, h).setZero();
  if (!in_place) MatrixMap<Scalar>(dA, T * n, h).setZero();
  Index* owner = ws.lane_owner.data();

  for (Index lane = 0; lane < ws.lanes; ++lane) {
    std::fill(owner, owner + T, Index(-1));
    for (std::size_t w = 0; w < ws.windows.size(); ++w)
      if (ws.windows[w].lane == lane)
        std::fill(owner + ws.windows[w].first, owner + ws.windows[w].end, static_cast<Index>(w));
    // Row t of g: in place, row t of dA; in lanes, one of two n x h slots taken in turn.
    auto g_row = [&](Index t) { return in_place ? dA + t * n * h : ws.lane_g.data() + (t & 1) * n * h; };

    // Step t on this thread's block: rows [r0, r0 + rows) and columns [begin, end) of g_t.
    const auto row = [&](Index t, const detail::Band& band) {
      if (owner[t] < 0) return;  // between this lane's windows
      const Window& window = ws.windows[owner[t]];
      const Index r0 = band.row, rows = band.rows, begin = band.begin, width = band.end - band.begin;
      MatrixMap<Scalar> g_t(g_row(t), n, h);
      Scalar* g = g_t.data() + r0 * h;
      auto g_block = g_t.block(r0, begin, rows, width);
      if (!in_place) {
        if (t >= window.begin)
          g_block = ConstMatrixMap<Scalar>(injected + t * n * h, n, h).block(r0, begin, rows, width);
        else
          g_block.setZero();
      }
      if (t + 1 == T) {
        if (has_dh_T) g_block += ConstMatrixMap<Scalar>(options.dh_T.data(), n, h).block(r0, begin, rows, width);
      } else if (t + 1 < window.end && c[t + 1] != Scalar(0)) {
        detail::gemm_columns(rows, h, g_row(t + 1) + r0 * h, h, W, h, g, h, begin, band.end, c[t + 1]);
      }
      if (options.record_dh_norms)
        for (Index r = r0; r < r0 + rows; ++r)
          for (Index j = begin; j < band.end; j += panel)
            ws.norm_parts[(t * n + r) * panels + j / panel] =
                g_t.row(r).segment(j, std::min(panel, band.end - j)).template cast<double>().squaredNorm();
      detail::derivative_band(config.activation, g, ws.H.data() + ((t + 1) * n + r0) * h, rows, h, begin, band.end);
      if (!in_place) MatrixMap<Scalar>(dA + t * n * h, n, h).block(r0, begin, rows, width) += g_block;
    };
    detail::run_recurrence<Scalar>(plan, n, h, T, T, -1, [&](Index step, const detail::Band& band) {
      const Index t = step - 1;  // 0-based row
      if (beside != nullptr) beside->injected->wait([&](Index from) { return from <= t; });
      row(t, band);
      if (beside != nullptr) beside->finished->publish(t);
    });
    // dL/dh_0 = c_1 g^a_1 W_hh, from the window (of this lane) that starts at step 0.
    if (want_dh0 && owner[0] >= 0 && c[0] != Scalar(0))
      detail::gemm_columns(n, h, g_row(0), h, W, h, options.dh0.data(), h, Index(0), h, c[0]);
  }
  if (options.record_dh_norms)
    for (Index t = 0; t < T; ++t) {
      double sum = 0.0;
      for (Index i = 0; i < n * panels; ++i) sum += ws.norm_parts[t * n * panels + i];
      ws.dh_norms[t] = static_cast<Scalar>(std::sqrt(sum));
    }
}

}  // namespace

template <class Scalar>
void rnn_backward(Span<detail::identity_t<Scalar>> dparams, Workspace<Scalar>& ws,
                  const ModelConfig& config, const ParameterLayout& layout,
                  Span<const detail::identity_t<Scalar>> params,
                  const BackwardOptions<detail::identity_t<Scalar>>& options) {
  if (!ws.has_forward) throw StateError("backward: expected a forward pass first, got none");
  if (!ws.has_output_gradient)
    throw StateError("backward: expected dL/do from loss() or set_output_gradient() first, got none");
  // Every length is checked, and dL/dh_T (an input: finite, the policy of rnnbptt/core/error.hpp)
  // too, before anything is written.
  detail::check_span("params", params, {layout.total}, "num_parameters");
  detail::check_span("dparams", dparams, {layout.total}, "num_parameters");
  const Index n_ = ws.batch, h_ = config.hidden_size;
  if (detail::check_optional_span("dh_T", options.dh_T, {n_, h_}, "n x h"))
    detail::check_finite("dh_T", options.dh_T.data(), {n_, h_});
  detail::check_optional_span("dh0", options.dh0, {n_, h_}, "n x h");
  const SequenceInput<Scalar>& x = ws.input;
  const bool want_dx = options.dx.size() != 0;
  if (want_dx && x.is_tokens())
    invalid("dx: expected dense input, got token ids (the gradient wrt ids does not exist)");
  detail::check_optional_span("dx", options.dx, {ws.steps, n_, config.input_size}, "T x n x d");
  static const Truncation full = Truncation::full();
  const Truncation& truncation = options.truncation != nullptr ? *options.truncation : full;
  ws.has_schedule = false;
  ws.lanes = truncation.schedule(options.step_offset, ws.steps, ws.context_steps,
                                 Span<Scalar>(ws.flow.data(), ws.steps), ws.windows);
  bool in_place = ws.lanes == 1;  // one lane, every window injecting at every step
  for (const Window& window : ws.windows) in_place = in_place && window.begin == window.first;
  if (options.record_dh_norms && ws.lanes > 1)
    invalid("record_dh_norms: expected Full, Randomized or Regular(k, k) truncation, got ",
            truncation.to_string(), " whose windows overlap (dL/dh_t differs per window)");

  const Index T = ws.steps, n = ws.batch, P = ws.context_steps;
  const Index d = config.input_size, h = config.hidden_size, q = config.output_size;
  const Index rows = (T - P) * n;
  const ParameterViews<const Scalar> p(params.data(), layout);
  ParameterViews<Scalar> dp(dparams.data(), layout);
  MatrixMap<Scalar> H(ws.H.data(), (T + 1) * n, h);
  MatrixMap<Scalar> dO(ws.dO.data(), T * n, q);
  MatrixMap<Scalar> dA(ws.dA.data(), T * n, h);

  // Output layer: dW_qh = sum_t g^o_t h_t^T (with the products below), db_q = sum_t g^o_t.
  const auto dO_loss = dO.middleRows(P * n, rows);
  if (config.bias) dp.b_q = dO_loss.colwise().sum();

  // W_qh^T g^o_t, then the recurrence adds the flow from t + 1, then dW_hh = sum_t g^a_t
  // h_{t-1}^T: chunk by chunk from the last (pipeline.hpp), beside the recurrence when its
  // steps are small and it runs in place. T x n x h was checked by the forward pass.
  // What recur needs is allocated here: it may run inside a parallel region (pipeline.hpp).
  if (!in_place) detail::grow_buffer(ws.dH, T * n * h, "x", "the injected gradients T x n x h");
  if (options.record_dh_norms) {
    const Index panels = (h + detail::Simd<Scalar>::panel - 1) / detail::Simd<Scalar>::panel;
    detail::grow_buffer(ws.norm_parts,
                        detail::checked_size("x", "the norm pieces T x n x panels", {T, n_, panels}, sizeof(double)),
                        "x", "the norm pieces T x n x panels");
  }
  MatrixMap<Scalar> injected(in_place ? ws.dA.data() : ws.dH.data(), T * n, h);
  injected.topRows(P * n).setZero();
  const detail::TimeChunks chunks(0, T, n, h);  // rows t = 0 .. T - 1 of dA (steps t + 1)
  const auto inject_chunk = [&](Index c, int threads) {
    const Index t0 = std::max(P, chunks.begin(c)), t1 = chunks.stop(c);
    if (t1 > t0)
      detail::gemm(injected.middleRows(t0 * n, (t1 - t0) * n), dO.middleRows(t0 * n, (t1 - t0) * n), p.W_qh,
                   false, threads);
  };
  const auto dW_hh_chunk = [&](Index c, int threads) {
    const Index t0 = chunks.begin(c), len = chunks.stop(c) - t0;
    detail::gemm(dp.W_hh, dA.middleRows(t0 * n, len * n).transpose(), H.middleRows(t0 * n, len * n),
                 c != chunks.count() - 1, threads);
  };
  const auto output_weights = [&](int threads) {
    detail::gemm(dp.W_qh, dO_loss.transpose(), H.middleRows((P + 1) * n, rows), false, threads);
  };
  bool done = false;
  if (in_place && detail::products_beside_recurrence(chunks, h, q)) {
    detail::Progress injected_from(T), finished_from(T);
    const Beside beside{&injected_from, &finished_from};
    // The helper's share is W_qh^T g^o and dW_hh (q + h per h of the recurrence's work), this
    // thread's the recurrence and then dW_qh (h + q): with dW_qh on the helper too, the helper
    // had (2 q + h) / h of the recurrence's work and the recurrence's thread waited for it.
    done = detail::run_beside(
        [&] {
          recur(ws, config, p.W_hh.data(), in_place, options, &beside);
          output_weights(1);
        },
        [&] {
          for (Index c = chunks.count() - 1; c >= 0; --c) {
            inject_chunk(c, 1);
            injected_from.publish(chunks.begin(c));
          }
          for (Index c = chunks.count() - 1; c >= 0; --c) {
            finished_from.wait([&](Index from) { return from <= chunks.begin(c); });
            dW_hh_chunk(c, 1);
          }
        },
        [&] {
          injected_from.publish(0);
          finished_from.publish(0);
        });
  }
  if (!done) {
    for (Index c = chunks.count() - 1; c >= 0; --c) inject_chunk(c, 0);
    output_weights(0);
    recur(ws, config, p.W_hh.data(), in_place, options);
    for (Index c = chunks.count() - 1; c >= 0; --c) dW_hh_chunk(c, 0);
  }
  ws.has_dh_norms = options.record_dh_norms;
  ws.has_schedule = true;

  // db_h = sum_t g^a_t and, for token input, dW_hx = sum_t g^a_t x_t^T (a scatter-add of g^a
  // rows into rows id of dW_hx^T), in one pass over g^a. Each thread owns a band of hidden
  // units and adds the rows in order, so the sums (and the results) do not depend on the thread
  // count. One band per thread: parallel_for over the bands (one thread: no parallel region).
  const bool scatter = x.is_tokens();
  MatrixMap<Scalar> dW_hx_T(ws.dW_hx_T.data(), scatter ? d : 0, h);
  if (config.bias || scatter) {
    if (config.bias) dp.b_h.setZero();
    if (scatter) dW_hx_T.setZero();
    const IdView ids = x.tokens;
    const Index threads = T * n * h > 65536 ? std::max(1, get_num_threads()) : 1;
    const Index band = (h + threads - 1) / threads;
    detail::parallel_for(static_cast<int>(threads), threads, [&](Index thread) {
      const Index lo = std::min(h, thread * band), width = std::min(h, lo + band) - lo;
      if (width <= 0) return;
      for (Index r = 0; r < T * n; ++r) {
        const auto g = dA.row(r).segment(lo, width);
        if (config.bias) dp.b_h.segment(lo, width) += g;
        if (scatter) dW_hx_T.row(ids[r]).segment(lo, width) += g;
      }
    });
  }
  if (scatter) {
    dp.W_hx = dW_hx_T.transpose();
  } else {
    ConstMatrixMap<Scalar> X(x.dense.data(), T * n, d);
    detail::gemm(dp.W_hx, dA.transpose(), X);
    if (want_dx) detail::gemm(MatrixMap<Scalar>(options.dx.data(), T * n, d), dA, p.W_hx);
  }
}

template RNNBPTT_EXPORT void rnn_backward<float>(Span<float>, Workspace<float>&, const ModelConfig&,
                                  const ParameterLayout&, Span<const float>,
                                  const BackwardOptions<float>&);
template RNNBPTT_EXPORT void rnn_backward<double>(Span<double>, Workspace<double>&, const ModelConfig&,
                                   const ParameterLayout&, Span<const double>,
                                   const BackwardOptions<double>&);

}  // namespace rnnbptt
