// split_streams (python/rnnbptt/data.py's sequential_batches) and evaluate
// (python/rnnbptt/trainer.py's Trainer.evaluate).
#include "rnnbptt/train/data.hpp"

#include <algorithm>
#include <cmath>
#include <new>
#include <tuple>

#include "rnnbptt/core/buffer.hpp"
#include "rnnbptt/core/error.hpp"

namespace rnnbptt {
namespace {

void check_corpus(Span<const std::int64_t> corpus) {
  if (corpus.size() < 0 || (corpus.data() == nullptr && corpus.size() > 0))
    detail::invalid("corpus: expected a buffer of token ids, got ",
                    corpus.size() < 0 ? "a negative length " : "a null pointer with length ", corpus.size());
}

Span<const std::int64_t> rows(const std::vector<std::int64_t>& values, const Streams& s, Index i, const char* name) {
  if (i < 0 || i >= s.chunks()) detail::invalid(name, ": expected a chunk index in [0, ", s.chunks(), "), got ", i);
  const Index size = s.num_steps * s.batch;
  if (static_cast<Index>(values.size()) < (i + 1) * size)
    detail::invalid(name, ": expected ", s.steps, " x ", s.batch, " ids in the Streams, got ", values.size());
  return {values.data() + i * size, size};
}

// state <- the final state of the last forward (copied: the next forward overwrites it).
template <class Scalar>
void carry(Buffer<Scalar>& state, Span<const Scalar> final_state) {
  try {
    state.assign(final_state.begin(), final_state.end());
  } catch (const std::bad_alloc&) {
    throw AllocationError(detail::concat("evaluate: cannot allocate ", final_state.size() * Index(sizeof(Scalar)),
                                         " bytes for the carried state"));
  }
}

// Chunk i of a time-major steps x batch x width buffer.
template <class Scalar>
Span<const Scalar> chunk_of(const Buffer<Scalar>& values, Index steps, Index batch, Index num_steps, Index width,
                            Index i, const char* name) {
  const Index chunks = num_steps > 0 ? steps / num_steps : 0;
  if (i < 0 || i >= chunks) detail::invalid(name, ": expected a chunk index in [0, ", chunks, "), got ", i);
  const Index size = num_steps * batch * width;
  if (static_cast<Index>(values.size()) < (i + 1) * size)
    detail::invalid(name, ": expected ", steps, " x ", batch, " x ", width, " values in the streams, got ",
                    values.size());
  return {values.data() + i * size, size};
}

}  // namespace

Span<const std::int64_t> Streams::chunk_inputs(Index i) const { return rows(inputs, *this, i, "chunk_inputs"); }
Span<const std::int64_t> Streams::chunk_targets(Index i) const { return rows(targets, *this, i, "chunk_targets"); }

Streams split_streams(Span<const std::int64_t> corpus, Index batch, Index num_steps, Index offset) {
  check_corpus(corpus);
  if (batch < 1) detail::invalid("batch: expected a number of streams >= 1, got ", batch);
  if (num_steps < 1) detail::invalid("num_steps: expected a number of steps >= 1, got ", num_steps);
  if (offset < 0 || offset > num_steps)
    detail::invalid("offset: expected an offset in [0, num_steps] = [0, ", num_steps, "], got ", offset);
  // Python: needed = batch_size * num_steps + num_steps + 1 (overflow means "more than any corpus").
  Index needed = 0;
  if (__builtin_mul_overflow(batch, num_steps, &needed) || __builtin_add_overflow(needed, num_steps + 1, &needed) ||
      corpus.size() < needed)
    detail::invalid("corpus: expected at least ", batch, " x ", num_steps, " + ", num_steps,
                    " + 1 tokens for batch = ", batch, " and num_steps = ", num_steps, ", got ", corpus.size());
  const Index length = (corpus.size() - offset - 1) / batch;  // L: tokens per stream
  const Index chunks = length / num_steps;
  Streams s;
  s.batch = batch;
  s.num_steps = num_steps;
  s.steps = chunks * num_steps;
  try {
    s.inputs.resize(static_cast<std::size_t>(s.steps * batch));
    s.targets.resize(static_cast<std::size_t>(s.steps * batch));
  } catch (const std::bad_alloc&) {
    throw AllocationError(
        detail::concat("corpus: cannot allocate 2 x ", s.steps, " x ", batch, " token ids for the streams"));
  }
  for (Index b = 0; b < batch; ++b) {
    const std::int64_t* stream = corpus.data() + offset + b * length;
    for (Index t = 0; t < s.steps; ++t) {
      s.inputs[static_cast<std::size_t>(t * batch + b)] = stream[t];
      s.targets[static_cast<std::size_t>(t * batch + b)] = stream[t + 1];
    }
  }
  return s;
}

template <class Scalar>
Span<const Scalar> DenseStreams<Scalar>::chunk_inputs(Index i) const {
  return chunk_of(inputs, steps, batch, num_steps, input_size, i, "chunk_inputs");
}

template <class Scalar>
Span<const Scalar> DenseStreams<Scalar>::chunk_targets(Index i) const {
  return chunk_of(targets, steps, batch, num_steps, output_size, i, "chunk_targets");
}

template <class Scalar>
DenseStreams<Scalar> split_dense_streams(Span<const Scalar> inputs, Index input_size, Span<const Scalar> targets,
                                         Index output_size, Index batch, Index num_steps, Index offset) {
  if (input_size < 1) detail::invalid("input_size: expected a number of features >= 1, got ", input_size);
  if (output_size < 1) detail::invalid("output_size: expected a number of features >= 1, got ", output_size);
  if (batch < 1) detail::invalid("batch: expected a number of streams >= 1, got ", batch);
  if (num_steps < 1) detail::invalid("num_steps: expected a number of steps >= 1, got ", num_steps);
  if (offset < 0 || offset > num_steps)
    detail::invalid("offset: expected an offset in [0, num_steps] = [0, ", num_steps, "], got ", offset);
  for (const auto& [values, size, name] :
       {std::tuple{inputs, input_size, "inputs"}, std::tuple{targets, output_size, "targets"}}) {
    if (values.size() < 0 || (values.data() == nullptr && values.size() > 0))
      detail::invalid(name, ": expected a buffer of values, got ",
                      values.size() < 0 ? "a negative length " : "a null pointer with length ", values.size());
    if (values.size() % size != 0)
      detail::invalid(name, ": expected a whole number of steps of ", size, " values, got ", values.size(), " values");
  }
  const Index length = inputs.size() / input_size;
  if (targets.size() / output_size != length)
    detail::invalid("targets: expected ", length, " steps (as many as inputs), got ", targets.size() / output_size);
  Index needed = 0;
  if (__builtin_mul_overflow(batch, num_steps, &needed) || __builtin_add_overflow(needed, offset, &needed) ||
      length < needed)
    detail::invalid("inputs: expected at least ", batch, " x ", num_steps, " + ", offset, " steps for batch = ", batch,
                    ", num_steps = ", num_steps, " and offset = ", offset, ", got ", length);
  const Index per_stream = (length - offset) / batch;
  DenseStreams<Scalar> s;
  s.batch = batch;
  s.num_steps = num_steps;
  s.input_size = input_size;
  s.output_size = output_size;
  s.steps = per_stream / num_steps * num_steps;
  try {
    s.inputs.resize(static_cast<std::size_t>(s.steps * batch * input_size));
    s.targets.resize(static_cast<std::size_t>(s.steps * batch * output_size));
  } catch (const std::bad_alloc&) {
    throw AllocationError(detail::concat("inputs: cannot allocate ", s.steps, " x ", batch, " x (", input_size, " + ",
                                         output_size, ") values for the streams"));
  }
  for (Index b = 0; b < batch; ++b) {
    const Index start = offset + b * per_stream;
    for (Index t = 0; t < s.steps; ++t) {
      std::copy_n(inputs.data() + (start + t) * input_size, input_size, s.inputs.data() + (t * batch + b) * input_size);
      std::copy_n(targets.data() + (start + t) * output_size, output_size,
                  s.targets.data() + (t * batch + b) * output_size);
    }
  }
  return s;
}

template struct DenseStreams<float>;
template struct DenseStreams<double>;
template RNNBPTT_EXPORT DenseStreams<float> split_dense_streams<float>(Span<const float>, Index, Span<const float>,
                                                                       Index, Index, Index, Index);
template RNNBPTT_EXPORT DenseStreams<double> split_dense_streams<double>(Span<const double>, Index, Span<const double>,
                                                                         Index, Index, Index, Index);

template <class Scalar>
double evaluate(Model<Scalar>& model, Span<const std::int64_t> corpus, Index chunk) {
  check_corpus(corpus);
  if (corpus.size() < 2) detail::invalid("corpus: expected at least 2 tokens to evaluate, got ", corpus.size());
  if (chunk < 1) detail::invalid("chunk: expected a number of steps >= 1, got ", chunk);
  Buffer<Scalar> state;  // 1 x h, carried; empty before the first chunk (zeros)
  double total = 0.0;
  Index count = 0;
  const Index last = corpus.size() - 1;  // inputs are tokens [0, last), targets [1, last]
  for (Index start = 0; start < last; start += std::min(chunk, last - start)) {
    const Index steps = std::min(chunk, last - start);
    const Span<const std::int64_t> x(corpus.data() + start, steps);
    const Span<const std::int64_t> y(corpus.data() + start + 1, steps);
    model.forward(SequenceInput<Scalar>::from_tokens(x, steps, 1), Span<const Scalar>(state.data(), state.size()));
    carry(state, model.final_state());
    // Python: total += model.loss(y) * len(x), in double, then exp(total / count).
    total += model.loss(Targets<Scalar>::from_classes(y)) * static_cast<double>(steps);
    count += steps;
  }
  return total / static_cast<double>(count);
}

template <class Scalar>
double evaluate(Model<Scalar>& model, const Streams& streams) {
  const Index chunks = streams.chunks();
  if (chunks < 1) detail::invalid("streams: expected at least one chunk, got none (", streams.steps, " steps)");
  Buffer<Scalar> state;
  double total = 0.0;
  Index count = 0;
  for (Index i = 0; i < chunks; ++i) {
    model.forward(SequenceInput<Scalar>::from_tokens(streams.chunk_inputs(i), streams.num_steps, streams.batch),
                  Span<const Scalar>(state.data(), state.size()));
    carry(state, model.final_state());
    const Index tokens = streams.num_steps * streams.batch;
    total += model.loss(Targets<Scalar>::from_classes(streams.chunk_targets(i))) * static_cast<double>(tokens);
    count += tokens;
  }
  return total / static_cast<double>(count);
}

template RNNBPTT_EXPORT double evaluate<float>(Model<float>&, Span<const std::int64_t>, Index);
template RNNBPTT_EXPORT double evaluate<double>(Model<double>&, Span<const std::int64_t>, Index);
template RNNBPTT_EXPORT double evaluate<float>(Model<float>&, const Streams&);
template RNNBPTT_EXPORT double evaluate<double>(Model<double>&, const Streams&);

}  // namespace rnnbptt
