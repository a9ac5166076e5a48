#include "rnnbptt/train/diagnostics.hpp"

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>

#include <new>

#include "core/checks.hpp"
#include "core/finite.hpp"
#include "rnnbptt/core/error.hpp"
#include "rnnbptt/core/params.hpp"

namespace rnnbptt {

namespace {
template <class Scalar>
Eigen::MatrixXd as_double(Span<const Scalar> W, Index h) {
  if (h <= 0) detail::invalid("W_hh: expected a non-empty square matrix, got size ", h);
  detail::checked_size("W_hh", "the matrix h x h", {h, h}, sizeof(double));
  detail::check_span("W_hh", W, {h, h}, "h x h");
  // Eigenvalues or singular values of a matrix with a NaN or infinity are not defined; the
  // solvers would return an arbitrary number.
  detail::check_finite("W_hh", W.data(), {h, h});
  return ConstMatrixMap<Scalar>(W.data(), h, h).template cast<double>();
}

// Eigen's solvers allocate their work space: a failure is AllocationError, as everywhere.
template <class F>
double allocating(Index h, F&& compute) {
  try {
    return compute();
  } catch (const std::bad_alloc&) {
    throw AllocationError(detail::concat("W_hh: cannot allocate the work space of a ", h, " x ", h, " decomposition (",
                                         h, " x ", h, " doubles and more)"));
  }
}
}  // namespace

template <class Scalar>
double spectral_radius(Span<const Scalar> W, Index h) {
  return allocating(h, [&] {
    Eigen::EigenSolver<Eigen::MatrixXd> solver(as_double(W, h), /*computeEigenvectors=*/false);
    return solver.eigenvalues().cwiseAbs().maxCoeff();
  });
}

template <class Scalar>
double largest_singular_value(Span<const Scalar> W, Index h) {
  return allocating(h, [&] {
    // sigma_max(W)^2 is the largest eigenvalue of the symmetric W^T W, which a symmetric
    // solver finds to an absolute error of a few eps ||W^T W|| = eps sigma_max^2: sigma_max to a
    // relative error of about eps. (An SVD gives the same number, and takes four times as long
    // to compile for every SIMD variant.)
    // W is scaled by its largest magnitude first, so that W^T W neither overflows nor
    // underflows whatever finite values W holds.
    Eigen::MatrixXd M = as_double(W, h);
    const double scale = M.cwiseAbs().maxCoeff();
    if (scale == 0.0) return 0.0;
    M /= scale;
    const Eigen::MatrixXd gram = M.transpose() * M;
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(gram, Eigen::EigenvaluesOnly);
    return scale * std::sqrt(std::max(0.0, solver.eigenvalues().maxCoeff()));
  });
}

template RNNBPTT_EXPORT double spectral_radius<float>(Span<const float>, Index);
template RNNBPTT_EXPORT double spectral_radius<double>(Span<const double>, Index);
template RNNBPTT_EXPORT double largest_singular_value<float>(Span<const float>, Index);
template RNNBPTT_EXPORT double largest_singular_value<double>(Span<const double>, Index);

}  // namespace rnnbptt
