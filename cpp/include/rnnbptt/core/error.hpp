// Error helpers: every message names the argument, what was expected and what was received.
//
// Non-finite values (NaN, +-inf): the policy
// ------------------------------------------
// Inputs must be finite, and are checked where they enter, with an error that names the
// argument, the value and its position (InvalidArgument, ValueError in Python):
// dense input x, h0, dh_T, d_outputs, dense targets, loss weights, the matrix given to
// spectral_radius / largest_singular_value, and every hyper-parameter (lr, weight_decay,
// eps, the init std / bound, the clipping threshold). An initialization whose draws would
// not be finite in the model's scalar type is refused in the same way.
// Outputs computed from finite inputs may still overflow (an exploding gradient is a
// legitimate result of finite parameters and data): they are returned as they are, never
// silently replaced. The gradient norm is where that is reported: clip_grad_norm with
// NonFinitePolicy::raise throws NonFiniteError (FloatingPointError in Python), and with
// NonFinitePolicy::report returns finite == false and leaves the gradient unchanged.
//
// Sizes: every product of sizes (parameter count, workspace buffers) is computed with
// overflow checks. A product that overflows, or a buffer whose bytes would exceed
// PTRDIFF_MAX, throws SizeError (ValueError) naming the argument; a buffer that fits but
// cannot be allocated throws AllocationError, which says which argument asked for how many
// bytes (MemoryError in Python).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>

#include "rnnbptt/core/export.hpp"

namespace rnnbptt {

/// @defgroup errors Errors
/// Every exception rnnbptt throws derives from rnnbptt::Error (itself a std::runtime_error),
/// so `catch (const rnnbptt::Error&)` catches them all. In Python they become ValueError
/// (InvalidArgument, SizeError, StateError), MemoryError (AllocationError),
/// FloatingPointError (NonFiniteError) and rnnbptt.CheckpointError (CheckpointError).
/// @{

/// The base of every exception of ours; what() names the argument, what was expected and
/// what was received.
class RNNBPTT_EXPORT Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A bad argument: wrong value, shape, length of a Span, id out of range, non-finite input.
class RNNBPTT_EXPORT InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// Sizes whose product overflows, or whose buffers would exceed PTRDIFF_MAX bytes.
class RNNBPTT_EXPORT SizeError : public Error {
 public:
  using Error::Error;
};

/// A call out of order or on an object in the wrong state (backward with no forward, an
/// object used from two threads at once, ...).
class RNNBPTT_EXPORT StateError : public Error {
 public:
  using Error::Error;
};

/// A buffer of a valid size that the allocator could not provide; what() names the argument
/// and the bytes asked for.
class RNNBPTT_EXPORT AllocationError : public Error {
 public:
  using Error::Error;
};

/// A gradient norm that is NaN or infinite when the caller asked for an error.
class RNNBPTT_EXPORT NonFiniteError : public Error {
 public:
  using Error::Error;
};

/// A checkpoint file that cannot be read or written: missing, truncated, corrupt, of another
/// format or version, or whose tensors disagree with its configuration. what() names the file.
class RNNBPTT_EXPORT CheckpointError : public Error {
 public:
  using Error::Error;
};

/// @}

namespace detail {

template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

template <class... Parts>
[[noreturn]] void invalid(const Parts&... parts) {
  throw InvalidArgument(concat(parts...));
}

// A Span argument `name` must hold exactly `expected` values (`shape` says which, e.g.
// "T x n x d = 35 x 8 x 28"); throws InvalidArgument otherwise.
inline void check_length(const char* name, std::ptrdiff_t got, std::ptrdiff_t expected, const std::string& shape) {
  if (got != expected) invalid(name, ": expected ", expected, " values (", shape, "), got a buffer of ", got);
}

// The product of `factors` as a count of values of `element_bytes` bytes each (0: a count
// only). Throws SizeError naming `name` when the product overflows or its bytes
// exceed PTRDIFF_MAX.
// `what` says which buffer, e.g. "the hidden states (T+1) x n x h".
inline std::ptrdiff_t checked_size(const char* name, const char* what, std::initializer_list<std::ptrdiff_t> factors,
                                   std::size_t element_bytes) {
  const std::ptrdiff_t limit = PTRDIFF_MAX / static_cast<std::ptrdiff_t>(element_bytes == 0 ? 1 : element_bytes);
  std::ptrdiff_t product = 1;
  bool overflow = false;
  for (std::ptrdiff_t f : factors) {
    if (f < 0) overflow = true;
    if (!overflow && __builtin_mul_overflow(product, f, &product)) overflow = true;
  }
  if (overflow || product > limit) {
    std::ostringstream sizes;
    bool first = true;
    for (std::ptrdiff_t f : factors) {
      sizes << (first ? "" : " x ") << f;
      first = false;
    }
    if (element_bytes == 0)
      throw SizeError(concat(name, ": expected sizes whose product fits in ", "std::ptrdiff_t, got ", what, " = ",
                             sizes.str(), " (overflows)"));
    throw SizeError(concat(name, ": expected sizes whose buffers fit in memory, got ", what, " = ", sizes.str(),
                           " values of ", element_bytes, " bytes (more than PTRDIFF_MAX = ", PTRDIFF_MAX, " bytes)"));
  }
  return product;
}

// a + b for sizes already checked by checked_size, with the same overflow error.
inline std::ptrdiff_t checked_add(const char* name, const char* what, std::ptrdiff_t a, std::ptrdiff_t b) {
  std::ptrdiff_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum))
    throw SizeError(concat(name, ": expected sizes whose buffers fit in memory, got ", what, " = ", a, " + ", b,
                           " values (overflows)"));
  return sum;
}

}  // namespace detail
}  // namespace rnnbptt
