// A small command-line parser shared by the examples: `--name value` or `--name=value` flags
// and positional arguments, with typed readers. A mistake is a UsageError, which the examples
// print as one line ("<program>: error: argument --steps: expected an integer >= 1, got 'x'")
// with exit code 2, as the Python command line does.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace example {

/// `message` on one line: line breaks become spaces (errors are printed as one line).
inline std::string one_line(std::string message) {
  for (char& c : message)
    if (c == '\n' || c == '\r') c = ' ';
  return message;
}

/// A mistake on the command line.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class CommandLine {
 public:
  /// `flags`: the names (without "--") that take a value; `switches`: those that do not.
  /// Throws UsageError for an unknown flag or a flag without its value.
  CommandLine(int argc, char** argv, const std::vector<std::string>& flags,
              const std::vector<std::string>& switches = {}) {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
        positional_.push_back(arg);
        continue;
      }
      const std::size_t equals = arg.find('=');
      const std::string name = arg.substr(2, equals == std::string::npos ? std::string::npos : equals - 2);
      if (std::find(switches.begin(), switches.end(), name) != switches.end() && equals == std::string::npos) {
        values_[name] = "";
        continue;
      }
      if (std::find(flags.begin(), flags.end(), name) == flags.end())
        throw UsageError("unrecognized argument: --" + name);
      if (equals != std::string::npos) {
        values_[name] = arg.substr(equals + 1);
      } else if (i + 1 < argc) {
        values_[name] = argv[++i];
      } else {
        throw UsageError("argument --" + name + ": expected a value");
      }
    }
  }

  const std::vector<std::string>& positional() const { return positional_; }
  bool has(const std::string& name) const { return values_.count(name) > 0; }

  std::string text(const std::string& name, const std::string& fallback) const {
    const auto found = values_.find(name);
    return found == values_.end() ? fallback : found->second;
  }

  /// An integer >= minimum (default `fallback` when absent).
  std::int64_t integer(const std::string& name, std::int64_t fallback, std::int64_t minimum) const {
    const auto found = values_.find(name);
    if (found == values_.end()) return fallback;
    const std::string& s = found->second;
    errno = 0;
    char* end = nullptr;
    const long long value = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno == ERANGE)
      throw UsageError("argument --" + name + ": expected an integer, got '" + s + "'");
    if (value < minimum)
      throw UsageError("argument --" + name + ": expected an integer >= " + std::to_string(minimum) + ", got " + s);
    return value;
  }

  /// A seed: an integer in [0, 2**64).
  std::uint64_t seed(const std::string& name, std::uint64_t fallback) const {
    const auto found = values_.find(name);
    if (found == values_.end()) return fallback;
    const std::string& s = found->second;
    errno = 0;
    char* end = nullptr;
    const unsigned long long value = std::strtoull(s.c_str(), &end, 10);
    if (s.empty() || s[0] == '-' || *end != '\0' || errno == ERANGE)
      throw UsageError("argument --" + name + ": expected an integer in [0, 2**64), got '" + s + "'");
    return value;
  }

  /// A finite number >= minimum (> minimum when `strict`).
  double real(const std::string& name, double fallback, double minimum, bool strict) const {
    const auto found = values_.find(name);
    if (found == values_.end()) return fallback;
    const std::string& s = found->second;
    char* end = nullptr;
    const double value = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0') throw UsageError("argument --" + name + ": expected a number, got '" + s + "'");
    if (!std::isfinite(value) || (strict ? !(value > minimum) : !(value >= minimum)))
      throw UsageError("argument --" + name + ": expected a finite number " + (strict ? "> " : ">= ") + shown(minimum) +
                       ", got " + s);
    return value;
  }

 private:
  static std::string shown(double v) {
    std::string s = std::to_string(v);
    while (s.size() > 1 && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }

  std::vector<std::string> positional_;
  std::map<std::string, std::string> values_;
};

/// Runs `run(argc, argv)` as a program's main: a UsageError is one line on stderr and exit code
/// 2, any other error one line and exit code 1.
template <class Run>
int main_with_exit_codes(const char* program, Run&& run, int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const UsageError& error) {
    std::fprintf(stderr, "%s: error: %s\n", program, one_line(error.what()).c_str());
    return 2;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: error: %s\n", program, one_line(error.what()).c_str());
    return 1;
  }
}

}  // namespace example
