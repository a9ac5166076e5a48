// Checkpoints within C++: save -> load gives back every field, parameters and outputs bit for
// bit, for both scalar types; saving what was loaded writes the same bytes; a stream runner
// restored from a checkpoint continues exactly; failures are CheckpointErrors naming the file.
// (Across languages: tests/test_cpp_examples.py. Corrupt files: test_checkpoint_fuzz.cpp.)
#include "support.hpp"

#include <rnnbptt/io/checkpoint.hpp>
#include <rnnbptt/io/text.hpp>

#include <filesystem>
#include <fstream>
#include <limits>

namespace {

using rnnbptt::Checkpoint;
using rnnbptt::Index;
using rnnbptt::Span;
using rnnbptt::Truncation;

namespace fs = std::filesystem;

/// A fresh folder under GoogleTest's temporary directory, named after the running test.
fs::path test_folder() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path folder =
      fs::path(::testing::TempDir()) / (std::string("rnnbptt_") + info->test_suite_name() + "_" + info->name());
  fs::remove_all(folder);
  fs::create_directories(folder);
  return folder;
}

std::vector<std::uint8_t> file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// A character model trained a few steps with Adam over a stream with Regular(2, 5): a
/// checkpoint with every part (vocab, Adam moments, trainer entry, runner state with history).
template <class Scalar>
struct Trained {
  rnnbptt::Vocab vocab = rnnbptt::Vocab::from_text("the quick brown fox jumps over the lazy dog, the end");
  rnnbptt::Model<Scalar> model{support::config_of(vocab.size(), 10, vocab.size())};
  rnnbptt::StreamRunner<Scalar> runner{model.config(), Truncation::regular(2, 5)};
  rnnbptt::Adam<Scalar> adam{model.num_parameters(), 0.01};
  std::vector<std::int64_t> ids = vocab.encode("the quick brown fox jumps over the lazy dog, the end");

  Trained() {
    model.init_normal(0.3, 4);
    for (Index chunk = 0; chunk < 3; ++chunk) step(chunk);
  }
  /// Chunk `i`: 4 steps of 2 streams cut from the ids.
  rnnbptt::SequenceInput<Scalar> x(Index i) const {
    return rnnbptt::SequenceInput<Scalar>::from_tokens(Span<const std::int64_t>(ids.data() + 8 * i, 8), 4, 2);
  }
  rnnbptt::Targets<Scalar> y(Index i) const {
    return rnnbptt::Targets<Scalar>::from_classes(Span<const std::int64_t>(ids.data() + 8 * i + 1, 8));
  }
  double step(Index i) {
    const double loss = runner.step(model, x(i), y(i));
    adam.step(model.parameters(), model.gradients());
    return loss;
  }
  Checkpoint<Scalar> checkpoint() const {
    auto c = Checkpoint<Scalar>::from_model(model);
    c.vocab = vocab;
    c.optimizer = adam;
    c.trainer_json = R"({"epoch": 0, "step": 3, "batch_size": 2, "note": "written by test_checkpoint.cpp"})";
    rnnbptt::RunnerState<Scalar> state;
    state.batch = runner.batch();
    state.state.assign(runner.state().begin(), runner.state().end());
    state.has_history = true;
    state.history = runner.history_steps();
    state.history_tokens.assign(runner.history_tokens().begin(), runner.history_tokens().end());
    state.history_states.assign(runner.history_states().begin(), runner.history_states().end());
    c.runner = state;
    return c;
  }
};

TEST(RunnerState, FromRunnerCopiesWhatTheRunnerCarries) {
  Trained<float> run;  // three chunks into a Regular(2, 5) stream
  const rnnbptt::StreamRunner<float> fresh(run.model.config(), Truncation::regular(2, 5));
  EXPECT_THROW(rnnbptt::RunnerState<float>::from_runner(fresh), rnnbptt::StateError);  // no chunk yet
  const auto made = rnnbptt::RunnerState<float>::from_runner(run.runner);
  const auto by_hand = run.checkpoint().runner.value();  // the fields written out one by one
  EXPECT_EQ(made.batch, by_hand.batch);
  EXPECT_EQ(made.has_history, by_hand.has_history);
  EXPECT_EQ(made.history, by_hand.history);
  EXPECT_GT(made.history, 0);
  EXPECT_EQ(made.history_tokens, by_hand.history_tokens);
  EXPECT_TRUE(std::equal(made.state.begin(), made.state.end(), by_hand.state.begin(), by_hand.state.end()));
  EXPECT_TRUE(std::equal(made.history_states.begin(), made.history_states.end(), by_hand.history_states.begin(),
                         by_hand.history_states.end()));
}

