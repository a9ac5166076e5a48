// The recurrent layer alone, rnnbptt against oneDNN's RNN primitives, in one process.
//
//   layer --cell lstm --h 1024 --n 128 --T 100 --threads 2 --passes 5
//
// Both compute one layer of the cell (elman: tanh; gru: PyTorch's GRU, which is oneDNN's
// "linear before reset" GRU, lbr_gru; lstm: oneDNN's LSTM without peepholes) for a dense input
// x (T x n x h) from a zero state (forward training), then from a given dL/dh_t for every t
// (T x n x h) the backward pass: dW_hx, dW_hh, the biases, dL/dx and dL/dh_0 (and dL/dc_0)
// (oneDNN computes both input gradients; rnnbptt is asked for them).
// fp32, the same threads (OpenMP: both libraries use the same runtime).
//
// rnnbptt: a Model with d = h and an output layer of q = 1. Its dL/do (T x n x 1) times
// W_qh (1 x h) is the dL/dh_t seed given to oneDNN, so both run the same backward. The output
// layer's own cost is 6 T n h FLOPs against 12 T n h G h for the layer (G = 1, 3, 4 gate
// blocks; <= 0.4% here) and stays in the timing: nothing is subtracted.
//
// The two libraries' parameters differ in layout only:
//   - oneDNN's ldigo weights hold W^T per gate (element (i, g, o) is rnnbptt's row g h + o,
//     column i);
//   - oneDNN orders the GRU's gates u, r, c (PyTorch and rnnbptt: r, z, n, with u = z);
//   - oneDNN has one bias per gate where PyTorch has b_hx and b_hh: b_hx + b_hh, except the
//     lbr GRU's candidate, whose b_hn (inside r * (W_hn h + b_hn)) is oneDNN's fourth bias.
//
// oneDNN, set up as a training loop does it: the weights live in one plain layout (ldigo,
// updated by an optimizer between steps), so every step reorders them into the layouts the
// forward and backward primitives ask for ("any"), zeroes the weight gradients (the backward
// primitive adds into them) and reorders the gradients back to the plain layout when the
// backward primitive's layout differs. All of that is timed with the primitives ("step");
// the primitives alone are reported too ("primitives").
//
// Output: one JSON line with median seconds per call over interleaved passes (rnnbptt, then
// oneDNN, in every pass), and the largest differences between the two libraries' h_T and
// parameter gradients (a check that both compute the same thing).
#include <dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <Eigen/Core>

#include "rnnbptt/rnnbptt.hpp"
#include "timing.hpp"

namespace {

using bench::Clock;
using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

using bench::arg;
using bench::median;
using bench::seconds_since;

const char* variant() {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
  return "avx2";
#else
  return "baseline";
#endif
}

// oneDNN's gate index for rnnbptt's gate block b (PyTorch's order).
long onednn_gate(rnnbptt::Cell cell, long b) {
  static const long gru[] = {1, 0, 2};  // r, z, n -> u = z first, then r, then the candidate
  return cell == rnnbptt::Cell::gru ? gru[b] : b;
}

// rnnbptt's layer: forward, then backward from dL/do (q = 1), asking for dL/dx and dL/dh_0.
struct Ours {
  rnnbptt::Model<float> model;
  const std::vector<float>& x;
  const std::vector<float>& d_out;
  std::vector<float> dx, dh0;
  long T, n;

