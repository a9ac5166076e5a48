// Shared by the GoogleTest suite (tests/cpp/test_*.cpp): deterministic problems, an
// independent double-precision reference of the model's maths (docs/design.md sections 2 and 3,
// written from the equations as python/rnnbptt/reference.py is), and comparisons.
//
// The reference is the oracle: it shares no code with the library (plain loops over
// std::vector, column-vector maths as the design notes write it).
#pragma once

#include <gtest/gtest.h>

#include <rnnbptt/rnnbptt.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

namespace support {

using rnnbptt::Index;

/// A deterministic generator of our own (splitmix64), so that every platform draws the same
/// problems.
class Draw {
 public:
  explicit Draw(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Uniform in [0, bound).
  std::int64_t below(std::int64_t bound) {
    return static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(bound));
  }

 private:
  std::uint64_t state_;
};

inline rnnbptt::ModelConfig config_of(Index d, Index h, Index q,
                                      rnnbptt::Activation activation = rnnbptt::Activation::tanh, bool bias = true) {
  rnnbptt::ModelConfig config;
  config.input_size = d;
  config.hidden_size = h;
  config.output_size = q;
  config.activation = activation;
  config.bias = bias;
  return config;
}

enum class InputKind { dense, int32, int64 };

inline const char* name_of(InputKind kind) {
  return kind == InputKind::dense ? "dense" : kind == InputKind::int32 ? "int32" : "int64";
}

/// A model's configuration and one batch: inputs of every kind, targets of both losses,
/// weights (with zeros), h0 and dh_T, all time-major. Views of steps [first, first + steps)
/// are what a window or a chunk needs.
template <class Scalar>
struct Problem {
  rnnbptt::ModelConfig config;
  Index T = 0, n = 0;
  InputKind input = InputKind::int64;
  rnnbptt::LossKind loss = rnnbptt::LossKind::cross_entropy;
  bool weighted = false;
  std::vector<Scalar> params;           // num_parameters
  std::vector<Scalar> dense;            // T x n x d
  std::vector<std::int64_t> ids64;      // T x n
  std::vector<std::int32_t> ids32;      // T x n (the same ids)
  std::vector<std::int64_t> classes64;  // T x n
  std::vector<std::int32_t> classes32;  // T x n
  std::vector<Scalar> dense_targets;    // T x n x q
  std::vector<Scalar> weights;          // T x n, some zero (empty when not weighted)
  std::vector<Scalar> h0;               // n x h
  std::vector<Scalar> dh_T;             // n x h

  Index d() const { return config.input_size; }
  Index h() const { return config.hidden_size; }
  Index q() const { return config.output_size; }

  rnnbptt::SequenceInput<Scalar> x(Index first, Index steps) const { return x_from(dense, first, steps); }
  /// The same view over other dense values (a perturbed copy).
  rnnbptt::SequenceInput<Scalar> x_from(const std::vector<Scalar>& values, Index first, Index steps) const {
    using In = rnnbptt::SequenceInput<Scalar>;
    switch (input) {
      case InputKind::dense:
        return In::from_dense(rnnbptt::Span<const Scalar>(values.data() + first * n * d(), steps * n * d()), steps, n);
      case InputKind::int32:
        return In::from_tokens(rnnbptt::Span<const std::int32_t>(ids32.data() + first * n, steps * n), steps, n);
      case InputKind::int64:
        break;
    }
    return In::from_tokens(rnnbptt::Span<const std::int64_t>(ids64.data() + first * n, steps * n), steps, n);
  }
  rnnbptt::SequenceInput<Scalar> x() const { return x(0, T); }

