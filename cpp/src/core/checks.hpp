// Entry checks of the sized API: a Span must hold exactly the values its shape says, with a
// message naming the argument, e.g. "x: expected 980 values (T x n x d = 35 x 1 x 28), got a
// buffer of 900". The message is built only on failure: a check that passes never allocates
// (tests/cpp/bptt/steady_state_allocations.cpp counts).
#pragma once

#include <initializer_list>
#include <sstream>
#include <string>

#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/error.hpp"
#include "rnnbptt/core/sequence.hpp"
#include "rnnbptt/core/span.hpp"

namespace rnnbptt::detail {

// "T x n x d = 35 x 1 x 28" from the labels and the sizes.
inline std::string shape_text(const char* labels, std::initializer_list<Index> dims) {
  std::ostringstream text;
  text << labels << " = ";
  bool first = true;
  for (Index d : dims) {
    text << (first ? "" : " x ") << d;
    first = false;
  }
  return text.str();
}

// A buffer (argument `name`) of `size` values at `data` must hold exactly the product of
// `dims` values (`labels` names the dimensions, e.g. "T x n x d"): InvalidArgument otherwise
// (negative length, wrong length, or a null pointer with values), SizeError when the product
// overflows. Returns the count.
inline Index check_count(const char* name, const void* data, Index size, std::initializer_list<Index> dims,
                         const char* labels) {
  const Index expected = checked_size(name, labels, dims, 0);
  if (size < 0)
    invalid(name, ": expected ", expected, " values (", shape_text(labels, dims), "), got a negative length ", size);
  if (size != expected) check_length(name, size, expected, shape_text(labels, dims));
  if (expected > 0 && data == nullptr)
    invalid(name, ": expected ", expected, " values (", shape_text(labels, dims), "), got a null pointer");
  return expected;
}

template <class T>
Index check_span(const char* name, Span<T> span, std::initializer_list<Index> dims, const char* labels) {
  return check_count(name, span.data(), span.size(), dims, labels);
}

// An optional Span: empty (size 0) means "not given" (returns false); otherwise as check_span.
template <class T>
bool check_optional_span(const char* name, Span<T> span, std::initializer_list<Index> dims, const char* labels) {
  if (span.size() == 0) return false;
  check_span(name, span, dims, labels);
  return true;
}

// A whole state of n sequences (config.state_size(n) values), optional as above: n x h for one
// Elman layer, L x n x h for stacks and the GRU, 2 x L x n x h (every h, then every c) for the
// LSTM.
template <class T>
bool check_state(const char* name, Span<T> span, const ModelConfig& config, Index n) {
  const Index h = config.hidden_size, L = config.num_layers;
  if (config.cell == Cell::lstm) return check_optional_span(name, span, {2, L, n, h}, "2 x L x n x h");
  if (config.num_layers > 1 || config.cell != Cell::elman)
    return check_optional_span(name, span, {L, n, h}, "L x n x h");
  return check_optional_span(name, span, {n, h}, "n x h");
}

// An IdView with the same rules (its size counts ids).
inline Index check_ids(const char* name, const IdView& ids, std::initializer_list<Index> dims, const char* labels) {
  if (ids.type != IdType::int32 && ids.type != IdType::int64)
    invalid(name, ": expected int32 or int64 ids, got an IdView of unknown type ", static_cast<int>(ids.type));
  return check_count(name, ids.data, ids.size, dims, labels);
}

}  // namespace rnnbptt::detail
