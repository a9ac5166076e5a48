// BPTT (docs/design.md section 3). The recurrence
//   g^h_t = W_qh^T g^o_t + xi_{t+1} W_hh^T g^a_{t+1},   g^a_t = phi'(a_t) * g^h_t
// is the only sequential part; the weight gradients are GEMMs over all T*n rows (dW_hh chunk by
// chunk, overlap.hpp).
// Rows here are samples, so W_hh^T g becomes g W_hh. Which steps the recurrence joins is the
// truncation's schedule (truncation.cpp); this file runs any schedule the same way.
#include <algorithm>
#include <cmath>

#ifdef _OPENMP
#include <omp.h>
#endif

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

// The backward recursion over the schedule in ws.windows / ws.flow, for every strategy.
// Within one lane the windows do not overlap, so one pass over the steps runs them all:
//   g_t = [t injects] W_qh^T g^o_t + xi_{t+1} g_{t+1} W_hh   (xi_{t+1} only inside a window)
//   g_t <- phi'(a_t) * g_t,  then dA_t += g_t
// and each thread owns a block of every step: some sequences or a band of hidden units
// (recurrence.hpp). A single lane whose windows inject at every step (Full, Randomized,
// Regular(k, k)) runs in place in ws.dA, which holds W_qh^T g^o_t on entry; otherwise
// W_qh^T g^o_t is in ws.dH and each lane keeps its last two steps in ws.lane_g, adding into
// ws.dA (the weight gradients are linear in g^a).
// With an Overlap (one lane, in place; overlap.hpp), the recursion runs on this thread alone:
// before row t it waits until `injected` says row t holds W_qh^T g^o_t, and after row t it
// publishes t on `finished`.
struct Overlap {
  const detail::StepCounter* injected = nullptr;  // rows >= value hold W_qh^T g^o_t
  detail::StepCounter* finished = nullptr;        // rows >= value are final g^a
};

template <class Scalar>
class BackwardRecursion {
 public:
  BackwardRecursion(Workspace<Scalar>& ws, const ModelConfig& config, const Scalar* W_hh, bool in_place,
                    const BackwardOptions<Scalar>& options)
      : ws_(ws),
        config_(config),
        W_hh_(W_hh),
        in_place_(in_place),
        options_(options),
        T_(ws.steps),
        n_(ws.batch),
        h_(config.hidden_size),
        flow_(ws.flow.data()),
        injected_(in_place ? ws.dA.data() : ws.dH.data()),
        dA_(ws.dA.data()),
        owner_(ws.lane_owner.data()),
        panels_((h_ + panel - 1) / panel),
        cuts_(ws),
        dh0_(options.dh0.size() != 0 ? options.dh0.data() : nullptr) {}

  // Runs every lane, then sums the norms; dh0 (if wanted) is written by each lane's window that
  // starts at step 0.
  void run(const Overlap* overlap) {
    start();
    const detail::RecurrencePlan plan =
        overlap != nullptr ? detail::RecurrencePlan{} : detail::recurrence_plan<Scalar>(n_, h_);
    for (Index lane = 0; lane < ws_.lanes; ++lane) {
      assign_owners(lane);
      detail::run_recurrence<Scalar>(plan, n_, h_, T_, T_, -1, [&](Index step, const detail::Band& band) {
        const Index t = step - 1;  // 0-based row
        if (overlap != nullptr) overlap->injected->wait([&](Index from) { return from <= t; });
        step_backward(t, band);
        if (overlap != nullptr) overlap->finished->publish(t);
      });
      dh0_backward();
    }
    // A sequence of length 0 ends in its initial state: dL/dh_T is dL/dh0.
    if (dh0_ != nullptr && options_.dh_T.size() != 0 && cuts_.lengths != nullptr)
      for (Index r = 0; r < n_; ++r)
        if (cuts_.lengths[r] == 0)
          for (Index j = 0; j < h_; ++j) dh0_[r * h_ + j] += options_.dh_T[r * h_ + j];
    if (options_.record_dh_norms) sum_dh_norms();
  }

