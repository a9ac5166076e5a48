// Owned memory for parameters, gradients and activations, aligned for the widest SIMD packet.
// Alignment is part of reproducibility: Eigen's vectorized reductions split scalar and packet
// work by a pointer's alignment, so a buffer that lands on a different boundary in another run
// would sum in another order and change the last bits of the result.
#pragma once

#include <Eigen/Core>

#include <vector>

namespace rnnbptt {

template <class T>
using Buffer = std::vector<T, Eigen::aligned_allocator<T>>;

}  // namespace rnnbptt