  Ours(rnnbptt::Cell cell, long h, long n_, long T_, const std::vector<float>& x_, const std::vector<float>& d_out_)
      : model(config(cell, h)),
        x(x_),
        d_out(d_out_),
        dx(static_cast<std::size_t>(T_ * n_ * h)),
        dh0(static_cast<std::size_t>(model.config().state_size(n_))),
        T(T_),
        n(n_) {
    model.init_uniform(1.0 / std::sqrt(static_cast<double>(h)), 0);
  }
  static rnnbptt::ModelConfig config(rnnbptt::Cell cell, long h) {
    rnnbptt::ModelConfig c;
    c.cell = cell;
    c.input_size = h;
    c.hidden_size = h;
    c.output_size = 1;
    c.activation = rnnbptt::Activation::tanh;
    c.bias = true;
    return c;
  }
  void forward() { model.forward(rnnbptt::SequenceInput<float>::from_dense(x, T, n)); }
  void backward() {
    model.set_output_gradient(d_out);
    rnnbptt::BackwardOptions<float> options;
    options.dx = dx;
    options.dh0 = dh0;
    model.backward(options);
  }
};

// oneDNN's layer with the same parameters, as a training loop keeps them.
struct Theirs {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  rnnbptt::Cell cell;
  long T, n, h, G, biases;
  // The plain (user) layouts: ldigo weights and their gradients, ldgo bias; the LSTM's c_0
  // and dL/dc_0 beside h_0 and dL/dh_0.
  memory x, y, dy, dx, h0, dh0, c0, dc0, w_layer, w_iter, bias, dw_layer, dw_iter, dbias;
  dnnl::rnn_primitive_desc_base fwd_pd, bwd_pd;
  dnnl::primitive fwd, bwd;
  memory workspace, fwd_w_layer, fwd_w_iter, bwd_w_layer, bwd_w_iter, bwd_dw_layer, bwd_dw_iter;
  double t_fwd_reorder = 0, t_fwd = 0, t_bwd_prep = 0, t_bwd = 0, t_bwd_back = 0;

