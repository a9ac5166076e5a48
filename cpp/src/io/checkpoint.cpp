// Checkpoints in the safetensors format of python/rnnbptt/checkpoint.py (read its module
// documentation: layout, format version 2, the digest, atomic writes).
//
// Reading goes in three layers, each trusting only what the previous one checked:
//   1. the safetensors container (parse_container): header length, JSON header, tensor
//      entries whose byte ranges tile the data section exactly;
//   2. the rnnbptt layer (validate): format, format version, the SHA-256 digest, the config,
//      vocabulary, optimizer and trainer entries, and every tensor's shape and dtype against
//      them;
//   3. the conversion of the checked tensors into a Checkpoint<Scalar>.
#include "rnnbptt/io/checkpoint.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <clocale>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <new>
#include <random>
#include <system_error>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "io/python_json.hpp"
#include "io/sha256.hpp"
#include "rnnbptt/core/error.hpp"
#include "rnnbptt/core/params.hpp"

namespace rnnbptt {
namespace {

using nlohmann::json;

constexpr const char* kFormat = "rnnbptt-checkpoint";
constexpr const char* kFormatVersion = "2";
// safetensors refuses headers above 100 MB (its MAX_HEADER_SIZE); so do we.
constexpr std::uint64_t kMaxHeader = 100'000'000;

// ---- errors -------------------------------------------------------------------------------

template <class... Parts>
[[noreturn]] void fail(std::string_view name, const Parts&... parts) {
  throw CheckpointError(detail::concat(name, ": ", parts...));
}

template <class... Parts>
[[noreturn]] void cannot_save(std::string_view name, const Parts&... parts) {
  fail(name, "cannot save: ", parts...);
}

std::string system_error_text(int error) { return std::error_code(error, std::generic_category()).message(); }

// A tensor shape as Python prints it: "(32, 28)", "(5,)", "()".
template <class Dims>
std::string shape_text(const Dims& dims) {
  std::string out = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  if (dims.size() == 1) out += ",";
  return out + ")";
}

// A string from the file, quoted for a message (JSON escapes; cut after 80 bytes).
std::string shown_string(const std::string& s) {
  std::string cut = s.size() > 80 ? s.substr(0, 80) : s;
  std::string out;
  try {
    out = json(cut).dump(-1, ' ', false, json::error_handler_t::replace);
  } catch (const json::exception&) {
    out = "\"?\"";
  }
  return s.size() > 80 ? out + "..." : out;
}

// ---- little-endian bytes ------------------------------------------------------------------

bool host_is_little_endian() {
  const std::uint16_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

std::uint64_t read_u64(const std::uint8_t* p) {
  std::uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | p[i];
  return value;
}

void append_u64(std::vector<std::uint8_t>& out, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

// `count` values of T (4 or 8 bytes) as little-endian bytes appended to `out`.
template <class T>
void append_values(std::vector<std::uint8_t>& out, const T* values, std::size_t count) {
  const std::size_t start = out.size();
  out.resize(start + count * sizeof(T));
  if (count == 0) return;
  std::memcpy(out.data() + start, values, count * sizeof(T));
  if (!host_is_little_endian())
    for (std::size_t i = 0; i < count; ++i)
      std::reverse(out.data() + start + i * sizeof(T), out.data() + start + (i + 1) * sizeof(T));
}

// `count` little-endian values of T from `bytes` into `out` (resized).
template <class T, class Out>
void read_values(const std::uint8_t* bytes, std::size_t count, Out& out) {
  out.resize(count);
  if (count == 0) return;
  std::memcpy(out.data(), bytes, count * sizeof(T));
  if (!host_is_little_endian()) {
    auto* raw = reinterpret_cast<unsigned char*>(out.data());
    for (std::size_t i = 0; i < count; ++i) std::reverse(raw + i * sizeof(T), raw + (i + 1) * sizeof(T));
  }
}

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
  return out + "}";
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
  if (const int depth = detail::json_depth(text); depth > detail::kMaxJsonDepth)
    fail(name, "the '", key, "' entry: expected JSON nested at most ", detail::kMaxJsonDepth, " deep, got ", depth);
  json parsed;
  try {
    parsed = json::parse(without_python_constants(text));
  } catch (const json::exception& error) {
    fail(name, "the '", key, "' entry is not valid JSON (", error.what(), ")");
  }
  if (!parsed.is_object()) fail(name, "the '", key, "' entry: expected a JSON object, got a JSON ", parsed.type_name());
  return parsed;
}

// ---- the container ------------------------------------------------------------------------

enum class DType { f32, f64, i64 };

const char* dtype_name(DType d) { return d == DType::f32 ? "F32" : d == DType::f64 ? "F64" : "I64"; }
const char* numpy_name(DType d) { return d == DType::f32 ? "float32" : d == DType::f64 ? "float64" : "int64"; }
std::size_t dtype_bytes(DType d) { return d == DType::f32 ? 4 : 8; }

struct TensorRef {
  DType dtype = DType::f32;
  std::vector<std::uint64_t> shape;
  const std::uint8_t* data = nullptr;  // into the caller's bytes
  std::uint64_t begin = 0, end = 0;    // offsets in the data section
  std::uint64_t count = 0;             // number of values
};

struct Container {
  std::map<std::string, std::string> metadata;  // sorted by key bytes (char_traits compare as unsigned char)
  std::map<std::string, TensorRef> tensors;     // sorted by name bytes
};

std::uint64_t json_unsigned(std::string_view name, const json& value, const std::string& what) {
  if (!value.is_number_unsigned()) {
    if (value.is_number_integer()) fail(name, what, ": expected an integer >= 0, got ", value.get<std::int64_t>());
    fail(name, what, ": expected an integer >= 0, got a JSON ", value.type_name(), " (", value.dump(), ")");
  }
  return value.get<std::uint64_t>();
}

Container parse_container(Span<const std::uint8_t> bytes, std::string_view name) {
  if (bytes.size() < 0 || (bytes.data() == nullptr && bytes.size() > 0))
    fail(name, "expected a buffer of bytes, got a null pointer or a negative length ", bytes.size());
  const auto size = static_cast<std::uint64_t>(bytes.size());
  if (size < 8)
    fail(name, "not a checkpoint (truncated or another format): ", size,
         " bytes, fewer than the 8 of the safetensors header length");
  const std::uint64_t header_size = read_u64(bytes.data());
  if (header_size > size - 8)
    fail(name, "not a checkpoint (truncated or another format): the header length says ", header_size,
         " bytes, the file holds ", size - 8, " after it");
  if (header_size > kMaxHeader)
    fail(name, "not a checkpoint: its header of ", header_size, " bytes exceeds the safetensors limit of ", kMaxHeader);
  const auto* header = reinterpret_cast<const char*>(bytes.data() + 8);
  if (header_size < 2 || header[0] != '{')
    fail(name, "not a checkpoint (another format): its safetensors header does not start with '{'");
  if (const int depth = detail::json_depth({header, static_cast<std::size_t>(header_size)});
      depth > detail::kMaxJsonDepth)
    fail(name, "corrupt or not a checkpoint: its safetensors header nests ", depth, " deep (at most ",
         detail::kMaxJsonDepth, " expected)");
  json parsed;
  try {
    parsed = json::parse(header, header + header_size);
  } catch (const json::exception& error) {
    fail(name, "corrupt or not a checkpoint: its safetensors header is not valid JSON (", error.what(), ")");
  }
  if (!parsed.is_object()) fail(name, "corrupt: its safetensors header is not a JSON object");

  Container out;
  const std::uint8_t* data = bytes.data() + 8 + header_size;
  const std::uint64_t data_size = size - 8 - header_size;
  for (const auto& [key, value] : parsed.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail(name, "corrupt: __metadata__ is a JSON ", value.type_name(), ", not an object");
      for (const auto& [meta_key, meta_value] : value.items()) {
        if (!meta_value.is_string())
          fail(name, "corrupt: __metadata__ entry ", shown_string(meta_key), " is a JSON ", meta_value.type_name(),
               ", not a string");
        out.metadata.emplace(meta_key, meta_value.get<std::string>());
      }
      continue;
    }
    const std::string what = "tensor " + shown_string(key);
    if (!value.is_object())
      fail(name, "corrupt: ", what, " is described by a JSON ", value.type_name(), ", not an object");
    for (const auto& field : value.items())
      if (field.key() != "dtype" && field.key() != "shape" && field.key() != "data_offsets")
        fail(name, "corrupt: ", what, " has an unknown field ", shown_string(field.key()),
             " (expected dtype, shape and data_offsets)");
    const auto dtype = value.find("dtype");
    const auto shape = value.find("shape");
    const auto offsets = value.find("data_offsets");
    if (dtype == value.end() || shape == value.end() || offsets == value.end())
      fail(name, "corrupt: ", what, " lacks ",
           dtype == value.end()   ? "dtype"
           : shape == value.end() ? "shape"
                                  : "data_offsets");
    TensorRef tensor;
    if (!dtype->is_string()) fail(name, "corrupt: ", what, ": dtype is a JSON ", dtype->type_name(), ", not a string");
    const std::string dtype_text = dtype->get<std::string>();
    if (dtype_text == "F32") {
      tensor.dtype = DType::f32;
    } else if (dtype_text == "F64") {
      tensor.dtype = DType::f64;
    } else if (dtype_text == "I64") {
      tensor.dtype = DType::i64;
    } else {
      fail(name, what, ": expected dtype F32, F64 or I64, got ", shown_string(dtype_text));
    }
    if (!shape->is_array()) fail(name, "corrupt: ", what, ": shape is a JSON ", shape->type_name(), ", not an array");
    std::uint64_t count = 1;
    bool overflow = false;
    for (const json& dim : *shape) {
      const std::uint64_t d = json_unsigned(name, dim, "corrupt: " + what + ": shape");
      tensor.shape.push_back(d);
      if (!overflow && d != 0 && count > std::numeric_limits<std::uint64_t>::max() / d) overflow = true;
      count *= d;
    }
    if (!offsets->is_array() || offsets->size() != 2)
      fail(name, "corrupt: ", what, ": data_offsets is not an array of two offsets");
    tensor.begin = json_unsigned(name, (*offsets)[0], "corrupt: " + what + ": data_offsets");
    tensor.end = json_unsigned(name, (*offsets)[1], "corrupt: " + what + ": data_offsets");
    if (tensor.begin > tensor.end)
      fail(name, "corrupt: ", what, ": data_offsets [", tensor.begin, ", ", tensor.end, "] end before they begin");
    if (tensor.end > data_size)
      fail(name, "truncated or corrupt: ", what, " ends at byte ", tensor.end, " of the data, which holds ", data_size,
           " bytes");
    if (overflow || count > (tensor.end - tensor.begin) / dtype_bytes(tensor.dtype) ||
        count * dtype_bytes(tensor.dtype) != tensor.end - tensor.begin)
      fail(name, "corrupt: ", what, " of shape ", shape_text(tensor.shape), " and dtype ", dtype_text, " needs ",
           overflow ? std::string("more than 2^64") : std::to_string(count * dtype_bytes(tensor.dtype)),
           " bytes, its data_offsets hold ", tensor.end - tensor.begin);
    tensor.count = count;
    tensor.data = data + tensor.begin;
    out.tensors[key] = std::move(tensor);
  }
  // The byte ranges must tile the data section: no overlap, no gap, nothing after the last.
  std::vector<std::pair<const std::string*, const TensorRef*>> order;
  for (const auto& entry : out.tensors) order.emplace_back(&entry.first, &entry.second);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.second->begin, a.second->end) < std::make_pair(b.second->begin, b.second->end);
  });
  std::uint64_t covered = 0;
  const std::string* previous = nullptr;
  for (const auto& [key, tensor] : order) {
    if (tensor->begin < covered)
      fail(name, "corrupt: tensor ", shown_string(*key), " (bytes ", tensor->begin, " to ", tensor->end,
           ") overlaps tensor ", shown_string(*previous), " (ending at byte ", covered, ")");
    if (tensor->begin > covered)
      fail(name, "corrupt: bytes ", covered, " to ", tensor->begin, " of the data belong to no tensor");
    covered = tensor->end;
    previous = key;
  }
  if (covered != data_size)
    fail(name, "corrupt: the data holds ", data_size, " bytes, its tensors cover ", covered,
         " (bytes after the last tensor)");
  return out;
}

