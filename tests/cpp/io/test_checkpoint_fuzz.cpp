// Corrupt checkpoints: deterministic mutations of valid files (bit flips, truncations, byte
// insertions and deletions, header lengths that lie, edits of the JSON header) must each either
// load or throw CheckpointError; nothing else, no crash, no read out of bounds (this runs under
// AddressSanitizer and UndefinedBehaviorSanitizer too, tests/test_sanitizers.py). Changes that
// the digest or the layout must catch (any single flipped bit, any truncation) must throw.
#include "support.hpp"

#include <rnnbptt/io/checkpoint.hpp>
#include <rnnbptt/io/text.hpp>

#include <cctype>
#include <map>

namespace {

using rnnbptt::Checkpoint;
using rnnbptt::Index;
using Bytes = std::vector<std::uint8_t>;

/// Three valid files: a float character model with every part (vocabulary, Adam moments,
/// trainer entry, runner state with history), a bare double model, and one without biases
/// with SGD settings.
std::vector<Bytes> valid_files() {
  std::vector<Bytes> files;
  {
    const auto vocab = rnnbptt::Vocab::from_text("abcab cba!");
    rnnbptt::Model<float> model(support::config_of(vocab.size(), 6, vocab.size()));
    model.init_normal(0.2, 1);
    rnnbptt::StreamRunner<float> runner(model.config(), rnnbptt::Truncation::regular(2, 4));
    rnnbptt::Adam<float> adam(model.num_parameters(), 0.01);
    const std::vector<std::int64_t> ids{0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 1, 2, 2, 3};  // 5 symbols
    for (int chunk = 0; chunk < 2; ++chunk) {
      runner.step(
          model,
          rnnbptt::SequenceInput<float>::from_tokens(rnnbptt::Span<const std::int64_t>(ids.data() + 4 * chunk, 4), 2,
                                                     2),
          rnnbptt::Targets<float>::from_classes(rnnbptt::Span<const std::int64_t>(ids.data() + 4 * chunk + 1, 4)));
      adam.step(model.parameters(), model.gradients());
    }
    auto c = Checkpoint<float>::from_model(model);
    c.vocab = vocab;
    c.optimizer = adam;
    c.trainer_json = R"({"epoch": 3, "step": 2, "batch_size": 2, "rng": {"state": 12345}})";
    c.runner = rnnbptt::RunnerState<float>::from_runner(runner);
    files.push_back(rnnbptt::serialize_checkpoint(c));
  }
  {
    rnnbptt::Model<double> model(support::config_of(3, 4, 2));
    model.init_uniform(0.5, 2);
    files.push_back(rnnbptt::serialize_checkpoint(Checkpoint<double>::from_model(model)));
  }
  {
    rnnbptt::Model<float> model(support::config_of(2, 3, 2, rnnbptt::Activation::identity, false));
    model.init_uniform(0.5, 3);
    auto c = Checkpoint<float>::from_model(model);
    c.optimizer = rnnbptt::SgdSettings{0.5, 0.0};
    files.push_back(rnnbptt::serialize_checkpoint(c));
  }
  return files;
}

std::uint64_t header_length(const Bytes& b) {
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | b[i];
  return n;
}

void set_header_length(Bytes& b, std::uint64_t n) {
  for (int i = 0; i < 8; ++i) b[i] = static_cast<std::uint8_t>(n >> (8 * i));
}

/// The file with its JSON header replaced by `json`; the length field tells the truth when
/// `honest`, else it keeps the old length.
Bytes with_header(const Bytes& file, const std::string& json, bool honest) {
  const std::size_t data = 8 + static_cast<std::size_t>(header_length(file));
  Bytes out(8 + json.size() + (file.size() - data));
  std::copy(file.begin(), file.begin() + 8, out.begin());
  std::copy(json.begin(), json.end(), out.begin() + 8);
  std::copy(file.begin() + static_cast<std::ptrdiff_t>(data), file.end(),
            out.begin() + 8 + static_cast<std::ptrdiff_t>(json.size()));
  if (honest) set_header_length(out, json.size());
  return out;
}

std::string header_of(const Bytes& file) {
  return std::string(file.begin() + 8, file.begin() + 8 + static_cast<std::ptrdiff_t>(header_length(file)));
}

/// One edit of the JSON text: a digit, a dtype, a number, a structural character, a metadata
/// value, a cut.
std::string edit_json(std::string json, support::Draw& draw) {
  auto position_of = [&](const std::string& pattern) -> std::ptrdiff_t {
    std::vector<std::size_t> found;
    for (std::size_t at = json.find(pattern); at != std::string::npos; at = json.find(pattern, at + 1))
      found.push_back(at);
    return found.empty() ? -1 : static_cast<std::ptrdiff_t>(found[draw.below(static_cast<std::int64_t>(found.size()))]);
  };
  static const char* const kDtypes[] = {"F32", "F64", "I64", "F16", "BF16", "U8", "I32", "", "F32\\u0000"};
  static const char* const kNumbers[] = {"0",
                                         "-1",
                                         "1",
                                         "18446744073709551615",
                                         "18446744073709551616",
                                         "1e400",
                                         "1.5",
                                         "9223372036854775807",
                                         "-9223372036854775808",
                                         "4294967296",
                                         "null",
                                         "\"7\""};
  static const char* const kStructure[] = {"{", "}", "[", "]", ":", ",", "\"", "\\", " ", "\n", "\x01", "\xff"};
  switch (draw.below(8)) {
    case 0: {  // one digit changed
      const auto at = position_of(std::string(1, static_cast<char>('0' + draw.below(10))));
      if (at >= 0) json[static_cast<std::size_t>(at)] = static_cast<char>('0' + draw.below(10));
      break;
    }
    case 1: {  // a dtype replaced
      for (const char* d : {"\"F32\"", "\"F64\"", "\"I64\""}) {
        const auto at = position_of(d);
        if (at >= 0) {
          json.replace(static_cast<std::size_t>(at) + 1, 3, kDtypes[draw.below(std::size(kDtypes))]);
          break;
        }
      }
      break;
    }
    case 2: {  // a whole number (run of digits) replaced
      std::ptrdiff_t at = position_of(std::string(1, static_cast<char>('0' + draw.below(10))));
      if (at < 0) break;
      std::size_t end = static_cast<std::size_t>(at);
      while (at > 0 && std::isdigit(static_cast<unsigned char>(json[static_cast<std::size_t>(at) - 1]))) --at;
      while (end < json.size() && std::isdigit(static_cast<unsigned char>(json[end]))) ++end;
      json.replace(static_cast<std::size_t>(at), end - static_cast<std::size_t>(at),
                   kNumbers[draw.below(std::size(kNumbers))]);
      break;
    }
    case 3: {  // a structural character deleted
      const auto at = position_of(kStructure[draw.below(6)]);
      if (at >= 0) json.erase(static_cast<std::size_t>(at), 1);
      break;
    }
    case 4:  // a structural character inserted
      json.insert(static_cast<std::size_t>(draw.below(static_cast<std::int64_t>(json.size()) + 1)),
                  kStructure[draw.below(std::size(kStructure))]);
      break;
    case 5: {  // a metadata value or key renamed
      static const char* const kFrom[] = {"rnnbptt-checkpoint",
                                          "format_version",
                                          "\\\"activation\\\"",
                                          "tanh",
                                          "\\\"bias\\\"",
                                          "true",
                                          "float32",
                                          "float64",
                                          "adam",
                                          "W_hh",
                                          "b_q",
                                          "optimizer.m",
                                          "trainer.runner.state",
                                          "__metadata__",
                                          "sha256",
                                          "data_offsets"};
      static const char* const kTo[] = {"", "x", "relu", "false", "float16", "W_hx", "sgd", "\\\"", "2", "1"};
      const std::string from = kFrom[draw.below(std::size(kFrom))];
      const auto at = position_of(from);
      if (at >= 0) json.replace(static_cast<std::size_t>(at), from.size(), kTo[draw.below(std::size(kTo))]);
      break;
    }
    case 6:  // cut
      json.resize(static_cast<std::size_t>(draw.below(static_cast<std::int64_t>(json.size()))));
      break;
    default: {  // one byte of the JSON text changed to any value
      json[static_cast<std::size_t>(draw.below(static_cast<std::int64_t>(json.size())))] =
          static_cast<char>(draw.below(256));
      break;
    }
  }
  return json;
}

enum class Mutation {
  bit_flip,
  bit_flips,
  truncation,
  insertion,
  deletion,
  header_length,
  json_edit,
  appended,
  garbage
};
const char* const kMutationNames[] = {"bit_flip",      "bit_flips", "truncation", "insertion", "deletion",
                                      "header_length", "json_edit", "appended",   "garbage"};

Bytes mutate(const Bytes& file, Mutation kind, support::Draw& draw) {
  Bytes b = file;
  const auto size = static_cast<std::int64_t>(b.size());
  switch (kind) {
    case Mutation::bit_flip:
      b[static_cast<std::size_t>(draw.below(size))] ^= static_cast<std::uint8_t>(1u << draw.below(8));
      break;
    case Mutation::bit_flips:
      for (std::int64_t i = 0, flips = 2 + draw.below(7); i < flips; ++i)
        b[static_cast<std::size_t>(draw.below(size))] ^= static_cast<std::uint8_t>(1u << draw.below(8));
      break;
    case Mutation::truncation:
      b.resize(static_cast<std::size_t>(draw.below(size)));
      break;
    case Mutation::insertion: {
      const auto at = b.begin() + draw.below(size + 1);
      Bytes extra(static_cast<std::size_t>(1 + draw.below(8)));
      for (auto& v : extra) v = static_cast<std::uint8_t>(draw.below(256));
      b.insert(at, extra.begin(), extra.end());
      break;
    }
    case Mutation::deletion: {
      const std::int64_t at = draw.below(size), count = std::min<std::int64_t>(1 + draw.below(8), size - at);
      b.erase(b.begin() + at, b.begin() + at + count);
      break;
    }
    case Mutation::header_length: {
      const std::uint64_t n = header_length(file), total = file.size();
      const std::uint64_t lies[] = {0,
                                    1,
                                    2,
                                    n - 1,
                                    n + 1,
                                    n - 8,
                                    n + 8,
                                    total - 8,
                                    total - 7,
                                    total,
                                    total + 1,
                                    std::uint64_t(1) << 32,
                                    std::uint64_t(1) << 63,
                                    ~std::uint64_t(0),
                                    ~std::uint64_t(0) - 7,
                                    draw.next()};
      set_header_length(b, lies[draw.below(std::size(lies))]);
      break;
    }
    case Mutation::json_edit:
      b = with_header(file, edit_json(header_of(file), draw), draw.below(4) != 0);
      break;
    case Mutation::appended:
      for (std::int64_t i = 0, extra = 1 + draw.below(16); i < extra; ++i)
        b.push_back(static_cast<std::uint8_t>(draw.below(256)));
      break;
    case Mutation::garbage: {
      b.assign(static_cast<std::size_t>(draw.below(512)), 0);
      for (auto& v : b) v = static_cast<std::uint8_t>(draw.below(256));
      if (b.size() >= 8 && draw.below(2)) set_header_length(b, b.size() - 8 - draw.below(8));
      break;
    }
  }
  return b;
}

/// Loads `bytes` as float and double and asks for its dtype: each must succeed or throw
/// CheckpointError. A checkpoint that loads is consistent and saves again.
/// Whether `text` is well-formed UTF-8, by the decoding rule: each sequence decodes to a code
/// point in the range its length allows, never a surrogate, at most U+10FFFF.
bool is_utf8(const std::string& text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const std::size_t length = lead < 0x80         ? 1
                               : (lead >> 5) == 6  ? 2
                               : (lead >> 4) == 14 ? 3
                               : (lead >> 3) == 30 ? 4
                                                   : 0;
    if (length == 0 || i + length > text.size()) return false;
    std::uint32_t code = length == 1 ? lead : lead & (0x7F >> length);
    for (std::size_t k = 1; k < length; ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      if ((c >> 6) != 2) return false;
      code = (code << 6) | (c & 0x3F);
    }
    const std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < smallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += length;
  }
  return true;
}