  Theirs(rnnbptt::Cell cell_, long T_, long n_, long h_, std::vector<float>& x_data, std::vector<float>& dy_data,
         const rnnbptt::Model<float>& ours)
      : cell(cell_),
        T(T_),
        n(n_),
        h(h_),
        G(ours.config().gates()),
        biases(cell_ == rnnbptt::Cell::gru ? 4 : ours.config().gates()) {
    const memory::dims tnc{T, n, h}, ldnc{1, 1, n, h}, ldigo{1, 1, h, G, h}, ldgo{1, 1, biases, h};
    const memory::desc md_tnc(tnc, dt::f32, tag::tnc), md_ldnc(ldnc, dt::f32, tag::ldnc),
        md_w(ldigo, dt::f32, tag::ldigo), md_b(ldgo, dt::f32, tag::ldgo), md_w_any(ldigo, dt::f32, tag::any), none;
    x = memory(md_tnc, engine, x_data.data());
    dy = memory(md_tnc, engine, dy_data.data());
    y = memory(md_tnc, engine);
    dx = memory(md_tnc, engine);
    // h_0 = 0 (and c_0 = 0), given explicitly: with no src_iter, oneDNN 2.6.3's backward reads
    // a state the forward did not zero (its dW_hh is then wrong already at T = 1).
    h0 = memory(md_ldnc, engine);
    c0 = memory(md_ldnc, engine);
    std::memset(h0.get_data_handle(), 0, md_ldnc.get_size());
    std::memset(c0.get_data_handle(), 0, md_ldnc.get_size());
    dh0 = memory(md_ldnc, engine);
    dc0 = memory(md_ldnc, engine);
    w_layer = memory(md_w, engine);
    w_iter = memory(md_w, engine);
    bias = memory(md_b, engine);
    dw_layer = memory(md_w, engine);
    dw_iter = memory(md_w, engine);
    dbias = memory(md_b, engine);
    const auto& layout = ours.layout();
    const float* p = ours.parameters().data();
    auto* wl = static_cast<float*>(w_layer.get_data_handle());
    auto* wi = static_cast<float*>(w_iter.get_data_handle());
    for (long b = 0; b < G; ++b)
      for (long o = 0; o < h; ++o)
        for (long i = 0; i < h; ++i) {
          const long at = (i * G + onednn_gate(cell, b)) * h + o;
          wl[at] = p[layout.W_hx().offset + (b * h + o) * h + i];
          wi[at] = p[layout.W_hh().offset + (b * h + o) * h + i];
        }
    auto* bp = static_cast<float*>(bias.get_data_handle());
    for (long b = 0; b < G; ++b)
      for (long o = 0; o < h; ++o) {
        const float b_hx = p[layout.b_h().offset + b * h + o];
        const float b_hh = cell == rnnbptt::Cell::elman ? 0.0f : p[layout.b_hh().offset + b * h + o];
        if (cell == rnnbptt::Cell::gru && b == 2) {
          bp[2 * h + o] = b_hx;
          bp[3 * h + o] = b_hh;
        } else {
          bp[onednn_gate(cell, b) * h + o] = b_hx + b_hh;
        }
      }

    const auto direction = dnnl::rnn_direction::unidirectional_left2right;
    const auto forward = dnnl::prop_kind::forward_training;
    const auto backward = dnnl::prop_kind::backward;
    // oneDNN 3 takes the descriptors as constructor arguments (engine first, the forward hint
    // last); oneDNN 2 took an operation descriptor in braces, then the engine.
    if (cell == rnnbptt::Cell::elman) {
      const auto tanh = dnnl::algorithm::eltwise_tanh;
#if DNNL_VERSION_MAJOR >= 3
      dnnl::vanilla_rnn_forward::primitive_desc f(engine, forward, tanh, direction, md_tnc, md_ldnc, md_w_any, md_w_any,
                                                  md_b, md_tnc, none);
      dnnl::vanilla_rnn_backward::primitive_desc b(engine, backward, tanh, direction, md_tnc, md_ldnc, md_w_any,
                                                   md_w_any, md_b, md_tnc, none, md_tnc, md_ldnc, md_w_any, md_w_any,
                                                   md_b, md_tnc, none, f);
#else
      dnnl::vanilla_rnn_forward::primitive_desc f(
          {forward, tanh, direction, md_tnc, md_ldnc, md_w_any, md_w_any, md_b, md_tnc, none}, engine);
      dnnl::vanilla_rnn_backward::primitive_desc b(
          {backward, tanh, direction, md_tnc, md_ldnc, md_w_any, md_w_any, md_b, md_tnc, none, md_tnc, md_ldnc,
           md_w_any, md_w_any, md_b, md_tnc, none},
          engine, f);
#endif
      fwd_pd = f, bwd_pd = b, fwd = dnnl::vanilla_rnn_forward(f), bwd = dnnl::vanilla_rnn_backward(b);
    } else if (cell == rnnbptt::Cell::gru) {
#if DNNL_VERSION_MAJOR >= 3
      dnnl::lbr_gru_forward::primitive_desc f(engine, forward, direction, md_tnc, md_ldnc, md_w_any, md_w_any, md_b,
                                              md_tnc, none);
      dnnl::lbr_gru_backward::primitive_desc b(engine, backward, direction, md_tnc, md_ldnc, md_w_any, md_w_any, md_b,
                                               md_tnc, none, md_tnc, md_ldnc, md_w_any, md_w_any, md_b, md_tnc, none,
                                               f);
#else
      dnnl::lbr_gru_forward::primitive_desc f(
          {forward, direction, md_tnc, md_ldnc, md_w_any, md_w_any, md_b, md_tnc, none}, engine);
      dnnl::lbr_gru_backward::primitive_desc b({backward, direction, md_tnc, md_ldnc, md_w_any, md_w_any, md_b, md_tnc,
                                                none, md_tnc, md_ldnc, md_w_any, md_w_any, md_b, md_tnc, none},
                                               engine, f);
#endif
      fwd_pd = f, bwd_pd = b, fwd = dnnl::lbr_gru_forward(f), bwd = dnnl::lbr_gru_backward(b);
    } else {
#if DNNL_VERSION_MAJOR >= 3
      dnnl::lstm_forward::primitive_desc f(engine, forward, direction, md_tnc, md_ldnc, md_ldnc, md_w_any, md_w_any,
                                           md_b, md_tnc, none, none);
      dnnl::lstm_backward::primitive_desc b(engine, backward, direction, md_tnc, md_ldnc, md_ldnc, md_w_any, md_w_any,
                                            md_b, md_tnc, none, none, md_tnc, md_ldnc, md_ldnc, md_w_any, md_w_any,
                                            md_b, md_tnc, none, none, f);
#else
      dnnl::lstm_forward::primitive_desc f(
          {forward, direction, md_tnc, md_ldnc, md_ldnc, md_w_any, md_w_any, md_b, md_tnc, none, none}, engine);
      dnnl::lstm_backward::primitive_desc b(
          {backward, direction, md_tnc,  md_ldnc, md_ldnc,  md_w_any, md_w_any, md_b,   md_tnc, none,
           none,     md_tnc,    md_ldnc, md_ldnc, md_w_any, md_w_any, md_b,     md_tnc, none,   none},
          engine, f);
#endif
      fwd_pd = f, bwd_pd = b, fwd = dnnl::lstm_forward(f), bwd = dnnl::lstm_backward(b);
    }
    workspace = memory(fwd_pd.workspace_desc(), engine);
    fwd_w_layer = memory(fwd_pd.weights_layer_desc(), engine);
    fwd_w_iter = memory(fwd_pd.weights_iter_desc(), engine);
    bwd_w_layer = memory(bwd_pd.weights_layer_desc(), engine);
    bwd_w_iter = memory(bwd_pd.weights_iter_desc(), engine);
    bwd_dw_layer =
        bwd_pd.diff_weights_layer_desc() == md_w ? dw_layer : memory(bwd_pd.diff_weights_layer_desc(), engine);
    bwd_dw_iter = bwd_pd.diff_weights_iter_desc() == md_w ? dw_iter : memory(bwd_pd.diff_weights_iter_desc(), engine);
  }