// ---- the digest ---------------------------------------------------------------------------

void hash_u64(detail::Sha256& h, std::uint64_t value) {
  std::uint8_t raw[8];
  for (int i = 0; i < 8; ++i) raw[i] = static_cast<std::uint8_t>(value >> (8 * i));
  h.update(raw, 8);
}

void hash_string(detail::Sha256& h, std::string_view s) {
  hash_u64(h, s.size());
  h.update(s.data(), s.size());
}

// Format version 2: the module documentation of python/rnnbptt/checkpoint.py.
std::string digest_v2(const std::map<std::string, std::string>& metadata,
                      const std::map<std::string, TensorRef>& tensors) {
  detail::Sha256 h;
  hash_string(h, "rnnbptt-checkpoint-v2");
  for (const auto& [key, value] : metadata) {
    if (key == "sha256") continue;
    hash_string(h, key);
    hash_string(h, value);
  }
  for (const auto& [key, tensor] : tensors) {
    hash_string(h, key);
    hash_string(h, dtype_name(tensor.dtype));
    hash_u64(h, tensor.shape.size());
    for (std::uint64_t d : tensor.shape) hash_u64(h, d);
    hash_u64(h, tensor.end - tensor.begin);
    h.update(tensor.data, tensor.end - tensor.begin);
  }
  return h.hex_digest();
}

