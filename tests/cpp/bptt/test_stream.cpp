// StreamRunner: chunk by chunk with a carried state. Where a chunk boundary is a cut (Full,
// Randomized, Regular(k, k)), each chunk equals a Model's forward/loss/backward from the
// carried state bit for bit; Regular(k1 < k2) windows reach across boundaries and the chunks'
// gradients add up to the unchunked gradient. Restores continue exactly; memory stays flat.
#include <limits>

#include "support.hpp"

namespace {

using rnnbptt::Index;
using rnnbptt::LossKind;
using rnnbptt::Span;
using rnnbptt::Truncation;
using support::InputKind;

template <class Scalar>
support::Problem<Scalar> stream_problem(InputKind input, Index T, Index n = 3, std::uint64_t seed = 4) {
  return support::make_problem<Scalar>(support::config_of(5, 6, 4), T, n, input, LossKind::cross_entropy, false, seed);
}

/// Each chunk of the runner against a Model run on the same chunk from the carried state, with
/// the truncation at the chunk's global offset: loss, gradients and state, bit for bit.
template <class Scalar>
void expect_chunks_equal_model_runs(const Truncation& truncation, InputKind input, Index chunk) {
  SCOPED_TRACE(truncation.to_string() + " " + support::name_of(input) + " chunk " + std::to_string(chunk));
  const auto p = stream_problem<Scalar>(input, 6 * chunk);
  rnnbptt::Model<Scalar> streamed(p.config), plain(p.config);
  streamed.set_parameters(p.params);
  plain.set_parameters(p.params);
  rnnbptt::StreamRunner<Scalar> runner(p.config, truncation);
  std::vector<Scalar> state(p.n * p.h(), Scalar(0));
  for (Index start = 0; start < p.T; start += chunk) {
    const double loss = runner.step(streamed, p.x(start, chunk), p.y(start, chunk, {}));
    plain.forward(p.x(start, chunk), state);
    EXPECT_EQ(loss, plain.loss(p.y(start, chunk, {})));
    rnnbptt::BackwardOptions<Scalar> options;
    options.truncation = &truncation;
    options.step_offset = start;
    plain.backward(options);
    EXPECT_TRUE(support::same_bits(streamed.gradients(), plain.gradients())) << "chunk at " << start;
    EXPECT_TRUE(support::same_bits(runner.state(), plain.final_state())) << "chunk at " << start;
    state = support::copy_of(plain.final_state());
    // Training between chunks: both models take the same step.
    rnnbptt::sgd_step(streamed.parameters(), streamed.gradients(), 0.1);
    rnnbptt::sgd_step(plain.parameters(), plain.gradients(), 0.1);
  }
  EXPECT_EQ(runner.position(), p.T);
}

TEST(Stream, ChunksWhoseBoundaryIsACutEqualModelRunsBitForBit) {
  for (InputKind input : {InputKind::dense, InputKind::int32, InputKind::int64}) {
    expect_chunks_equal_model_runs<float>(Truncation::regular(4), input, 8);
    expect_chunks_equal_model_runs<double>(Truncation::regular(4), input, 4);
    expect_chunks_equal_model_runs<double>(Truncation::regular(3), input, 9);
    expect_chunks_equal_model_runs<float>(Truncation::full(), input, 7);
    expect_chunks_equal_model_runs<double>(Truncation::randomized(0.7, 5), input, 10);
  }
}

/// The whole sequence's mean-loss gradient assembled from the chunks (each chunk's loss is the
/// mean over its own steps), with fixed parameters.
std::vector<double> assembled(const support::Problem<double>& p, rnnbptt::StreamRunner<double>& runner, Index chunk) {
  rnnbptt::Model<double> model(p.config);
  model.set_parameters(p.params);
  std::vector<double> total(model.num_parameters(), 0.0);
  for (Index start = 0; start < p.T; start += chunk) {
    const Index steps = std::min(chunk, p.T - start);
    runner.step(model, p.x(start, steps), p.y(start, steps, {}));
    for (Index i = 0; i < model.num_parameters(); ++i)
      total[i] += model.gradients()[i] * static_cast<double>(steps) / static_cast<double>(p.T);
  }
  return total;
}

TEST(Stream, RegularWindowsReachAcrossChunksExactly) {
  struct Case {
    Index k1, k2, chunk;
  };
  for (const Case c : {Case{4, 4, 8}, Case{4, 4, 4}, Case{3, 7, 6}, Case{2, 9, 4}, Case{5, 12, 5}, Case{4, 10, 12}})
    for (InputKind input : {InputKind::int64, InputKind::dense}) {
      SCOPED_TRACE("regular " + std::to_string(c.k1) + "," + std::to_string(c.k2) + " chunk " +
                   std::to_string(c.chunk));
      const auto p = stream_problem<double>(input, 60);
      const auto truncation = Truncation::regular(c.k1, c.k2);
      rnnbptt::StreamRunner<double> runner(p.config, truncation);
      const auto streamed = assembled(p, runner, c.chunk);
      rnnbptt::Model<double> model(p.config);
      model.set_parameters(p.params);
      model.forward(p.x());
      model.loss(p.y(0, p.T, {}));
      rnnbptt::BackwardOptions<double> options;
      options.truncation = &truncation;
      model.backward(options);
      EXPECT_TRUE(support::close(streamed, model.gradients(), 1e-10, 1e-14));
      EXPECT_EQ(runner.position(), 60);
      EXPECT_TRUE(support::close(runner.state(), model.final_state(), 1e-12, 1e-14));
      EXPECT_EQ(runner.history_steps(), c.k2 - c.k1);
      EXPECT_EQ(runner.history_states().size(), c.k2 > c.k1 ? (c.k2 - c.k1 + 1) * p.n * p.h() : 0);
      EXPECT_EQ(runner.history_tokens().size(), c.k2 > c.k1 && input != InputKind::dense ? (c.k2 - c.k1) * p.n : 0);
    }
}

TEST(Stream, FullCutsAtChunkBoundaries) {
  const auto p = stream_problem<double>(InputKind::int64, 40);
  rnnbptt::StreamRunner<double> runner(p.config, Truncation::full());
  const auto streamed = assembled(p, runner, 10);
  rnnbptt::Model<double> model(p.config);
  model.set_parameters(p.params);
  const auto regular = Truncation::regular(10);
  model.forward(p.x());
  model.loss(p.y(0, p.T, {}));
  rnnbptt::BackwardOptions<double> options;
  options.truncation = &regular;
  model.backward(options);
  EXPECT_TRUE(support::close(streamed, model.gradients(), 1e-10, 1e-14));
}

TEST(Stream, ParametersAndGradientsAsSpansEqualTheModelOverload) {
  const auto p = stream_problem<float>(InputKind::int64, 24);
  rnnbptt::Model<float> model(p.config);
  model.set_parameters(p.params);
  rnnbptt::StreamRunner<float> a(p.config, Truncation::regular(2, 6)), b(p.config, Truncation::regular(2, 6));
  std::vector<float> params = p.params, grads(model.num_parameters());
  for (Index start = 0; start < 24; start += 6) {
    EXPECT_EQ(a.step(model, p.x(start, 6), p.y(start, 6, {})), b.step(params, grads, p.x(start, 6), p.y(start, 6, {})));
    EXPECT_TRUE(support::same_bits(model.gradients(), grads));
  }
}

TEST(Stream, AResetAtAPositionEqualsBackwardAtThatOffset) {
  const auto p = stream_problem<double>(InputKind::int64, 10);
  rnnbptt::Model<double> a(p.config), b(p.config);
  a.set_parameters(p.params);
  b.set_parameters(p.params);
  const auto truncation = Truncation::randomized(0.6, 4);
  rnnbptt::StreamRunner<double> runner(p.config, truncation);
  runner.reset(30);
  EXPECT_EQ(runner.position(), 30);
  EXPECT_EQ(runner.state().size(), 0);
  runner.step(a, p.x(), p.y(0, p.T, {}));
  EXPECT_EQ(runner.position(), 40);
  b.forward(p.x());
  b.loss(p.y(0, p.T, {}));
  rnnbptt::BackwardOptions<double> options;
  options.truncation = &truncation;
  options.step_offset = 30;
  b.backward(options);
  EXPECT_TRUE(support::same_bits(a.gradients(), b.gradients()));
}

/// restore() puts a second runner where the first one stands: the next chunk's loss and
/// gradient are bit-identical.
template <class Scalar>
void expect_restore_continues(const Truncation& truncation, InputKind input) {
  SCOPED_TRACE(truncation.to_string() + " " + support::name_of(input));
  const auto p = stream_problem<Scalar>(input, 48, 2);
  rnnbptt::Model<Scalar> model(p.config);
  model.set_parameters(p.params);
  rnnbptt::StreamRunner<Scalar> first(p.config, truncation);
  for (Index start = 0; start < 36; start += 12) first.step(model, p.x(start, 12), p.y(start, 12, {}));
  rnnbptt::StreamRunner<Scalar> second(p.config, truncation);
  if (input == InputKind::dense)  // a dense stream's history inputs are its values
    second.restore_dense(first.position(), first.batch(), first.state(), first.history_steps(),
                         first.history_dense_inputs(), first.history_states());
  else
    second.restore(first.position(), first.batch(), first.state(), first.history_steps(), first.history_tokens(),
                   first.history_states());
  EXPECT_EQ(second.position(), first.position());
  EXPECT_EQ(second.history_steps(), first.history_steps());
  const double a = first.step(model, p.x(36, 12), p.y(36, 12, {}));
  const auto grads = support::copy_of(model.gradients());
  const double b = second.step(model, p.x(36, 12), p.y(36, 12, {}));
  EXPECT_EQ(a, b);
  EXPECT_TRUE(support::same_bits(grads, model.gradients()));
  EXPECT_TRUE(support::same_bits(first.state(), second.state()));
}

TEST(Stream, ARestoredRunnerContinuesExactly) {
  for (const auto& truncation :
       {Truncation::regular(3, 8), Truncation::regular(4), Truncation::full(), Truncation::randomized(0.7, 2)}) {
    expect_restore_continues<float>(truncation, InputKind::int64);
    expect_restore_continues<double>(truncation, InputKind::int64);
    expect_restore_continues<float>(truncation, InputKind::dense);
    expect_restore_continues<double>(truncation, InputKind::dense);
  }
  // A dense stream's history is its inputs (k x n x d values), not token ids.
  rnnbptt::StreamRunner<float> runner(support::config_of(5, 6, 4), Truncation::regular(3, 8));
  const auto p = stream_problem<float>(InputKind::dense, 12, 2);
  rnnbptt::Model<float> model(p.config);
  runner.step(model, p.x(0, 6), p.y(0, 6, {}));
  runner.step(model, p.x(6, 6), p.y(6, 6, {}));
  EXPECT_EQ(runner.history_tokens().size(), 0);
  EXPECT_EQ(runner.history_dense_inputs().size(), 5 * 2 * 5);
  EXPECT_TRUE(support::same_bits(runner.history_dense_inputs(),
                                 std::vector<float>(p.dense.begin() + 7 * 2 * 5, p.dense.begin() + 12 * 2 * 5)));
  EXPECT_EQ(runner.history_states().size(), 6 * 2 * 6);
  // What a restore refuses of dense history inputs: a wrong length, a non-finite value.
  rnnbptt::StreamRunner<float> other(p.config, Truncation::regular(3, 8));
  std::vector<float> inputs = support::copy_of(runner.history_dense_inputs());
  EXPECT_TRUE(support::throws<rnnbptt::InvalidArgument>(
      [&] {
        other.restore_dense(12, 2, runner.state(), 5, rnnbptt::Span<const float>(inputs.data(), 49),
                            runner.history_states());
      },
      {"history inputs: expected 50 values", "history x n x d = 5 x 2 x 5", "got a buffer of 49"}));
  inputs[7] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(support::throws<rnnbptt::InvalidArgument>(
      [&] { other.restore_dense(12, 2, runner.state(), 5, inputs, runner.history_states()); }, {"history inputs"}));
  EXPECT_EQ(other.position(), 0);  // refused restores change nothing
}

TEST(Stream, MemoryDoesNotGrowWithTheStream) {
  const auto p = stream_problem<double>(InputKind::int64, 8, 2);
  rnnbptt::Model<double> model(p.config);
  model.set_parameters(p.params);
  rnnbptt::StreamRunner<double> runner(p.config, Truncation::regular(4, 10));
  std::size_t bytes = 0;
  for (int i = 0; i < 50; ++i) {
    runner.step(model, p.x(), p.y(0, p.T, {}));
    // The first chunk has no history yet; from the second on, history + chunk is all it holds.
    if (i == 1) bytes = runner.memory_bytes();
    if (i >= 1) {
      ASSERT_EQ(runner.memory_bytes(), bytes) << "after chunk " << i;
    }
  }
  EXPECT_EQ(runner.position(), 400);
}

// Training over a stream with history, both scalar types, every strategy, restarted at a
// position: finite losses and gradients at every chunk.
template <class Scalar>
void stream_with_history() {
  const auto config = support::config_of(6, 20, 6);
  rnnbptt::Model<Scalar> model(config);
  model.init_normal(0.2, 5);
  const Index chunk = 6, n = 2, chunks = 9;
  std::vector<std::int64_t> ids(chunk * n), targets(chunk * n);
  for (const auto& truncation :
       {Truncation::regular(2, 7), Truncation::regular(3), Truncation::randomized(0.7, 1), Truncation::full()}) {
    SCOPED_TRACE(truncation.to_string());
    rnnbptt::StreamRunner<Scalar> runner(config, truncation);
    runner.reset(truncation.kind() == Truncation::Kind::regular ? truncation.k1() * 4 : 5);
    for (Index c = 0; c < chunks; ++c) {
      for (Index i = 0; i < chunk * n; ++i) {
        ids[i] = (c * 13 + i * 5) % config.input_size;
        targets[i] = (c + i * 3) % config.output_size;
      }
      const double loss = runner.step(model, rnnbptt::SequenceInput<Scalar>::from_tokens(ids, chunk, n),
                                      rnnbptt::Targets<Scalar>::from_classes(targets));
      ASSERT_TRUE(std::isfinite(loss));
      for (Scalar g : model.gradients()) ASSERT_TRUE(std::isfinite(g));
      rnnbptt::sgd_step(model.parameters(), model.gradients(), 0.1);
    }
  }
}

TEST(Stream, TrainingWithHistoryStaysFinite) {
  stream_with_history<float>();
  stream_with_history<double>();
}

}  // namespace
