// Every error path of the public API: each argument of each function given a wrong length,
// value or state throws our exception type (rnnbptt/core/error.hpp) with a message that names the
// argument, says what was expected and what was received ("<name>: expected ..., got ..."),
// and nothing is read or written out of bounds (this suite runs under AddressSanitizer and
// UndefinedBehaviorSanitizer too, tests/test_sanitizers.py).
#include "support.hpp"

#include <limits>

namespace {

using rnnbptt::Index;
using rnnbptt::InvalidArgument;
using rnnbptt::Span;
using rnnbptt::StateError;
using rnnbptt::Truncation;

/// `call` throws E whose message holds "<name>: expected", "got" and every one of `more`.
template <class E = InvalidArgument>
::testing::AssertionResult names(const std::function<void()>& call, const std::string& name,
                                 std::initializer_list<std::string> more = {}) {
  std::vector<std::string> words{name + ": expected", "got"};
  words.insert(words.end(), more.begin(), more.end());
  return support::throws<E>(call, words);
}

#define EXPECT_NAMES(call, ...) EXPECT_TRUE(names([&] { call; }, __VA_ARGS__))
#define EXPECT_STATE(call, ...) EXPECT_TRUE(names<StateError>([&] { call; }, __VA_ARGS__))

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// ---- Configuration -------------------------------------------------------------------------

TEST(Errors, Configuration) {
  EXPECT_NAMES(rnnbptt::activation_from_string("sigmoid"), "activation", {"'sigmoid'"});
  EXPECT_EQ(rnnbptt::activation_from_string("relu"), rnnbptt::Activation::relu);
  for (Index bad : {Index(0), Index(-3)}) {
    EXPECT_NAMES(support::config_of(bad, 4, 3).validate(), "input_size");
    EXPECT_NAMES(support::config_of(5, bad, 3).validate(), "hidden_size");
    EXPECT_NAMES(support::config_of(5, 4, bad).validate(), "output_size");
    EXPECT_NAMES(rnnbptt::Model<float>(support::config_of(5, bad, 3)), "hidden_size");
    EXPECT_NAMES(rnnbptt::StreamRunner<float>(support::config_of(bad, 4, 3), Truncation::full()), "input_size");
  }
  // A parameter count that overflows, and one that fits in the type but not in memory.
  const Index huge = Index(1) << 40;
  EXPECT_TRUE(names<rnnbptt::SizeError>([&] { support::config_of(huge, huge, 3).validate(); }, "hidden_size"));
  EXPECT_TRUE(names<rnnbptt::SizeError>([&] { rnnbptt::Model<double>(support::config_of(5, Index(1) << 31, 3)); },
                                        "hidden_size"));
  // 2**56 parameters fit in std::ptrdiff_t, but no address space holds their 2**58 bytes.
  EXPECT_TRUE(support::throws<rnnbptt::AllocationError>(
      [] { rnnbptt::Model<float>(support::config_of(5, Index(1) << 28, 3)); }, {"hidden_size: cannot allocate"}));
  const rnnbptt::ParameterLayout layout(support::config_of(5, 4, 3));
  EXPECT_NAMES(layout.find("W_xx"), "name", {"'W_xx'"});
  EXPECT_EQ(layout.find("W_hh").offset, 20);
}

TEST(Errors, Initialization) {
  rnnbptt::Model<float> model(support::config_of(5, 4, 3));
  for (double bad : {-1.0, kNaN, kInf, 1e39}) EXPECT_NAMES(model.init_uniform(bad, 1), "bound");
  for (double bad : {-1.0, kNaN, kInf}) EXPECT_NAMES(model.init_normal(bad, 1), "init_std");
  // Draws that would overflow float leave the parameters unchanged.
  const auto before = support::copy_of(model.parameters());
  EXPECT_NAMES(model.init_normal(5e38, 1), "init_std", {"float32"});  // finite in double, not in float
  EXPECT_TRUE(support::same_bits(model.parameters(), before));
  std::vector<float> short_params(model.num_parameters() - 1);
  EXPECT_NAMES(model.set_parameters(short_params), "values", {"expected 55 values", "got a buffer of 54"});
}

// ---- Model: forward, loss, backward --------------------------------------------------------

struct Fixture {
  rnnbptt::Model<double> model{support::config_of(5, 4, 3)};
  std::vector<std::int64_t> ids = std::vector<std::int64_t>(4, 0), targets = std::vector<std::int64_t>(4, 0);
  Fixture() { model.init_uniform(0.5, 1); }
  rnnbptt::SequenceInput<double> x() const { return rnnbptt::SequenceInput<double>::from_tokens(ids, 4, 1); }
  rnnbptt::Targets<double> y() const { return rnnbptt::Targets<double>::from_classes(targets); }
};

TEST(Errors, CallsOutOfOrderAreStateErrors) {
  Fixture f;
  EXPECT_STATE(f.model.backward(), "backward", {"expected a forward pass first"});
  EXPECT_STATE(f.model.outputs(), "outputs");
  EXPECT_STATE(f.model.final_state(), "final_state");
  EXPECT_STATE(f.model.loss(f.y()), "loss");
  const std::vector<double> d_outputs(12);
  EXPECT_STATE(f.model.set_output_gradient(d_outputs), "d_outputs");
  f.model.forward(f.x());
  EXPECT_STATE(f.model.backward(), "backward", {"expected dL/do"});
  f.model.loss(f.y());
  EXPECT_NO_THROW(f.model.backward());
  // rnn_backward and loss_forward on a fresh workspace.
  rnnbptt::Workspace<double> ws;
  std::vector<double> dparams(f.model.num_parameters());
  EXPECT_STATE(rnnbptt::loss_forward(ws, f.model.config(), f.y()), "loss");
  EXPECT_STATE(rnnbptt::rnn_backward<double>(dparams, ws, f.model.config(), f.model.layout(), f.model.parameters(), {}),
               "backward");
  // A StateError is one of ours.
  rnnbptt::Model<double> fresh(f.model.config());
  EXPECT_THROW(fresh.backward(), rnnbptt::Error);
}

TEST(Errors, IdsChangedAfterForwardAreNeverRead) {
  // Forward copied and checked the ids: backward runs on the ids forward saw.
  Fixture f;
  f.model.forward(f.x());
  f.model.loss(f.y());
  f.model.backward();
  const auto expected = support::copy_of(f.model.gradients());
  for (std::int64_t bad : {std::int64_t(1) << 40, std::int64_t(7), std::int64_t(-1), std::int64_t(3)}) {
    f.ids[2] = bad;
    f.model.backward();
    EXPECT_TRUE(support::same_bits(f.model.gradients(), expected)) << "ids changed after forward are not read";
  }
}

TEST(Errors, ForwardInputs) {
  Fixture f;
  f.ids[1] = 5;
  EXPECT_NAMES(f.model.forward(f.x()), "x", {"expected token ids in [0, 5)", "got 5 at [1, 0]"});
  f.ids[1] = -1;
  EXPECT_NAMES(f.model.forward(f.x()), "x", {"token ids in [0, 5)"});
  f.ids[1] = 0;
  const std::vector<std::int32_t> ids32{0, 1, 9, 2};
  EXPECT_NAMES(f.model.forward(rnnbptt::SequenceInput<double>::from_tokens(ids32, 4, 1)), "x", {"got 9"});
  using In = rnnbptt::SequenceInput<double>;
  // Shapes and lengths.
  EXPECT_NAMES(f.model.forward(In::from_tokens(f.ids, 0, 1)), "x", {"T >= 1"});
  EXPECT_NAMES(f.model.forward(In::from_tokens(f.ids, 4, 0)), "x", {"n >= 1"});
  EXPECT_NAMES(f.model.forward(In::from_tokens(f.ids, -4, -1)), "x");
  EXPECT_NAMES(f.model.forward(In::from_tokens(f.ids, 5, 1)), "x", {"expected 5 values", "got a buffer of 4"});
  EXPECT_NAMES(f.model.forward(In::from_tokens(f.ids, 2, 1)), "x", {"expected 2 values", "got a buffer of 4"});
  EXPECT_NAMES(f.model.forward(In::from_tokens(Span<const std::int64_t>(f.ids.data(), -1), 4, 1)), "x");
  EXPECT_NAMES(f.model.forward(In::from_tokens(Span<const std::int64_t>(nullptr, 4), 4, 1)), "x", {"null pointer"});
  EXPECT_NAMES(
      f.model.forward(In::from_tokens(rnnbptt::IdView(f.ids.data(), static_cast<rnnbptt::IdType>(7), 4), 4, 1)), "x",
      {"int32 or int64"});
  EXPECT_TRUE(names<rnnbptt::SizeError>([&] { f.model.forward(In::from_tokens(f.ids, Index(1) << 62, 8)); }, "x"));
  // Dense input: length, non-finite values (named with their position).
  std::vector<double> dense(4 * 1 * 5, 0.5);
  EXPECT_NAMES(f.model.forward(In::from_dense(dense, 4, 2)), "x",
               {"expected 40 values", "T x n x d = 4 x 2 x 5", "got a buffer of 20"});
  dense[7] = kNaN;
  EXPECT_NAMES(f.model.forward(In::from_dense(dense, 4, 1)), "x", {"finite", "nan"});
  dense[7] = -kInf;
  EXPECT_NAMES(f.model.forward(In::from_dense(dense, 4, 1)), "x", {"finite", "inf"});
  dense[7] = 0.5;
  EXPECT_NO_THROW(f.model.forward(In::from_dense(dense, 4, 1)));
  // h0.
  std::vector<double> h0(3);
  EXPECT_NAMES(f.model.forward(f.x(), h0), "h0", {"expected 4 values", "got a buffer of 3"});
  h0.assign(4, 0.0);
  h0[2] = kNaN;
  EXPECT_NAMES(f.model.forward(f.x(), h0), "h0", {"finite"});
}

TEST(Errors, LossTargetsAndWeights) {
  Fixture f;
  f.model.forward(f.x());
  using Y = rnnbptt::Targets<double>;
  f.targets[3] = 3;
  EXPECT_NAMES(f.model.loss(f.y()), "targets", {"class ids in [0, 3)", "got 3"});
  f.targets[3] = -2;
  EXPECT_NAMES(f.model.loss(f.y()), "targets", {"got -2"});
  f.targets[3] = 0;
  const std::vector<std::int64_t> three(3, 0);
  EXPECT_NAMES(f.model.loss(Y::from_classes(three)), "targets", {"expected 4 values", "got a buffer of 3"});
  EXPECT_NAMES(f.model.loss(Y::from_classes(Span<const std::int64_t>(nullptr, 4))), "targets", {"null pointer"});
  std::vector<double> dense(12, 0.1);
  EXPECT_NAMES(f.model.loss(Y::from_dense(Span<const double>(dense.data(), 11))), "targets", {"expected 12 values"});
  dense[5] = kNaN;
  EXPECT_NAMES(f.model.loss(Y::from_dense(dense)), "targets", {"finite"});
  std::vector<double> weights(4, 1.0);
  EXPECT_NAMES(f.model.loss(Y::from_classes(f.targets, Span<const double>(weights.data(), 3))), "weights",
               {"expected 4 values"});
  for (double bad : {-1.0, kNaN, kInf}) {
    weights[1] = bad;
    EXPECT_NAMES(f.model.loss(Y::from_classes(f.targets, weights)), "weights", {">= 0"});
  }
  weights.assign(4, 0.0);
  EXPECT_NAMES(f.model.loss(Y::from_classes(f.targets, weights)), "weights", {"positive sum"});
  // set_output_gradient.
  std::vector<double> d_outputs(11);
  EXPECT_NAMES(f.model.set_output_gradient(d_outputs), "d_outputs", {"expected 12 values"});
  d_outputs.assign(12, 0.0);
  d_outputs[0] = kInf;
  EXPECT_NAMES(f.model.set_output_gradient(d_outputs), "d_outputs", {"finite"});
}

TEST(Errors, BackwardOptions) {
  Fixture f;
  f.model.forward(f.x());
  f.model.loss(f.y());
  rnnbptt::BackwardOptions<double> options;
  const auto overlapping = Truncation::regular(2, 3);
  options.truncation = &overlapping;
  options.record_dh_norms = true;
  EXPECT_NAMES(f.model.backward(options), "record_dh_norms", {"regular:2,3"});
  options = {};
  options.step_offset = -1;
  EXPECT_NAMES(f.model.backward(options), "step_offset", {"expected a global step index >= 0"});
  options.step_offset = std::numeric_limits<std::int64_t>::max() - 2;
  EXPECT_NAMES(f.model.backward(options), "step_offset", {"2**63 - 1 - T"});
  options = {};
  std::vector<double> small(3), h(4), dx(20);
  options.dh_T = small;
  EXPECT_NAMES(f.model.backward(options), "dh_T", {"expected 4 values", "got a buffer of 3"});
  h[1] = kNaN;
  options.dh_T = h;
  EXPECT_NAMES(f.model.backward(options), "dh_T", {"finite"});
  options = {};
  options.dh0 = small;
  EXPECT_NAMES(f.model.backward(options), "dh0", {"expected 4 values"});
  options = {};
  options.dx = dx;
  EXPECT_NAMES(f.model.backward(options), "dx", {"dense input", "token ids"});
  // dx of the wrong length for dense input.
  std::vector<double> dense(20, 0.5);
  f.model.forward(rnnbptt::SequenceInput<double>::from_dense(dense, 4, 1));
  f.model.loss(f.y());
  options.dx = Span<double>(dx.data(), 19);
  EXPECT_NAMES(f.model.backward(options), "dx", {"expected 20 values", "got a buffer of 19"});
  options.dx = dx;
  EXPECT_NO_THROW(f.model.backward(options));
}

TEST(Errors, TheFreeFunctionPairs) {
  Fixture f;
  rnnbptt::Workspace<double> ws;
  const auto& config = f.model.config();
  const auto& layout = f.model.layout();
  std::vector<double> params = support::copy_of(f.model.parameters()), h0(4);
  const Span<const double> short_params(params.data(), 10);
  EXPECT_NAMES(rnnbptt::rnn_forward<double>(ws, config, layout, short_params, f.x(), {}), "params",
               {"expected 55 values"});
  EXPECT_NAMES(rnnbptt::rnn_forward<double>(ws, config, layout, params, f.x(), {}, 4), "context_steps");
  EXPECT_NAMES(rnnbptt::rnn_forward<double>(ws, config, layout, params, f.x(), {}, -1), "context_steps");
  rnnbptt::rnn_forward<double>(ws, config, layout, params, f.x(), {});
  EXPECT_NAMES(rnnbptt::rnn_forward<double>(ws, config, layout, params, f.x(), h0, 2), "h0");
  rnnbptt::loss_forward(ws, config, f.y());
  std::vector<double> dparams(params.size());
  EXPECT_NAMES(rnnbptt::rnn_backward<double>(Span<double>(dparams.data(), 54), ws, config, layout, params, {}),
               "dparams", {"expected 55 values"});
  EXPECT_NAMES(rnnbptt::rnn_backward<double>(dparams, ws, config, layout, short_params, {}), "params");
  EXPECT_NO_THROW(rnnbptt::rnn_backward<double>(dparams, ws, config, layout, params, {}));
}

// ---- Truncation ----------------------------------------------------------------------------

TEST(Errors, Truncation) {
  EXPECT_NAMES(Truncation::regular(0), "k1", {"expected a positive number of steps"});
  EXPECT_NAMES(Truncation::regular(-2, 5), "k1");
  EXPECT_NAMES(Truncation::regular(4, 3), "k2", {"expected k2 >= k1 = 4", "got 3"});
  EXPECT_NAMES(Truncation::randomized(0.0, 1), "pi", {"expected every keep probability in (0, 1]"});
  EXPECT_NAMES(Truncation::randomized(1.5, 1), "pi");
  EXPECT_NAMES(Truncation::randomized(kNaN, 1), "pi");
  EXPECT_NAMES(Truncation::randomized(std::vector<double>{}, 1), "pi", {"empty schedule"});
  EXPECT_NAMES(Truncation::randomized(std::vector<double>{1.0, -0.5}, 1), "pi", {"at index 1"});
  for (const char* spec : {"", "regular:", "regular:x", "regular:3,", "randomized:2", "randomized:0.5,seed=",
                           "randomized:seed=1", "full:1", "regular:1,2,3", "regular:99999999999999999999999",
                           "regular:0", "regular:5,2", "randomized:0.5,seed=1,0.4", "Full", " full"})
    EXPECT_NAMES(Truncation::parse(spec), "truncation", {std::string("'") + spec + "'"}) << spec;
  EXPECT_NAMES(Truncation::regular(3).check_chunk(7, "x"), "x", {"expected a multiple of k1 = 3", "got 7"});
  // schedule(): every argument.
  std::vector<double> flow(3);
  std::vector<rnnbptt::Window> windows;
  const auto full = Truncation::full();
  EXPECT_NAMES(full.schedule<double>(0, 3, 3, flow, windows), "context");
  EXPECT_NAMES(full.schedule<double>(0, 3, -1, flow, windows), "context");
  EXPECT_NAMES(full.schedule<double>(-1, 3, 0, flow, windows), "step_offset");
  EXPECT_NAMES(full.schedule<double>(0, 0, 0, flow, windows), "steps");
  EXPECT_NAMES(full.schedule<double>(0, 4, 0, flow, windows), "flow", {"expected 4 values", "got a buffer of 3"});
  EXPECT_NO_THROW(full.schedule<double>(0, 3, 0, flow, windows));
}

// ---- StreamRunner --------------------------------------------------------------------------

TEST(Errors, StreamRunner) {
  Fixture f;
  rnnbptt::StreamRunner<double> runner(f.model.config(), Truncation::regular(3));
  EXPECT_NAMES(runner.step(f.model, f.x(), f.y()), "x: the chunk length T", {"multiple of k1 = 3", "got 4"});
  EXPECT_NAMES(runner.reset(4), "position", {"expected a multiple of k1 = 3"});
  EXPECT_NAMES(runner.reset(-3), "position", {"expected a global step index >= 0"});

  rnnbptt::StreamRunner<double> full(f.model.config(), Truncation::full());
  rnnbptt::Model<double> other(support::config_of(5, 6, 3));
  EXPECT_NAMES(full.step(other, f.x(), f.y()), "model", {"h=4", "h=6"});
  std::vector<double> params = support::copy_of(f.model.parameters()), grads(params.size());
  EXPECT_NAMES(full.step(Span<const double>(params.data(), 5), grads, f.x(), f.y()), "params");
  EXPECT_NAMES(full.step(params, Span<double>(grads.data(), 5), f.x(), f.y()), "dparams");
  EXPECT_NO_THROW(full.step(f.model, f.x(), f.y()));
  // The stream keeps its batch size and input kind until reset.
  const std::vector<std::int64_t> two(8, 1);
  EXPECT_NAMES(full.step(f.model, rnnbptt::SequenceInput<double>::from_tokens(two, 4, 2),
                         rnnbptt::Targets<double>::from_classes(two)),
               "x", {"batch size n = 1", "n = 2"});
  std::vector<double> dense(20, 0.1);
  EXPECT_NAMES(full.step(f.model, rnnbptt::SequenceInput<double>::from_dense(dense, 4, 1), f.y()), "x", {"token ids"});
  // Targets are checked against the chunk.
  const std::vector<std::int64_t> three(3, 0);
  EXPECT_NAMES(full.step(f.model, f.x(), rnnbptt::Targets<double>::from_classes(three)), "targets");
  const std::int64_t position = full.position();
  f.ids[0] = 99;
  EXPECT_NAMES(full.step(f.model, f.x(), f.y()), "x", {"token ids in [0, 5)"});
  EXPECT_EQ(full.position(), position) << "a refused chunk is not consumed";
}

TEST(Errors, StreamRunnerRestore) {
  const auto config = support::config_of(5, 4, 3);
  rnnbptt::StreamRunner<double> runner(config, Truncation::regular(3, 8));
  std::vector<double> state(2 * 4, 0.25), states(3 * 2 * 4, 0.25);
  std::vector<std::int64_t> tokens(2 * 2, 1);
  EXPECT_NO_THROW(runner.restore(12, 2, state, 2, tokens, states));
  EXPECT_EQ(runner.position(), 12);
  EXPECT_NAMES(runner.restore(-3, 2, state, 2, tokens, states), "position");
  EXPECT_NAMES(runner.restore(13, 2, state, 2, tokens, states), "position", {"multiple of k1 = 3"});
  EXPECT_NAMES(runner.restore(12, 0, state, 2, tokens, states), "state", {"n >= 1"});
  EXPECT_NAMES(runner.restore(12, 2, state, 6, tokens, states), "history", {"0 to 5 steps", "got 6"});
  EXPECT_NAMES(runner.restore(12, 2, state, -1, tokens, states), "history");
  EXPECT_NAMES(runner.restore(0, 2, state, 2, tokens, states), "history", {"at most the 0 steps consumed"});
  EXPECT_NAMES(runner.restore(12, 2, Span<const double>(state.data(), 7), 2, tokens, states), "state",
               {"expected 8 values"});
  EXPECT_NAMES(runner.restore(12, 2, state, 2, Span<const std::int64_t>(tokens.data(), 3), states), "history inputs",
               {"expected 4 values"});
  EXPECT_NAMES(runner.restore(12, 2, state, 2, tokens, Span<const double>(states.data(), 23)), "history states",
               {"expected 24 values"});
  EXPECT_NAMES(runner.restore(12, 2, state, 0, tokens, {}), "history inputs");
  EXPECT_NAMES(runner.restore(12, 2, state, 0, {}, states), "history states");
  states[20] = 0.5;
  EXPECT_NAMES(runner.restore(12, 2, state, 2, tokens, states), "history states", {"last row to equal state"});
  states[20] = 0.25;
  tokens[3] = 9;
  EXPECT_NAMES(runner.restore(12, 2, state, 2, tokens, states), "history inputs", {"token ids in [0, 5)", "got 9"});
  tokens[3] = 1;
  state[0] = kNaN;
  EXPECT_NAMES(runner.restore(12, 2, state, 2, tokens, states), "state", {"finite"});
  // A restore that throws leaves the runner as it was.
  EXPECT_EQ(runner.position(), 12);
  EXPECT_EQ(runner.history_steps(), 2);
  EXPECT_EQ(runner.batch(), 2);
}

// ---- Clipping, optimizers, diagnostics, threads --------------------------------------------

TEST(Errors, Clipping) {
  std::vector<float> g{1.0f, 2.0f};
  for (double bad : {0.0, -1.0, kNaN, kInf}) {
    EXPECT_NAMES(rnnbptt::clip_grad_norm(g, bad), "max_norm");
    EXPECT_NAMES(rnnbptt::clip_grad_value(g, bad), "clip_value");
  }
  EXPECT_NAMES(rnnbptt::clip_grad_norm(g, 1.0, static_cast<rnnbptt::NonFinitePolicy>(5)), "policy");
  EXPECT_NAMES(rnnbptt::global_norm(Span<const float>(g.data(), -1)), "grads");
  EXPECT_NAMES(rnnbptt::clip_grad_norm(Span<float>(nullptr, 2), 1.0), "grads", {"null pointer"});
  EXPECT_NAMES(rnnbptt::clip_grad_value(Span<float>(nullptr, 2), 1.0), "grads");
  EXPECT_TRUE(support::same_bits(g, std::vector<float>{1.0f, 2.0f})) << "refused calls change nothing";
}

TEST(Errors, Optimizers) {
  std::vector<double> p(4, 1.0), g(4, 0.5), three(3);
  for (double bad : {0.0, -1.0, kNaN, kInf}) EXPECT_NAMES(rnnbptt::sgd_step(p, g, bad), "lr");
  for (double bad : {-1.0, kNaN, kInf}) EXPECT_NAMES(rnnbptt::sgd_step(p, g, 0.1, bad), "weight_decay");
  EXPECT_NAMES(rnnbptt::sgd_step(p, three, 0.1), "grads", {"expected 4 values", "got a buffer of 3"});
  EXPECT_NAMES(rnnbptt::sgd_step(Span<double>(p.data(), -1), g, 0.1), "params");
  EXPECT_NAMES(rnnbptt::sgd_step(Span<double>(nullptr, 4), g, 0.1), "params", {"null pointer"});
  EXPECT_TRUE(support::same_bits(p, std::vector<double>(4, 1.0))) << "refused steps change nothing";

  using Adam = rnnbptt::Adam<double>;
  for (double bad : {0.0, -1.0, kNaN, kInf}) EXPECT_NAMES(Adam(4, bad), "lr");
  for (double bad : {1.0, -0.1, kNaN}) {
    EXPECT_NAMES(Adam(4, 0.1, bad), "beta1");
    EXPECT_NAMES(Adam(4, 0.1, 0.9, bad), "beta2");
  }
  for (double bad : {0.0, -1.0, kNaN, kInf}) EXPECT_NAMES(Adam(4, 0.1, 0.9, 0.999, bad), "eps");
  for (double bad : {-1.0, kNaN, kInf}) EXPECT_NAMES(Adam(4, 0.1, 0.9, 0.999, 1e-8, bad), "weight_decay");
  EXPECT_NAMES(Adam(-1, 0.1), "size");
  EXPECT_TRUE(names<rnnbptt::SizeError>([] { Adam(std::numeric_limits<Index>::max() / 4, 0.1); }, "size"));
  Adam adam(4, 0.1);
  EXPECT_NAMES(adam.step(three, g), "params", {"expected 4 values"});
  EXPECT_NAMES(adam.step(p, three), "grads", {"expected 4 values"});
  adam.lr = kNaN;  // the members are public: step() validates them
  EXPECT_NAMES(adam.step(p, g), "lr");
  adam.lr = 0.1;
  adam.v.resize(3);
  EXPECT_NAMES(adam.step(p, g), "v");
  EXPECT_EQ(adam.step_count, 0) << "refused steps are not counted";
  EXPECT_TRUE(support::same_bits(p, std::vector<double>(4, 1.0)));
}

TEST(Errors, DiagnosticsAndThreads) {
  std::vector<double> W(9, 0.1);
  EXPECT_NAMES(rnnbptt::spectral_radius(W, 0), "W_hh");
  EXPECT_NAMES(rnnbptt::spectral_radius(W, 4), "W_hh", {"expected 16 values"});
  EXPECT_NAMES(rnnbptt::largest_singular_value(Span<const double>(W.data(), 8), 3), "W_hh", {"expected 9 values"});
  W[4] = kNaN;
  EXPECT_NAMES(rnnbptt::spectral_radius(W, 3), "W_hh", {"finite"});
  EXPECT_NAMES(rnnbptt::largest_singular_value(W, 3), "W_hh", {"finite"});
  for (int bad : {0, -2}) EXPECT_NAMES(rnnbptt::set_num_threads(bad), "threads", {">= 1"});
  EXPECT_GE(rnnbptt::get_num_threads(), 1);
}

// ---- Inference -----------------------------------------------------------------------------

TEST(Errors, Inference) {
  rnnbptt::Model<float> model(support::config_of(5, 4, 5));
  model.init_uniform(0.5, 2);
  rnnbptt::Predictor<float> predictor(model);
  std::vector<float> h(3), x(4), nan_h(4, 0.0f);
  EXPECT_NAMES(predictor.set_state(h), "h", {"expected 4 values"});
  nan_h[1] = NAN;
  EXPECT_NAMES(predictor.set_state(nan_h), "h", {"finite"});
  const std::vector<std::int64_t> none, bad{1, 5}, negative{-1};
  EXPECT_NAMES(predictor.feed(none), "tokens", {"at least one"});
  EXPECT_NAMES(predictor.feed(bad), "tokens", {"[0, 5)", "got 5"});
  EXPECT_NAMES(predictor.feed(negative), "tokens");
  EXPECT_NAMES(predictor.step(5), "token", {"[0, 5)"});
  EXPECT_NAMES(predictor.step(-1), "token");
  EXPECT_NAMES(predictor.step_dense(x), "x", {"expected 5 values"});
  EXPECT_TRUE(support::same_bits(predictor.state(), std::vector<float>(4, 0.0f))) << "refused calls change nothing";

  const std::vector<double> logits{1.0, 2.0}, empty, with_nan{1.0, kNaN};
  std::vector<double> out(2), short_out(1);
  for (double bad : {0.0, -1.0, kNaN, kInf}) EXPECT_NAMES(rnnbptt::softmax(logits, bad, out), "temperature");
  EXPECT_NAMES(rnnbptt::softmax(logits, 1.0, short_out), "out", {"expected 2 values"});
  EXPECT_NAMES(rnnbptt::softmax(empty, 1.0, out), "logits", {"at least one"});
  EXPECT_NAMES(rnnbptt::softmax(with_nan, 1.0, out), "logits", {"finite"});
  EXPECT_NAMES(rnnbptt::argmax(empty), "logits", {"at least one"});
  rnnbptt::Random rng(1);
  const std::vector<double> negative_p{0.5, -0.1}, nan_p{kNaN, 1.0}, zero{0.0, 0.0};
  EXPECT_NAMES(rnnbptt::sample(empty, rng), "probabilities");
  EXPECT_NAMES(rnnbptt::sample(negative_p, rng), "probabilities", {">= 0"});
  EXPECT_NAMES(rnnbptt::sample(nan_p, rng), "probabilities", {"finite"});
  EXPECT_NAMES(rnnbptt::sample(zero, rng), "probabilities", {"positive sum"});

  const std::vector<std::int64_t> prefix{1, 2};
  EXPECT_NAMES(rnnbptt::generate(model, Span<const std::int64_t>(none), 3), "prefix", {"at least one"});
  EXPECT_NAMES(rnnbptt::generate(model, Span<const std::int64_t>(bad), 3), "prefix", {"got 5"});
  EXPECT_NAMES(rnnbptt::generate(model, Span<const std::int64_t>(prefix), -1), "count");
  for (double t : {-1.0, kNaN, kInf}) {
    rnnbptt::GenerateOptions options;
    options.temperature = t;
    EXPECT_NAMES(rnnbptt::generate(model, Span<const std::int64_t>(prefix), 3, options), "temperature");
  }
  rnnbptt::Model<float> mismatched(support::config_of(5, 4, 6));
  EXPECT_NAMES(rnnbptt::generate(mismatched, Span<const std::int64_t>(prefix), 3), "model",
               {"input_size == output_size"});
  model.parameters()[7] = NAN;
  EXPECT_NAMES(rnnbptt::generate(model, Span<const std::int64_t>(prefix), 3), "model", {"finite parameters", "W_hx"});
}

}  // namespace
