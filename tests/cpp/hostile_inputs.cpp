// The C++ API with no Python, off the path: every strategy through the one backward driver
// (one lane and many), streams with history, both scalar types, and misuse that must throw
// rather than read or write out of bounds. Built twice by tests/test_sanitizers.py: plain, and
// under AddressSanitizer + UndefinedBehaviorSanitizer, where any memory error aborts the run.
// Prints "checks N failures M" and exits non-zero on a failure.
#include <rnnbptt/rnnbptt.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

int checks = 0, failures = 0;

void expect(bool ok, const std::string& what) {
  ++checks;
  if (!ok) {
    ++failures;
    std::cerr << "FAILED: " << what << "\n";
  }
}

// `call` must throw std::invalid_argument whose message contains `words`.
void expect_invalid(const std::function<void()>& call, const std::string& words) {
  try {
    call();
    expect(false, "no exception, expected one containing '" + words + "'");
  } catch (const std::invalid_argument& e) {
    expect(std::string(e.what()).find(words) != std::string::npos,
           "message '" + std::string(e.what()) + "' lacks '" + words + "'");
  } catch (const std::exception& e) {
    expect(false, "wrong exception type for '" + words + "': " + e.what());
  }
}

rnnbptt::ModelConfig config_of(rnnbptt::Index d, rnnbptt::Index h, rnnbptt::Index q,
                               rnnbptt::Activation activation = rnnbptt::Activation::tanh) {
  rnnbptt::ModelConfig config;
  config.input_size = d;
  config.hidden_size = h;
  config.output_size = q;
  config.activation = activation;
  return config;
}

template <class Scalar>
bool all_finite(const Scalar* data, rnnbptt::Index size) {
  for (rnnbptt::Index i = 0; i < size; ++i)
    if (!std::isfinite(data[i])) return false;
  return true;
}

template <class Scalar>
void every_strategy(rnnbptt::Activation activation, bool tokens) {
  using rnnbptt::Index;
  // h = 37 is not a multiple of any packet: scalar tails run too.
  const rnnbptt::ModelConfig config = config_of(7, 37, 5, activation);
  rnnbptt::Model<Scalar> model(config);
  model.init_uniform(0.3, 11);
  const Index T = 23, n = 3, d = config.input_size;
  std::vector<std::int64_t> ids(T * n), targets(T * n);
  std::vector<Scalar> dense(T * n * d), weights(T * n), dh_T(n * config.hidden_size, Scalar(0.01));
  for (Index i = 0; i < T * n; ++i) {
    ids[i] = (5 * i + 2) % d;
    targets[i] = (i * 7 + 1) % config.output_size;
    weights[i] = Scalar(i % 4 == 0 ? 0 : 1);
  }
  for (Index i = 0; i < T * n * d; ++i) dense[i] = Scalar(std::sin(0.37 * static_cast<double>(i)));
  const auto x = tokens ? rnnbptt::SequenceInput<Scalar>::from_tokens(ids.data(), rnnbptt::IdType::int64, T, n)
                        : rnnbptt::SequenceInput<Scalar>::from_dense(dense.data(), T, n);
  const auto y = rnnbptt::Targets<Scalar>::from_classes(targets.data(), rnnbptt::IdType::int64, weights.data());
  const rnnbptt::Truncation strategies[] = {
      rnnbptt::Truncation::full(),          rnnbptt::Truncation::regular(1),
      rnnbptt::Truncation::regular(5),      rnnbptt::Truncation::regular(4, 9),
      rnnbptt::Truncation::regular(3, 30),  rnnbptt::Truncation::randomized(0.6, 3),
      rnnbptt::Truncation::parse("randomized:1,0.9,0.5,seed=8"),
  };
  std::vector<Scalar> dh0(n * config.hidden_size), dx(T * n * d);
  for (const auto& truncation : strategies)
    for (std::int64_t offset : {0, 7}) {
      model.forward(x);
      model.loss(y);
      rnnbptt::BackwardOptions<Scalar> options;
      options.truncation = &truncation;
      options.step_offset = offset;
      options.dh_T = dh_T.data();
      options.dh0 = dh0.data();
      if (!tokens) options.dx = dx.data();
      options.record_dh_norms = truncation.kind() != rnnbptt::Truncation::Kind::regular || truncation.k1() == truncation.k2();
      model.backward(options);
      const std::string name = truncation.to_string() + (tokens ? " tokens" : " dense");
      expect(all_finite(model.gradients(), model.num_parameters()), name + ": finite gradients");
      expect(all_finite(dh0.data(), static_cast<Index>(dh0.size())), name + ": finite dh0");
      expect(rnnbptt::Truncation::parse(truncation.to_string()) == truncation, name + ": string round trip");
    }
}

