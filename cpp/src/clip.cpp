#include "rnnbptt/clip.hpp"

#include <Eigen/Core>
#include <cmath>

#include "rnnbptt/error.hpp"

namespace rnnbptt {

using detail::invalid;

template <class Scalar>
double global_norm(const Scalar* g, Index size) {
  Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>> values(g, size);
  return std::sqrt(values.template cast<double>().square().sum());
}

template <class Scalar>
ClipReport clip_grad_norm(Scalar* g, Index size, double max_norm, NonFinitePolicy policy) {
  if (!(max_norm > 0.0) || !std::isfinite(max_norm))
    invalid("max_norm: expected a finite theta > 0, got ", max_norm);
  ClipReport report;
  report.norm = global_norm(g, size);
  report.finite = std::isfinite(report.norm);
  if (!report.finite) {
    if (policy == NonFinitePolicy::raise)
      throw NonFiniteError(detail::concat("gradient norm: expected a finite value, got ",
                                          report.norm, " (gradient left unchanged)"));
    return report;
  }
  if (report.norm > max_norm) {
    report.scale = max_norm / report.norm;
    Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>(g, size) *= static_cast<Scalar>(report.scale);
  }
  return report;
}

template <class Scalar>
Index clip_grad_value(Scalar* g, Index size, double limit) {
  if (!(limit > 0.0) || !std::isfinite(limit))
    invalid("clip_value: expected a finite limit > 0, got ", limit);
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

#define RNNBPTT_INSTANTIATE(Scalar)                                                   \
  template double global_norm<Scalar>(const Scalar*, Index);                          \
  template ClipReport clip_grad_norm<Scalar>(Scalar*, Index, double, NonFinitePolicy); \
  template Index clip_grad_value<Scalar>(Scalar*, Index, double);
RNNBPTT_INSTANTIATE(float)
RNNBPTT_INSTANTIATE(double)
#undef RNNBPTT_INSTANTIATE

}  // namespace rnnbptt
