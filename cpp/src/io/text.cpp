// Vocab and generate_text: python/rnnbptt/data.py's Vocab and python/rnnbptt/generate.py's
// generate, over UTF-8 text.
#include "rnnbptt/io/text.hpp"

#include <algorithm>
#include <cstdio>
#include <new>
#include <stdexcept>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "io/python_json.hpp"
#include "rnnbptt/core/error.hpp"

namespace rnnbptt {
namespace {

// The code point at text[pos] (well-formed UTF-8, Unicode table 3-7); advances pos past it.
// Throws InvalidArgument naming `name` and the offset of the sequence's first byte.
char32_t next_code_point(std::string_view text, std::size_t& pos, const char* name) {
  const std::size_t start = pos;
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(pos);
  auto fail = [&](const char* why) -> char32_t {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(lead));
    detail::invalid(name, ": expected UTF-8 text, got ", why, " (byte ", hex, ") at byte offset ", start);
  };
  if (lead < 0x80) {
    ++pos;
    return lead;
  }
  int length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the range of the second byte
  char32_t value = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    value = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    value = lead & 0x0F;
    if (lead == 0xE0) low = 0xA0;   // no overlong forms
    if (lead == 0xED) high = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    value = lead & 0x07;
    if (lead == 0xF0) low = 0x90;   // no overlong forms
    if (lead == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return fail("an invalid start byte");
  }
  for (int i = 1; i < length; ++i) {
    if (start + i >= text.size()) return fail("a sequence cut short by the end of the text");
    const unsigned char next = byte(start + i);
    const unsigned char lo = i == 1 ? low : 0x80, hi = i == 1 ? high : 0xBF;
    if (next < lo || next > hi) return fail("an invalid continuation byte after the start byte");
    value = (value << 6) | (next & 0x3F);
  }
  pos = start + length;
  return value;
}

void check_utf8(std::string_view text, const char* name) {
  std::size_t pos = 0;
  while (pos < text.size()) next_code_point(text, pos, name);
}

// One code point as UTF-8 (the caller only passes decoded, valid code points).
std::string encode_utf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

// A character for an error message: the character itself when printable, and its code point.
std::string shown(char32_t c) {
  char code[16];
  std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(c));
  if (c < 0x20 || c == 0x7F) return code;
  return "'" + encode_utf8(c) + "' (" + code + ")";
}

using detail::append_json_string;

// A token for an error message, as a JSON string.
std::string shown_token(const std::string& token) {
  std::string out;
  append_json_string(out, token);
  return out;
}

// Runs `f`; memory exhaustion becomes AllocationError naming `name`.
template <class F>
auto guard_memory(const char* name, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    throw AllocationError(detail::concat(name, ": out of memory"));
  } catch (const std::length_error&) {
    throw AllocationError(detail::concat(name, ": out of memory (a buffer beyond the largest size)"));
  }
}

}  // namespace

Vocab::Vocab(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {
  guard_memory("tokens", [&] {
    std::fill(std::begin(ascii_), std::end(ascii_), std::int64_t{-1});
    if (tokens_.empty()) detail::invalid("tokens: expected at least one symbol, got none");
    std::unordered_set<std::string_view> seen;
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      const std::string& token = tokens_[i];
      if (token.empty()) detail::invalid("tokens: expected non-empty strings, got an empty one at index ", i);
      const std::string name = detail::concat("tokens[", i, "]");
      check_utf8(token, name.c_str());
      if (!seen.insert(token).second)
        detail::invalid("tokens: expected distinct symbols, got a second ", shown_token(token), " at index ", i);
      const auto id = static_cast<std::int64_t>(i);
      if (token == unknown_token) unknown_ = id;
      std::size_t pos = 0;
      const char32_t c = next_code_point(token, pos, name.c_str());
      if (pos == token.size()) {  // a one-character token: what encode() looks up
        if (c < 128)
          ascii_[c] = id;
        else
          by_character_.emplace(c, id);
      }
    }
  });
}