template <class Scalar>
bool loads(const Bytes& bytes, std::string& failure) {
  try {
    const auto c = rnnbptt::parse_checkpoint<Scalar>(bytes, "fuzzed");
    if (static_cast<Index>(c.parameters.size()) != rnnbptt::ParameterLayout(c.config).total)
      failure = "loaded with a parameter count that disagrees with its configuration";
    const auto saved = rnnbptt::serialize_checkpoint(c);
    const auto again = rnnbptt::parse_checkpoint<Scalar>(saved);
    if (!support::same_bits(again.parameters, c.parameters)) failure = "a loaded checkpoint does not save back";
    return true;
  } catch (const rnnbptt::CheckpointError& error) {
    if (std::string(error.what()).rfind("fuzzed", 0) != 0)
      failure = std::string("message without the name: ") + error.what();
    else if (!is_utf8(error.what()))
      failure = std::string("a message that is not UTF-8 (it quotes the file's bytes raw): ") + error.what();
    return false;
  } catch (const std::exception& error) {
    failure = std::string("not a CheckpointError: ") + error.what();
  } catch (...) {
    failure = "an exception that is not a std::exception";
  }
  return false;
}

TEST(CheckpointFuzz, EveryMutationLoadsOrThrowsCheckpointError) {
  const std::vector<Bytes> files = valid_files();
  for (const Bytes& file : files) {
    std::string failure;
    const bool as_float = loads<float>(file, failure), as_double = loads<double>(file, failure);
    ASSERT_TRUE(failure.empty()) << failure;
    ASSERT_TRUE(as_float != as_double) << "a valid file loads as its own scalar type only";
  }
  support::Draw draw(20240601);
  std::map<std::string, std::pair<int, int>> outcomes;  // loaded, refused
  constexpr int kIterations = 4500;
  for (int i = 0; i < kIterations; ++i) {
    const auto kind = static_cast<Mutation>(i % std::size(kMutationNames));
    const Bytes& file = files[static_cast<std::size_t>(draw.below(static_cast<std::int64_t>(files.size())))];
    const Bytes bytes = mutate(file, kind, draw);
    std::string failure;
    const bool loaded = loads<float>(bytes, failure) | loads<double>(bytes, failure);
    try {
      rnnbptt::checkpoint_dtype(rnnbptt::Span<const std::uint8_t>(bytes), "fuzzed");
    } catch (const rnnbptt::CheckpointError&) {
    } catch (const std::exception& error) {
      failure = std::string("checkpoint_dtype: not a CheckpointError: ") + error.what();
    }
    ASSERT_TRUE(failure.empty()) << kMutationNames[static_cast<int>(kind)] << " #" << i << ": " << failure;
    if (kind == Mutation::bit_flip || kind == Mutation::truncation) {
      ASSERT_FALSE(loaded) << kMutationNames[static_cast<int>(kind)] << " #" << i << " went undetected";
    }
    auto& counts = outcomes[kMutationNames[static_cast<int>(kind)]];
    (loaded ? counts.first : counts.second) += 1;
  }
  for (const auto& [kind, counts] : outcomes) {
    std::cout << kind << ": " << counts.first << " loaded, " << counts.second << " refused\n";
    EXPECT_GT(counts.second, 0) << kind << " never refused: the mutation does nothing";
  }
}

}  // namespace
