// Trains a character-level language model on a text file with no Python: a Vocab, the text cut
// into parallel streams, a StreamRunner carrying the hidden state from chunk to chunk,
// clip_grad_norm and Adam, for a bounded number of steps or seconds; then the validation
// perplexity, a checkpoint (which Python's rnnbptt.checkpoint.load and `rnnbptt generate`
// read), and text sampled from the checkpoint read back (greedy, and with a temperature and a
// seed).
//
//   embedded_trainer corpus.txt [--steps 300] [--seconds 0] [--cell elman] [--layers 1]
//                    [--hidden 64] [--batch 16]
//                    [--num-steps 32] [--truncation regular:16,32] [--lr 0.01] [--clip 1]
//                    [--seed 0] [--checkpoint embedded.safetensors] [--prefix TEXT]
//                    [--sample-length 120] [--temperature 0.8] [--threads N]
//                    [--outputs FILE]
//
// --outputs writes the checkpoint's model's outputs on the first (up to) 64 characters of the
// text, run as one sequence, as hexadecimal floats: tests/test_cpp_examples.py checks that
// Python computes the same bits. A command-line mistake is one line on stderr, exit code 2.
#include <rnnbptt/io/checkpoint.hpp>
#include <rnnbptt/io/text.hpp>
#include <rnnbptt/rnnbptt.hpp>
#include <rnnbptt/train/data.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "../common/command_line.hpp"