template <class Scalar>
void expect_same(const Checkpoint<Scalar>& a, const Checkpoint<Scalar>& b) {
  EXPECT_EQ(a.config.input_size, b.config.input_size);
  EXPECT_EQ(a.config.hidden_size, b.config.hidden_size);
  EXPECT_EQ(a.config.output_size, b.config.output_size);
  EXPECT_EQ(a.config.activation, b.config.activation);
  EXPECT_EQ(a.config.bias, b.config.bias);
  EXPECT_TRUE(support::same_bits(a.parameters, b.parameters));
  EXPECT_EQ(a.vocab, b.vocab);
  EXPECT_EQ(a.trainer_json, b.trainer_json);
  ASSERT_EQ(a.optimizer.index(), b.optimizer.index());
  if (a.sgd()) {
    EXPECT_EQ(a.sgd()->lr, b.sgd()->lr);
    EXPECT_EQ(a.sgd()->weight_decay, b.sgd()->weight_decay);
  }
  if (a.adam()) {
    EXPECT_EQ(a.adam()->lr, b.adam()->lr);
    EXPECT_EQ(a.adam()->beta1, b.adam()->beta1);
    EXPECT_EQ(a.adam()->beta2, b.adam()->beta2);
    EXPECT_EQ(a.adam()->eps, b.adam()->eps);
    EXPECT_EQ(a.adam()->weight_decay, b.adam()->weight_decay);
    EXPECT_EQ(a.adam()->step_count, b.adam()->step_count);
    EXPECT_TRUE(support::same_bits(a.adam()->m, b.adam()->m));
    EXPECT_TRUE(support::same_bits(a.adam()->v, b.adam()->v));
  }
  ASSERT_EQ(a.runner.has_value(), b.runner.has_value());
  if (a.runner) {
    EXPECT_EQ(a.runner->batch, b.runner->batch);
    EXPECT_TRUE(support::same_bits(a.runner->state, b.runner->state));
    EXPECT_EQ(a.runner->has_history, b.runner->has_history);
    EXPECT_EQ(a.runner->history, b.runner->history);
    EXPECT_EQ(a.runner->history_tokens, b.runner->history_tokens);
    EXPECT_TRUE(support::same_bits(a.runner->history_inputs, b.runner->history_inputs));
    EXPECT_TRUE(support::same_bits(a.runner->history_states, b.runner->history_states));
  }
}

template <class Scalar>
void expect_round_trip(rnnbptt::ScalarType type) {
  const fs::path folder = test_folder();
  Trained<Scalar> trained;
  const auto saved = trained.checkpoint();
  const fs::path path = folder / "model.safetensors";
  rnnbptt::save_checkpoint(path, saved);
  EXPECT_EQ(rnnbptt::checkpoint_dtype(path), type);
  const auto loaded = rnnbptt::load_checkpoint<Scalar>(path);
  expect_same(saved, loaded);

  // The loaded model computes the same outputs, bit for bit.
  auto model = loaded.model();
  trained.model.forward(trained.x(0));
  model.forward(trained.x(0));
  EXPECT_TRUE(support::same_bits(model.outputs(), trained.model.outputs()));
  EXPECT_TRUE(support::same_bits(model.parameters(), trained.model.parameters()));

  // Saving what was loaded writes the same bytes, to a file and in memory; parsing the bytes
  // gives the same checkpoint.
  const fs::path again = folder / "again.safetensors";
  rnnbptt::save_checkpoint(again, loaded);
  const auto bytes = file_bytes(path);
  EXPECT_EQ(file_bytes(again), bytes);
  EXPECT_EQ(rnnbptt::serialize_checkpoint(loaded), bytes);
  expect_same(saved, rnnbptt::parse_checkpoint<Scalar>(bytes));
  EXPECT_EQ(rnnbptt::checkpoint_dtype(Span<const std::uint8_t>(bytes)), type);

  // Only the two files are left: no temporary file survives a save.
  Index files = 0;
  for (const auto& entry : fs::directory_iterator(folder)) {
    ++files;
    EXPECT_EQ(entry.path().extension(), ".safetensors") << entry.path();
  }
  EXPECT_EQ(files, 2);
  // Overwriting an existing file works too.
  rnnbptt::save_checkpoint(path, loaded);
  EXPECT_EQ(file_bytes(path), bytes);
}