// Format version 1: per tensor in name order, the name's bytes and the tensor's bytes.
std::string digest_v1(const std::map<std::string, TensorRef>& tensors) {
  detail::Sha256 h;
  for (const auto& [key, tensor] : tensors) {
    h.update(key.data(), key.size());
    h.update(tensor.data, tensor.end - tensor.begin);
  }
  return h.hex_digest();
}

// ---- the rnnbptt layer --------------------------------------------------------------------

enum class OptimizerKind { none, sgd, adam };

struct Validated {
  ModelConfig config;
  ScalarType dtype = ScalarType::float32;
  std::optional<Vocab> vocab;
  OptimizerKind optimizer = OptimizerKind::none;
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  std::int64_t step_count = 0;
  std::string trainer_json;
  Index runner_batch = 0;  // 0: no runner state
  bool has_history = false;
  Index history = 0;
  std::map<std::string, TensorRef> tensors;  // the checked tensors by name
};

const std::string& metadata_entry(std::string_view name, const Container& c, const char* key) {
  const auto found = c.metadata.find(key);
  if (found == c.metadata.end()) fail(name, "inconsistent contents: no '", key, "' entry in its metadata");
  return found->second;
}

Index json_size(std::string_view name, const json& object, const char* key, const char* entry, Index minimum) {
  const auto found = object.find(key);
  if (found == object.end()) fail(name, entry, ": expected an integer '", key, "', got none");
  if (!found->is_number_integer() ||
      (found->is_number_unsigned() && found->get<std::uint64_t>() > static_cast<std::uint64_t>(PTRDIFF_MAX)) ||
      (!found->is_number_unsigned() && found->get<std::int64_t>() < minimum) ||
      (found->is_number_unsigned() && found->get<std::uint64_t>() < static_cast<std::uint64_t>(minimum)))
    fail(name, entry, ": expected '", key, "' to be an integer >= ", minimum, ", got ", found->dump());
  return static_cast<Index>(found->is_number_unsigned() ? static_cast<std::int64_t>(found->get<std::uint64_t>())
                                                        : found->get<std::int64_t>());
}

double json_number(std::string_view name, const json& object, const char* key, const char* entry) {
  const auto found = object.find(key);
  if (found == object.end()) fail(name, entry, ": expected a number '", key, "', got none");
  if (!found->is_number()) fail(name, entry, ": expected '", key, "' to be a number, got ", found->dump());
  return found->get<double>();
}

// Takes the tensor `key` out of `tensors` after checking its shape and dtype.
TensorRef take_tensor(std::string_view name, std::map<std::string, TensorRef>& tensors, const std::string& key,
                      const std::vector<std::uint64_t>& shape, DType dtype) {
  const auto found = tensors.find(key);
  if (found == tensors.end())
    fail(name, "lacks tensor '", key, "' (expected shape ", shape_text(shape), ", dtype ", numpy_name(dtype), ")");
  if (found->second.dtype != dtype || found->second.shape != shape)
    fail(name, "tensor '", key, "': expected shape ", shape_text(shape), " and dtype ", numpy_name(dtype),
         ", got shape ", shape_text(found->second.shape), " and dtype ", numpy_name(found->second.dtype));
  TensorRef out = std::move(found->second);
  tensors.erase(found);
  return out;
}

ModelConfig parse_config(std::string_view name, const json& c, ScalarType& dtype) {
  ModelConfig config;
  config.input_size = json_size(name, c, "input_size", "config", 1);
  config.hidden_size = json_size(name, c, "hidden_size", "config", 1);
  config.output_size = json_size(name, c, "output_size", "config", 1);
  const auto activation = c.find("activation");
  if (activation == c.end() || !activation->is_string())
    fail(name, "config: expected 'activation' to be \"identity\", \"tanh\" or \"relu\", got ",
         activation == c.end() ? std::string("none") : activation->dump());
  try {
    config.activation = activation_from_string(activation->get<std::string>());
  } catch (const Error&) {
    fail(name, "config: expected 'activation' to be \"identity\", \"tanh\" or \"relu\", got ", activation->dump());
  }
  const auto bias = c.find("bias");
  if (bias == c.end() || !bias->is_boolean())
    fail(name, "config: expected 'bias' to be true or false, got ",
         bias == c.end() ? std::string("none") : bias->dump());
  config.bias = bias->get<bool>();
  const auto type = c.find("dtype");
  if (type != c.end() && type->is_string() && type->get<std::string>() == "float32") {
    dtype = ScalarType::float32;
  } else if (type != c.end() && type->is_string() && type->get<std::string>() == "float64") {
    dtype = ScalarType::float64;
  } else {
    fail(name, "config: expected 'dtype' to be \"float32\" or \"float64\", got ",
         type == c.end() ? std::string("none") : type->dump());
  }
  try {
    config.validate();
  } catch (const Error& error) {
    fail(name, "config: ", error.what());
  }
  return config;
}

