/// @file sequence.hpp
/// @brief Non-owning, time-major views of a batch of sequences: inputs, targets and position
/// weights.
///
/// Nothing here copies and nothing here checks: a view records a pointer, its length and the
/// shape the caller says it has. The lengths are checked where a view is used (Model::forward
/// and rnn_forward check x against the configuration and its steps/batch, Model::loss and
/// loss_forward check the targets and weights against the last forward's T, n, q), and a
/// length that disagrees throws InvalidArgument naming the argument, e.g.
/// "x: expected 980 values (T x n x d = 35 x 1 x 28), got a buffer of 900".
///
/// Lifetime: a view refers to the caller's memory, which must stay alive (and unchanged) for
/// as long as the call or object it is given to says: see Model::forward, Model::loss,
/// StreamRunner::step. Thread safety: views are plain values; reading the same memory from
/// several threads is fine, changing it while a call reads it is not.
#pragma once

#include <cstdint>

#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/span.hpp"

namespace rnnbptt {

/// The element type of integer ids.
enum class IdType { int32, int64 };

/// Integer ids (tokens or class targets), int32 or int64, read in place: `size` ids starting at
/// `data`. An empty view (size 0) means "not given".
struct IdView {
  const void* data = nullptr;
  IdType type = IdType::int64;
  Index size = 0;  ///< number of ids (not bytes)

  IdView() = default;
  /// `size` ids of type `type` at `data` (for ids whose type is known only at run time).
  IdView(const void* ids, IdType id_type, Index count) : data(ids), type(id_type), size(count) {}
  /// All the ids of a Span (or, through Span, of a std::vector).
  IdView(Span<const std::int64_t> ids) : data(ids.data()), type(IdType::int64), size(ids.size()) {}  // NOLINT
  IdView(Span<const std::int32_t> ids) : data(ids.data()), type(IdType::int32), size(ids.size()) {}  // NOLINT

  /// Unchecked: 0 <= i < size is the caller's (the library's) business.
  std::int64_t operator[](Index i) const {
    return type == IdType::int32 ? static_cast<const std::int32_t*>(data)[i]
                                 : static_cast<const std::int64_t*>(data)[i];
  }
};

/// x_1..x_T for n sequences: dense T x n x d values, or T x n token ids meaning one-hot
/// vectors of size d (never expanded). Build it with from_dense or from_tokens.
template <class Scalar>
struct SequenceInput {
  Index steps = 0;           ///< T
  Index batch = 0;           ///< n
  Span<const Scalar> dense;  ///< dense input: T x n x d values (time-major, C order)
  IdView tokens;             ///< token input: T x n ids in [0, d)
  bool token_input = false;  ///< which of the two is given
  /// Optional, T x n flags, each 0 or 1 (empty: none). Where resets[t n + i] is 1, sequence
  /// i's state is replaced by its initial state before step t (h0's row, or zero; a
  /// StreamRunner's: zero) and no gradient flows back across that boundary: a batch row may
  /// hold several sequences one after another (documents packed into a stream, episodes).
  Span<const std::uint8_t> resets;
  /// Optional, n values in [0, T] (empty: every sequence has all T steps). Steps t >= lengths[i]
  /// of sequence i are left out of the loss (their targets are not read) and no gradient flows
  /// from them; its final state is its state after step lengths[i] (its initial state when 0).
  /// Whole sequences only: a StreamRunner chunk takes none.
  Span<const std::int64_t> lengths;

  /// Dense input; `x` must hold steps x batch x d values (d = the model's input_size).
  static SequenceInput from_dense(Span<const Scalar> x, Index steps, Index batch) {
    SequenceInput in;
    in.steps = steps;
    in.batch = batch;
    in.dense = x;
    return in;
  }
  /// Token input; `ids` must hold steps x batch ids, each in [0, d).
  static SequenceInput from_tokens(Span<const std::int64_t> ids, Index steps, Index batch) {
    return from_tokens(IdView(ids), steps, batch);
  }
  static SequenceInput from_tokens(Span<const std::int32_t> ids, Index steps, Index batch) {
    return from_tokens(IdView(ids), steps, batch);
  }
  /// Token input of either id type (IdView says which).
  static SequenceInput from_tokens(IdView ids, Index steps, Index batch) {
    SequenceInput in;
    in.steps = steps;
    in.batch = batch;
    in.tokens = ids;
    in.token_input = true;
    return in;
  }
  bool is_tokens() const { return token_input; }
};

/// y_1..y_T: class ids (T x n) for cross-entropy, or dense values (T x n x q) for squared
/// error. `weights` (empty = not given, or T x n values, finite and >= 0 with a positive sum)
/// turn the mean into sum(w * l) / sum(w). For a StreamRunner chunk, T is the chunk's length.
template <class Scalar>
struct Targets {
  LossKind kind = LossKind::cross_entropy;
  IdView classes;              ///< cross-entropy: T x n class ids in [0, q)
  Span<const Scalar> dense;    ///< squared error: T x n x q values
  Span<const Scalar> weights;  ///< empty, or T x n values

  static Targets from_classes(Span<const std::int64_t> ids, Span<const Scalar> weights = {}) {
    return from_classes(IdView(ids), weights);
  }
  static Targets from_classes(Span<const std::int32_t> ids, Span<const Scalar> weights = {}) {
    return from_classes(IdView(ids), weights);
  }
  static Targets from_classes(IdView ids, Span<const Scalar> weights = {}) {
    Targets y;
    y.kind = LossKind::cross_entropy;
    y.classes = ids;
    y.weights = weights;
    return y;
  }
  static Targets from_dense(Span<const Scalar> values, Span<const Scalar> weights = {}) {
    Targets y;
    y.kind = LossKind::squared_error;
    y.dense = values;
    y.weights = weights;
    return y;
  }
};

}  // namespace rnnbptt
