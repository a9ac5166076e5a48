// Error helpers: every message names the argument, what was expected and what was received.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace rnnbptt {

// Raised when a gradient norm is NaN or infinite and the caller asked for an error.
class NonFiniteError : public std::domain_error {
 public:
  using std::domain_error::domain_error;
};

namespace detail {

template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

template <class... Parts>
[[noreturn]] void invalid(const Parts&... parts) {
  throw std::invalid_argument(concat(parts...));
}

}  // namespace detail
}  // namespace rnnbptt
