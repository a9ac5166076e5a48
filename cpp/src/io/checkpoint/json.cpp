// JSON as Python writes it, for the metadata entries (format.hpp).
#include "io/checkpoint/format.hpp"

#include <charconv>
#include <clocale>
#include <cmath>
#include <cstdio>
#include <limits>

#include "io/python_json.hpp"

namespace rnnbptt::checkpoint_format {

// ---- JSON as Python writes it -------------------------------------------------------------

using detail::append_json_string;

// repr() of a finite Python float: the shortest digits that read back to the same double,
// positional for exponents in [-4, 16), else d.ddde+XX (Python's 'r' format).
std::string python_float(double value) {
  char buffer[64];
  std::string digits;  // significant digits, no point
  int exponent = 0;    // value = d.ddd x 10^exponent
  bool negative = std::signbit(value);
#if defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, std::fabs(value), std::chars_format::scientific);
  const std::string text(buffer, result.ptr);
#else
  // %.17e always reads back exactly (not always the shortest digits); '.' whatever the locale.
  std::snprintf(buffer, sizeof buffer, "%.17e", std::fabs(value));
  std::string text(buffer);
  const char point = *std::localeconv()->decimal_point;
  std::replace(text.begin(), text.end(), point, '.');
#endif
  const std::size_t e = text.find('e');
  for (std::size_t i = 0; i < e; ++i)
    if (text[i] != '.') digits += text[i];
  exponent = std::atoi(text.c_str() + e + 1);
#if !(defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L)
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
#endif
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
    } else {
      const auto integer = static_cast<std::size_t>(exponent) + 1;
      if (digits.size() <= integer) {
        out += digits + std::string(integer - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, integer) + "." + digits.substr(integer);
      }
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char tail[16];
    std::snprintf(tail, sizeof tail, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += tail;
  }
  return out;
}

// json.dumps(model.config()).
std::string config_json(const ModelConfig& config, ScalarType dtype) {
  std::string out = "{\"input_size\": " + std::to_string(config.input_size) +
                    ", \"hidden_size\": " + std::to_string(config.hidden_size) +
                    ", \"output_size\": " + std::to_string(config.output_size) + ", \"activation\": ";
  append_json_string(out, to_string(config.activation));
  out += std::string(", \"bias\": ") + (config.bias ? "true" : "false") + ", \"dtype\": ";
  append_json_string(out, to_string(dtype));
  out += ", \"cell\": ";
  append_json_string(out, to_string(config.cell));
  return out + ", \"num_layers\": " + std::to_string(config.num_layers) + "}";
}

// Python's json.loads accepts NaN, Infinity and -Infinity, which json.dumps writes for such
// floats (a diverged run's perplexity in the trainer's history): they become null here, only
// to check the structure (the text itself is kept).
std::string without_python_constants(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) {
        out += text[++i];
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      out += c;
    } else if (text.compare(i, 3, "NaN") == 0) {
      out += "null";
      i += 2;
    } else if (text.compare(i, 8, "Infinity") == 0) {
      out += "null";
      i += 7;
    } else if (text.compare(i, 9, "-Infinity") == 0) {
      out += "null";
      i += 8;
    } else {
      out += c;
    }
  }
  return out;
}

// A metadata entry that must be a JSON object (Python's json.loads + isinstance dict).
json parse_object(std::string_view name, const std::string& key, const std::string& text) {
  if (const int depth = detail::json_depth(text); depth > kMaxJsonDepth)
    fail(name, "the '", key, "' entry of the file: expected JSON nested at most ", kMaxJsonDepth, " deep, got ", depth);
  json parsed;
  try {
    parsed = json::parse(without_python_constants(text));
  } catch (const json::exception& error) {
    fail(name, "the '", key, "' entry of the file is not valid JSON (", error.what(), ")");
  }
  if (!parsed.is_object())
    fail(name, "the '", key, "' entry of the file: expected a JSON object, got a JSON ", parsed.type_name());
  return parsed;
}

}  // namespace rnnbptt::checkpoint_format

namespace rnnbptt {

std::string to_json(const ModelConfig& config, ScalarType dtype) {
  return checkpoint_format::config_json(config, dtype);
}

}  // namespace rnnbptt
