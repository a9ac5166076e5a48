// JSON text exactly as Python's json.dumps writes it, for the strings a checkpoint's metadata
// and a vocabulary hold (so files written here digest like files written by Python).
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>

#include "rnnbptt/io/text.hpp"  // kMaxJsonDepth

namespace rnnbptt::detail {

// The deepest nesting of '[' and '{' in JSON text, outside strings; no recursion.
inline int json_depth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char ch : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (ch == '\\')
        escaped = true;
      else if (ch == '"')
        in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
  return deepest;
}

// json.dumps(s, ensure_ascii=False) for a well-formed UTF-8 string, appended to `out`.
inline void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

}  // namespace rnnbptt::detail
