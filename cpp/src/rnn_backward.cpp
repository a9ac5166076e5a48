// BPTT (DESIGN.md section 2). The recurrence
//   g^h_t = W_qh^T g^o_t + c_{t+1} W_hh^T g^a_{t+1},   g^a_t = phi'(a_t) * g^h_t
// is the only sequential part; the weight gradients are one GEMM each over all T*n rows.
// Rows here are samples, so W_hh^T g becomes g W_hh.
#include <algorithm>
#include <cmath>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "gemm.hpp"
#include "recurrence.hpp"
#include "rnnbptt/error.hpp"
#include "rnnbptt/rnn.hpp"
#include "rnnbptt/threads.hpp"

namespace rnnbptt {

using detail::invalid;

namespace {

// Full, Randomized and Regular(k, k): one pass, g^a overwriting W_qh^T g^o in ws.dA.
template <class Scalar>
void recur_scaled(Workspace<Scalar>& ws, const ModelConfig& config, const MatrixMap<Scalar>& W_hh,
                  const Truncation& truncation, const BackwardOptions<Scalar>& options) {
  const Index T = ws.steps, n = ws.batch, h = config.hidden_size;
  MatrixMap<Scalar> dA(ws.dA.data(), T * n, h);
  Scalar* c = ws.flow.data();  // c[t - 1] = c_t, the flow from step t into h_{t-1}
  fill_flow_scales(truncation, options.step_offset, T, c);

  // g^h_t = (W_qh^T g^o_t) + c_{t+1} g^a_{t+1} W_hh, then g^a_t = phi'(a_t) * g^h_t, each
  // thread on its own band of hidden units.
  const int threads = detail::recurrence_threads<Scalar>(n, h, h);
  // ||dL/dh_t||^2 in pieces per panel of the fixed column grid (not per thread), summed in
  // panel order: the same value for any thread count.
  constexpr Index panel = detail::Simd<Scalar>::panel;
  const Index panels = (h + panel - 1) / panel;
  if (options.record_dh_norms && ws.norm_parts.size() < static_cast<std::size_t>(T * panels))
    ws.norm_parts.resize(T * panels);
  Scalar* g_data = ws.dA.data();
  const Scalar* W = W_hh.data();
  detail::run_recurrence<Scalar>(threads, h, T, T, -1, [&](Index t, Index begin, Index end, int) {
    auto g = dA.block((t - 1) * n, begin, n, end - begin);
    if (t == T) {
      if (options.dh_T != nullptr) g += ConstMatrixMap<Scalar>(options.dh_T, n, h).middleCols(begin, end - begin);
    } else if (c[t] != Scalar(0)) {
      detail::gemm_columns(n, h, g_data + t * n * h, h, W, h, g_data + (t - 1) * n * h, h, begin, end, c[t]);
    }
    if (options.record_dh_norms)
      for (Index j = begin; j < end; j += panel)
        ws.norm_parts[(t - 1) * panels + j / panel] =
            dA.block((t - 1) * n, j, n, std::min(panel, end - j)).template cast<double>().squaredNorm();
    detail::derivative_band(config.activation, g_data + (t - 1) * n * h, ws.H.data() + t * n * h, n, h, begin, end);
  });
  if (options.record_dh_norms)
    for (Index t = 0; t < T; ++t) {
      double sum = 0.0;
      for (Index i = 0; i < panels; ++i) sum += ws.norm_parts[t * panels + i];
      ws.dh_norms[t] = static_cast<Scalar>(std::sqrt(sum));
    }
  if (options.dh0 != nullptr) {  // dL/dh_0 = c_1 g^a_1 W_hh
    MatrixMap<Scalar>(options.dh0, n, h).setZero();
    if (c[0] != Scalar(0)) detail::gemm_columns(n, h, g_data, h, W, h, options.dh0, h, Index(0), h, c[0]);
  }
  ws.segments.clear();
  Index begin = 0;
  for (Index t = 1; t < T; ++t)
    if (c[t] == Scalar(0)) {
      ws.segments.push_back({begin, t});
      begin = t;
    }
  ws.segments.push_back({begin, T});
}

// Regular(k1, k2), k1 < k2: every block of k1 steps injects its losses and runs back k2 steps,
// so windows overlap; their g^a add up in ws.dA (the weight gradients are linear in g^a).
template <class Scalar>
void recur_windows(Workspace<Scalar>& ws, const ModelConfig& config, const MatrixMap<Scalar>& W_hh,
                   const Truncation& truncation, const BackwardOptions<Scalar>& options) {
  const Index T = ws.steps, n = ws.batch, h = config.hidden_size, P = ws.context_steps;
  const Index k1 = truncation.k1, reach = truncation.k2 - k1;
  MatrixMap<Scalar> dA(ws.dA.data(), T * n, h);
  MatrixMap<Scalar> dH(ws.dH.data(), T * n, h);
  const Scalar* W = W_hh.data();
  dA.setZero();
  if (options.dh0 != nullptr) MatrixMap<Scalar>(options.dh0, n, h).setZero();
  std::fill(ws.flow.begin(), ws.flow.begin() + T, Scalar(0));
  ws.segments.clear();

  // Blocks end where the global step index is a multiple of k1, so that a stream cut into
  // chunks (multiples of k1) sees the same blocks as the unchunked sequence. A window reaches
  // `reach` steps before its block's first step; losses are injected from `start` on (steps
  // of history carry none).
  for (Index start = P + 1; start <= T;) {
    const Index phase = static_cast<Index>((options.step_offset + start - 1) % k1);
    const Index block_begin = start - phase;
    const Index end = std::min(block_begin + k1 - 1, T);
    const Index reach_start = block_begin - reach;  // may lie before step 1
    const Index first = std::max<Index>(1, reach_start);
    // g^a of the step just done and of the current one; the same kernel and the same order of
    // operations as the one-pass recurrence, so one window reaching the start equals Full.
    Scalar* next = ws.carry.data();
    Scalar* current = ws.scratch.data();
    for (Index t = end; t >= first; --t) {
      MatrixMap<Scalar> g(current, n, h);
      if (t >= start)
        g = dH.middleRows((t - 1) * n, n);
      else
        g.setZero();
      if (t == end) {
        if (end == T && options.dh_T != nullptr) g += ConstMatrixMap<Scalar>(options.dh_T, n, h);
      } else {
        detail::gemm_columns(n, h, next, h, W, h, current, h, Index(0), h);
        ws.flow[t] += Scalar(1);
      }
      detail::derivative_band(config.activation, current, ws.H.data() + t * n * h, n, h, Index(0), h);
      dA.middleRows((t - 1) * n, n) += g;
      if (t == first && reach_start <= 1 && options.dh0 != nullptr) {
        detail::gemm_columns(n, h, current, h, W, h, options.dh0, h, Index(0), h);
        ws.flow[0] += Scalar(1);
      }
      std::swap(next, current);
    }
    ws.segments.push_back({first - 1, end});
    start = end + 1;
  }
}

}  // namespace

template <class Scalar>
void rnn_backward(Scalar* dparams, Workspace<Scalar>& ws, const ModelConfig& config,
                  const ParameterLayout& layout, const Scalar* params,
                  const BackwardOptions<Scalar>& options) {
  if (!ws.has_forward) invalid("backward: expected a forward pass first, got none");
  if (!ws.has_output_gradient)
    invalid("backward: expected dL/do from loss() or set_output_gradient() first, got none");
  static const Truncation full = Truncation::full();
  const Truncation& truncation = options.truncation != nullptr ? *options.truncation : full;
  truncation.validate();
  const bool windows = truncation.overlapping_windows();
  if (ws.context_steps > 0 && truncation.kind != Truncation::Kind::regular)
    invalid("backward: history steps are only meaningful for Regular truncation");
  if (options.record_dh_norms && windows)
    invalid("record_dh_norms: expected Full, Randomized or Regular(k, k) truncation, got "
            "Regular(", truncation.k1, ", ", truncation.k2,
            ") whose windows overlap (dL/dh_t differs per window)");
  const SequenceInput<Scalar>& x = ws.input;
  if (options.dx != nullptr && x.is_tokens())
    invalid("dx: expected dense input, got token ids (the gradient wrt ids does not exist)");

  const Index T = ws.steps, n = ws.batch, P = ws.context_steps;
  const Index d = config.input_size, h = config.hidden_size, q = config.output_size;
  const Index rows = (T - P) * n;
  ParameterViews<Scalar> p(const_cast<Scalar*>(params), layout);  // read only
  ParameterViews<Scalar> dp(dparams, layout);
  MatrixMap<Scalar> H(ws.H.data(), (T + 1) * n, h);
  MatrixMap<Scalar> dO(ws.dO.data(), T * n, q);
  MatrixMap<Scalar> dA(ws.dA.data(), T * n, h);

  // Output layer: dW_qh = sum_t g^o_t h_t^T, db_q = sum_t g^o_t.
  const auto dO_loss = dO.middleRows(P * n, rows);
  detail::gemm(dp.W_qh, dO_loss.transpose(), H.middleRows((P + 1) * n, rows));
  if (config.bias) dp.b_q = dO_loss.colwise().sum();

  // W_qh^T g^o_t for every step at once; the recurrence then adds the flow from t + 1.
  if (windows && ws.dH.size() < static_cast<std::size_t>(T * n * h)) ws.dH.resize(T * n * h);
  MatrixMap<Scalar> injected(windows ? ws.dH.data() : ws.dA.data(), T * n, h);
  injected.topRows(P * n).setZero();
  detail::gemm(injected.middleRows(P * n, rows), dO_loss, p.W_qh);
  if (windows)
    recur_windows(ws, config, p.W_hh, truncation, options);
  else
    recur_scaled(ws, config, p.W_hh, truncation, options);
  ws.has_dh_norms = options.record_dh_norms;

  // Recurrent layer: dW_hh = sum_t g^a_t h_{t-1}^T, db_h = sum_t g^a_t, dW_hx = sum_t g^a_t x_t^T.
  detail::gemm(dp.W_hh, dA.transpose(), H.topRows(T * n));
  if (config.bias) dp.b_h = dA.colwise().sum();
  if (x.is_tokens()) {
    // Scatter-add g^a rows into rows id of dW_hx^T; each thread owns a band of hidden units,
    // so the sum order (and the result) does not depend on the thread count.
    MatrixMap<Scalar> dW_hx_T(ws.dW_hx_T.data(), d, h);
    dW_hx_T.setZero();
    const IdView ids = x.tokens;
#pragma omp parallel num_threads(get_num_threads()) if (T * n * h > 65536)
    {
#ifdef _OPENMP
      const Index threads = omp_get_num_threads(), thread = omp_get_thread_num();
#else
      const Index threads = 1, thread = 0;
#endif
      const Index band = (h + threads - 1) / threads;
      const Index lo = std::min(h, thread * band), width = std::min(h, lo + band) - lo;
      if (width > 0)
        for (Index r = 0; r < T * n; ++r)
          dW_hx_T.row(ids[r]).segment(lo, width) += dA.row(r).segment(lo, width);
    }
    dp.W_hx = dW_hx_T.transpose();
  } else {
    ConstMatrixMap<Scalar> X(x.dense, T * n, d);
    detail::gemm(dp.W_hx, dA.transpose(), X);
    if (options.dx != nullptr) detail::gemm(MatrixMap<Scalar>(options.dx, T * n, d), dA, p.W_hx);
  }
}

template void rnn_backward<float>(float*, Workspace<float>&, const ModelConfig&,
                                  const ParameterLayout&, const float*,
                                  const BackwardOptions<float>&);
template void rnn_backward<double>(double*, Workspace<double>&, const ModelConfig&,
                                   const ParameterLayout&, const double*,
                                   const BackwardOptions<double>&);

}  // namespace rnnbptt