Vocab Vocab::from_text(std::string_view utf8, bool unknown) {
  return guard_memory("text", [&] {
    // Counts per character, in order of first use; a stable sort by decreasing count then
    // keeps first use as the tie-break (Python: sorted(Counter(text), key=-count)).
    std::vector<std::pair<char32_t, std::int64_t>> counts;
    std::unordered_map<char32_t, std::size_t> where;
    std::size_t pos = 0;
    while (pos < utf8.size()) {
      const char32_t c = next_code_point(utf8, pos, "text");
      const auto found = where.find(c);
      if (found == where.end()) {
        where.emplace(c, counts.size());
        counts.emplace_back(c, 1);
      } else {
        ++counts[found->second].second;
      }
    }
    std::stable_sort(counts.begin(), counts.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    std::vector<std::string> tokens;
    tokens.reserve(counts.size() + (unknown ? 1 : 0));
    if (unknown) tokens.emplace_back(unknown_token);
    for (const auto& entry : counts) tokens.push_back(encode_utf8(entry.first));
    if (tokens.empty())
      detail::invalid("text: expected at least one character to build a vocabulary from, got an empty text");
    return Vocab(std::move(tokens));
  });
}

namespace {

// JSON's \uXXXX escapes can spell a lone surrogate (U+D800 to U+DFFF outside a high-low pair),
// which no UTF-8 text holds. Returns `json` with each such escape replaced by \uFDD0 (a
// noncharacter, as a marker), and the first one's code point in `first` (0 if none).
std::string mark_lone_surrogates(std::string_view json, unsigned& first) {
  first = 0;
  std::string out(json);
  const auto code_at = [&](std::size_t i) -> int {  // the XXXX of "\uXXXX" at i, or -1
    if (i + 6 > out.size() || out[i] != '\\' || out[i + 1] != 'u') return -1;
    unsigned value = 0;
    for (std::size_t k = i + 2; k < i + 6; ++k) {
      const char ch = out[k];
      const int digit = ch >= '0' && ch <= '9'   ? ch - '0'
                        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                        : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                                 : -1;
      if (digit < 0) return -1;
      value = value * 16 + static_cast<unsigned>(digit);
    }
    return static_cast<int>(value);
  };
  bool in_string = false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!in_string) {
      in_string = out[i] == '"';
      continue;
    }
    if (out[i] == '"') {
      in_string = false;
    } else if (out[i] == '\\') {
      const int code = code_at(i);
      if (code >= 0xD800 && code <= 0xDBFF) {
        const int low = code_at(i + 6);
        if (low >= 0xDC00 && low <= 0xDFFF) {
          i += 11;  // a valid pair
          continue;
        }
      }
      if (code >= 0xD800 && code <= 0xDFFF) {
        if (first == 0) first = static_cast<unsigned>(code);
        out.replace(i + 2, 4, "FDD0");
      }
      i += code >= 0 ? 5 : 1;  // past the escape
    }
  }
  return out;
}

}  // namespace

Vocab Vocab::from_json(std::string_view json) {
  return guard_memory("vocab", [&] {
    if (const int depth = detail::json_depth(json); depth > kMaxJsonDepth)
      detail::invalid("vocab: expected JSON nested at most ", kMaxJsonDepth, " deep, got ", depth);
    unsigned surrogate = 0;
    const std::string marked = mark_lone_surrogates(json, surrogate);
    nlohmann::json parsed;
    try {
      parsed = nlohmann::json::parse(marked.begin(), marked.end());
    } catch (const nlohmann::json::exception& error) {
      detail::invalid("vocab: expected JSON text {\"tokens\": [...]}, got text that does not parse (", error.what(),
                      ")");
    }
    if (!parsed.is_object())
      detail::invalid("vocab: expected a JSON object {\"tokens\": [...]}, got a JSON ", parsed.type_name());
    const auto found = parsed.find("tokens");
    if (found == parsed.end()) detail::invalid("vocab: expected a JSON object with a \"tokens\" member, got none");
    if (!found->is_array())
      detail::invalid("vocab: expected \"tokens\" to be an array of strings, got a JSON ", found->type_name());
    std::vector<std::string> tokens;
    tokens.reserve(found->size());
    for (std::size_t i = 0; i < found->size(); ++i) {
      const nlohmann::json& token = (*found)[i];
      if (!token.is_string())
        detail::invalid("vocab: expected \"tokens\" to be an array of strings, got a JSON ", token.type_name(),
                        " at index ", i);
      tokens.push_back(token.get<std::string>());
      if (surrogate != 0 && tokens.back().find("\xEF\xB7\x90") != std::string::npos) {  // the marker U+FDD0
        char code[16];
        std::snprintf(code, sizeof code, "%04X", surrogate);
        detail::invalid("tokens: expected symbols that UTF-8 can encode, got the lone surrogate U+", code, " at index ",
                        i);
      }
    }
    if (surrogate != 0) {  // outside the tokens: refused all the same
      char code[16];
      std::snprintf(code, sizeof code, "%04X", surrogate);
      detail::invalid("vocab: expected JSON text that UTF-8 can encode, got the lone surrogate U+", code,
                      " (a JSON escape)");
    }
    return Vocab(std::move(tokens));
  });
}