TEST(Checkpoint, SaveThenLoadGivesBackEverythingBitForBit) {
  expect_round_trip<float>(rnnbptt::ScalarType::float32);
  expect_round_trip<double>(rnnbptt::ScalarType::float64);
}

TEST(Checkpoint, MinimalCheckpointsRoundTrip) {
  // No vocabulary, no optimizer (or SGD), no runner, no biases, another activation.
  for (bool bias : {true, false}) {
    rnnbptt::Model<double> model(support::config_of(3, 4, 2, rnnbptt::Activation::relu, bias));
    model.init_uniform(0.5, 9);
    auto c = Checkpoint<double>::from_model(model);
    EXPECT_EQ(c.trainer_json, "{}");
    const auto bytes = rnnbptt::serialize_checkpoint(c);
    const auto loaded = rnnbptt::parse_checkpoint<double>(bytes);
    expect_same(c, loaded);
    EXPECT_FALSE(loaded.vocab.has_value());
    c.optimizer = rnnbptt::SgdSettings{0.5, 0.001};
    const auto with_sgd = rnnbptt::serialize_checkpoint(c);
    expect_same(c, rnnbptt::parse_checkpoint<double>(with_sgd));
  }
}

TEST(Checkpoint, ARunnerRestoredFromACheckpointContinuesExactly) {
  Trained<float> trained;
  const auto bytes = rnnbptt::serialize_checkpoint(trained.checkpoint());
  const auto loaded = rnnbptt::parse_checkpoint<float>(bytes);
  auto model = loaded.model();
  rnnbptt::Adam<float> adam = *loaded.adam();
  rnnbptt::StreamRunner<float> runner(model.config(), Truncation::regular(2, 5));
  const auto& r = *loaded.runner;
  runner.restore(trained.runner.position(), r.batch, r.state, r.history, r.history_tokens, r.history_states);
  for (Index chunk = 3; chunk < 6; ++chunk) {
    const double expected = trained.step(chunk);
    EXPECT_EQ(runner.step(model, trained.x(chunk), trained.y(chunk)), expected);
    adam.step(model.parameters(), model.gradients());
    EXPECT_TRUE(support::same_bits(model.parameters(), trained.model.parameters())) << "chunk " << chunk;
  }
}

