// Non-owning, time-major views of a batch of sequences: inputs, targets and position weights.
// Nothing here copies; the caller keeps the memory alive while the model uses it.
#pragma once

#include <cstdint>

#include "rnnbptt/config.hpp"

namespace rnnbptt {

enum class IdType { int32, int64 };

// Integer ids (tokens or class targets), T x n, int32 or int64, read in place.
struct IdView {
  const void* data = nullptr;
  IdType type = IdType::int64;

  std::int64_t operator[](Index i) const {
    return type == IdType::int32 ? static_cast<const std::int32_t*>(data)[i]
                                 : static_cast<const std::int64_t*>(data)[i];
  }
};

// x_1..x_T for n sequences: dense T x n x d values, or T x n token ids meaning one-hot
// vectors of size d (never expanded).
template <class Scalar>
struct SequenceInput {
  Index steps = 0;  // T
  Index batch = 0;  // n
  const Scalar* dense = nullptr;
  IdView tokens;

  static SequenceInput from_dense(const Scalar* x, Index steps, Index batch) {
    SequenceInput in;
    in.steps = steps;
    in.batch = batch;
    in.dense = x;
    return in;
  }
  static SequenceInput from_tokens(const void* ids, IdType type, Index steps, Index batch) {
    SequenceInput in;
    in.steps = steps;
    in.batch = batch;
    in.tokens = IdView{ids, type};
    return in;
  }
  bool is_tokens() const { return dense == nullptr; }
};

// y_1..y_T: class ids (T x n) for cross-entropy or dense values (T x n x q) for squared error.
// weights (T x n, optional, >= 0) turn the mean into sum(w * l) / sum(w).
template <class Scalar>
struct Targets {
  LossKind kind = LossKind::cross_entropy;
  IdView classes;
  const Scalar* dense = nullptr;
  const Scalar* weights = nullptr;

  static Targets from_classes(const void* ids, IdType type, const Scalar* weights = nullptr) {
    Targets y;
    y.kind = LossKind::cross_entropy;
    y.classes = IdView{ids, type};
    y.weights = weights;
    return y;
  }
  static Targets from_dense(const Scalar* values, const Scalar* weights = nullptr) {
    Targets y;
    y.kind = LossKind::squared_error;
    y.dense = values;
    y.weights = weights;
    return y;
  }
};

}  // namespace rnnbptt