  /// Targets of steps [first, first + steps) with these weights (steps x n, or empty).
  rnnbptt::Targets<Scalar> y(Index first, Index steps, rnnbptt::Span<const Scalar> w) const {
    using Y = rnnbptt::Targets<Scalar>;
    if (loss == rnnbptt::LossKind::squared_error)
      return Y::from_dense(rnnbptt::Span<const Scalar>(dense_targets.data() + first * n * q(), steps * n * q()), w);
    if (input == InputKind::int32)
      return Y::from_classes(rnnbptt::Span<const std::int32_t>(classes32.data() + first * n, steps * n), w);
    return Y::from_classes(rnnbptt::Span<const std::int64_t>(classes64.data() + first * n, steps * n), w);
  }
  rnnbptt::Targets<Scalar> y() const { return y(0, T, weights); }
  /// The weight of position r (1 when unweighted).
  double weight(Index r) const { return weighted ? static_cast<double>(weights[r]) : 1.0; }
};

/// A problem drawn from `seed`: parameters U(-scale, scale), inputs N-ish, ids uniform.
template <class Scalar>
Problem<Scalar> make_problem(const rnnbptt::ModelConfig& config, Index T, Index n, InputKind input,
                             rnnbptt::LossKind loss, bool weighted, std::uint64_t seed, double scale = 0.6) {
  Problem<Scalar> p;
  p.config = config;
  p.T = T;
  p.n = n;
  p.input = input;
  p.loss = loss;
  p.weighted = weighted;
  Draw draw(seed);
  const Index d = config.input_size, h = config.hidden_size, q = config.output_size;
  p.params.resize(rnnbptt::ParameterLayout(config).total);
  for (Scalar& v : p.params) v = static_cast<Scalar>(draw.uniform(-scale, scale));
  p.dense.resize(T * n * d);
  for (Scalar& v : p.dense) v = static_cast<Scalar>(draw.uniform(-1.5, 1.5));
  p.ids64.resize(T * n);
  p.classes64.resize(T * n);
  for (Index i = 0; i < T * n; ++i) {
    p.ids64[i] = draw.below(d);
    p.classes64[i] = draw.below(q);
  }
  p.ids32.assign(p.ids64.begin(), p.ids64.end());
  p.classes32.assign(p.classes64.begin(), p.classes64.end());
  p.dense_targets.resize(T * n * q);
  for (Scalar& v : p.dense_targets) v = static_cast<Scalar>(draw.uniform(-1.0, 1.0));
  if (weighted) {
    p.weights.resize(T * n);
    for (Index i = 0; i < T * n; ++i)
      p.weights[i] = static_cast<Scalar>(draw.uniform(0.0, 1.0) < 0.25 ? 0.0 : draw.uniform(0.2, 2.0));
    p.weights[0] = Scalar(1);
  }
  p.h0.resize(n * h);
  for (Scalar& v : p.h0) v = static_cast<Scalar>(draw.uniform(-0.8, 0.8));
  p.dh_T.resize(n * h);
  for (Scalar& v : p.dh_T) v = static_cast<Scalar>(draw.uniform(-0.5, 0.5));
  return p;
}

// ---- The reference: docs/design.md sections 2 and 3, in double, column vectors ----------

/// The states, pre-activations and outputs of a forward pass; hs[t] = h_t (t = 0..T), each
/// n x h row-major (row b = sequence b), as = a_t (t = 1..T at index t - 1), os likewise.
struct ReferenceForward {
  std::vector<std::vector<double>> hs, as, os;
};

struct ReferenceParams {
  Index d, h, q;
  std::vector<double> W_hx, W_hh, b_h, W_qh, b_q;  // row-major h x d, h x h, h, q x h, q