TEST(Checkpoint, ADenseStreamsHistoryRoundTripsAndContinuesExactly) {
  // A GRU over a dense series with Regular(3, 8): the history is k x n x d values.
  rnnbptt::ModelConfig config = support::config_of(3, 5, 2);
  config.cell = rnnbptt::Cell::gru;
  const auto p = support::make_problem<double>(config, 24, 2, support::InputKind::dense,
                                               rnnbptt::LossKind::squared_error, false, 6);
  rnnbptt::Model<double> model(config);
  model.set_parameters(p.params);
  rnnbptt::StreamRunner<double> runner(config, Truncation::regular(3, 8));
  for (Index start = 0; start < 12; start += 6) runner.step(model, p.x(start, 6), p.y(start, 6, {}));
  auto c = Checkpoint<double>::from_model(model);
  c.trainer_json = R"({"batch_size": 2})";
  c.runner = rnnbptt::RunnerState<double>::from_runner(runner);
  EXPECT_TRUE(c.runner->history_tokens.empty());
  EXPECT_EQ(static_cast<Index>(c.runner->history_inputs.size()), 5 * 2 * 3);
  const auto bytes = rnnbptt::serialize_checkpoint(c);
  const auto loaded = rnnbptt::parse_checkpoint<double>(bytes);
  expect_same(c, loaded);
  EXPECT_EQ(rnnbptt::serialize_checkpoint(loaded), bytes);

  rnnbptt::StreamRunner<double> resumed(config, Truncation::regular(3, 8));
  loaded.runner->restore(resumed, runner.position());
  for (Index start = 12; start < 24; start += 6) {
    const double expected = runner.step(model, p.x(start, 6), p.y(start, 6, {}));
    const auto grads = support::copy_of(model.gradients());
    EXPECT_EQ(resumed.step(model, p.x(start, 6), p.y(start, 6, {})), expected);
    EXPECT_TRUE(support::same_bits(model.gradients(), grads)) << "chunk at " << start;
  }
  // Non-finite history inputs are refused when saving (what load would refuse is never written).
  auto forged = c;
  forged.runner->history_inputs[4] = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(support::throws<rnnbptt::CheckpointError>([&] { rnnbptt::serialize_checkpoint(forged); },
                                                        {"trainer.runner.history_inputs", "finite"}));
}

TEST(Checkpoint, FailuresAreCheckpointErrorsNamingTheFile) {
  const fs::path folder = test_folder();
  const fs::path missing = folder / "missing.safetensors";
  EXPECT_TRUE(
      support::throws<rnnbptt::CheckpointError>([&] { rnnbptt::load_checkpoint<float>(missing); }, {missing.string()}));
  EXPECT_TRUE(
      support::throws<rnnbptt::CheckpointError>([&] { rnnbptt::checkpoint_dtype(missing); }, {missing.string()}));
  // A float32 checkpoint is not read as float64.
  Trained<float> trained;
  const fs::path path = folder / "float.safetensors";
  rnnbptt::save_checkpoint(path, trained.checkpoint());
  EXPECT_TRUE(support::throws<rnnbptt::CheckpointError>([&] { rnnbptt::load_checkpoint<double>(path); },
                                                        {path.string(), "float32"}));
  // A folder is not a file; an empty file and a text file are not checkpoints.
  EXPECT_THROW(rnnbptt::load_checkpoint<float>(folder), rnnbptt::CheckpointError);
  std::ofstream(folder / "empty.safetensors").close();
  EXPECT_THROW(rnnbptt::load_checkpoint<float>(folder / "empty.safetensors"), rnnbptt::CheckpointError);
  std::ofstream(folder / "text.safetensors") << "not a checkpoint at all, just some text";
  EXPECT_THROW(rnnbptt::load_checkpoint<float>(folder / "text.safetensors"), rnnbptt::CheckpointError);
  // Contents Python could not load back are refused before anything is written.
  auto bad = trained.checkpoint();
  bad.parameters.pop_back();
  const fs::path refused = folder / "refused.safetensors";
  EXPECT_TRUE(support::throws<rnnbptt::CheckpointError>([&] { rnnbptt::save_checkpoint(refused, bad); },
                                                        {refused.string(), "cannot save"}));
  bad = trained.checkpoint();
  bad.trainer_json = "[1, 2]";
  EXPECT_THROW(rnnbptt::save_checkpoint(refused, bad), rnnbptt::CheckpointError);
  bad = trained.checkpoint();
  bad.optimizer = rnnbptt::SgdSettings{-1.0, 0.0};
  EXPECT_THROW(rnnbptt::save_checkpoint(refused, bad), rnnbptt::CheckpointError);
  EXPECT_FALSE(fs::exists(refused));
  // A folder that cannot be written (a file stands where the folder should be).
  EXPECT_TRUE(support::throws<rnnbptt::CheckpointError>(
      [&] { rnnbptt::save_checkpoint(path / "inside.safetensors", trained.checkpoint()); }, {"inside.safetensors"}));
}

}  // namespace
