#include "rnnbptt/train/diagnostics.hpp"

#include <Eigen/Eigenvalues>
#include <Eigen/SVD>

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
    Eigen::BDCSVD<Eigen::MatrixXd> svd(as_double(W, h));
    return svd.singularValues()(0);
  });
}

template RNNBPTT_EXPORT double spectral_radius<float>(Span<const float>, Index);
template RNNBPTT_EXPORT double spectral_radius<double>(Span<const double>, Index);
template RNNBPTT_EXPORT double largest_singular_value<float>(Span<const float>, Index);
template RNNBPTT_EXPORT double largest_singular_value<double>(Span<const double>, Index);

}  // namespace rnnbptt
