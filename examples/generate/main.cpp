// Continues a prefix with a character model from a checkpoint written by `rnnbptt train` (or
// by examples/embedded_trainer), with no Python: the C++ twin of `rnnbptt generate`.
//
//   generate --checkpoint model.safetensors --prefix "The river" [--length 200]
//            [--temperature 0.7 --seed 1]
//
// Greedy decoding (the default, temperature 0) prints exactly what `rnnbptt generate` prints
// when both run the same SIMD variant (tests/test_cpp_examples.py checks it); sampling uses
// rnnbptt::Random, so sampled text differs from Python's. A command-line mistake is one line on
// stderr with exit code 2.
#include <rnnbptt/io/checkpoint.hpp>
#include <rnnbptt/io/text.hpp>
#include <rnnbptt/rnnbptt.hpp>

#include <cstdio>
#include <iostream>
#include <string>

#include "../common/command_line.hpp"

namespace {

const char kUsage[] =
    "usage: generate [--checkpoint PATH] --prefix TEXT [--length N] [--temperature T] [--seed S]\n"
    "  --checkpoint PATH  a checkpoint with a vocabulary (default rnnbptt-checkpoint.safetensors)\n"
    "  --prefix TEXT      the text to continue (characters of the vocabulary)\n"
    "  --length N         characters to generate (default 200)\n"
    "  --temperature T    0 is greedy (default); > 0 samples softmax(o / T)\n"
    "  --seed S           random seed of sampling (default 0)\n";

template <class Scalar>
std::string generate(const std::string& path, const std::string& prefix, rnnbptt::Index length,
                     const rnnbptt::GenerateOptions& options) {
  const rnnbptt::Checkpoint<Scalar> checkpoint = rnnbptt::load_checkpoint<Scalar>(path);
  if (!checkpoint.vocab) throw example::UsageError("argument --checkpoint: " + path + " has no vocabulary");
  try {
    checkpoint.vocab->encode(prefix);
  } catch (const rnnbptt::InvalidArgument& error) {
    throw example::UsageError(std::string("argument --prefix: ") + error.what());
  }
  const rnnbptt::Model<Scalar> model = checkpoint.model();
  return rnnbptt::generate_text(model, *checkpoint.vocab, prefix, length, options);
}

int run(int argc, char** argv) {
  const example::CommandLine args(argc, argv, {"checkpoint", "prefix", "length", "temperature", "seed"}, {"help"});
  if (args.has("help")) {
    std::cout << kUsage;
    return 0;
  }
  if (!args.positional().empty()) throw example::UsageError("unrecognized argument: " + args.positional()[0]);
  if (!args.has("prefix")) throw example::UsageError("the following arguments are required: --prefix");
  const std::string path = args.text("checkpoint", "rnnbptt-checkpoint.safetensors");
  const std::string prefix = args.text("prefix", "");
  if (prefix.empty())
    throw example::UsageError("argument --prefix: expected at least one character, got an empty string");
  const rnnbptt::Index length = args.integer("length", 200, 0);
  rnnbptt::GenerateOptions options;
  options.temperature = args.real("temperature", 0.0, 0.0, false);
  options.seed = args.seed("seed", 0);

  rnnbptt::ScalarType type;
  try {
    type = rnnbptt::checkpoint_dtype(path);
  } catch (const rnnbptt::CheckpointError& error) {
    throw example::UsageError(std::string("argument --checkpoint: ") + error.what());
  }
  const std::string text = type == rnnbptt::ScalarType::float32 ? generate<float>(path, prefix, length, options)
                                                                : generate<double>(path, prefix, length, options);
  std::cout << text << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return example::main_with_exit_codes("generate", run, argc, argv); }