 private:
  static constexpr Index panel = detail::Simd<Scalar>::panel;

  // Zeroes what the lanes add into. ||dL/dh_t||^2 is kept in pieces per row and panel of the
  // fixed column grid (not per thread), summed in order: the same value for any thread count
  // and either kind of band (one lane only, checked by the caller).
  void start() {
    if (options_.record_dh_norms)  // sized by rnn_backward, before any parallel region
      std::fill(ws_.norm_parts.begin(), ws_.norm_parts.begin() + T_ * n_ * panels_, 0.0);  // rows no window holds
    if (options_.dh0.size() != 0) MatrixMap<Scalar>(options_.dh0.data(), n_, h_).setZero();
    if (!in_place_) MatrixMap<Scalar>(dA_, T_ * n_, h_).setZero();
  }

  // owner_[t]: the window of `lane` that holds step t, or -1.
  void assign_owners(Index lane) {
    std::fill(owner_, owner_ + T_, Index(-1));
    for (std::size_t w = 0; w < ws_.windows.size(); ++w)
      if (ws_.windows[w].lane == lane)
        std::fill(owner_ + ws_.windows[w].first, owner_ + ws_.windows[w].end, static_cast<Index>(w));
  }

  // Row t of g: in place, row t of dA; in lanes, one of two n x h slots taken in turn.
  Scalar* g_row(Index t) const { return in_place_ ? dA_ + t * n_ * h_ : ws_.lane_g.data() + (t & 1) * n_ * h_; }

  // Step t on this thread's block: rows [r0, r0 + rows) and columns [begin, end) of g_t.
  void step_backward(Index t, const detail::Band& band) {
    if (owner_[t] < 0) return;  // between this lane's windows
    const Window& window = ws_.windows[owner_[t]];
    const Index r0 = band.row, rows = band.rows, begin = band.begin, width = band.end - band.begin;
    MatrixMap<Scalar> g_t(g_row(t), n_, h_);
    Scalar* g = g_t.data() + r0 * h_;
    auto g_block = g_t.block(r0, begin, rows, width);
    if (!in_place_) {
      if (t >= window.begin)
        g_block = ConstMatrixMap<Scalar>(injected_ + t * n_ * h_, n_, h_).block(r0, begin, rows, width);
      else
        g_block.setZero();
    }
    const bool carried = t + 1 < T_ && t + 1 < window.end && flow_[t + 1] != Scalar(0);
    if (!cuts_.any()) {
      if (t + 1 == T_) {
        if (options_.dh_T.size() != 0)
          g_block += ConstMatrixMap<Scalar>(options_.dh_T.data(), n_, h_).block(r0, begin, rows, width);
      } else if (carried) {
        detail::gemm_columns(rows, h_, g_row(t + 1) + r0 * h_, h_, W_hh_, h_, g, h_, begin, band.end, flow_[t + 1]);
      }
    } else {
      // dL/dh_T enters at each row's last step (with lengths, in the window that injects there).
      const bool lengths = cuts_.lengths != nullptr;
      if (options_.dh_T.size() != 0 && (lengths ? t >= window.begin : t + 1 == T_)) {
        ConstMatrixMap<Scalar> dh_T(options_.dh_T.data(), n_, h_);
        for (Index r = r0; r < r0 + rows; ++r)
          if (!lengths || cuts_.last(t, r)) g_t.row(r).segment(begin, width) += dh_T.row(r).segment(begin, width);
      }
      // Nothing from t + 1 into a row cut there; a reset's share goes to dL/dh0 instead.
      if (carried)
        detail::for_each_run(
            r0, r0 + rows, [&](Index r) { return cuts_.cut(t, r); },
            [&](bool cut, Index r, Index count) {
              const Scalar* from = g_row(t + 1) + r * h_;
              if (!cut) {
                detail::gemm_columns(count, h_, from, h_, W_hh_, h_, g + (r - r0) * h_, h_, begin, band.end,
                                     flow_[t + 1]);
                return;
              }
              for (Index i = 0; i < count && dh0_ != nullptr; ++i)
                if (cuts_.reset(t + 1, r + i))
                  detail::gemm_columns(1, h_, from + i * h_, h_, W_hh_, h_, dh0_ + (r + i) * h_, h_, begin, band.end,
                                       flow_[t + 1]);
            });
    }
    if (options_.record_dh_norms)
      for (Index r = r0; r < r0 + rows; ++r)
        for (Index j = begin; j < band.end; j += panel)
          ws_.norm_parts[(t * n_ + r) * panels_ + j / panel] =
              g_t.row(r).segment(j, std::min(panel, band.end - j)).template cast<double>().squaredNorm();
    detail::derivative_band(config_.activation, g, ws_.H.data() + ((t + 1) * n_ + r0) * h_, rows, h_, begin, band.end);
    if (!in_place_) MatrixMap<Scalar>(dA_ + t * n_ * h_, n_, h_).block(r0, begin, rows, width) += g_block;
  }

