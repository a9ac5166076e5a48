// Inference: the Predictor against Model forward calls (bit for bit), softmax and argmax
// against hand-computed values, Random against an independent implementation of xoshiro256**
// seeded by splitmix64 (values computed outside the library), sample against its documented
// rule, and generate against the loop of python/rnnbptt/generate.py written with Model calls.
#include "support.hpp"

namespace {

using rnnbptt::Index;
using rnnbptt::Span;

template <class Scalar>
rnnbptt::Model<Scalar> language_model(Index vocab = 7, Index hidden = 12, std::uint64_t seed = 3) {
  rnnbptt::Model<Scalar> model(support::config_of(vocab, hidden, vocab));
  model.init_uniform(0.8, seed);
  return model;
}

/// The logits of the last step of `tokens` run from `h0` (empty: zeros) by Model::forward with
/// n = 1, and the final state.
template <class Scalar>
std::pair<std::vector<Scalar>, std::vector<Scalar>> forward_last(rnnbptt::Model<Scalar>& model,
                                                                 const std::vector<std::int64_t>& tokens,
                                                                 const std::vector<Scalar>& h0) {
  const Index T = static_cast<Index>(tokens.size()), q = model.config().output_size;
  model.forward(rnnbptt::SequenceInput<Scalar>::from_tokens(tokens, T, 1), h0);
  const auto outputs = model.outputs();
  return {std::vector<Scalar>(outputs.begin() + (T - 1) * q, outputs.end()), support::copy_of(model.final_state())};
}

template <class Scalar>
void expect_predictor_equals_forward() {
  auto model = language_model<Scalar>();
  rnnbptt::Model<Scalar> copy(model.config());
  copy.set_parameters(model.parameters());
  rnnbptt::Predictor<Scalar> predictor(model);
  EXPECT_TRUE(support::same_bits(predictor.state(), std::vector<Scalar>(12, Scalar(0))));

  const std::vector<std::int64_t> prefix{1, 4, 0, 6, 2};
  auto [logits, state] = forward_last(copy, prefix, {});
  EXPECT_TRUE(support::same_bits(predictor.feed(prefix), logits));
  EXPECT_TRUE(support::same_bits(predictor.state(), state));
  // Steps and feeds continue from the carried state.
  for (std::int64_t token : {3, 3, 5}) {
    std::tie(logits, state) = forward_last(copy, {token}, state);
    EXPECT_TRUE(support::same_bits(predictor.step(token), logits));
    EXPECT_TRUE(support::same_bits(predictor.state(), state));
  }
  std::tie(logits, state) = forward_last(copy, {6, 0}, state);
  const std::vector<std::int64_t> two{6, 0};
  EXPECT_TRUE(support::same_bits(predictor.feed(two), logits));

  // reset and set_state.
  predictor.reset();
  EXPECT_TRUE(support::same_bits(predictor.state(), std::vector<Scalar>(12, Scalar(0))));
  std::vector<Scalar> h(12);
  for (Index i = 0; i < 12; ++i) h[i] = static_cast<Scalar>(0.1 * static_cast<double>(i) - 0.5);
  predictor.set_state(h);
  EXPECT_TRUE(support::same_bits(predictor.state(), h));
  std::tie(logits, state) = forward_last(copy, {2}, h);
  EXPECT_TRUE(support::same_bits(predictor.step(2), logits));

  // The Predictor reads the model's parameters at every call.
  const std::vector<Scalar> ones(model.num_parameters(), Scalar(1));
  rnnbptt::sgd_step(model.parameters(), ones, 0.01);
  copy.set_parameters(model.parameters());
  std::tie(logits, state) = forward_last(copy, {4}, state);
  EXPECT_TRUE(support::same_bits(predictor.step(4), logits));
}

TEST(Predictor, EqualsModelForwardCallsBitForBit) {
  expect_predictor_equals_forward<float>();
  expect_predictor_equals_forward<double>();
}

TEST(Predictor, DenseStepsEqualModelForwardCalls) {
  rnnbptt::Model<double> model(support::config_of(3, 5, 2));
  model.init_uniform(0.7, 1);
  rnnbptt::Predictor<double> predictor(model);
  std::vector<double> state(5, 0.0);
  for (int t = 0; t < 4; ++t) {
    const std::vector<double> x{0.5 * t, -1.0, 0.25};
    model.forward(rnnbptt::SequenceInput<double>::from_dense(x, 1, 1), state);
    const auto logits = support::copy_of(model.outputs());
    state = support::copy_of(model.final_state());
    EXPECT_TRUE(support::same_bits(predictor.step_dense(x), logits));
    EXPECT_TRUE(support::same_bits(predictor.state(), state));
  }
}

TEST(Inference, SoftmaxMatchesHandComputedValues) {
  const std::vector<double> logits{1.0, 2.0, 3.0};
  std::vector<double> p(3);
  rnnbptt::softmax(logits, 1.0, p);
  EXPECT_TRUE(
      support::close(p, std::vector<double>{0.09003057317038046, 0.24472847105479764, 0.6652409557748218}, 1e-15));
  rnnbptt::softmax(logits, 2.0, p);
  EXPECT_TRUE(support::close(p, std::vector<double>{0.1863237232258476, 0.3071958857184984, 0.506480391055654}, 1e-15));
  rnnbptt::softmax(logits, 0.5, p);
  EXPECT_TRUE(
      support::close(p, std::vector<double>{0.015876239976466765, 0.11731042782619838, 0.8668133321973349}, 1e-15));
  // float: computed in double, rounded once.
  const std::vector<float> logits32{1.0f, 2.0f, 3.0f};
  std::vector<float> p32(3);
  rnnbptt::softmax(logits32, 1.0, p32);
  EXPECT_EQ(p32[0], static_cast<float>(0.09003057317038046));
  EXPECT_EQ(p32[1], static_cast<float>(0.24472847105479764));
  EXPECT_EQ(p32[2], static_cast<float>(0.6652409557748218));
  // Large logits do not overflow; in place is allowed.
  std::vector<double> big{1000.0, 1000.0};
  rnnbptt::softmax(big, 1.0, big);
  EXPECT_EQ(big, (std::vector<double>{0.5, 0.5}));
}

TEST(Inference, ArgmaxIsTheFirstMaximumAsNumpy) {
  const std::vector<double> ties{1, 3, 3, 2}, nans{1, NAN, 3, NAN};
  const std::vector<float> one{-5}, negative{-1, -0.5f, -0.5f};
  EXPECT_EQ(rnnbptt::argmax(ties), 1);
  EXPECT_EQ(rnnbptt::argmax(one), 0);
  EXPECT_EQ(rnnbptt::argmax(negative), 1);
  EXPECT_EQ(rnnbptt::argmax(nans), 1);
}

TEST(Inference, RandomIsXoshiro256StarStarSeededBySplitmix64) {
  // Computed by an independent implementation of the two published algorithms.
  rnnbptt::Random zero(0), answer(42);
  EXPECT_EQ(zero.next(), 0x99ec5f36cb75f2b4ULL);
  EXPECT_EQ(zero.next(), 0xbf6e1f784956452aULL);
  EXPECT_EQ(zero.uniform(), 0.10301998939503632);
  EXPECT_EQ(answer.uniform(), 0.08386297105988216);
  EXPECT_EQ(answer.uniform(), 0.3789802506626686);
  EXPECT_EQ(answer.next(), 0xae17533239e499a1ULL);
  rnnbptt::Random a(7), b(7);
  for (int i = 0; i < 1000; ++i) {
    const double u = a.uniform();
    ASSERT_EQ(u, b.uniform());
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

TEST(Inference, SampleFollowsItsRunningSumRule) {
  // The first index whose running sum exceeds u * sum, u one uniform() draw.
  const std::vector<double> weights{0.5, 0.0, 1.5, 2.0};  // need not sum to 1
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    rnnbptt::Random rng(seed), same(seed);
    const double target = same.uniform() * 4.0;
    Index expected = 0;
    double running = 0.0;
    for (; expected < 4; ++expected) {
      running += weights[expected];
      if (running > target) break;
    }
    ASSERT_EQ(rnnbptt::sample(weights, rng), expected) << "seed " << seed;
  }
  rnnbptt::Random rng(1);
  int ones = 0;
  const std::vector<float> certain{0, 1, 0};
  const std::vector<double> quarter{1, 3};
  for (int i = 0; i < 100; ++i) ASSERT_EQ(rnnbptt::sample(certain, rng), 1);
  for (int i = 0; i < 20000; ++i) ones += static_cast<int>(rnnbptt::sample(quarter, rng));
  EXPECT_NEAR(ones / 20000.0, 0.75, 0.02);
}

/// python/rnnbptt/generate.py, written with Model calls: the prefix as one forward, then one
/// forward per produced token from the carried state; argmax when greedy, else softmax with
/// the temperature and one sample per token from Random(seed).
template <class Scalar>
std::vector<std::int64_t> generate_by_hand(rnnbptt::Model<Scalar>& model, const std::vector<std::int64_t>& prefix,
                                           Index count, double temperature, std::uint64_t seed) {
  rnnbptt::Random rng(seed);
  auto [logits, state] = forward_last(model, prefix, {});
  std::vector<std::int64_t> out;
  std::vector<Scalar> p(logits.size());
  for (Index i = 0; i < count; ++i) {
    std::int64_t token;
    if (temperature == 0) {
      token = rnnbptt::argmax(logits);
    } else {
      rnnbptt::softmax(logits, temperature, p);
      token = rnnbptt::sample(p, rng);
    }
    out.push_back(token);
    std::tie(logits, state) = forward_last(model, {token}, state);
  }
  return out;
}

template <class Scalar>
void expect_generate_as_python() {
  auto model = language_model<Scalar>(9, 16, 8);
  rnnbptt::Model<Scalar> copy(model.config());
  copy.set_parameters(model.parameters());
  const std::vector<std::int64_t> prefix{3, 1, 4, 1, 5};
  const auto greedy = rnnbptt::generate(model, Span<const std::int64_t>(prefix), 40);
  EXPECT_EQ(greedy.size(), 40u);
  EXPECT_EQ(greedy, generate_by_hand(copy, prefix, 40, 0.0, 0));
  rnnbptt::GenerateOptions options;
  options.temperature = 0.8;
  options.seed = 12;
  const auto sampled = rnnbptt::generate(model, Span<const std::int64_t>(prefix), 40, options);
  EXPECT_EQ(sampled, generate_by_hand(copy, prefix, 40, 0.8, 12));
  EXPECT_EQ(sampled, rnnbptt::generate(model, Span<const std::int64_t>(prefix), 40, options));
  options.seed = 13;
  EXPECT_NE(sampled, rnnbptt::generate(model, Span<const std::int64_t>(prefix), 40, options));
  EXPECT_TRUE(rnnbptt::generate(model, Span<const std::int64_t>(prefix), 0).empty());
}

TEST(Inference, GenerateIsThePythonLoop) {
  expect_generate_as_python<float>();
  expect_generate_as_python<double>();
}

}  // namespace