std::string Vocab::to_json() const {
  return guard_memory("vocab", [&] {
    std::string out = "{\"tokens\": [";
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      if (i > 0) out += ", ";
      append_json_string(out, tokens_[i]);
    }
    out += "]}";
    return out;
  });
}

std::vector<std::int64_t> Vocab::encode(std::string_view utf8) const {
  return guard_memory("text", [&] {
    std::vector<std::int64_t> ids;
    ids.reserve(utf8.size());
    std::vector<char32_t> missing;  // distinct characters outside the vocabulary
    std::size_t first_missing = 0;
    std::size_t pos = 0;
    while (pos < utf8.size()) {
      const std::size_t at = pos;
      const char32_t c = next_code_point(utf8, pos, "text");
      std::int64_t id = -1;
      if (c < 128) {
        id = ascii_[c];
      } else {
        const auto found = by_character_.find(c);
        if (found != by_character_.end()) id = found->second;
      }
      if (id < 0) {
        id = unknown_;
        if (id < 0) {
          if (missing.empty()) first_missing = at;
          if (std::find(missing.begin(), missing.end(), c) == missing.end()) missing.push_back(c);
        }
      }
      ids.push_back(id);
    }
    if (!missing.empty()) {
      std::sort(missing.begin(), missing.end());
      std::string list;
      for (std::size_t i = 0; i < missing.size() && i < 10; ++i) list += (i ? ", " : "") + shown(missing[i]);
      if (missing.size() > 10) list += detail::concat(" and ", missing.size() - 10, " more");
      detail::invalid("text: expected characters of the vocabulary, got ", list, " (the first at byte offset ",
                      first_missing, "; build the vocabulary from this text, or with unknown = true)");
    }
    return ids;
  });
}

std::string Vocab::decode(Span<const std::int64_t> ids) const {
  return guard_memory("ids", [&] {
    if (ids.size() < 0 || (ids.data() == nullptr && ids.size() > 0))
      detail::invalid("ids: expected a buffer of ids, got ",
                      ids.data() == nullptr ? "a null pointer" : "a negative length", " with length ", ids.size());
    std::string out;
    for (Index i = 0; i < ids.size(); ++i) {
      const std::int64_t id = ids[i];
      if (id < 0 || id >= size()) detail::invalid("ids: expected ids in [0, ", size(), "), got ", id, " at index ", i);
      out += tokens_[static_cast<std::size_t>(id)];
    }
    return out;
  });
}

template <class Scalar>
std::string generate_text(const Model<Scalar>& model, const Vocab& vocab, std::string_view prefix, Index length,
                          const GenerateOptions& options) {
  const ModelConfig& config = model.config();
  if (vocab.size() != config.input_size || vocab.size() != config.output_size)
    detail::invalid("vocab: expected ", config.input_size, " symbols (the model's input and output size ",
                    config.input_size, " and ", config.output_size, "), got ", vocab.size());
  if (prefix.empty()) detail::invalid("prefix: expected at least one character, got an empty string");
  if (length < 0) detail::invalid("length: expected a count >= 0, got ", length);
  std::vector<std::int64_t> ids;
  try {
    ids = vocab.encode(prefix);
  } catch (const InvalidArgument& error) {
    // encode names "text"; here the text is the prefix.
    throw InvalidArgument("prefix" + std::string(error.what()).substr(4));
  }
  const std::vector<std::int64_t> produced = generate(model, Span<const std::int64_t>(ids), length, options);
  std::string out(prefix);
  out += vocab.decode(Span<const std::int64_t>(produced));
  return out;
}

template RNNBPTT_EXPORT std::string generate_text<float>(const Model<float>&, const Vocab&, std::string_view, Index,
                                                         const GenerateOptions&);
template RNNBPTT_EXPORT std::string generate_text<double>(const Model<double>&, const Vocab&, std::string_view, Index,
                                                          const GenerateOptions&);

}  // namespace rnnbptt