  // dL/dh_0 = xi_1 g^a_1 W_hh, from the window (of this lane) that starts at step 0.
  void dh0_backward() {
    if (options_.dh0.size() != 0 && owner_[0] >= 0 && flow_[0] != Scalar(0))
      detail::gemm_columns(n_, h_, g_row(0), h_, W_hh_, h_, options_.dh0.data(), h_, Index(0), h_, flow_[0]);
  }

  void sum_dh_norms() {
    for (Index t = 0; t < T_; ++t) {
      double sum = 0.0;
      for (Index i = 0; i < n_ * panels_; ++i) sum += ws_.norm_parts[t * n_ * panels_ + i];
      ws_.dh_norms[t] = static_cast<Scalar>(std::sqrt(sum));
    }
  }

  Workspace<Scalar>& ws_;
  const ModelConfig& config_;
  const Scalar* W_hh_;
  const bool in_place_;
  const BackwardOptions<Scalar>& options_;
  const Index T_, n_, h_;
  const Scalar* flow_;      // flow_[t] = xi_{t+1}, the factor from row t into row t - 1
  const Scalar* injected_;  // W_qh^T g^o_t per row
  Scalar* dA_;
  Index* owner_;
  const Index panels_;
  const detail::Cuts cuts_;
  Scalar* dh0_;  // dL/dh0 when wanted, else nullptr
};

template <class Scalar>
void backward_recursion(Workspace<Scalar>& ws, const ModelConfig& config, const Scalar* W_hh, bool in_place,
                        const BackwardOptions<Scalar>& options, const Overlap* overlap = nullptr) {
  BackwardRecursion<Scalar>(ws, config, W_hh, in_place, options).run(overlap);
}

}  // namespace