  template <class Scalar>
  ReferenceParams(const rnnbptt::ModelConfig& config, const std::vector<Scalar>& flat)
      : d(config.input_size), h(config.hidden_size), q(config.output_size) {
    // The layout of rnnbptt/core/params.hpp: W_hx, W_hh, b_h, W_qh, b_q, one after another.
    std::size_t at = 0;
    auto take = [&](std::vector<double>& out, Index count) {
      out.assign(flat.begin() + at, flat.begin() + at + count);
      at += static_cast<std::size_t>(count);
    };
    take(W_hx, h * d);
    take(W_hh, h * h);
    take(b_h, config.bias ? h : 0);
    take(W_qh, q * h);
    take(b_q, config.bias ? q : 0);
    if (!config.bias) {
      b_h.assign(h, 0.0);
      b_q.assign(q, 0.0);
    }
  }
};

inline double phi(rnnbptt::Activation a, double v) {
  switch (a) {
    case rnnbptt::Activation::tanh:
      return std::tanh(v);
    case rnnbptt::Activation::relu:
      return v > 0 ? v : 0.0;
    case rnnbptt::Activation::identity:
      break;
  }
  return v;
}

/// phi'(a), read off h = phi(a) as the design notes do.
inline double dphi(rnnbptt::Activation a, double h) {
  switch (a) {
    case rnnbptt::Activation::tanh:
      return 1.0 - h * h;
    case rnnbptt::Activation::relu:
      return h > 0 ? 1.0 : 0.0;
    case rnnbptt::Activation::identity:
      break;
  }
  return 1.0;
}

/// x_t[b][j]: the dense value or the one-hot of the token.
template <class Scalar>
double input_at(const Problem<Scalar>& p, const std::vector<Scalar>& dense, Index t, Index b, Index j) {
  if (p.input == InputKind::dense) return static_cast<double>(dense[(t * p.n + b) * p.d() + j]);
  return p.ids64[t * p.n + b] == j ? 1.0 : 0.0;
}

template <class Scalar>
ReferenceForward reference_forward(const Problem<Scalar>& p, const std::vector<Scalar>& params,
                                   const std::vector<Scalar>* h0) {
  const ReferenceParams w(p.config, params);
  const Index n = p.n, d = w.d, h = w.h, q = w.q;
  ReferenceForward f;
  f.hs.assign(1, std::vector<double>(n * h, 0.0));
  if (h0 != nullptr)
    for (Index i = 0; i < n * h; ++i) f.hs[0][i] = static_cast<double>((*h0)[i]);
  for (Index t = 0; t < p.T; ++t) {
    std::vector<double> a(n * h), hn(n * h), o(n * q);
    for (Index b = 0; b < n; ++b)
      for (Index i = 0; i < h; ++i) {
        double s = w.b_h[i];
        for (Index j = 0; j < d; ++j) s += w.W_hx[i * d + j] * input_at(p, p.dense, t, b, j);
        for (Index j = 0; j < h; ++j) s += w.W_hh[i * h + j] * f.hs.back()[b * h + j];
        a[b * h + i] = s;
        hn[b * h + i] = phi(p.config.activation, s);
      }
    for (Index b = 0; b < n; ++b)
      for (Index k = 0; k < q; ++k) {
        double s = w.b_q[k];
        for (Index i = 0; i < h; ++i) s += w.W_qh[k * h + i] * hn[b * h + i];
        o[b * q + k] = s;
      }
    f.as.push_back(a);
    f.hs.push_back(hn);
    f.os.push_back(o);
  }
  return f;
}

/// The smallest |a_t| over every step, sequence and unit: how far relu stays from its kink.
inline double kink_margin(const ReferenceForward& f) {
  double margin = INFINITY;
  for (const auto& a : f.as)
    for (double v : a) margin = std::min(margin, std::fabs(v));
  return margin;
}

/// L and dL/do_t (T vectors of n x q) of the reference outputs.
template <class Scalar>
double reference_loss(const Problem<Scalar>& p, const ReferenceForward& f, std::vector<std::vector<double>>* dos) {
  const Index n = p.n, q = p.q();
  double total_weight = 0.0, loss = 0.0;
  for (Index r = 0; r < p.T * n; ++r) total_weight += p.weight(r);
  if (dos) dos->assign(p.T, std::vector<double>(n * q, 0.0));
  for (Index t = 0; t < p.T; ++t)
    for (Index b = 0; b < n; ++b) {
      const double w = p.weight(t * n + b);
      const double* o = f.os[t].data() + b * q;
      double* g = dos ? (*dos)[t].data() + b * q : nullptr;
      if (p.loss == rnnbptt::LossKind::cross_entropy) {
        const Index c = p.classes64[t * n + b];
        double top = o[0];
        for (Index k = 1; k < q; ++k) top = std::max(top, o[k]);
        double z = 0.0;
        for (Index k = 0; k < q; ++k) z += std::exp(o[k] - top);
        loss += w * (std::log(z) + top - o[c]);
        if (g)
          for (Index k = 0; k < q; ++k) g[k] = w * (std::exp(o[k] - top) / z - (k == c ? 1.0 : 0.0)) / total_weight;
      } else {
        const double* y = nullptr;
        std::vector<double> yy(q);
        for (Index k = 0; k < q; ++k) yy[k] = static_cast<double>(p.dense_targets[(t * n + b) * q + k]);
        y = yy.data();
        for (Index k = 0; k < q; ++k) {
          loss += 0.5 * w * (o[k] - y[k]) * (o[k] - y[k]);
          if (g) g[k] = w * (o[k] - y[k]) / total_weight;
        }
      }
    }
  return loss / total_weight;
}

/// The gradients of a backward pass: parameters in the library's flat layout, dL/dh_0 (n x h)
/// and dL/dx (T x n x d, dense input).
struct ReferenceGradients {
  std::vector<double> params, dh0, dx;
};

/// The backward recursion of docs/design.md section 3 with truncation factors `flow`
/// (xi_1..xi_T at index 0..T-1; a window cut where xi = 0):
///   dL/dh_t = W_qh^T dL/do_t + xi_{t+1} W_hh^T dL/da_{t+1},   dL/da_t = phi'(a_t) dL/dh_t
template <class Scalar>
ReferenceGradients reference_backward(const Problem<Scalar>& p, const std::vector<Scalar>& params,
                                      const ReferenceForward& f, const std::vector<std::vector<double>>& dos,
                                      const std::vector<double>& flow, const std::vector<Scalar>* dh_T) {
  const ReferenceParams w(p.config, params);
  const Index n = p.n, d = w.d, h = w.h, q = w.q, T = p.T;
  std::vector<double> dW_hx(h * d, 0.0), dW_hh(h * h, 0.0), db_h(h, 0.0), dW_qh(q * h, 0.0), db_q(q, 0.0);
  ReferenceGradients out;
  out.dx.assign(T * n * d, 0.0);
  std::vector<double> da_next(n * h, 0.0);
  for (Index t = T - 1; t >= 0; --t) {
    std::vector<double> da(n * h);
    for (Index b = 0; b < n; ++b)
      for (Index i = 0; i < h; ++i) {
        double dh = 0.0;
        for (Index k = 0; k < q; ++k) dh += w.W_qh[k * h + i] * dos[t][b * q + k];
        if (t == T - 1) {
          if (dh_T) dh += static_cast<double>((*dh_T)[b * h + i]);
        } else {
          for (Index j = 0; j < h; ++j) dh += flow[t + 1] * w.W_hh[j * h + i] * da_next[b * h + j];
        }
        da[b * h + i] = dphi(p.config.activation, f.hs[t + 1][b * h + i]) * dh;
      }
    for (Index b = 0; b < n; ++b) {
      for (Index k = 0; k < q; ++k) {
        for (Index i = 0; i < h; ++i) dW_qh[k * h + i] += dos[t][b * q + k] * f.hs[t + 1][b * h + i];
        db_q[k] += dos[t][b * q + k];
      }
      for (Index i = 0; i < h; ++i) {
        for (Index j = 0; j < d; ++j) dW_hx[i * d + j] += da[b * h + i] * input_at(p, p.dense, t, b, j);
        for (Index j = 0; j < h; ++j) dW_hh[i * h + j] += da[b * h + i] * f.hs[t][b * h + j];
        db_h[i] += da[b * h + i];
      }
      for (Index j = 0; j < d; ++j) {
        double s = 0.0;
        for (Index i = 0; i < h; ++i) s += w.W_hx[i * d + j] * da[b * h + i];
        out.dx[(t * n + b) * d + j] = s;
      }
    }
    da_next = da;
  }
  out.dh0.assign(n * h, 0.0);
  for (Index b = 0; b < n; ++b)
    for (Index j = 0; j < h; ++j) {
      double s = 0.0;
      for (Index i = 0; i < h; ++i) s += w.W_hh[i * h + j] * da_next[b * h + i];
      out.dh0[b * h + j] = flow[0] * s;
    }
  for (const auto* part : {&dW_hx, &dW_hh}) out.params.insert(out.params.end(), part->begin(), part->end());
  if (p.config.bias) out.params.insert(out.params.end(), db_h.begin(), db_h.end());
  out.params.insert(out.params.end(), dW_qh.begin(), dW_qh.end());
  if (p.config.bias) out.params.insert(out.params.end(), db_q.begin(), db_q.end());
  return out;
}

// ---- Comparisons -------------------------------------------------------------------------

/// Every value within atol + rtol * |expected|; the first mismatch is reported with its index.
template <class A, class B>
::testing::AssertionResult close(const A& actual, const B& expected, double rtol, double atol = 0.0) {
  if (static_cast<std::size_t>(actual.size()) != static_cast<std::size_t>(expected.size()))
    return ::testing::AssertionFailure() << "sizes differ: " << actual.size() << " vs " << expected.size();
  for (std::size_t i = 0; i < static_cast<std::size_t>(expected.size()); ++i) {
    const double a = static_cast<double>(actual[i]), e = static_cast<double>(expected[i]);
    if (!(std::fabs(a - e) <= atol + rtol * std::fabs(e)))
      return ::testing::AssertionFailure()
             << "at " << i << ": " << a << " vs " << e << " (difference " << std::fabs(a - e) << ")";
  }
  return ::testing::AssertionSuccess();
}

/// The same bits, value by value (so that -0.0 != 0.0 and NaN == NaN of the same payload).
template <class A, class B>
::testing::AssertionResult same_bits(const A& actual, const B& expected) {
  using T = std::remove_cv_t<std::remove_reference_t<decltype(actual[0])>>;
  static_assert(std::is_same_v<T, std::remove_cv_t<std::remove_reference_t<decltype(expected[0])>>>);
  if (static_cast<std::size_t>(actual.size()) != static_cast<std::size_t>(expected.size()))
    return ::testing::AssertionFailure() << "sizes differ: " << actual.size() << " vs " << expected.size();
  for (std::size_t i = 0; i < static_cast<std::size_t>(expected.size()); ++i)
    if (std::memcmp(&actual[i], &expected[i], sizeof(T)) != 0)
      return ::testing::AssertionFailure() << "at " << i << ": " << actual[i] << " vs " << expected[i];
  return ::testing::AssertionSuccess();
}

template <class T>
std::vector<std::remove_const_t<T>> copy_of(rnnbptt::Span<T> values) {
  return std::vector<std::remove_const_t<T>>(values.begin(), values.end());
}

/// `call` throws exactly an `E` (our type, not a base or a sibling) whose message contains every
/// one of `words`.
template <class E>
::testing::AssertionResult throws(const std::function<void()>& call, const std::vector<std::string>& words) {
  try {
    call();
  } catch (const E& error) {
    const std::string message = error.what();
    for (const std::string& w : words)
      if (message.find(w) == std::string::npos)
        return ::testing::AssertionFailure() << "message '" << message << "' lacks '" << w << "'";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& error) {
    return ::testing::AssertionFailure() << "wrong exception type: " << error.what();
  }
  return ::testing::AssertionFailure() << "no exception; expected one naming '" << words.front() << "'";
}

}  // namespace support

