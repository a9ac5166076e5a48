// Truncation: the identities that hold bit for bit (Regular(T) and Randomized(1) are Full),
// the schedules against hand-written windows, Regular and Randomized against the reference
// backward with independently computed factors xi_t, every strategy on every kind of problem
// (finite results, both scalar types), and the string forms.
#include "support.hpp"

namespace {

using rnnbptt::Activation;
using rnnbptt::Index;
using rnnbptt::LossKind;
using rnnbptt::Truncation;
using support::InputKind;

template <class Scalar>
support::Problem<Scalar> problem(InputKind input, Activation activation = Activation::tanh, std::uint64_t seed = 3) {
  // h = 37 is not a multiple of any SIMD packet: the scalar tails run too.
  return support::make_problem<Scalar>(support::config_of(7, 37, 5, activation), 23, 3, input, LossKind::cross_entropy,
                                       true, seed, 0.3);
}

template <class Scalar>
void expect_full_identities() {
  for (InputKind input : {InputKind::dense, InputKind::int32, InputKind::int64})
    for (Activation activation : {Activation::identity, Activation::tanh, Activation::relu}) {
      SCOPED_TRACE(std::string(support::name_of(input)) + " " + rnnbptt::to_string(activation));
      const auto p = problem<Scalar>(input, activation);
      rnnbptt::Model<Scalar> model(p.config);
      model.set_parameters(p.params);
      const auto full = Truncation::full();
      const auto expected = support::run_backward(model, p, &full);
      EXPECT_TRUE(support::same_bits(support::run_backward(model, p, nullptr), expected)) << "nullptr is Full";
      for (const Truncation& same :
           {Truncation::regular(p.T), Truncation::regular(p.T + 5), Truncation::regular(p.T, 3 * p.T),
            Truncation::randomized(1.0, 9), Truncation::randomized(std::vector<double>{1.0, 1.0, 1.0}, 4),
            Truncation::parse("randomized:1")})
        EXPECT_TRUE(support::same_bits(support::run_backward(model, p, &same), expected)) << same.to_string();
      // Randomized(1) never cuts, wherever the sequence sits in the stream.
      const auto never = Truncation::randomized(1.0, 2);
      EXPECT_TRUE(support::same_bits(support::run_backward(model, p, &never, 1000003), expected));
    }
}

TEST(Truncation, RegularOfTheWholeSequenceAndRandomizedOneAreFullBitForBit) {
  expect_full_identities<float>();
  expect_full_identities<double>();
}

/// The factors xi_1..xi_T of Randomized, from its documented rule: xi_1 = 1 (the sequence start
/// hands its gradient to h_0); for t >= 2, with pi = schedule[min(length, size) - 1] and length
/// the steps the current segment holds, xi_t = 1/pi when uniform_at(seed, offset + t) < pi, else
/// a cut (0) that starts a new segment.
std::vector<double> randomized_flow(const std::vector<double>& schedule, std::uint64_t seed, std::int64_t offset,
                                    Index T) {
  std::vector<double> flow(T, 1.0);
  std::size_t length = 1;
  for (Index t = 1; t < T; ++t) {
    const double pi = schedule[std::min(length, schedule.size()) - 1];
    if (rnnbptt::uniform_at(seed, offset + t + 1) < pi) {
      flow[t] = 1.0 / pi;
      ++length;
    } else {
      flow[t] = 0.0;
      length = 1;
    }
  }
  return flow;
}

/// Regular(k): a cut before every step whose global index (offset + t, 1-based t) follows a
/// multiple of k.
std::vector<double> regular_flow(Index k, std::int64_t offset, Index T) {
  std::vector<double> flow(T, 1.0);
  for (Index t = 1; t < T; ++t)
    if ((offset + t) % k == 0) flow[t] = 0.0;
  return flow;
}

void expect_reference(const support::Problem<double>& p, const Truncation& truncation, std::int64_t offset,
                      const std::vector<double>& flow) {
  rnnbptt::Model<double> model(p.config);
  model.set_parameters(p.params);
  const auto got = support::run_backward(model, p, &truncation, offset);
  const auto f = support::reference_forward(p, p.params, &p.h0);
  std::vector<std::vector<double>> dos;
  support::reference_loss(p, f, &dos);
  const auto expected = support::reference_backward(p, p.params, f, dos, flow, &p.dh_T);
  EXPECT_TRUE(support::close(got.grads, expected.params, 1e-10, 1e-13))
      << truncation.to_string() << " offset " << offset;
  EXPECT_TRUE(support::close(got.dh0, expected.dh0, 1e-10, 1e-13)) << truncation.to_string() << " offset " << offset;
  if (p.input == InputKind::dense) {
    EXPECT_TRUE(support::close(got.dx, expected.dx, 1e-10, 1e-13));
  }
}

TEST(Truncation, RandomizedMatchesTheReferenceWithItsDrawnFactors) {
  for (InputKind input : {InputKind::dense, InputKind::int64}) {
    const auto p = problem<double>(input);
    for (std::int64_t offset : {0, 13, 1000}) {
      expect_reference(p, Truncation::randomized(0.6, 5), offset, randomized_flow({0.6}, 5, offset, p.T));
      const std::vector<double> schedule{1.0, 0.9, 0.5};
      expect_reference(p, Truncation::randomized(schedule, 8), offset, randomized_flow(schedule, 8, offset, p.T));
    }
  }
}

TEST(Truncation, RegularKMatchesTheReferenceWithCutsOnTheGlobalGrid) {
  for (InputKind input : {InputKind::dense, InputKind::int32}) {
    const auto p = problem<double>(input);
    for (Index k : {1, 4, 5})
      for (std::int64_t offset : {0, 1, 7, 12})
        expect_reference(p, Truncation::regular(k), offset, regular_flow(k, offset, p.T));
  }
}

TEST(Truncation, TheSameSeedGivesTheSameGradientAndAnotherSeedOtherCuts) {
  const auto p = problem<float>(InputKind::int64);
  rnnbptt::Model<float> model(p.config);
  model.set_parameters(p.params);
  const auto a = Truncation::randomized(0.5, 11), b = Truncation::randomized(0.5, 11);
  EXPECT_TRUE(support::same_bits(support::run_backward(model, p, &a, 4), support::run_backward(model, p, &b, 4)));
  EXPECT_NE(randomized_flow({0.5}, 11, 4, p.T), randomized_flow({0.5}, 12, 4, p.T));
  const auto c = Truncation::randomized(0.5, 12);
  EXPECT_NE(support::run_backward(model, p, &a, 4).grads, support::run_backward(model, p, &c, 4).grads);
}

TEST(Truncation, UniformAtIsADeterministicDrawInTheUnitInterval) {
  double sum = 0.0;
  for (std::int64_t t = 0; t < 20000; ++t) {
    const double u = rnnbptt::uniform_at(3, t);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ASSERT_EQ(u, rnnbptt::uniform_at(3, t));
    sum += u;
  }
  EXPECT_NEAR(sum / 20000, 0.5, 0.01);
  EXPECT_NE(rnnbptt::uniform_at(3, 5), rnnbptt::uniform_at(4, 5));
}

// Every strategy through the one backward driver (one lane and many), both scalar types, every
// activation, tokens and dense values, with dh_T, dh0, dx and the recorded norms where allowed:
// the results are finite and the string form round-trips.
template <class Scalar>
void every_strategy(Activation activation, InputKind input) {
  const auto p = problem<Scalar>(input, activation, 11);
  rnnbptt::Model<Scalar> model(p.config);
  model.set_parameters(p.params);
  const Truncation strategies[] = {
      Truncation::full(),
      Truncation::regular(1),
      Truncation::regular(5),
      Truncation::regular(4, 9),
      Truncation::regular(3, 30),
      Truncation::randomized(0.6, 3),
      Truncation::parse("randomized:1,0.9,0.5,seed=8"),
  };
  for (const auto& truncation : strategies)
    for (std::int64_t offset : {0, 7}) {
      SCOPED_TRACE(truncation.to_string() + " " + support::name_of(input) + " offset " + std::to_string(offset));
      model.forward(p.x(), p.h0);
      model.loss(p.y());
      std::vector<Scalar> dh0(p.n * p.h()), dx(p.T * p.n * p.d());
      rnnbptt::BackwardOptions<Scalar> options;
      options.truncation = &truncation;
      options.step_offset = offset;
      options.dh_T = p.dh_T;
      options.dh0 = dh0;
      if (input == InputKind::dense) options.dx = dx;
      options.record_dh_norms = truncation.kind() != Truncation::Kind::regular || truncation.k1() == truncation.k2();
      model.backward(options);
      for (Scalar v : model.gradients()) ASSERT_TRUE(std::isfinite(v));
      for (Scalar v : dh0) ASSERT_TRUE(std::isfinite(v));
      for (Scalar v : dx) ASSERT_TRUE(std::isfinite(v));
      EXPECT_EQ(Truncation::parse(truncation.to_string()), truncation);
    }
}

TEST(Truncation, EveryStrategyOnEveryKindOfProblemIsFinite) {
  for (Activation activation : {Activation::tanh, Activation::relu, Activation::identity})
    for (InputKind input : {InputKind::int64, InputKind::int32, InputKind::dense}) {
      every_strategy<float>(activation, input);
      every_strategy<double>(activation, input);
    }
}

bool operator==(const rnnbptt::Window& a, const rnnbptt::Window& b) {
  return a.first == b.first && a.begin == b.begin && a.end == b.end && a.lane == b.lane;
}

struct Schedule {
  std::vector<double> flow;
  std::vector<rnnbptt::Window> windows;
  Index lanes;
};

Schedule schedule_of(const Truncation& t, std::int64_t offset, Index steps, Index context = 0) {
  Schedule s;
  s.flow.assign(steps, -1.0);
  s.lanes = t.schedule<double>(offset, steps, context, s.flow, s.windows);
  return s;
}

TEST(Truncation, SchedulesAreTheWindowsWrittenByHand) {
  // Full: one window.
  auto s = schedule_of(Truncation::full(), 0, 5);
  EXPECT_EQ(s.lanes, 1);
  ASSERT_EQ(s.windows.size(), 1u);
  EXPECT_TRUE(s.windows[0] == (rnnbptt::Window{0, 0, 5, 0}));
  EXPECT_EQ(s.flow, std::vector<double>(5, 1.0));

  // Regular(3) with the sequence after global step 1: blocks end at global multiples of 3.
  s = schedule_of(Truncation::regular(3), 1, 7);
  EXPECT_EQ(s.lanes, 1);
  ASSERT_EQ(s.windows.size(), 3u);
  EXPECT_TRUE(s.windows[0] == (rnnbptt::Window{0, 0, 2, 0}));
  EXPECT_TRUE(s.windows[1] == (rnnbptt::Window{2, 2, 5, 0}));
  EXPECT_TRUE(s.windows[2] == (rnnbptt::Window{5, 5, 7, 0}));
  EXPECT_EQ(s.flow, (std::vector<double>{1, 1, 0, 1, 1, 0, 1}));

  // Regular(2, 5): a window per block of 2 reaching 3 steps further back; 3 lanes.
  s = schedule_of(Truncation::regular(2, 5), 0, 7);
  EXPECT_EQ(s.lanes, 3);
  ASSERT_EQ(s.windows.size(), 4u);
  EXPECT_TRUE(s.windows[0] == (rnnbptt::Window{0, 0, 2, 0}));
  EXPECT_TRUE(s.windows[1] == (rnnbptt::Window{0, 2, 4, 1}));
  EXPECT_TRUE(s.windows[2] == (rnnbptt::Window{1, 4, 6, 2}));
  EXPECT_TRUE(s.windows[3] == (rnnbptt::Window{3, 6, 7, 0}));

  // History steps (a stream's context) inject no loss.
  s = schedule_of(Truncation::regular(2, 4), 6, 6, 2);
  ASSERT_EQ(s.windows.size(), 2u);
  EXPECT_TRUE(s.windows[0] == (rnnbptt::Window{0, 2, 4, 0}));
  EXPECT_TRUE(s.windows[1] == (rnnbptt::Window{2, 4, 6, 1}));

  // Randomized: the windows are the runs between the cuts.
  const auto randomized = Truncation::randomized(0.5, 21);
  s = schedule_of(randomized, 40, 30);
  EXPECT_EQ(s.flow, randomized_flow({0.5}, 21, 40, 30));
  Index first = 0;
  for (const auto& w : s.windows) {
    EXPECT_EQ(w.first, first);
    EXPECT_EQ(w.begin, w.first);
    EXPECT_EQ(s.flow[w.first], w.first > 0 ? 0.0 : 1.0);  // a cut opens every window but the first
    for (Index t = w.first + 1; t < w.end; ++t) EXPECT_EQ(s.flow[t], 2.0);
    first = w.end;
  }
  EXPECT_EQ(first, 30);
}

TEST(Truncation, StringFormsRoundTrip) {
  EXPECT_EQ(Truncation::full().to_string(), "full");
  EXPECT_EQ(Truncation::regular(5).to_string(), "regular:5");
  EXPECT_EQ(Truncation::regular(5, 5).to_string(), "regular:5");
  EXPECT_EQ(Truncation::regular(5, 20).to_string(), "regular:5,20");
  EXPECT_EQ(Truncation::randomized(0.5, 3).to_string(), "randomized:0.5,seed=3");
  EXPECT_EQ(Truncation::parse("randomized:0.9"), Truncation::randomized(0.9, 0));
  EXPECT_EQ(Truncation::parse("regular:5,20"), Truncation::regular(5, 20));
  EXPECT_NE(Truncation::parse("regular:5,20"), Truncation::regular(5, 21));
  EXPECT_NE(Truncation::randomized(0.5, 3), Truncation::randomized(0.5, 4));
  for (const char* spec :
       {"full", "regular:1", "regular:3,30", "randomized:0.1,seed=18446744073709551615", "randomized:1,0.9,0.5,seed=8"})
    EXPECT_EQ(Truncation::parse(spec).to_string(), spec);
  EXPECT_EQ(Truncation::regular(3, 8).history_steps(), 5);
  EXPECT_EQ(Truncation::regular(3).history_steps(), 0);
  EXPECT_EQ(Truncation::randomized(0.5, 1).history_steps(), 0);
  EXPECT_NO_THROW(Truncation::regular(3, 8).check_chunk(9, "x"));
  EXPECT_NO_THROW(Truncation::full().check_chunk(7, "x"));
}

}  // namespace