// What StreamRunner::restore will require of a runner state, checked here so that a forged file
// is refused when it is loaded (naming the file), not at the first step of the resumed run.
template <class Scalar>
void check_runner(const RunnerState<Scalar>& r, const ModelConfig& config, std::string_view name) {
  const auto finite = [](const Buffer<Scalar>& values) {
    return std::all_of(values.begin(), values.end(), [](Scalar x) { return std::isfinite(x); });
  };
  if (!finite(r.state)) fail(name, "tensor 'trainer.runner.state': expected finite values, got NaN or inf");
  if (!r.has_history) return;
  for (std::size_t i = 0; i < r.history_tokens.size(); ++i) {
    const std::int64_t id = r.history_tokens[i];
    if (id < 0 || id >= config.input_size)
      fail(name, "tensor 'trainer.runner.history_inputs': expected token ids in [0, ", config.input_size, "), got ", id,
           " at [", static_cast<Index>(i) / r.batch, ", ", static_cast<Index>(i) % r.batch, "]");
  }
  if (!finite(r.history_states))
    fail(name, "tensor 'trainer.runner.history_states': expected finite values, got NaN or inf");
  if (!std::equal(r.state.begin(), r.state.end(), r.history_states.end() - static_cast<std::ptrdiff_t>(r.state.size())))
    fail(name,
         "tensor 'trainer.runner.history_states': expected its last row to equal 'trainer.runner.state' "
         "(the carried state), got another");
}

template <class Scalar>
void check_runner_tensors(const Validated& v, std::string_view name) {
  RunnerState<Scalar> r;
  r.batch = v.runner_batch;
  r.has_history = v.has_history;
  read_values<Scalar>(v.tensors.at("trainer.runner.state").data,
                      static_cast<std::size_t>(v.tensors.at("trainer.runner.state").count), r.state);
  if (v.has_history) {
    const TensorRef& ids = v.tensors.at("trainer.runner.history_inputs");
    const TensorRef& states = v.tensors.at("trainer.runner.history_states");
    read_values<std::int64_t>(ids.data, static_cast<std::size_t>(ids.count), r.history_tokens);
    read_values<Scalar>(states.data, static_cast<std::size_t>(states.count), r.history_states);
  }
  check_runner(r, v.config, name);
}