namespace support {

/// What one backward pass produced: the parameter gradients, dL/dh_0 and (dense input) dL/dx.
template <class Scalar>
struct Backward {
  std::vector<Scalar> grads, dh0, dx;
  double loss = 0.0;
};

/// forward (from p.h0), loss and backward with `truncation` (nullptr: Full), dh_T when asked.
template <class Scalar>
Backward<Scalar> run_backward(rnnbptt::Model<Scalar>& model, const Problem<Scalar>& p,
                              const rnnbptt::Truncation* truncation, std::int64_t step_offset = 0,
                              bool with_dh_T = true) {
  Backward<Scalar> out;
  out.dh0.assign(p.n * p.h(), Scalar(-7));
  if (p.input == InputKind::dense) out.dx.assign(p.T * p.n * p.d(), Scalar(-7));
  model.forward(p.x(), p.h0);
  out.loss = model.loss(p.y());
  rnnbptt::BackwardOptions<Scalar> options;
  options.truncation = truncation;
  options.step_offset = step_offset;
  if (with_dh_T) options.dh_T = p.dh_T;
  options.dh0 = out.dh0;
  if (p.input == InputKind::dense) options.dx = out.dx;
  model.backward(options);
  out.grads = copy_of(model.gradients());
  return out;
}

template <class Scalar>
::testing::AssertionResult same_bits(const Backward<Scalar>& a, const Backward<Scalar>& b) {
  if (a.loss != b.loss) return ::testing::AssertionFailure() << "loss " << a.loss << " vs " << b.loss;
  if (auto r = same_bits(a.grads, b.grads); !r) return r << " (gradients)";
  if (auto r = same_bits(a.dh0, b.dh0); !r) return r << " (dh0)";
  if (auto r = same_bits(a.dx, b.dx); !r) return r << " (dx)";
  return ::testing::AssertionSuccess();
}

}  // namespace support
