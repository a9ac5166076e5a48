/// @file span.hpp
/// @brief Span<T>: a pointer and a length, the way every buffer enters and leaves the library.
///
/// C++17 has no std::span, so this is ours. A Span never owns memory: the caller keeps the
/// memory alive for as long as the function or object it was given to says (see each API's
/// documentation). Every API that takes a Span checks its length against the shapes it
/// expects and throws InvalidArgument naming the argument when they disagree, so a short
/// buffer is an exception, never a read past its end.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "rnnbptt/core/config.hpp"

namespace rnnbptt {

/// A non-owning view of `size()` contiguous values of type T (T may be const).
template <class T>
class Span {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;

  /// An empty view (data() == nullptr, size() == 0): "not given" for optional arguments.
  constexpr Span() noexcept = default;
  /// `size` values starting at `data`. A negative size is refused where the Span is used.
  constexpr Span(T* data, Index size) noexcept : data_(data), size_(size) {}
  /// Any contiguous container with data() and size() (std::vector, Buffer, std::array,
  /// std::string for char): a view of all its values.
  template <class Container,
            class = std::enable_if_t<!std::is_same_v<std::decay_t<Container>, Span> &&
                                     std::is_convertible_v<decltype(std::declval<Container&>().data()), T*>>>
  constexpr Span(Container& c) noexcept  // NOLINT(google-explicit-constructor)
      : data_(c.data()), size_(static_cast<Index>(c.size())) {}
  /// Span<T> converts to Span<const T>.
  template <class U, class = std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]>>>
  constexpr Span(Span<U> other) noexcept  // NOLINT(google-explicit-constructor)
      : data_(other.data()), size_(other.size()) {}

  constexpr T* data() const noexcept { return data_; }
  constexpr Index size() const noexcept { return size_; }
  constexpr bool empty() const noexcept { return size_ == 0; }
  /// Unchecked element access (as std::span); sizes are checked where a Span enters an API.
  constexpr T& operator[](Index i) const noexcept { return data_[i]; }
  constexpr T* begin() const noexcept { return data_; }
  constexpr T* end() const noexcept { return data_ + size_; }

 private:
  T* data_ = nullptr;
  Index size_ = 0;
};

}  // namespace rnnbptt
