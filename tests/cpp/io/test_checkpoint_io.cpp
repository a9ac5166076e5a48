// The checkpoint file format at the byte level, against oracles independent of the writer:
// SHA-256 against the FIPS 180-4 / NIST example vectors; files assembled here by hand from the
// layout and digest that python/rnnbptt/checkpoint.py documents (so the reader is checked
// against the documentation, not against our own writer); the metadata JSON as Python's
// json.dumps writes it (float repr included); atomic writes. Compiles cpp/src/io/sha256.cpp in
// (a private part of the library).
#include <gtest/gtest.h>

#include <rnnbptt/io/checkpoint.hpp>
#include <rnnbptt/rnnbptt.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "io/sha256.hpp"

namespace {

namespace fs = std::filesystem;
using rnnbptt::CheckpointError;
using rnnbptt::Index;
using rnnbptt::Span;
using Bytes = std::vector<std::uint8_t>;

// ---- SHA-256 ----------------------------------------------------------------------------

std::string sha(const std::string& text) { return rnnbptt::detail::sha256_hex(text.data(), text.size()); }

TEST(Sha256, NistVectors) {
  EXPECT_EQ(sha(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqr"
                "stnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PaddingBoundaries) {
  // 55, 56 and 64 bytes: the length fits in the last block, needs another one, fills one.
  EXPECT_EQ(sha(std::string(55, 'a')), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(sha(std::string(56, 'a')), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(sha(std::string(64, 'a')), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

TEST(Sha256, IncrementalEqualsOneShot) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += static_cast<char>((i * 7919) & 0xFF);
  for (std::size_t piece : {1u, 3u, 63u, 64u, 65u, 200u}) {
    rnnbptt::detail::Sha256 h;
    for (std::size_t at = 0; at < text.size(); at += piece)
      h.update(text.data() + at, std::min(piece, text.size() - at));
    EXPECT_EQ(h.hex_digest(), sha(text)) << "pieces of " << piece;
  }
  rnnbptt::detail::Sha256 h;
  h.update(nullptr, 0);
  EXPECT_EQ(h.hex_digest(), sha(""));
  EXPECT_THROW(h.update("a", 1), rnnbptt::StateError);
  h.reset();
  h.update("abc", 3);
  EXPECT_EQ(h.hex_digest(), sha("abc"));
}

// ---- files assembled from the documentation ---------------------------------------------

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}
void put_string(std::string& out, const std::string& s) {
  put_u64(out, s.size());
  out += s;
}

struct RawTensor {
  std::string dtype;  // F32, F64, I64
  std::vector<std::uint64_t> shape;
  std::string bytes;  // little endian
};

std::string le_doubles(const std::vector<double>& values) {
  std::string out;
  for (double v : values) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, 8);
    put_u64(out, bits);
  }
  return out;
}

std::string json_escape(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

/// The digest of format version 2 as checkpoint.py's module documentation states it.
std::string digest_v2(const std::map<std::string, std::string>& metadata,
                      const std::map<std::string, RawTensor>& tensors) {
  std::string message;
  put_string(message, "rnnbptt-checkpoint-v2");
  for (const auto& [k, v] : metadata) {
    if (k == "sha256") continue;
    put_string(message, k);
    put_string(message, v);
  }
  for (const auto& [name, t] : tensors) {
    put_string(message, name);
    put_string(message, t.dtype);
    put_u64(message, t.shape.size());
    for (auto d : t.shape) put_u64(message, d);
    put_u64(message, t.bytes.size());
    message += t.bytes;
  }
  return sha(message);
}

/// A safetensors file: tensors laid out in name order, the header unpadded.
Bytes assemble(std::map<std::string, std::string> metadata, const std::map<std::string, RawTensor>& tensors,
               const char* digest_version = "2") {
  if (std::string(digest_version) == "2") {
    metadata["sha256"] = digest_v2(metadata, tensors);
  } else if (std::string(digest_version) == "1") {
    std::string message;
    for (const auto& [name, t] : tensors) message += name + t.bytes;
    metadata["sha256"] = sha(message);
  }
  std::string header = "{\"__metadata__\":{";
  bool first = true;
  for (const auto& [k, v] : metadata) {
    header += (first ? "" : ",") + json_escape(k) + ":" + json_escape(v);
    first = false;
  }
  header += "}";
  std::string data;
  for (const auto& [name, t] : tensors) {
    header += "," + json_escape(name) + ":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (std::size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(data.size()) + "," +
              std::to_string(data.size() + t.bytes.size()) + "]}";
    data += t.bytes;
  }
  header += "}";
  std::string file;
  put_u64(file, header.size());
  file += header + data;
  return Bytes(file.begin(), file.end());
}

/// A 2-2-2 tanh model without biases, float64, SGD, with a vocabulary.
std::map<std::string, std::string> small_metadata() {
  return {{"format", "rnnbptt-checkpoint"},
          {"format_version", "2"},
          {"config",
           "{\"input_size\": 2, \"hidden_size\": 2, \"output_size\": 2, \"activation\": \"tanh\", \"bias\": false, "
           "\"dtype\": \"float64\"}"},
          {"vocab", "{\"tokens\": [\"a\", \"\\u00e9\"]}"},
          {"optimizer", "{\"name\": \"sgd\", \"lr\": 0.5, \"weight_decay\": 0.0}"},
          {"trainer", "{\"epoch\": 1, \"history\": [{\"valid_perplexity\": NaN, \"x\": -Infinity}]}"}};
}

std::map<std::string, RawTensor> small_tensors() {
  return {{"W_hx", {"F64", {2, 2}, le_doubles({1, 2, 3, 4})}},
          {"W_hh", {"F64", {2, 2}, le_doubles({-1, 0.5, 0.25, 0})}},
          {"W_qh", {"F64", {2, 2}, le_doubles({5, 6, 7, 8})}}};
}

rnnbptt::Checkpoint<double> parse(const Bytes& bytes) {
  return rnnbptt::parse_checkpoint<double>(Span<const std::uint8_t>(bytes.data(), static_cast<Index>(bytes.size())),
                                           "file.st");
}

std::string parse_error(const Bytes& bytes) {
  try {
    parse(bytes);
  } catch (const CheckpointError& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(CheckpointFormat, ReadsAFileBuiltFromTheDocumentation) {
  const auto c = parse(assemble(small_metadata(), small_tensors()));
  EXPECT_EQ(c.config.input_size, 2);
  EXPECT_FALSE(c.config.bias);
  // The flat layout: W_hx, W_hh, W_qh (no biases).
  EXPECT_EQ(c.parameters, (rnnbptt::Buffer<double>{1, 2, 3, 4, -1, 0.5, 0.25, 0, 5, 6, 7, 8}));
  ASSERT_TRUE(c.vocab.has_value());
  EXPECT_EQ(c.vocab->tokens(), (std::vector<std::string>{"a", "\xC3\xA9"}));
  ASSERT_NE(c.sgd(), nullptr);
  EXPECT_EQ(c.sgd()->lr, 0.5);
  EXPECT_EQ(c.adam(), nullptr);
  EXPECT_FALSE(c.runner.has_value());
  // Python's NaN and -Infinity are accepted and the text is kept as it is.
  EXPECT_EQ(c.trainer_json, small_metadata()["trainer"]);
  const Bytes file = assemble(small_metadata(), small_tensors());
  EXPECT_EQ(rnnbptt::checkpoint_dtype(Span<const std::uint8_t>(file), "x"), rnnbptt::ScalarType::float64);
}

TEST(CheckpointFormat, ReadsVersion1) {
  auto metadata = small_metadata();
  metadata["format_version"] = "1";
  const auto c = parse(assemble(metadata, small_tensors(), "1"));
  EXPECT_EQ(c.parameters[0], 1.0);
  // A version 2 digest on a version 1 file (or the reverse) is refused.
  EXPECT_NE(parse_error(assemble(metadata, small_tensors(), "2")).find("SHA-256"), std::string::npos);
}

TEST(CheckpointFormat, RefusesWhatPythonRefuses) {
  struct Case {
    const char* expected;  // a piece of the message
    std::function<void(std::map<std::string, std::string>&, std::map<std::string, RawTensor>&)> change;
  };
  const std::vector<Case> cases = {
      {"expected format version 1, 2 or 3 in the file, got 4", [](auto& m, auto&) { m["format_version"] = "4"; }},
      // Version 3 names the cell and the layers; versions 1 and 2 hold one Elman layer.
      {"config: expected 'cell' to be \"elman\", \"gru\" or \"lstm\", got none",
       [](auto& m, auto&) { m["format_version"] = "3"; }},
      {"config: expected no 'cell' or 'num_layers' in format version 2 (one Elman layer)",
       [](auto& m, auto&) { m["config"].insert(m["config"].size() - 1, ", \"cell\": \"elman\""); }},
      {"config: expected 'cell' to be \"elman\", \"gru\" or \"lstm\", got \"rnn\"",
       [](auto& m, auto&) {
         m["format_version"] = "3";
         m["config"].insert(m["config"].size() - 1, ", \"cell\": \"rnn\", \"num_layers\": 1");
       }},
      {"config: expected 'num_layers' to be an integer >= 1, got 0",
       [](auto& m, auto&) {
         m["format_version"] = "3";
         m["config"].insert(m["config"].size() - 1, ", \"cell\": \"gru\", \"num_layers\": 0");
       }},
      {"config: expected 'num_layers' to be at most the 1 layers the file's tensors can hold, got 1000000000000",
       [](auto& m, auto&) {
         m["format_version"] = "3";
         m["config"].insert(m["config"].size() - 1, ", \"cell\": \"lstm\", \"num_layers\": 1000000000000");
       }},
      {"config: expected the keys of format version 3 (input_size, hidden_size, output_size, activation, bias, dtype, "
       "cell, num_layers), got also 'proj_size'",
       [](auto& m, auto&) {
         m["format_version"] = "3";
         m["config"].insert(m["config"].size() - 1, ", \"cell\": \"elman\", \"num_layers\": 1, \"proj_size\": 3");
       }},
      {"config: activation: expected 'tanh' for the gru cell",
       [](auto& m, auto&) {
         m["format_version"] = "3";
         m["config"] =
             "{\"input_size\": 2, \"hidden_size\": 2, \"output_size\": 2, \"activation\": \"relu\", \"bias\": "
             "false, \"dtype\": \"float64\", \"cell\": \"gru\", \"num_layers\": 1}";
       }},
      {"expected format 'rnnbptt-checkpoint', got \"other\"", [](auto& m, auto&) { m["format"] = "other"; }},
      {"no format entry", [](auto& m, auto&) { m.erase("format"); }},
      {"lacks tensor 'W_qh' (expected shape (2, 2), dtype float64)", [](auto&, auto& t) { t.erase("W_qh"); }},
      {"tensor 'W_hh' in the file: expected shape (2, 2) and dtype float64, got shape (4,) and dtype float64",
       [](auto&, auto& t) { t["W_hh"].shape = {4}; }},
      {"tensor 'W_hx' in the file: expected shape (2, 2) and dtype float64, got shape (2, 2) and dtype int64",
       [](auto&, auto& t) { t["W_hx"].dtype = "I64"; }},
      {"expected dtype F32, F64 or I64, got \"F16\"",
       [](auto&, auto& t) {
         t["W_hx"] = {"F16", {2, 2}, std::string(8, '\0')};
       }},
      {"holds unexpected tensors ['extra']",
       [](auto&, auto& t) {
         t["extra"] = {"F64", {1}, le_doubles({1})};
       }},
      {"lacks tensor 'b_h'",
       [](auto& m, auto&) {
         m["config"] =
             "{\"input_size\": 2, \"hidden_size\": 2, \"output_size\": 2, \"activation\": \"tanh\", \"bias\": true, "
             "\"dtype\": \"float64\"}";
       }},
      {"config: expected 'activation'",
       [](auto& m, auto&) {
         m["config"] =
             "{\"input_size\": 2, \"hidden_size\": 2, \"output_size\": 2, \"activation\": \"gelu\", \"bias\": false, "
             "\"dtype\": \"float64\"}";
       }},
      {"config: expected 'input_size' to be an integer >= 1, got 0",
       [](auto& m, auto&) {
         m["config"] =
             "{\"input_size\": 0, \"hidden_size\": 2, \"output_size\": 2, \"activation\": \"tanh\", \"bias\": false, "
             "\"dtype\": \"float64\"}";
       }},
      {"the 'config' entry of the file is not valid JSON", [](auto& m, auto&) { m["config"] = "{\"input_size\": "; }},
      {"the 'vocab' entry of the file: tokens: expected distinct symbols",
       [](auto& m, auto&) { m["vocab"] = "{\"tokens\": [\"a\", \"a\"]}"; }},
      {"the 'trainer' entry of the file: expected a JSON object, got a JSON array",
       [](auto& m, auto&) { m["trainer"] = "[1]"; }},
      {"no 'optimizer' entry", [](auto& m, auto&) { m.erase("optimizer"); }},
      {"optimizer: expected \"name\" to be \"sgd\" or \"adam\", got \"rmsprop\"",
       [](auto& m, auto&) { m["optimizer"] = "{\"name\": \"rmsprop\"}"; }},
      {"lacks tensor 'optimizer.m' (expected shape (12,), dtype float64)",
       [](auto& m, auto&) {
         m["optimizer"] =
             "{\"name\": \"adam\", \"lr\": 0.01, \"beta1\": 0.9, \"beta2\": 0.999, \"eps\": 1e-08, \"weight_decay\": "
             "0.0, \"step_count\": 3}";
       }},
      {"has 'trainer.runner.history_inputs' without 'trainer.runner.state'",
       [](auto&, auto& t) {
         t["trainer.runner.history_inputs"] = {"I64", {0, 1}, ""};
       }},
      {"trainer (with a runner state): expected an integer 'batch_size'",
       [](auto&, auto& t) {
         t["trainer.runner.state"] = {"F64", {1, 2}, le_doubles({0, 0})};
       }},
  };
  for (const Case& c : cases) {
    auto metadata = small_metadata();
    auto tensors = small_tensors();
    c.change(metadata, tensors);
    const std::string message = parse_error(assemble(metadata, tensors));
    EXPECT_EQ(message.rfind("file.st: ", 0), 0u) << message;
    EXPECT_NE(message.find(c.expected), std::string::npos) << "expected: " << c.expected << "\ngot: " << message;
  }
}

TEST(CheckpointFormat, RunnerStateWithHistory) {
  auto metadata = small_metadata();
  metadata["trainer"] = "{\"batch_size\": 1}";
  auto tensors = small_tensors();
  tensors["trainer.runner.state"] = {"F64", {1, 2}, le_doubles({0.5, -0.5})};
  std::string ids;
  put_u64(ids, 1);
  put_u64(ids, 0);
  tensors["trainer.runner.history_inputs"] = {"I64", {2, 1}, ids};
  tensors["trainer.runner.history_states"] = {"F64", {3, 1, 2}, le_doubles({1, 2, 3, 4, 0.5, -0.5})};
  const auto c = parse(assemble(metadata, tensors));
  ASSERT_TRUE(c.runner.has_value());
  EXPECT_EQ(c.runner->batch, 1);
  EXPECT_TRUE(c.runner->has_history);
  EXPECT_EQ(c.runner->history, 2);
  EXPECT_EQ(c.runner->history_tokens, (std::vector<std::int64_t>{1, 0}));
  EXPECT_EQ(c.runner->history_states.size(), 6u);
  // The history's states must have k + 1 rows.
  tensors["trainer.runner.history_states"] = {"F64", {2, 1, 2}, le_doubles({1, 2, 3, 4})};
  EXPECT_NE(parse_error(assemble(metadata, tensors)).find("expected shape (3, 1, 2)"), std::string::npos);
}

TEST(CheckpointFormat, RefusesDamagedContainers) {
  const Bytes good = assemble(small_metadata(), small_tensors());
  // Every truncation, and every single flipped bit in the data section.
  for (std::size_t size = 0; size < good.size(); ++size) {
    const std::string message = parse_error(Bytes(good.begin(), good.begin() + size));
    EXPECT_EQ(message.rfind("file.st", 0), 0u) << size << ": " << message;
  }
  const std::uint64_t header = good[0] | (std::uint64_t(good[1]) << 8);
  for (std::size_t at = 8 + header; at < good.size(); ++at) {
    Bytes bad = good;
    bad[at] ^= 0x10;
    EXPECT_NE(parse_error(bad).find("fail the SHA-256 check"), std::string::npos);
  }
  // Trailing bytes, a header length beyond the file, a header that is not JSON.
  Bytes longer = good;
  longer.push_back(0);
  EXPECT_NE(parse_error(longer).find("bytes after the last tensor"), std::string::npos);
  Bytes huge = good;
  huge[7] = 0x7F;
  EXPECT_NE(parse_error(huge).find("the header length says"), std::string::npos);
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13};
  EXPECT_NE(parse_error(png).find("not a checkpoint"), std::string::npos);
}

TEST(CheckpointFormat, RefusesOverlapsAndGaps) {
  const auto file = [](const std::string& offsets_a, const std::string& offsets_b, std::size_t data_bytes) {
    std::string header = "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":" + offsets_a +
                         "},\"b\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":" + offsets_b + "}}";
    std::string out;
    put_u64(out, header.size());
    out += header + std::string(data_bytes, '\0');
    return Bytes(out.begin(), out.end());
  };
  EXPECT_NE(parse_error(file("[0,8]", "[4,12]", 12)).find("overlaps"), std::string::npos);
  EXPECT_NE(parse_error(file("[0,8]", "[16,24]", 24)).find("belong to no tensor"), std::string::npos);
  EXPECT_NE(parse_error(file("[0,8]", "[8,16]", 8)).find("ends at byte 16"), std::string::npos);
  EXPECT_NE(parse_error(file("[0,8]", "[8,12]", 12)).find("needs 8 bytes"), std::string::npos);
  EXPECT_NE(parse_error(file("[8,0]", "[0,8]", 8)).find("end before they begin"), std::string::npos);
  EXPECT_NE(parse_error(file("[0,-8]", "[0,8]", 8)).find("expected an integer >= 0"), std::string::npos);
  // A well-formed container that is not a checkpoint.
  EXPECT_NE(parse_error(file("[0,8]", "[8,16]", 16)).find("expected format 'rnnbptt-checkpoint'"), std::string::npos);
}

// ---- what the writer writes -------------------------------------------------------------

std::string header_of(const Bytes& bytes) {
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[static_cast<std::size_t>(i)];
  return std::string(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
}

rnnbptt::Checkpoint<float> small_float_checkpoint() {
  rnnbptt::ModelConfig config;
  config.input_size = 3;
  config.hidden_size = 2;
  config.output_size = 3;
  rnnbptt::Model<float> model(config);
  model.init_uniform(0.5, 1);
  auto c = rnnbptt::Checkpoint<float>::from_model(model);
  c.vocab = rnnbptt::Vocab({"x", "y", "\""});
  return c;
}

TEST(CheckpointWriter, WritesPythonsJson) {
  auto c = small_float_checkpoint();
  const std::string header = header_of(rnnbptt::serialize_checkpoint(c));
  EXPECT_EQ(header.size() % 8, 0u);  // padded as safetensors pads
  // The metadata strings are json.dumps' output (escaped once more inside the header).
  EXPECT_NE(
      header.find(
          R"({\"input_size\": 3, \"hidden_size\": 2, \"output_size\": 3, \"activation\": \"tanh\", \"bias\": true, \"dtype\": \"float32\", \"cell\": \"elman\", \"num_layers\": 1})"),
      std::string::npos)
      << header;
  EXPECT_NE(header.find(R"({\"tokens\": [\"x\", \"y\", \"\\\"\"]})"), std::string::npos) << header;
  EXPECT_NE(header.find(R"("optimizer":"{}")"), std::string::npos) << header;
  EXPECT_NE(header.find(R"("trainer":"{}")"), std::string::npos) << header;
  // Python's repr() of each float, as json.dumps writes it.
  const std::vector<std::pair<double, std::string>> floats = {{0.1, "0.1"},
                                                              {1e-08, "1e-08"},
                                                              {1e16, "1e+16"},
                                                              {1.5e16, "1.5e+16"},
                                                              {1e15, "1000000000000000.0"},
                                                              {123456789.0, "123456789.0"},
                                                              {0.0001, "0.0001"},
                                                              {1e-05, "1e-05"},
                                                              {2.5, "2.5"},
                                                              {1.0, "1.0"},
                                                              {0.1 + 0.2, "0.30000000000000004"},
                                                              {5e-324, "5e-324"},
                                                              {1.7976931348623157e308, "1.7976931348623157e+308"},
                                                              {0.0, "0.0"},
                                                              {3e-7, "3e-07"},
                                                              {12.0, "12.0"}};
  for (const auto& [value, repr] : floats) {
    c.optimizer = rnnbptt::SgdSettings{value > 0 ? value : 1.0, value};
    const std::string text = header_of(rnnbptt::serialize_checkpoint(c));
    EXPECT_NE(text.find("\\\"weight_decay\\\": " + repr + "}"), std::string::npos) << repr << "\n" << text;
  }
  c.optimizer = rnnbptt::Adam<float>(static_cast<Index>(c.parameters.size()), 0.01);
  std::get<rnnbptt::Adam<float>>(c.optimizer).step_count = 7;
  EXPECT_NE(
      header_of(rnnbptt::serialize_checkpoint(c))
          .find(
              R"({\"name\": \"adam\", \"lr\": 0.01, \"beta1\": 0.9, \"beta2\": 0.999, \"eps\": 1e-08, \"weight_decay\": 0.0, \"step_count\": 7})"),
      std::string::npos);
}

TEST(CheckpointWriter, RefusesWhatPythonCouldNotLoad) {
  const auto message = [](const rnnbptt::Checkpoint<float>& c) -> std::string {
    try {
      rnnbptt::serialize_checkpoint(c, "out.st");
    } catch (const CheckpointError& error) {
      return error.what();
    }
    return "(no error)";
  };
  auto c = small_float_checkpoint();
  c.parameters.pop_back();
  EXPECT_NE(message(c).find("out.st: cannot save: parameters: expected 21 values"), std::string::npos) << message(c);
  c = small_float_checkpoint();
  c.trainer_json = "[]";
  EXPECT_NE(message(c).find("trainer_json: expected a JSON object"), std::string::npos);
  // (At most one optimizer: the variant cannot hold two.)
  c = small_float_checkpoint();
  c.optimizer = rnnbptt::SgdSettings{std::nan(""), 0.0};
  EXPECT_NE(message(c).find("sgd.lr: expected a finite value > 0"), std::string::npos);
  c = small_float_checkpoint();
  c.runner = rnnbptt::RunnerState<float>{};
  c.runner->batch = 2;
  c.runner->state.assign(4, 0.0f);
  EXPECT_NE(message(c).find("trainer_json: expected \"batch_size\": 2"), std::string::npos) << message(c);
  c.trainer_json = "{\"batch_size\": 2}";
  EXPECT_EQ(message(c), "(no error)");
  c.runner->state.pop_back();
  EXPECT_NE(message(c).find("runner.state: expected 4 values"), std::string::npos);
}

// ---- files ------------------------------------------------------------------------------

fs::path test_folder() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path folder = fs::path(::testing::TempDir()) / (std::string("rnnbptt_io_") + info->name());
  fs::remove_all(folder);
  fs::create_directories(folder);
  return folder;
}

TEST(CheckpointFiles, AtomicSaveKeepsModeAndRemovesStaleTemps) {
  const fs::path folder = test_folder();
  const fs::path target = folder / "sub" / "model.safetensors";
  auto c = small_float_checkpoint();
  rnnbptt::save_checkpoint(target, c);  // creates the missing folder
  ASSERT_TRUE(fs::exists(target));
  ::chmod(target.c_str(), 0640);
  std::ofstream(folder / "sub" / ".model.safetensors.0123456789abcdef.tmp") << "left by a killed process";
  std::ofstream(folder / "sub" / ".model.safetensors.notours.tmp") << "another file";
  c.parameters[0] = 0.25f;
  rnnbptt::save_checkpoint(target, c);
  struct stat info {};
  ASSERT_EQ(::stat(target.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0640u);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder / "sub")) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{".model.safetensors.notours.tmp", "model.safetensors"}));
  EXPECT_EQ(rnnbptt::load_checkpoint<float>(target).parameters[0], 0.25f);
  EXPECT_EQ(rnnbptt::checkpoint_dtype(target), rnnbptt::ScalarType::float32);
}