  // True when the primitive wants a layout other than the plain one (a reorder per step).
  bool reorders(const memory& plain, const memory& wanted) const { return plain.get_desc() != wanted.get_desc(); }
  void copy(memory& from, memory& to) { dnnl::reorder(from, to).execute(stream, from, to); }
  std::string layouts() const {
    auto name = [](bool differs) { return differs ? "reordered" : "plain"; };
    return std::string("forward weights ") + name(reorders(w_layer, fwd_w_layer)) + "/" +
           name(reorders(w_iter, fwd_w_iter)) + ", backward weights " + name(reorders(w_layer, bwd_w_layer)) + "/" +
           name(reorders(w_iter, bwd_w_iter)) + ", weight gradients " + name(reorders(dw_layer, bwd_dw_layer)) + "/" +
           name(reorders(dw_iter, bwd_dw_iter));
  }

  void forward() {
    auto start = Clock::now();
    copy(w_layer, fwd_w_layer);
    copy(w_iter, fwd_w_iter);
    stream.wait();
    t_fwd_reorder = seconds_since(start);
    start = Clock::now();
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC_LAYER, x},
                                         {DNNL_ARG_SRC_ITER, h0},
                                         {DNNL_ARG_WEIGHTS_LAYER, fwd_w_layer},
                                         {DNNL_ARG_WEIGHTS_ITER, fwd_w_iter},
                                         {DNNL_ARG_BIAS, bias},
                                         {DNNL_ARG_DST_LAYER, y},
                                         {DNNL_ARG_WORKSPACE, workspace}};
    if (cell == rnnbptt::Cell::lstm) args[DNNL_ARG_SRC_ITER_C] = c0;
    fwd.execute(stream, args);
    stream.wait();
    t_fwd = seconds_since(start);
  }
  void backward() {
    auto start = Clock::now();
    copy(w_layer, bwd_w_layer);
    copy(w_iter, bwd_w_iter);
    stream.wait();
    // The backward primitive adds into the weight gradients: a training step zeroes them.
    for (memory* m : {&bwd_dw_layer, &bwd_dw_iter, &dbias})
      std::memset(m->get_data_handle(), 0, m->get_desc().get_size());
    t_bwd_prep = seconds_since(start);
    start = Clock::now();
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC_LAYER, x},
                                         {DNNL_ARG_SRC_ITER, h0},
                                         {DNNL_ARG_DIFF_SRC_ITER, dh0},
                                         {DNNL_ARG_WEIGHTS_LAYER, bwd_w_layer},
                                         {DNNL_ARG_WEIGHTS_ITER, bwd_w_iter},
                                         {DNNL_ARG_BIAS, bias},
                                         {DNNL_ARG_DST_LAYER, y},
                                         {DNNL_ARG_WORKSPACE, workspace},
                                         {DNNL_ARG_DIFF_DST_LAYER, dy},
                                         {DNNL_ARG_DIFF_SRC_LAYER, dx},
                                         {DNNL_ARG_DIFF_WEIGHTS_LAYER, bwd_dw_layer},
                                         {DNNL_ARG_DIFF_WEIGHTS_ITER, bwd_dw_iter},
                                         {DNNL_ARG_DIFF_BIAS, dbias}};
    if (cell == rnnbptt::Cell::lstm) {
      args[DNNL_ARG_SRC_ITER_C] = c0;
      args[DNNL_ARG_DIFF_SRC_ITER_C] = dc0;
    }
    bwd.execute(stream, args);
    stream.wait();
    t_bwd = seconds_since(start);
    start = Clock::now();
    if (bwd_dw_layer.get(true) != dw_layer.get(true)) copy(bwd_dw_layer, dw_layer);
    if (bwd_dw_iter.get(true) != dw_iter.get(true)) copy(bwd_dw_iter, dw_iter);
    stream.wait();
    t_bwd_back = seconds_since(start);
  }
};