namespace {

using rnnbptt::Index;

const char kUsage[] =
    "usage: embedded_trainer TEXT [options]\n"
    "  TEXT                a UTF-8 text file to train on (90% training, 10% validation)\n"
    "  --steps N           optimizer steps (default 300)\n"
    "  --seconds S         stop after S seconds of training, whichever comes first (default 0: no limit)\n"
    "  --cell CELL         elman, gru or lstm (default elman)\n"
    "  --layers L          stacked layers (default 1)\n"
    "  --hidden H          hidden units (default 64)\n"
    "  --batch B           parallel streams (default 16)\n"
    "  --num-steps T       steps per chunk (default 32)\n"
    "  --truncation SPEC   full | regular:K[,K2] | randomized:PI[,...][,seed=S] (default regular:16,32)\n"
    "  --lr LR             Adam's learning rate (default 0.01)\n"
    "  --clip C            global-norm clipping threshold, 0 for none (default 1)\n"
    "  --seed S            initialization seed (default 0)\n"
    "  --checkpoint PATH   where to save (default embedded.safetensors)\n"
    "  --prefix TEXT       prefix of the samples (default: the first 10 characters)\n"
    "  --sample-length N   characters per sample (default 120)\n"
    "  --temperature T     temperature of the second sample (default 0.8)\n"
    "  --threads N         core threads (default: OpenMP's)\n"
    "  --outputs FILE      write the saved model's outputs on the text's start as hex floats\n";

struct Settings {
  std::string text_path, checkpoint, prefix, outputs;
  Index steps, hidden, layers, batch, num_steps, sample_length;
  rnnbptt::Cell cell = rnnbptt::Cell::elman;
  double seconds, lr, clip, temperature;
  std::uint64_t seed;
  rnnbptt::Truncation truncation = rnnbptt::Truncation::full();
};

Settings parse(int argc, char** argv, bool& help) {
  const example::CommandLine args(
      argc, argv,
      {"steps", "seconds", "cell", "layers", "hidden", "batch", "num-steps", "truncation", "lr", "clip", "seed",
       "checkpoint", "prefix", "sample-length", "temperature", "threads", "outputs"},
      {"help"});
  help = args.has("help");
  Settings s;
  if (help) return s;
  if (args.positional().size() != 1)
    throw example::UsageError(args.positional().empty() ? "the following arguments are required: TEXT"
                                                        : "unrecognized argument: " + args.positional()[1]);
  s.text_path = args.positional()[0];
  s.steps = args.integer("steps", 300, 1);
  s.seconds = args.real("seconds", 0.0, 0.0, false);
  s.hidden = args.integer("hidden", 64, 1);
  s.layers = args.integer("layers", 1, 1);
  try {
    s.cell = rnnbptt::cell_from_string(args.text("cell", "elman"));
  } catch (const rnnbptt::InvalidArgument& error) {
    const std::string message = error.what();  // "cell: expected ..."
    throw example::UsageError("argument --cell: " + message.substr(message.find(": ") + 2));
  }
  s.batch = args.integer("batch", 16, 1);
  s.num_steps = args.integer("num-steps", 32, 1);
  s.lr = args.real("lr", 0.01, 0.0, true);
  s.clip = args.real("clip", 1.0, 0.0, false);
  s.seed = args.seed("seed", 0);
  s.checkpoint = args.text("checkpoint", "embedded.safetensors");
  s.prefix = args.text("prefix", "");
  s.sample_length = args.integer("sample-length", 120, 0);
  s.temperature = args.real("temperature", 0.8, 0.0, true);
  s.outputs = args.text("outputs", "");
  if (args.has("threads")) rnnbptt::set_num_threads(static_cast<int>(args.integer("threads", 1, 1)));
  try {
    s.truncation = rnnbptt::Truncation::parse(args.text("truncation", "regular:16,32"));
  } catch (const rnnbptt::InvalidArgument& error) {
    throw example::UsageError(std::string("argument --truncation: ") + error.what());
  }
  try {
    s.truncation.check_chunk(s.num_steps, "argument --num-steps");  // chunks hold whole blocks of k1 steps
  } catch (const rnnbptt::InvalidArgument& error) {
    throw example::UsageError(error.what());
  }
  return s;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw example::UsageError("argument TEXT: cannot read " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty()) throw example::UsageError("argument TEXT: expected a non-empty file, got an empty one: " + path);
  return text;
}

/// Every distinct character of the text (invalid UTF-8 is a mistake in the TEXT argument).
rnnbptt::Vocab vocabulary(const std::string& text, const std::string& path) {
  try {
    return rnnbptt::Vocab::from_text(text);
  } catch (const rnnbptt::InvalidArgument& error) {
    throw example::UsageError("argument TEXT: " + path + ": " + error.what());
  }
}

// The training loop (docs/cpp.md shows it in short).
void train(rnnbptt::Model<float>& model, rnnbptt::Adam<float>& adam, const rnnbptt::Streams& streams,
           const Settings& s) {
  rnnbptt::StreamRunner<float> runner(model.config(), s.truncation);
  const auto start = std::chrono::steady_clock::now();
  const Index report_every = std::max<Index>(1, s.steps / 10);
  double loss_sum = 0.0;
  Index losses = 0, step = 0;
  for (; step < s.steps; ++step) {
    const Index chunk = step % streams.chunks();
    if (chunk == 0 && step > 0) runner.reset(runner.position());  // a new epoch: fresh streams, steps keep counting
    const auto x =
        rnnbptt::SequenceInput<float>::from_tokens(streams.chunk_inputs(chunk), streams.num_steps, streams.batch);
    const auto y = rnnbptt::Targets<float>::from_classes(streams.chunk_targets(chunk));
    loss_sum += runner.step(model, x, y);  // forward, loss, backward: model.gradients() is this chunk's
    ++losses;
    if (s.clip > 0) rnnbptt::clip_grad_norm(model.gradients(), s.clip);
    adam.step(model.parameters(), model.gradients());
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const bool out_of_time = s.seconds > 0 && elapsed >= s.seconds;
    if ((step + 1) % report_every == 0 || step + 1 == s.steps || out_of_time) {
      const double loss = loss_sum / static_cast<double>(losses);
      std::printf("step %lld  loss %.4f  perplexity %.3f  %.0f tokens/s\n", static_cast<long long>(step) + 1, loss,
                  std::exp(loss), static_cast<double>((step + 1) * streams.num_steps * streams.batch) / elapsed);
      std::fflush(stdout);
      loss_sum = 0.0;
      losses = 0;
    }
    if (out_of_time) {
      ++step;
      break;
    }
  }
  std::printf("trained %lld steps\n", static_cast<long long>(step));
}

/// The model's outputs on `ids` run as one sequence (n = 1), one hexadecimal float per line
/// after a "T q" line.
void write_outputs(const std::string& path, rnnbptt::Model<float>& model, const std::vector<std::int64_t>& ids) {
  const Index T = static_cast<Index>(ids.size());
  model.forward(rnnbptt::SequenceInput<float>::from_tokens(ids, T, 1));
  std::FILE* out = std::fopen(path.c_str(), "w");
  if (out == nullptr) throw example::UsageError("argument --outputs: cannot write " + path);
  std::fprintf(out, "%lld %lld\n", static_cast<long long>(T), static_cast<long long>(model.config().output_size));
  for (float value : model.outputs()) std::fprintf(out, "%a\n", static_cast<double>(value));
  std::fclose(out);
}

int run(int argc, char** argv) {
  bool help = false;
  const Settings s = parse(argc, argv, help);
  if (help) {
    std::cout << kUsage;
    return 0;
  }
  const std::string text = read_text(s.text_path);
  const rnnbptt::Vocab vocab = vocabulary(text, s.text_path);
  const std::vector<std::int64_t> corpus = vocab.encode(text);
  // The first 90% for training, the rest for validation (Python's data.split(corpus, 0.1)).
  const auto cut = static_cast<std::ptrdiff_t>(std::llround(static_cast<double>(corpus.size()) * 0.9));
  const std::vector<std::int64_t> train_ids(corpus.begin(), corpus.begin() + cut),
      valid_ids(corpus.begin() + cut, corpus.end());
  rnnbptt::Streams streams;
  try {
    streams = rnnbptt::split_streams(train_ids, s.batch, s.num_steps);
  } catch (const rnnbptt::InvalidArgument& error) {
    throw example::UsageError("argument TEXT: too short for --batch " + std::to_string(s.batch) + " and --num-steps " +
                              std::to_string(s.num_steps) + " (" + error.what() + ")");
  }
  std::string prefix = s.prefix;
  if (prefix.empty())
    prefix = vocab.decode(rnnbptt::Span<const std::int64_t>(train_ids.data(), std::min<Index>(10, cut)));
  try {
    vocab.encode(prefix);
  } catch (const rnnbptt::InvalidArgument& error) {
    throw example::UsageError(std::string("argument --prefix: ") + error.what());
  }

  rnnbptt::ModelConfig config;
  config.input_size = config.output_size = vocab.size();
  config.hidden_size = s.hidden;
  config.cell = s.cell;
  config.num_layers = s.layers;
  rnnbptt::Model<float> model(config);
  model.init_normal(0.1, s.seed);
  rnnbptt::Adam<float> adam(model.num_parameters(), s.lr);
  std::printf(
      "training on %s: %zu tokens (%zu held out), %lld symbols, %s x %lld, hidden %lld, truncation %s, "
      "%lld streams x %lld steps, %s\n",
      s.text_path.c_str(), train_ids.size(), valid_ids.size(), static_cast<long long>(vocab.size()),
      rnnbptt::to_string(s.cell), static_cast<long long>(s.layers), static_cast<long long>(s.hidden),
      s.truncation.to_string().c_str(), static_cast<long long>(s.batch), static_cast<long long>(s.num_steps),
      rnnbptt::simd_instruction_sets());
  train(model, adam, streams, s);
  if (valid_ids.size() >= 2) {
    const double valid = rnnbptt::evaluate(model, valid_ids);
    std::printf("validation loss %.4f  perplexity %.3f\n", valid, std::exp(valid));
  }

  rnnbptt::Checkpoint<float> checkpoint = rnnbptt::Checkpoint<float>::from_model(model);
  checkpoint.vocab = vocab;
  checkpoint.optimizer = adam;
  checkpoint.trainer_json = "{\"trained_by\": \"examples/embedded_trainer\"}";
  rnnbptt::save_checkpoint(s.checkpoint, checkpoint);
  std::printf("checkpoint written to %s\n", s.checkpoint.c_str());

  // Everything below uses the checkpoint read back.
  const auto loaded = rnnbptt::load_checkpoint<float>(s.checkpoint);
  rnnbptt::Model<float> saved = loaded.model();
  std::printf("greedy:\n%s\n", rnnbptt::generate_text(saved, *loaded.vocab, prefix, s.sample_length).c_str());
  rnnbptt::GenerateOptions sampling;
  sampling.temperature = s.temperature;
  sampling.seed = s.seed;
  std::printf("temperature %g, seed %llu:\n%s\n", s.temperature, static_cast<unsigned long long>(s.seed),
              rnnbptt::generate_text(saved, *loaded.vocab, prefix, s.sample_length, sampling).c_str());
  if (!s.outputs.empty()) {
    const std::vector<std::int64_t> start(corpus.begin(), corpus.begin() + std::min<std::ptrdiff_t>(64, cut));
    write_outputs(s.outputs, saved, start);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return example::main_with_exit_codes("embedded_trainer", run, argc, argv); }
