#include "rnnbptt/train/clip.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "core/checks.hpp"
#include "rnnbptt/core/error.hpp"

namespace rnnbptt {

using detail::invalid;

namespace {
// The gradient buffer: a length >= 0 and memory behind it.
template <class T>
Index checked_length(Span<T> g) {
  if (g.size() < 0) invalid("grads: expected a buffer length >= 0, got ", g.size());
  return detail::check_span("grads", g, {g.size()}, "size");
}

// Element i is added into partial sum i % 16, and the 16 partial sums are added in order: one
// fixed order whatever the SIMD width (2, 4 or 8 doubles hold some of the 16 sums), so the
// compiler can keep the sums in vector registers. A single running sum (Eigen's reduction of a
// cast expression is scalar) waits on every addition: 1.3 ns per float, 0.1 ms for a small
// model's 80,000 parameters, a few percent of its training step. `value(x)` is the element as
// a double: x itself, or x scaled by a power of two (rescaled_norm).
template <class Scalar, class Value>
double sum_of_squares(const Scalar* values, Index size, Value&& value) {
  constexpr Index lanes = 16;
  double partial[lanes] = {};
  Index i = 0;
  for (; i + lanes <= size; i += lanes)
    for (Index l = 0; l < lanes; ++l) {
      const double x = value(values[i + l]);
      partial[l] += x * x;
    }
  for (Index l = 0; i + l < size; ++l) {
    const double x = value(values[i + l]);
    partial[l] += x * x;
  }
  double sum = 0.0;
  for (Index l = 0; l < lanes; ++l) sum += partial[l];
  return sum;
}

// The norm when the squares themselves leave double's range, which only doubles can make: above
// about 1e154 a square overflows to inf (and the sum can overflow from a norm of about 1.3e154),
// below about 1e-154 it loses digits as a subnormal or becomes 0, while the norm is an ordinary
// double (or just as small). The sum is taken again, in the same order, of the elements times
// 2^-e, where 2^e is the largest magnitude's binade (the largest becomes [0.5, 1), the sum at
// least 1/4), and the root is scaled back by 2^e. Scaling by a power of two is exact unless the
// result is subnormal; only elements 2^511 and more below the largest have squares that round
// or vanish, by at most 2^-1074 each. x * 2^-e rounds as std::ldexp(x, -e) does; ldexp itself
// runs only where 2^-e is not a double (the largest element below 2^-1024).
template <class Scalar>
double rescaled_norm(const Scalar* values, Index size) {
  constexpr Index lanes = 16;  // the largest magnitude per lane, as the sums: a loop that vectorizes
  double lane_largest[lanes] = {};
  Index i = 0;
  for (; i + lanes <= size; i += lanes)
    for (Index l = 0; l < lanes; ++l)
      lane_largest[l] = std::max(lane_largest[l], std::abs(static_cast<double>(values[i + l])));
  double largest = 0.0;
  for (; i < size; ++i) largest = std::max(largest, std::abs(static_cast<double>(values[i])));
  for (Index l = 0; l < lanes; ++l) largest = std::max(largest, lane_largest[l]);
  if (largest == 0.0 || std::isinf(largest)) return largest;  // all zero, or an infinite element
  int e = 0;
  std::frexp(largest, &e);  // largest = m 2^e with m in [0.5, 1)
  const double scale = std::ldexp(1.0, -e);
  const double sum =
      std::isfinite(scale)
          ? sum_of_squares(values, size, [scale](Scalar x) { return static_cast<double>(x) * scale; })
          : sum_of_squares(values, size, [e](Scalar x) { return std::ldexp(static_cast<double>(x), -e); });
  return std::ldexp(std::sqrt(sum), e);
}
}  // namespace

template <class Scalar>
double global_norm(Span<const Scalar> g) {
  const Index size = checked_length(g);
  const double sum = sum_of_squares(g.data(), size, [](Scalar x) { return static_cast<double>(x); });
  // Whenever the sum lies in [2^-800, DBL_MAX], no square overflowed, and those that fell below
  // 2^-1022 were rounded by at most 2^-1074 each (at most 2^63 of them, against a sum of at
  // least 2^-800): this is the norm. A float's square (2^-298 to 2^256) never leaves double's
  // range and 2^63 of them add up to less than DBL_MAX, so for float the sum is the norm's
  // square too (0 when every element is 0, inf when one is infinite).
  if (sum >= 0x1p-800 && sum <= std::numeric_limits<double>::max()) return std::sqrt(sum);
  if (std::is_same_v<Scalar, float> || std::isnan(sum)) return std::sqrt(sum);  // NaN: a NaN element
  return rescaled_norm(g.data(), size);
}

template <class Scalar>
ClipReport clip_grad_norm(Span<Scalar> g, double max_norm, NonFinitePolicy policy) {
  if (!(max_norm > 0.0) || !std::isfinite(max_norm)) invalid("max_norm: expected a finite theta > 0, got ", max_norm);
  if (policy != NonFinitePolicy::raise && policy != NonFinitePolicy::report)
    invalid("policy: expected NonFinitePolicy::raise or ::report, got ", static_cast<int>(policy));
  const Index size = checked_length(g);
  ClipReport report;
  report.norm = global_norm(Span<const Scalar>(g));
  report.finite = std::isfinite(report.norm);
  if (!report.finite) {
    if (policy == NonFinitePolicy::raise)
      throw NonFiniteError(
          detail::concat("gradient norm: expected a finite value, got ", report.norm, " (gradient left unchanged)"));
    return report;
  }
  if (report.norm > max_norm) {
    report.scale = max_norm / report.norm;
    if (report.scale >= static_cast<double>(std::numeric_limits<Scalar>::min())) {
      Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>(g.data(), size) *= static_cast<Scalar>(report.scale);
    } else {
      // The factor is below Scalar's normal range (a norm of 3e38 clipped to 1e-10 in float, of
      // 1e308 to 1e-15 in double): as a Scalar it keeps a few digits or none. Each element is
      // divided by the norm and then multiplied by max_norm instead, in double.
      for (Index i = 0; i < size; ++i) g[i] = static_cast<Scalar>(static_cast<double>(g[i]) / report.norm * max_norm);
    }
  }
  return report;
}

template <class Scalar>
Index clip_grad_value(Span<Scalar> g, double limit) {
  if (!(limit > 0.0) || !std::isfinite(limit)) invalid("clip_value: expected a finite limit > 0, got ", limit);
  const Index size = checked_length(g);
  const Scalar bound = static_cast<Scalar>(limit);
  Index clipped = 0;
  for (Index i = 0; i < size; ++i) {
    if (g[i] > bound) {
      g[i] = bound;
      ++clipped;
    } else if (g[i] < -bound) {
      g[i] = -bound;
      ++clipped;
    }
  }
  return clipped;
}

#define RNNBPTT_INSTANTIATE(Scalar)                                                                 \
  template RNNBPTT_EXPORT double global_norm<Scalar>(Span<const Scalar>);                           \
  template RNNBPTT_EXPORT ClipReport clip_grad_norm<Scalar>(Span<Scalar>, double, NonFinitePolicy); \
  template RNNBPTT_EXPORT Index clip_grad_value<Scalar>(Span<Scalar>, double);
RNNBPTT_INSTANTIATE(float)
RNNBPTT_INSTANTIATE(double)
#undef RNNBPTT_INSTANTIATE

}  // namespace rnnbptt