template <class Scalar>
void rnn_backward(Span<detail::identity_t<Scalar>> dparams, Workspace<Scalar>& ws, const ModelConfig& config,
                  const ParameterLayout& layout, Span<const detail::identity_t<Scalar>> params,
                  const BackwardOptions<detail::identity_t<Scalar>>& options) {
  if (!ws.has_forward) throw StateError("backward: expected a forward pass first, got none");
  if (!ws.has_output_gradient)
    throw StateError("backward: expected dL/do from loss() or set_output_gradient() first, got none");
  // Every length is checked, and dL/dh_T (an input: finite, the policy of rnnbptt/core/error.hpp)
  // too, before anything is written.
  detail::check_span("params", params, {layout.total}, "num_parameters");
  detail::check_span("dparams", dparams, {layout.total}, "num_parameters");
  const Index n_ = ws.batch, h_ = config.hidden_size;
  if (detail::check_state("dh_T", options.dh_T, config, n_))
    detail::check_state_finite("dh_T", options.dh_T.data(), config, n_);
  if (detail::check_state("dh0", options.dh0, config, n_) && ws.has_resets && ws.resets_to_zero)
    invalid(
        "dh0: expected none after a forward whose resets restore zeros (resets_to_zero, a stream's chunk), "
        "got ",
        options.dh0.size(), " values: the rows reset there do not start from h0");
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
    invalid("record_dh_norms: expected Full, Randomized or Regular(k, k) truncation, got ", truncation.to_string(),
            " whose windows overlap (dL/dh_t differs per window)");

  if (!config.single_elman()) {
    detail::stack_backward(dparams.data(), ws, config, layout, params.data(), options);
    ws.has_dh_norms = options.record_dh_norms;
    ws.has_schedule = true;
    return;
  }
  (void)h_;
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
  // h_{t-1}^T: chunk by chunk from the last (overlap.hpp), overlapped with the recursion when
  // its steps are small and it runs in place. T x n x h was checked by the forward pass.
  // What the recursion needs is allocated here: it may run inside a parallel region.
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
  const auto inject_chunk = [&](Index chunk, int threads) {
    const Index t0 = std::max(P, chunks.begin(chunk)), t1 = chunks.stop(chunk);
    if (t1 > t0)
      detail::gemm(injected.middleRows(t0 * n, (t1 - t0) * n), dO.middleRows(t0 * n, (t1 - t0) * n), p.W_qh, false,
                   threads);
  };
  const auto dW_hh_chunk = [&](Index chunk, int threads) {
    const Index t0 = chunks.begin(chunk), len = chunks.stop(chunk) - t0;
    detail::gemm(dp.W_hh, dA.middleRows(t0 * n, len * n).transpose(), H.middleRows(t0 * n, len * n),
                 chunk != chunks.count() - 1, threads);
  };
  const auto output_weights = [&](int threads) {
    detail::gemm(dp.W_qh, dO_loss.transpose(), H.middleRows((P + 1) * n, rows), false, threads);
  };
  bool done = false;
  if (in_place && detail::overlap_products(chunks, h, q)) {
    detail::StepCounter injected_from(T), finished_from(T);
    const Overlap overlap{&injected_from, &finished_from};
    // The helper's share is W_qh^T g^o and dW_hh (q + h per h of the recurrence's work), this
    // thread's the recurrence and then dW_qh (h + q): with dW_qh on the helper too, the helper
    // had (2 q + h) / h of the recurrence's work and the recurrence's thread waited for it.
    done = detail::run_overlapped(
        [&] {
          backward_recursion(ws, config, p.W_hh.data(), in_place, options, &overlap);
          output_weights(1);
        },
        [&] {
          for (Index chunk = chunks.count() - 1; chunk >= 0; --chunk) {
            inject_chunk(chunk, 1);
            injected_from.publish(chunks.begin(chunk));
          }
          for (Index chunk = chunks.count() - 1; chunk >= 0; --chunk) {
            finished_from.wait([&](Index from) { return from <= chunks.begin(chunk); });
            dW_hh_chunk(chunk, 1);
          }
        },
        [&] {
          injected_from.publish(0);
          finished_from.publish(0);
        });
  }
  if (!done) {
    for (Index chunk = chunks.count() - 1; chunk >= 0; --chunk) inject_chunk(chunk, 0);
    output_weights(0);
    backward_recursion(ws, config, p.W_hh.data(), in_place, options);
    for (Index chunk = chunks.count() - 1; chunk >= 0; --chunk) dW_hh_chunk(chunk, 0);
  }
  // A row reset at step t read its reset state, not h_{t-1}: the product over H is corrected there.
  if (ws.has_resets)
    for (Index t = 0; t < T; ++t)
      for (Index r = 0; r < n; ++r)
        if (ws.resets[t * n + r] != 0)
          dp.W_hh.noalias() += dA.row(t * n + r).transpose() *
                               (ConstRowVectorMap<Scalar>(ws.reset_state.data() + r * h, h) - H.row(t * n + r));
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