Validated validate(Span<const std::uint8_t> bytes, std::string_view name) {
  Container c = parse_container(bytes, name);
  const auto format = c.metadata.find("format");
  if (format == c.metadata.end() || format->second != kFormat)
    fail(name, "not an rnnbptt checkpoint: expected format 'rnnbptt-checkpoint', got ",
         format == c.metadata.end() ? std::string("no format entry") : shown_string(format->second));
  const auto version = c.metadata.find("format_version");
  if (version == c.metadata.end() || (version->second != "1" && version->second != "2"))
    fail(name, "expected format version 1 or 2, got ",
         version == c.metadata.end() ? std::string("none") : shown_string(version->second),
         " (written by another version of rnnbptt)");
  const bool v1 = version->second == "1";
  const auto stored = c.metadata.find("sha256");
  const std::string digest = v1 ? digest_v1(c.tensors) : digest_v2(c.metadata, c.tensors);
  if (stored == c.metadata.end() || stored->second != digest)
    fail(name, "corrupt: ", v1 ? "its tensors fail" : "its header or tensors fail", " the SHA-256 check",
         stored == c.metadata.end() ? " (no sha256 entry)" : "");

  Validated out;
  const json config = parse_object(name, "config", metadata_entry(name, c, "config"));
  out.config = parse_config(name, config, out.dtype);
  const DType scalar = out.dtype == ScalarType::float32 ? DType::f32 : DType::f64;

  const ParameterLayout layout(out.config);
  for (const Tensor& t : layout.tensors) {
    if (t.size() == 0) continue;  // a bias that is switched off
    std::vector<std::uint64_t> shape{static_cast<std::uint64_t>(t.rows)};
    if (!t.vector) shape.push_back(static_cast<std::uint64_t>(t.cols));
    out.tensors[t.name] = take_tensor(name, c.tensors, t.name, shape, scalar);
  }

  const auto vocab = c.metadata.find("vocab");
  if (vocab != c.metadata.end()) {
    try {
      out.vocab = Vocab::from_json(vocab->second);
    } catch (const Error& error) {
      fail(name, "the 'vocab' entry: ", error.what());
    }
  }

  const json optimizer = parse_object(name, "optimizer", metadata_entry(name, c, "optimizer"));
  const auto optimizer_name = optimizer.find("name");
  if (optimizer_name == optimizer.end()) {
    if (!optimizer.empty())
      fail(name, "optimizer: expected {} or an object with a \"name\" (\"sgd\" or \"adam\"), got one without");
  } else if (*optimizer_name == "sgd") {
    out.optimizer = OptimizerKind::sgd;
    out.lr = json_number(name, optimizer, "lr", "optimizer");
    out.weight_decay = json_number(name, optimizer, "weight_decay", "optimizer");
    if (!(std::isfinite(out.lr) && out.lr > 0)) fail(name, "optimizer: expected 'lr' finite > 0, got ", out.lr);
    if (!(std::isfinite(out.weight_decay) && out.weight_decay >= 0))
      fail(name, "optimizer: expected 'weight_decay' finite >= 0, got ", out.weight_decay);
  } else if (*optimizer_name == "adam") {
    out.optimizer = OptimizerKind::adam;
    out.lr = json_number(name, optimizer, "lr", "optimizer");
    out.beta1 = json_number(name, optimizer, "beta1", "optimizer");
    out.beta2 = json_number(name, optimizer, "beta2", "optimizer");
    out.eps = json_number(name, optimizer, "eps", "optimizer");
    out.weight_decay = json_number(name, optimizer, "weight_decay", "optimizer");
    out.step_count = json_size(name, optimizer, "step_count", "optimizer", 0);
    Adam<float> check;  // the hyper-parameter rules of Adam::validate
    check.lr = out.lr;
    check.beta1 = out.beta1;
    check.beta2 = out.beta2;
    check.eps = out.eps;
    check.weight_decay = out.weight_decay;
    check.step_count = out.step_count;
    try {
      check.validate();
    } catch (const Error& error) {
      fail(name, "optimizer: ", error.what());
    }
    const std::vector<std::uint64_t> shape{static_cast<std::uint64_t>(layout.total)};
    out.tensors["optimizer.m"] = take_tensor(name, c.tensors, "optimizer.m", shape, scalar);
    out.tensors["optimizer.v"] = take_tensor(name, c.tensors, "optimizer.v", shape, scalar);
  } else {
    fail(name, "optimizer: expected \"name\" to be \"sgd\" or \"adam\", got ", optimizer_name->dump());
  }

  out.trainer_json = metadata_entry(name, c, "trainer");
  const json trainer = parse_object(name, "trainer", out.trainer_json);
  const bool has_state = c.tensors.count("trainer.runner.state") > 0;
  const bool has_inputs = c.tensors.count("trainer.runner.history_inputs") > 0;
  const bool has_states = c.tensors.count("trainer.runner.history_states") > 0;
  if (!has_state && (has_inputs || has_states))
    fail(name, "has '", has_inputs ? "trainer.runner.history_inputs" : "trainer.runner.history_states",
         "' without 'trainer.runner.state'");
  if (has_state) {
    const Index n = json_size(name, trainer, "batch_size", "trainer (with a runner state)", 1);
    const auto h = static_cast<std::uint64_t>(out.config.hidden_size);
    const auto un = static_cast<std::uint64_t>(n);
    out.runner_batch = n;
    out.tensors["trainer.runner.state"] = take_tensor(name, c.tensors, "trainer.runner.state", {un, h}, scalar);
    if (has_inputs || has_states) {
      out.has_history = true;
      std::uint64_t k = 0;
      const auto inputs = c.tensors.find("trainer.runner.history_inputs");
      if (inputs != c.tensors.end() && inputs->second.shape.size() == 2) k = inputs->second.shape[0];
      if (k > static_cast<std::uint64_t>(PTRDIFF_MAX) - 1) k = 0;  // refused by the shape check below
      out.tensors["trainer.runner.history_inputs"] =
          take_tensor(name, c.tensors, "trainer.runner.history_inputs", {k, un}, DType::i64);
      out.tensors["trainer.runner.history_states"] =
          take_tensor(name, c.tensors, "trainer.runner.history_states", {k + 1, un, h}, scalar);
      out.history = static_cast<Index>(k);
    }
  }
  if (out.runner_batch > 0) {
    if (out.dtype == ScalarType::float32)
      check_runner_tensors<float>(out, name);
    else
      check_runner_tensors<double>(out, name);
  }
  if (!c.tensors.empty()) {
    std::string names;
    for (const auto& entry : c.tensors) names += (names.empty() ? "" : ", ") + shown_string(entry.first);
    fail(name, "holds unexpected tensors [", names, "]");
  }
  return out;
}

// ---- conversion into a Checkpoint ---------------------------------------------------------

template <class Scalar>
constexpr ScalarType scalar_type() {
  return std::is_same_v<Scalar, float> ? ScalarType::float32 : ScalarType::float64;
}

template <class Scalar, class Out>
void convert(const TensorRef& t, Out& out) {
  read_values<Scalar>(t.data, static_cast<std::size_t>(t.count), out);
}

template <class Scalar>
Checkpoint<Scalar> to_checkpoint(Validated&& v, std::string_view name) {
  if (v.dtype != scalar_type<Scalar>())
    fail(name, "holds a ", to_string(v.dtype), " model, asked to load it as ", to_string(scalar_type<Scalar>()),
         " (checkpoint_dtype() tells which to load)");
  try {
    Checkpoint<Scalar> out;
    out.config = v.config;
    const ParameterLayout layout(v.config);
    out.parameters.resize(static_cast<std::size_t>(layout.total));
    for (const Tensor& t : layout.tensors) {
      if (t.size() == 0) continue;
      Buffer<Scalar> values;
      convert<Scalar>(v.tensors.at(t.name), values);
      std::copy(values.begin(), values.end(), out.parameters.begin() + t.offset);
    }
    out.vocab = std::move(v.vocab);
    if (v.optimizer == OptimizerKind::sgd) out.sgd = SgdSettings{v.lr, v.weight_decay};
    if (v.optimizer == OptimizerKind::adam) {
      Adam<Scalar> adam;
      adam.lr = v.lr;
      adam.beta1 = v.beta1;
      adam.beta2 = v.beta2;
      adam.eps = v.eps;
      adam.weight_decay = v.weight_decay;
      adam.step_count = v.step_count;
      convert<Scalar>(v.tensors.at("optimizer.m"), adam.m);
      convert<Scalar>(v.tensors.at("optimizer.v"), adam.v);
      out.adam = std::move(adam);
    }
    out.trainer_json = std::move(v.trainer_json);
    if (v.runner_batch > 0) {
      RunnerState<Scalar> runner;
      runner.batch = v.runner_batch;
      convert<Scalar>(v.tensors.at("trainer.runner.state"), runner.state);
      runner.has_history = v.has_history;
      runner.history = v.history;
      if (v.has_history) {
        convert<std::int64_t>(v.tensors.at("trainer.runner.history_inputs"), runner.history_tokens);
        convert<Scalar>(v.tensors.at("trainer.runner.history_states"), runner.history_states);
      }
      out.runner = std::move(runner);
    }
    return out;
  } catch (const std::bad_alloc&) {
    fail(name, "cannot allocate memory for its tensors");
  }
}

