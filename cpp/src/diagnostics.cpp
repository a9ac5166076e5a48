#include "rnnbptt/diagnostics.hpp"

#include <Eigen/Eigenvalues>
#include <Eigen/SVD>

#include "finite.hpp"
#include "rnnbptt/error.hpp"
#include "rnnbptt/params.hpp"

namespace rnnbptt {

namespace {
template <class Scalar>
Eigen::MatrixXd as_double(const Scalar* W, Index h) {
  if (h <= 0) detail::invalid("W_hh: expected a non-empty square matrix, got size ", h);
  detail::checked_size("W_hh", "the matrix h x h", {h, h}, sizeof(double));
  // Eigenvalues or singular values of a matrix with a NaN or infinity are not defined; the
  // solvers would return an arbitrary number.
  detail::check_finite("W_hh", W, {h, h});
  return ConstMatrixMap<Scalar>(W, h, h).template cast<double>();
}
}  // namespace

template <class Scalar>
double spectral_radius(const Scalar* W, Index h) {
  Eigen::EigenSolver<Eigen::MatrixXd> solver(as_double(W, h), /*computeEigenvectors=*/false);
  return solver.eigenvalues().cwiseAbs().maxCoeff();
}

template <class Scalar>
double largest_singular_value(const Scalar* W, Index h) {
  Eigen::BDCSVD<Eigen::MatrixXd> svd(as_double(W, h));
  return svd.singularValues()(0);
}

template double spectral_radius<float>(const float*, Index);
template double spectral_radius<double>(const double*, Index);
template double largest_singular_value<float>(const float*, Index);
template double largest_singular_value<double>(const double*, Index);

}  // namespace rnnbptt