TEST(CheckpointFiles, FailuresNameThePathAndLeaveNoTemp) {
  const fs::path folder = test_folder();
  const auto message = [](auto&& call) -> std::string {
    try {
      call();
    } catch (const CheckpointError& error) {
      return error.what();
    }
    return "(no error)";
  };
  const fs::path missing = folder / "missing.safetensors";
  EXPECT_EQ(message([&] { rnnbptt::load_checkpoint<float>(missing); }), "no such file: " + missing.string());
  EXPECT_EQ(message([&] { rnnbptt::checkpoint_dtype(folder); }),
            folder.string() + " is a directory, not a checkpoint file");
  // A double model asked for as float.
  rnnbptt::save_checkpoint(folder / "d.st", parse(assemble(small_metadata(), small_tensors())));
  EXPECT_NE(message([&] { rnnbptt::load_checkpoint<float>(folder / "d.st"); }).find("holds a float64 model"),
            std::string::npos);
  // Saving over a directory, or under a file used as a folder, fails without leaving files.
  fs::create_directories(folder / "dir.st");
  EXPECT_EQ(message([&] {
              rnnbptt::save_checkpoint(folder / "dir.st", small_float_checkpoint());
            }).rfind((folder / "dir.st").string() + ": cannot save", 0),
            0u);
  EXPECT_EQ(message([&] {
              rnnbptt::save_checkpoint(folder / "d.st" / "x.st", small_float_checkpoint());
            }).rfind((folder / "d.st" / "x.st").string() + ": cannot save", 0),
            0u);
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(folder)) files += entry.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 1u);  // d.st only
}

TEST(CheckpointFiles, SaveLoadSaveIsByteIdentical) {
  const fs::path folder = test_folder();
  const Bytes original = assemble(small_metadata(), small_tensors());
  const auto loaded = parse(original);
  const Bytes first = rnnbptt::serialize_checkpoint(loaded);
  const Bytes second = rnnbptt::serialize_checkpoint(parse(first));
  EXPECT_EQ(first, second);
  rnnbptt::save_checkpoint(folder / "a.st", loaded);
  std::ifstream in(folder / "a.st", std::ios::binary);
  EXPECT_EQ(Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()), first);
}

}  // namespace