// ---- writing ------------------------------------------------------------------------------

struct OutTensor {
  DType dtype;
  std::vector<std::uint64_t> shape;
  const void* values;  // host-order values
  std::uint64_t count;
};

template <class Scalar>
std::vector<std::uint8_t> serialize(const Checkpoint<Scalar>& ckpt, std::string_view name) {
  try {
    ckpt.config.validate();
  } catch (const Error& error) {
    cannot_save(name, "config: ", error.what());
  }
  const ParameterLayout layout(ckpt.config);
  const Index P = layout.total;
  if (static_cast<Index>(ckpt.parameters.size()) != P)
    cannot_save(name, "parameters: expected ", P, " values (the layout of the config), got ", ckpt.parameters.size());
  const DType scalar = std::is_same_v<Scalar, float> ? DType::f32 : DType::f64;
  const auto h = static_cast<std::uint64_t>(ckpt.config.hidden_size);

  std::map<std::string, OutTensor> tensors;
  for (const Tensor& t : layout.tensors) {
    if (t.size() == 0) continue;
    std::vector<std::uint64_t> shape{static_cast<std::uint64_t>(t.rows)};
    if (!t.vector) shape.push_back(static_cast<std::uint64_t>(t.cols));
    tensors[t.name] = {scalar, shape, ckpt.parameters.data() + t.offset, static_cast<std::uint64_t>(t.size())};
  }

  std::string optimizer = "{}";
  if (ckpt.sgd && ckpt.adam) cannot_save(name, "optimizer: expected at most one of sgd and adam, got both");
  if (ckpt.sgd) {
    const SgdSettings& s = *ckpt.sgd;
    if (!(std::isfinite(s.lr) && s.lr > 0)) cannot_save(name, "sgd.lr: expected a finite value > 0, got ", s.lr);
    if (!(std::isfinite(s.weight_decay) && s.weight_decay >= 0))
      cannot_save(name, "sgd.weight_decay: expected a finite value >= 0, got ", s.weight_decay);
    optimizer = "{\"name\": \"sgd\", \"lr\": " + python_float(s.lr) +
                ", \"weight_decay\": " + python_float(s.weight_decay) + "}";
  }
  if (ckpt.adam) {
    const Adam<Scalar>& a = *ckpt.adam;
    try {
      a.validate();
    } catch (const Error& error) {
      cannot_save(name, "adam: ", error.what());
    }
    if (static_cast<Index>(a.m.size()) != P || static_cast<Index>(a.v.size()) != P)
      cannot_save(name, "adam: expected moments m and v of ", P, " values (the parameters), got ", a.m.size(), " and ",
                  a.v.size());
    optimizer = "{\"name\": \"adam\", \"lr\": " + python_float(a.lr) + ", \"beta1\": " + python_float(a.beta1) +
                ", \"beta2\": " + python_float(a.beta2) + ", \"eps\": " + python_float(a.eps) +
                ", \"weight_decay\": " + python_float(a.weight_decay) +
                ", \"step_count\": " + std::to_string(a.step_count) + "}";
    tensors["optimizer.m"] = {scalar, {static_cast<std::uint64_t>(P)}, a.m.data(), static_cast<std::uint64_t>(P)};
    tensors["optimizer.v"] = {scalar, {static_cast<std::uint64_t>(P)}, a.v.data(), static_cast<std::uint64_t>(P)};
  }

  if (const int depth = detail::json_depth(ckpt.trainer_json); depth > detail::kMaxJsonDepth)
    cannot_save(name, "trainer_json: expected JSON nested at most ", detail::kMaxJsonDepth, " deep, got ", depth);
  json trainer;
  try {
    trainer = json::parse(without_python_constants(ckpt.trainer_json));
  } catch (const json::exception& error) {
    cannot_save(name, "trainer_json: expected a JSON object, got text that does not parse (", error.what(), ")");
  }
  if (!trainer.is_object()) cannot_save(name, "trainer_json: expected a JSON object, got a JSON ", trainer.type_name());
  if (ckpt.runner) {
    const RunnerState<Scalar>& r = *ckpt.runner;
    if (r.batch < 1) cannot_save(name, "runner.batch: expected a batch size >= 1, got ", r.batch);
    const auto batch = trainer.find("batch_size");
    if (batch == trainer.end() || !batch->is_number_integer() || *batch != r.batch)
      cannot_save(name, "trainer_json: expected \"batch_size\": ", r.batch,
                  " (the runner's batch, which Python checks), got ",
                  batch == trainer.end() ? std::string("none") : batch->dump());
    Index state_size = 0, token_count = 0, states_size = 0;
    try {
      state_size =
          detail::checked_size("runner.state", "batch x h", {r.batch, ckpt.config.hidden_size}, sizeof(Scalar));
      if (r.has_history) {
        if (r.history < 0) cannot_save(name, "runner.history: expected a number of steps >= 0, got ", r.history);
        token_count = detail::checked_size("runner.history_tokens", "history x batch", {r.history, r.batch}, 8);
        states_size = detail::checked_size("runner.history_states", "(history + 1) x batch x h",
                                           {r.history + 1, r.batch, ckpt.config.hidden_size}, sizeof(Scalar));
      }
    } catch (const SizeError& error) {
      cannot_save(name, error.what());
    }
    if (static_cast<Index>(r.state.size()) != state_size)
      cannot_save(name, "runner.state: expected ", state_size, " values (batch x h = ", r.batch, " x ", h, "), got ",
                  r.state.size());
    const auto n = static_cast<std::uint64_t>(r.batch);
    tensors["trainer.runner.state"] = {scalar, {n, h}, r.state.data(), static_cast<std::uint64_t>(state_size)};
    if (r.has_history) {
      if (static_cast<Index>(r.history_tokens.size()) != token_count)
        cannot_save(name, "runner.history_tokens: expected ", token_count, " ids (history x batch = ", r.history, " x ",
                    r.batch, "), got ", r.history_tokens.size());
      if (static_cast<Index>(r.history_states.size()) != states_size)
        cannot_save(name, "runner.history_states: expected ", states_size,
                    " values ((history + 1) x batch x h = ", r.history + 1, " x ", r.batch, " x ", h, "), got ",
                    r.history_states.size());
      const auto k = static_cast<std::uint64_t>(r.history);
      tensors["trainer.runner.history_inputs"] = {
          DType::i64, {k, n}, r.history_tokens.data(), static_cast<std::uint64_t>(token_count)};
      tensors["trainer.runner.history_states"] = {
          scalar, {k + 1, n, h}, r.history_states.data(), static_cast<std::uint64_t>(states_size)};
    } else if (r.history != 0 || !r.history_tokens.empty() || !r.history_states.empty()) {
      cannot_save(name, "runner: history given but has_history is false");
    }
  } else {
    // Python's load reads no runner tensors then, and nothing here writes any.
  }

  std::map<std::string, std::string> metadata;
  metadata["format"] = kFormat;
  metadata["format_version"] = kFormatVersion;
  metadata["config"] = config_json(ckpt.config, scalar_type<Scalar>());
  metadata["optimizer"] = optimizer;
  metadata["trainer"] = ckpt.trainer_json;
  if (ckpt.vocab) metadata["vocab"] = ckpt.vocab->to_json();

  try {
    // The data section, tensors in name order; then the digest over the written bytes.
    std::vector<std::uint8_t> data;
    std::map<std::string, TensorRef> refs;
    for (const auto& [key, t] : tensors) {
      TensorRef ref;
      ref.dtype = t.dtype;
      ref.shape = t.shape;
      ref.begin = data.size();
      ref.count = t.count;
      if (t.dtype == DType::f32)
        append_values(data, static_cast<const float*>(t.values), static_cast<std::size_t>(t.count));
      else if (t.dtype == DType::f64)
        append_values(data, static_cast<const double*>(t.values), static_cast<std::size_t>(t.count));
      else
        append_values(data, static_cast<const std::int64_t*>(t.values), static_cast<std::size_t>(t.count));
      ref.end = data.size();
      refs[key] = std::move(ref);
    }
    for (auto& entry : refs) entry.second.data = data.data() + entry.second.begin;
    metadata["sha256"] = digest_v2(metadata, refs);

    json header = json::object();
    header["__metadata__"] = metadata;
    for (const auto& [key, ref] : refs)
      header[key] = {{"dtype", dtype_name(ref.dtype)}, {"shape", ref.shape}, {"data_offsets", {ref.begin, ref.end}}};
    std::string text;
    try {
      text = header.dump();
    } catch (const json::exception& error) {
      cannot_save(name, "the header cannot be written as JSON (", error.what(), ")");
    }
    text.append((8 - text.size() % 8) % 8, ' ');  // as safetensors: the data starts 8-aligned
    std::vector<std::uint8_t> out;
    out.reserve(8 + text.size() + data.size());
    append_u64(out, text.size());
    out.insert(out.end(), text.begin(), text.end());
    out.insert(out.end(), data.begin(), data.end());
    return out;
  } catch (const std::bad_alloc&) {
    cannot_save(name, "cannot allocate memory for the file's bytes");
  }
}

