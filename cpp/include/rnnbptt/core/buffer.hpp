/// @file buffer.hpp
/// @brief Owned memory for parameters, gradients and activations, aligned for the widest SIMD
/// packet.
///
/// Alignment is part of reproducibility: Eigen's vectorized reductions split scalar and packet
/// work by a pointer's alignment, so a buffer that lands on a different boundary in another run
/// would sum in another order and change the last bits of the result. A Buffer is a
/// std::vector (with Eigen's aligned allocator): it converts to a Span of all its values.
#pragma once

#include <Eigen/Core>

#include <cstddef>
#include <new>
#include <vector>

#include "rnnbptt/core/error.hpp"

namespace rnnbptt {

/// Owned, aligned, contiguous values.
template <class T>
using Buffer = std::vector<T, Eigen::aligned_allocator<T>>;

namespace detail {

// Grows `buffer` to at least `size` values (never shrinks). `size` must come from
// checked_size; an allocation failure becomes AllocationError naming `name` and `what`.
template <class T>
void grow_buffer(Buffer<T>& buffer, std::ptrdiff_t size, const char* name, const char* what) {
  if (buffer.size() >= static_cast<std::size_t>(size)) return;
  try {
    buffer.resize(static_cast<std::size_t>(size));
  } catch (const std::bad_alloc&) {
    throw AllocationError(concat(name, ": cannot allocate ", static_cast<std::size_t>(size) * sizeof(T), " bytes for ",
                                 what, " (", size, " values of ", sizeof(T), " bytes)"));
  }
}

}  // namespace detail
}  // namespace rnnbptt
