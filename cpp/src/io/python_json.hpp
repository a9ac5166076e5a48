// JSON text exactly as Python's json.dumps writes it, for the strings a checkpoint's metadata
// and a vocabulary hold (so files written here digest like files written by Python).
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace rnnbptt::detail {

// json.dumps(s, ensure_ascii=False) for a well-formed UTF-8 string, appended to `out`.
inline void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
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