// ---- files --------------------------------------------------------------------------------

std::vector<std::uint8_t> read_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  int fd = -1;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not block the open
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int error = errno;
    if (error == ENOENT) fail(name, "no such file");
    fail(name, "cannot open the file (", system_error_text(error), ")");
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat info {};
  if (::fstat(fd, &info) != 0) fail(name, "cannot read the file (fstat: ", system_error_text(errno), ")");
  if (S_ISDIR(info.st_mode)) fail(name, "is a directory, not a checkpoint file");
  if (!S_ISREG(info.st_mode)) fail(name, "is not a regular file");
  std::vector<std::uint8_t> bytes;
  try {
    bytes.resize(static_cast<std::size_t>(info.st_size));
  } catch (const std::bad_alloc&) {
    fail(name, "cannot allocate ", info.st_size, " bytes to read the file");
  } catch (const std::length_error&) {
    fail(name, "cannot allocate ", info.st_size, " bytes to read the file");
  }
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail(name, "cannot read the file (", system_error_text(errno), ")");
    if (got == 0) fail(name, "truncated: the file shrank to ", done, " bytes while being read");
    done += static_cast<std::size_t>(got);
  }
  return bytes;
}

// The permissions open(path, "w") would leave: the existing file's, else 0666 minus the umask
// (read from /proc when possible: setting the umask to read it is not thread-safe).
mode_t creation_mode(const std::filesystem::path& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) return info.st_mode & 07777;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Umask:", 0) == 0) {
      try {
        const unsigned long umask_value = std::stoul(line.substr(6), nullptr, 8);
        return static_cast<mode_t>(0666 & ~umask_value);
      } catch (const std::exception&) {
        break;
      }
    }
  }
  const mode_t mask = ::umask(022);
  ::umask(mask);
  return 0666 & ~mask;
}

std::uint64_t random_bits() {
  try {
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device();
  } catch (const std::exception&) {
    static std::uint64_t counter = 0;
    const auto now = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    return (now * 0x9E3779B97F4A7C15ULL) ^ (static_cast<std::uint64_t>(::getpid()) << 32) ^ ++counter;
  }
}

bool is_temp_of(const std::string& entry, const std::string& target) {
  // .<target>.<16 lower-case hex digits>.tmp
  const std::string head = "." + target + ".";
  if (entry.size() != head.size() + 16 + 4 || entry.compare(0, head.size(), head) != 0 ||
      entry.compare(entry.size() - 4, 4, ".tmp") != 0)
    return false;
  for (std::size_t i = head.size(); i < head.size() + 16; ++i)
    if (!((entry[i] >= '0' && entry[i] <= '9') || (entry[i] >= 'a' && entry[i] <= 'f'))) return false;
  return true;
}