template <class Scalar>
void stream_with_history() {
  using rnnbptt::Index;
  const rnnbptt::ModelConfig config = config_of(6, 20, 6);
  rnnbptt::Model<Scalar> model(config);
  model.init_normal(0.2, 5);
  const Index chunk = 6, n = 2, chunks = 9;
  std::vector<std::int64_t> ids(chunk * n), targets(chunk * n);
  for (const auto& truncation : {rnnbptt::Truncation::regular(2, 7), rnnbptt::Truncation::regular(3),
                                 rnnbptt::Truncation::randomized(0.7, 1), rnnbptt::Truncation::full()}) {
    rnnbptt::StreamRunner<Scalar> runner(config, truncation);
    runner.reset(truncation.kind() == rnnbptt::Truncation::Kind::regular ? truncation.k1() * 4 : 5);
    for (Index c = 0; c < chunks; ++c) {
      for (Index i = 0; i < chunk * n; ++i) {
        ids[i] = (c * 13 + i * 5) % config.input_size;
        targets[i] = (c + i * 3) % config.output_size;
      }
      const auto x = rnnbptt::SequenceInput<Scalar>::from_tokens(ids.data(), rnnbptt::IdType::int64, chunk, n);
      const auto y = rnnbptt::Targets<Scalar>::from_classes(targets.data(), rnnbptt::IdType::int64);
      const double loss = runner.step(model, x, y);
      expect(std::isfinite(loss), truncation.to_string() + ": finite stream loss");
      expect(all_finite(model.gradients(), model.num_parameters()), truncation.to_string() + ": finite stream gradients");
      rnnbptt::sgd_step(model.parameters(), model.gradients(), model.num_parameters(), 0.1, 0.0);
    }
  }
}

void misuse() {
  using rnnbptt::Index;
  const rnnbptt::ModelConfig config = config_of(5, 4, 3);
  rnnbptt::Model<double> model(config);
  model.init_uniform(0.5, 1);
  std::vector<std::int64_t> ids(4, 0), targets(4, 0);
  const auto x = rnnbptt::SequenceInput<double>::from_tokens(ids.data(), rnnbptt::IdType::int64, 4, 1);
  const auto y = rnnbptt::Targets<double>::from_classes(targets.data(), rnnbptt::IdType::int64);

  expect_invalid([&] { model.backward(); }, "expected a forward pass first");
  model.forward(x);
  expect_invalid([&] { model.backward(); }, "expected dL/do");
  model.loss(y);
  // Ids changed between forward and backward: forward copied and checked them, so backward
  // runs on the ids forward saw and gives the same gradient.
  model.backward();
  const std::vector<double> expected(model.gradients(), model.gradients() + model.num_parameters());
  for (std::int64_t bad : {std::int64_t(1) << 40, std::int64_t(7), std::int64_t(-1), std::int64_t(3)}) {
    ids[2] = bad;
    model.backward();
    expect(std::equal(expected.begin(), expected.end(), model.gradients()), "ids changed after forward are not read");
  }
  ids[2] = 0;

  rnnbptt::BackwardOptions<double> options;
  const auto overlapping = rnnbptt::Truncation::regular(2, 3);
  options.truncation = &overlapping;
  options.record_dh_norms = true;
  expect_invalid([&] { model.backward(options); }, "record_dh_norms");
  options.record_dh_norms = false;
  options.step_offset = -1;
  expect_invalid([&] { model.backward(options); }, "step_offset: expected a global step index >= 0");

  ids[1] = 5;
  expect_invalid([&] { model.forward(x); }, "x: expected token ids in [0, 5)");
  ids[1] = 0;

  expect_invalid([] { rnnbptt::Truncation::regular(0); }, "k1: expected a positive number of steps");
  expect_invalid([] { rnnbptt::Truncation::regular(4, 3); }, "k2: expected k2 >= k1 = 4");
  expect_invalid([] { rnnbptt::Truncation::randomized(0.0, 1); }, "pi: expected every keep probability in (0, 1]");
  expect_invalid([] { rnnbptt::Truncation::randomized(std::nan(""), 1); }, "pi: expected");
  expect_invalid([] { rnnbptt::Truncation::randomized(std::vector<double>{}, 1); }, "empty schedule");
  for (const char* spec : {"", "regular:", "regular:x", "regular:3,", "randomized:2", "randomized:0.5,seed=",
                           "randomized:seed=1", "full:1", "regular:1,2,3", "regular:99999999999999999999999"})
    expect_invalid([spec] { rnnbptt::Truncation::parse(spec); }, "truncation: expected");

  rnnbptt::StreamRunner<double> runner(config, rnnbptt::Truncation::regular(3));
  expect_invalid([&] { runner.step(model, x, y); }, "multiple of k1 = 3");
  expect_invalid([&] { runner.reset(4); }, "position: expected a multiple of k1 = 3");
  expect_invalid([&] { runner.reset(-3); }, "position: expected a global step index >= 0");

  std::vector<double> flow(3);
  std::vector<rnnbptt::Window> windows;
  expect_invalid([&] { rnnbptt::Truncation::full().schedule(0, 3, 3, flow.data(), windows); }, "context");
}

}  // namespace

int main() {
  for (auto activation : {rnnbptt::Activation::tanh, rnnbptt::Activation::relu, rnnbptt::Activation::identity})
    for (bool tokens : {true, false}) {
      every_strategy<float>(activation, tokens);
      every_strategy<double>(activation, tokens);
    }
  stream_with_history<float>();
  stream_with_history<double>();
  misuse();
  std::cout << "checks " << checks << " failures " << failures << "\n";
  return failures == 0 ? 0 : 1;
}