double max_abs_diff(const float* a, const float* b, long count) {
  double diff = 0;
  for (long i = 0; i < count; ++i) diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
  return diff;
}

}  // namespace

int main(int argc, char** argv) {
  const long h = arg(argc, argv, "--h", 256), n = arg(argc, argv, "--n", 32), T = arg(argc, argv, "--T", 35);
  const int threads = static_cast<int>(arg(argc, argv, "--threads", 2));
  const int passes = static_cast<int>(arg(argc, argv, "--passes", 5));
  const char* cell_name = bench::text_arg(argc, argv, "--cell", "elman");
  rnnbptt::Cell cell;
  try {
    cell = rnnbptt::cell_from_string(cell_name);
  } catch (const rnnbptt::Error& e) {
    std::fprintf(stderr, "layer: %s\n", e.what());
    return 2;
  }
  const double min_pass = 0.25;  // seconds of work per library per pass, at least one call
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
  rnnbptt::set_num_threads(threads);

  std::mt19937_64 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(T * n * h)), d_out(static_cast<std::size_t>(T * n));
  for (float& v : x) v = uniform(rng);
  for (float& v : d_out) v = uniform(rng) / static_cast<float>(T * n);

  Ours ours(cell, h, n, T, x, d_out);
  // oneDNN's dL/dh_t = dL/do_t W_qh, what rnnbptt's output layer (q = 1) feeds its recurrence.
  std::vector<float> dy(static_cast<std::size_t>(T * n * h));
  const float* W_qh = ours.model.parameters().data() + ours.model.layout().W_qh().offset;
  for (long r = 0; r < T * n; ++r)
    for (long j = 0; j < h; ++j) dy[r * h + j] = d_out[r] * W_qh[j];
  Theirs theirs(cell, T, n, h, x, dy, ours.model);
  const long G = theirs.G;

  // Warm-up (sizes every buffer), and the check that both compute the same layer.
  ours.forward();
  ours.backward();
  theirs.forward();
  theirs.backward();
  const float* y_last = static_cast<const float*>(theirs.y.get_data_handle()) + (T - 1) * n * h;
  const double state_diff = max_abs_diff(ours.model.final_state().data(), y_last, n * h);
  double state_max = 0;
  for (long i = 0; i < n * h; ++i) state_max = std::max(state_max, std::fabs(static_cast<double>(y_last[i])));
  double grad_diff = 0, grad_max = 0, bias_diff = 0;
  const auto& layout = ours.model.layout();
  const float* g = ours.model.gradients().data();
  const float* dwl = static_cast<const float*>(theirs.dw_layer.get_data_handle());
  const float* dwi = static_cast<const float*>(theirs.dw_iter.get_data_handle());
  const float* db = static_cast<const float*>(theirs.dbias.get_data_handle());
  for (long b = 0; b < G; ++b) {
    const long gate = onednn_gate(cell, b);
    for (long o = 0; o < h; ++o) {
      for (long i = 0; i < h; ++i) {
        const long at = (i * G + gate) * h + o;
        grad_diff = std::max({grad_diff,
                              std::fabs(static_cast<double>(g[layout.W_hx().offset + (b * h + o) * h + i]) - dwl[at]),
                              std::fabs(static_cast<double>(g[layout.W_hh().offset + (b * h + o) * h + i]) - dwi[at])});
        grad_max =
            std::max({grad_max, std::fabs(static_cast<double>(dwl[at])), std::fabs(static_cast<double>(dwi[at]))});
      }
      // oneDNN's one bias per gate against b_hx; the lbr GRU's b_hn against b_hh.
      bias_diff =
          std::max(bias_diff, std::fabs(static_cast<double>(g[layout.b_h().offset + b * h + o]) - db[gate * h + o]));
      if (cell == rnnbptt::Cell::gru && b == 2)
        bias_diff =
            std::max(bias_diff, std::fabs(static_cast<double>(g[layout.b_hh().offset + b * h + o]) - db[3 * h + o]));
    }
  }
  const double dx_diff =
      max_abs_diff(ours.dx.data(), static_cast<const float*>(theirs.dx.get_data_handle()), T * n * h);
  double dh0_diff = max_abs_diff(ours.dh0.data(), static_cast<const float*>(theirs.dh0.get_data_handle()), n * h);
  if (cell == rnnbptt::Cell::lstm)
    dh0_diff = std::max(dh0_diff, max_abs_diff(ours.dh0.data() + n * h,
                                               static_cast<const float*>(theirs.dc0.get_data_handle()), n * h));

  // Calls per pass: enough for min_pass seconds of the slower library.
  auto start = Clock::now();
  ours.forward();
  ours.backward();
  const double once = seconds_since(start);
  const int repeat = std::max(1, static_cast<int>(min_pass / std::max(once, 1e-6)));

  std::vector<double> o_fwd, o_bwd, o_step, t_fwd, t_bwd, t_step, t_prim;
  for (int pass = 0; pass < passes; ++pass) {
    double f = 0, b = 0;
    for (int r = 0; r < repeat; ++r) {
      auto s = Clock::now();
      ours.forward();
      f += seconds_since(s);
      s = Clock::now();
      ours.backward();
      b += seconds_since(s);
    }
    o_fwd.push_back(f / repeat);
    o_bwd.push_back(b / repeat);
    o_step.push_back((f + b) / repeat);
    double tf = 0, tb = 0, tp = 0;
    for (int r = 0; r < repeat; ++r) {
      theirs.forward();
      theirs.backward();
      tf += theirs.t_fwd_reorder + theirs.t_fwd;
      tb += theirs.t_bwd_prep + theirs.t_bwd + theirs.t_bwd_back;
      tp += theirs.t_fwd + theirs.t_bwd;
    }
    t_fwd.push_back(tf / repeat);
    t_bwd.push_back(tb / repeat);
    t_step.push_back((tf + tb) / repeat);
    t_prim.push_back(tp / repeat);
  }
  // Executed by both (+ O(T n G h)): forward x W_hx^T and h W_hh^T, backward dL/dx, dL/dh_{t-1},
  // dW_hx and dW_hh, each 2 T n h G h.
  const double flops = 12.0 * T * n * static_cast<double>(h) * G * h;
  std::printf(
      "{\"cell\": \"%s\", \"h\": %ld, \"n\": %ld, \"T\": %ld, \"threads\": %d, \"passes\": %d, \"repeat\": %d, "
      "\"variant\": \"%s\", \"eigen_simd\": \"%s\", \"onednn\": \"%d.%d.%d\", \"onednn_layouts\": \"%s\", "
      "\"flops\": %.6g, \"rnnbptt\": {\"forward\": %.6g, \"backward\": %.6g, \"step\": %.6g}, "
      "\"onednn_step\": {\"forward\": %.6g, \"backward\": %.6g, \"step\": %.6g}, \"onednn_primitives\": %.6g, "
      "\"check\": {\"h_T_max_abs_diff\": %.3g, \"h_T_max_abs\": %.3g, \"dW_max_abs_diff\": %.3g, \"dW_max_abs\": %.3g, "
      "\"db_max_abs_diff\": %.3g, \"dx_max_abs_diff\": %.3g, \"dh0_max_abs_diff\": %.3g}}\n",
      cell_name, h, n, T, threads, passes, repeat, variant(), Eigen::SimdInstructionSetsInUse(), dnnl::version()->major,
      dnnl::version()->minor, dnnl::version()->patch, theirs.layouts().c_str(), flops, median(o_fwd), median(o_bwd),
      median(o_step), median(t_fwd), median(t_bwd), median(t_step), median(t_prim), state_diff, state_max, grad_diff,
      grad_max, bias_diff, dx_diff, dh0_diff);
  return 0;
}