void remove_stale_temps(const std::filesystem::path& folder, const std::string& target) {
  DIR* dir = ::opendir(folder.c_str());
  if (dir == nullptr) return;
  std::vector<std::string> stale;
  while (const dirent* entry = ::readdir(dir))
    if (is_temp_of(entry->d_name, target)) stale.emplace_back(entry->d_name);
  ::closedir(dir);
  for (const std::string& entry : stale) ::unlink((folder / entry).c_str());
}

void sync_folder(const std::filesystem::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void write_atomically(const std::filesystem::path& path, const std::vector<std::uint8_t>& bytes) {
  const std::string name = path.string();
  const std::string target = path.filename().string();
  if (target.empty() || target == "." || target == "..") fail(name, "cannot save: expected a file name, got a folder");
  std::filesystem::path folder = path.parent_path();
  if (folder.empty()) folder = ".";
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) fail(name, "cannot save: cannot create the folder ", folder.string(), " (", ec.message(), ")");
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) fail(name, "cannot save: the path is a directory");
  const mode_t mode = creation_mode(path);

  std::filesystem::path temp;
  int fd = -1;
  for (;;) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(random_bits()));
    temp = folder / ("." + target + "." + hex + ".tmp");
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) break;
    if (errno == EEXIST || errno == EINTR) continue;
    fail(name, "cannot save: cannot create the temporary file ", temp.string(), " (", system_error_text(errno), ")");
  }
  const auto abandon = [&](const char* what, int error) {
    if (fd >= 0) ::close(fd);
    ::unlink(temp.c_str());
    fail(name, "cannot save: ", what, " failed on the temporary file ", temp.string(), " (", system_error_text(error),
         ")");
  };
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t wrote = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote < 0) abandon("write", errno);
    if (wrote == 0) abandon("write", EIO);
    done += static_cast<std::size_t>(wrote);
  }
  if (::fchmod(fd, mode) != 0) abandon("fchmod", errno);
  if (::fsync(fd) != 0) abandon("fsync", errno);
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0) abandon("close", errno);
  if (::rename(temp.c_str(), path.c_str()) != 0) abandon("rename to the target", errno);
  sync_folder(folder);
  remove_stale_temps(folder, target);
}

// Runs `f`; any failure that is not already one of ours becomes a CheckpointError naming
// `name` (memory exhausted while reading or writing, a standard library error).
template <class F>
auto guarded(std::string_view name, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    fail(name, "out of memory");
  } catch (const std::exception& error) {
    fail(name, "unexpected error (", error.what(), ")");
  }
}

}  // namespace

// ---- the public functions -----------------------------------------------------------------

const char* to_string(ScalarType type) { return type == ScalarType::float32 ? "float32" : "float64"; }

template <class Scalar>
Checkpoint<Scalar> Checkpoint<Scalar>::from_model(const Model<Scalar>& model) {
  Checkpoint out;
  out.config = model.config();
  const Span<const Scalar> values = model.parameters();
  try {
    out.parameters.assign(values.begin(), values.end());
  } catch (const std::bad_alloc&) {
    throw AllocationError(detail::concat("Checkpoint::from_model: cannot allocate ",
                                         values.size() * Index(sizeof(Scalar)), " bytes for the parameters"));
  }
  return out;
}

template <class Scalar>
Model<Scalar> Checkpoint<Scalar>::model() const {
  Model<Scalar> out(config);
  out.set_parameters(Span<const Scalar>(parameters.data(), static_cast<Index>(parameters.size())));
  return out;
}

template <class Scalar>
std::vector<std::uint8_t> serialize_checkpoint(const Checkpoint<Scalar>& checkpoint, std::string_view name) {
  return guarded(name, [&] { return serialize(checkpoint, name); });
}

template <class Scalar>
void save_checkpoint(const std::filesystem::path& path, const Checkpoint<Scalar>& checkpoint) {
  const std::string name = path.string();
  guarded(name, [&] {
    const std::vector<std::uint8_t> bytes = serialize(checkpoint, name);
    write_atomically(path, bytes);
  });
}

template <class Scalar>
Checkpoint<Scalar> parse_checkpoint(Span<const std::uint8_t> bytes, std::string_view name) {
  return guarded(name, [&] { return to_checkpoint<Scalar>(validate(bytes, name), name); });
}

template <class Scalar>
Checkpoint<Scalar> load_checkpoint(const std::filesystem::path& path) {
  const std::string name = path.string();
  return guarded(name, [&] {
    const std::vector<std::uint8_t> bytes = read_file(path);
    return to_checkpoint<Scalar>(
        validate(Span<const std::uint8_t>(bytes.data(), static_cast<Index>(bytes.size())), name), name);
  });
}

ScalarType checkpoint_dtype(Span<const std::uint8_t> bytes, std::string_view name) {
  return guarded(name, [&] { return validate(bytes, name).dtype; });
}

ScalarType checkpoint_dtype(const std::filesystem::path& path) {
  const std::string name = path.string();
  return guarded(name, [&] {
    const std::vector<std::uint8_t> bytes = read_file(path);
    return validate(Span<const std::uint8_t>(bytes.data(), static_cast<Index>(bytes.size())), name).dtype;
  });
}

#define RNNBPTT_INSTANTIATE(Scalar)                                                                                \
  template struct Checkpoint<Scalar>;                                                                              \
  template RNNBPTT_EXPORT std::vector<std::uint8_t> serialize_checkpoint<Scalar>(const Checkpoint<Scalar>&,        \
                                                                                 std::string_view);                \
  template RNNBPTT_EXPORT void save_checkpoint<Scalar>(const std::filesystem::path&, const Checkpoint<Scalar>&);   \
  template RNNBPTT_EXPORT Checkpoint<Scalar> parse_checkpoint<Scalar>(Span<const std::uint8_t>, std::string_view); \
  template RNNBPTT_EXPORT Checkpoint<Scalar> load_checkpoint<Scalar>(const std::filesystem::path&);
RNNBPTT_INSTANTIATE(float)
RNNBPTT_INSTANTIATE(double)
#undef RNNBPTT_INSTANTIATE

}  // namespace rnnbptt
