// Entry checks of the non-finite policy (rnnbptt/core/error.hpp): an input with a NaN or infinity
// is refused with its name, the first such value and its position.
#pragma once

#include <Eigen/Core>

#include <cmath>
#include <initializer_list>
#include <sstream>

#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/error.hpp"

namespace rnnbptt::detail {

// data holds a C-contiguous array of the shape `dims`; throws InvalidArgument
// "<name>: expected finite values, got nan at [i, j]" for its first non-finite value.
template <class Scalar>
void check_finite(const char* name, const Scalar* data, std::initializer_list<Index> dims) {
  Index size = 1;
  for (Index d : dims) size *= d;
  if (size <= 0 || Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>(data, size).allFinite()) return;
  for (Index i = 0; i < size; ++i) {
    if (std::isfinite(data[i])) continue;
    std::ostringstream where;
    Index stride = size, rest = i;
    bool first = true;
    for (Index d : dims) {
      stride /= d;
      where << (first ? "" : ", ") << rest / stride;
      rest %= stride;
      first = false;
    }
    invalid(name, ": expected finite values, got ", data[i], " at [", where.str(), "]");
  }
}

// A whole state of n sequences (ModelConfig::state_size), its position in the state's shape.
template <class Scalar>
void check_state_finite(const char* name, const Scalar* data, const ModelConfig& config, Index n) {
  const Index h = config.hidden_size, L = config.num_layers;
  if (config.cell == Cell::lstm)
    check_finite(name, data, {2, L, n, h});
  else if (!config.single_elman())
    check_finite(name, data, {L, n, h});
  else
    check_finite(name, data, {n, h});
}

}  // namespace rnnbptt::detail
