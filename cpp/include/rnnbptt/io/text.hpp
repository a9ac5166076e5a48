/// @file text.hpp
/// @brief Characters <-> token ids (Vocab, the same mapping and JSON as Python's
/// rnnbptt.Vocab) and text generation from a trained character model (generate_text, which
/// equals `rnnbptt generate` for greedy decoding).
///
/// Text is UTF-8. A "character" is a Unicode code point, as in a Python str: "é" written as
/// one code point (U+00E9) is one character, "e" followed by U+0301 is two. Text that is not
/// well-formed UTF-8 (a stray continuation byte, a truncated sequence, an overlong form, a
/// surrogate, a value above U+10FFFF) throws InvalidArgument naming the argument and the byte
/// offset of the first bad byte.
///
/// Errors: InvalidArgument (rnnbptt/core/error.hpp) naming the argument, what was expected and
/// what was received; AllocationError for memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rnnbptt/bptt/model.hpp"
#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/export.hpp"
#include "rnnbptt/core/span.hpp"
#include "rnnbptt/io/inference.hpp"

namespace rnnbptt {

/// The deepest nesting of arrays and objects in JSON the library reads (a vocabulary, a
/// checkpoint's metadata entries); deeper text is refused before it is parsed. rnnbptt writes
/// at most 3 levels, and deeper text would only cost stack.
inline constexpr int kMaxJsonDepth = 64;

/// The symbols of a character-level model, in id order: id i is tokens()[i].
///
/// The same rules as python/rnnbptt/data.py's Vocab: tokens are non-empty and distinct;
/// "<unk>", if present, receives the characters the vocabulary does not hold. encode() maps
/// each character of a text to the token equal to it, so tokens of several characters other
/// than "<unk>" are never produced by encode() (Python allows them, so they load), but
/// decode() writes them out.
///
/// Thread safety: a Vocab is immutable after construction; any number of threads may call
/// its const members at once. Copies are independent.
class RNNBPTT_EXPORT Vocab {
 public:
  /// The token that stands for characters outside the vocabulary.
  static constexpr std::string_view unknown_token = "<unk>";

  /// `tokens` in id order: at least one, each a non-empty, well-formed UTF-8 string, all
  /// distinct (InvalidArgument naming "tokens" and the index otherwise).
  explicit Vocab(std::vector<std::string> tokens);

  /// Every distinct character of `utf8`, most frequent first, ties in order of first use
  /// (Python's Vocab.from_text); with `unknown`, "<unk>" first (id 0), as d2l does.
  /// InvalidArgument for invalid UTF-8 (naming "text" and the byte offset) or an empty text
  /// without `unknown` (no symbols).
  static Vocab from_text(std::string_view utf8, bool unknown = false);

  /// Reads Python's Vocab.to_json: a JSON object whose "tokens" member is an array of
  /// strings (other members are ignored, as Python does). InvalidArgument naming "vocab" for
  /// text that is not such JSON, and the constructor's errors for the tokens.
  static Vocab from_json(std::string_view json);
  /// Python's Vocab.to_json byte for byte: `{"tokens": ["a", "b"]}` with json.dumps's
  /// separators and escapes (ensure_ascii=False: non-ASCII characters written as UTF-8).
  std::string to_json() const;

  /// The number of symbols.
  Index size() const { return static_cast<Index>(tokens_.size()); }
  /// The symbols in id order; valid as long as the Vocab.
  const std::vector<std::string>& tokens() const { return tokens_; }
  /// The id of "<unk>", if the vocabulary holds it.
  std::optional<std::int64_t> unknown() const {
    return unknown_ < 0 ? std::nullopt : std::optional<std::int64_t>(unknown_);
  }

  /// The id of every character of `utf8`. A character outside the vocabulary maps to "<unk>"
  /// if present, else throws InvalidArgument naming "text", the missing characters (up to 10)
  /// and the byte offset of the first. Invalid UTF-8 throws InvalidArgument naming the offset.
  std::vector<std::int64_t> encode(std::string_view utf8) const;
  /// The text of `ids` (each in [0, size()); InvalidArgument naming "ids", the value and its
  /// index otherwise): the tokens concatenated.
  std::string decode(Span<const std::int64_t> ids) const;

  bool operator==(const Vocab& other) const { return tokens_ == other.tokens_; }
  bool operator!=(const Vocab& other) const { return !(*this == other); }

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<char32_t, std::int64_t> by_character_;  // tokens of one character
  std::int64_t ascii_[128];                                  // the same for ASCII, -1 if absent
  std::int64_t unknown_ = -1;                                // id of "<unk>", -1 if absent
};

/// `prefix` followed by `length` (>= 0) generated characters: Python's rnnbptt.generate
/// (`rnnbptt generate --checkpoint ...`), i.e. prefix + vocab.decode(generate(model,
/// vocab.encode(prefix), length, options)). Greedy (temperature 0) output equals Python's
/// character for character on the same SIMD variant; sampling uses rnnbptt::Random, not
/// NumPy's generator, so sampled text differs from Python's.
/// The vocabulary must hold exactly input_size == output_size symbols; prefix: at least one
/// character, each in the vocabulary (or "<unk>" present). Errors: InvalidArgument naming
/// "vocab", "prefix" or "length", and generate()'s (non-finite parameters, bad temperature).
/// The model is read during the call only (see inference.hpp on thread safety).
template <class Scalar>
RNNBPTT_EXPORT std::string generate_text(const Model<Scalar>& model, const Vocab& vocab, std::string_view prefix,
                                         Index length, const GenerateOptions& options = {});

}  // namespace rnnbptt
