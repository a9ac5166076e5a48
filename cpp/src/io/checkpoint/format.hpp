// The checkpoint file format's parts, shared by the files of this folder (private to the
// library). Reading goes in three layers, each trusting only what the previous one checked:
//   1. the safetensors container (container.cpp, parse_container): header length, JSON header,
//      tensor entries whose byte ranges tile the data section exactly;
//   2. the rnnbptt layer (validate.cpp, validate): format, format version, the SHA-256 digest
//      (digest.cpp), the config, vocabulary, optimizer and trainer entries, and every tensor's
//      shape and dtype against them;
//   3. the conversion of the checked tensors into a Checkpoint<Scalar> (validate.cpp).
// Writing (write.cpp) produces the bytes of every checkpoint, from C++ and Python alike, with
// JSON spaced as Python's json.dumps writes it (json.cpp); files.cpp reads files and writes them atomically. The format
// itself is specified in docs/checkpoints.md.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "rnnbptt/core/error.hpp"
#include "rnnbptt/io/checkpoint.hpp"

namespace rnnbptt::checkpoint_format {

using nlohmann::json;

inline constexpr const char* kFormat = kCheckpointFormat;
inline constexpr const char* kFormatVersion = "3";

// The shape of a runner's carried state of n sequences (ModelConfig::state_size): (n, h) for
// one Elman layer, (L, n, h) for stacks and the GRU, (2, L, n, h) for the LSTM.
inline std::vector<std::uint64_t> state_dims(const ModelConfig& config, Index n) {
  const auto un = static_cast<std::uint64_t>(n), h = static_cast<std::uint64_t>(config.hidden_size),
             L = static_cast<std::uint64_t>(config.num_layers);
  if (config.cell == Cell::lstm) return {2, L, un, h};
  if (!config.single_elman()) return {L, un, h};
  return {un, h};
}  // kCheckpointVersion as metadata text
static_assert(kCheckpointVersion == 3, "kFormatVersion must spell kCheckpointVersion");
// safetensors refuses headers above 100 MB (its MAX_HEADER_SIZE); so do we.
inline constexpr std::uint64_t kMaxHeader = 100'000'000;

// ---- errors (container.cpp) -----------------------------------------------------------------

// `text` with every byte that is not part of a well-formed UTF-8 sequence written as \xNN, so
// that a message quoting a file's bytes (a JSON parser's "last read: ...") is valid UTF-8.
std::string valid_utf8(std::string_view text);

template <class... Parts>
[[noreturn]] void fail(std::string_view name, const Parts&... parts) {
  throw CheckpointError(valid_utf8(detail::concat(name, ": ", parts...)));
}

// A sentence about the file: "<name> is corrupt (...)".
template <class... Parts>
[[noreturn]] void fail_is(std::string_view name, const Parts&... parts) {
  throw CheckpointError(valid_utf8(detail::concat(name, " ", parts...)));
}

template <class... Parts>
[[noreturn]] void cannot_save(std::string_view name, const Parts&... parts) {
  fail(name, "cannot save: ", parts...);
}

// The text of errno value `error`.
std::string system_error_text(int error);

// A tensor shape as Python prints it: "(32, 28)", "(5,)", "()".
template <class Dims>
std::string shape_text(const Dims& dims) {
  std::string out = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  if (dims.size() == 1) out += ",";
  return out + ")";
}

// A string from the file, quoted for a message (JSON escapes; cut after 80 bytes).
std::string shown_string(const std::string& s);

// ---- little-endian bytes (container.cpp) ----------------------------------------------------

bool host_is_little_endian();
std::uint64_t read_u64(const std::uint8_t* p);
void append_u64(std::vector<std::uint8_t>& out, std::uint64_t value);

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

// ---- JSON as Python writes it (json.cpp) ----------------------------------------------------

// repr() of a finite Python float.
std::string python_float(double value);
// json.dumps of Python's model.config() for `config`.
std::string config_json(const ModelConfig& config, ScalarType dtype);
// The text with Python's NaN, Infinity and -Infinity literals (outside strings) made null.
std::string without_python_constants(std::string_view text);
// A metadata entry that must be a JSON object (Python's json.loads + isinstance dict).
json parse_object(std::string_view name, const std::string& key, const std::string& text);

// ---- the container (container.cpp) ----------------------------------------------------------

enum class DType { f32, f64, i64 };

inline const char* dtype_name(DType d) { return d == DType::f32 ? "F32" : d == DType::f64 ? "F64" : "I64"; }
inline const char* numpy_name(DType d) { return d == DType::f32 ? "float32" : d == DType::f64 ? "float64" : "int64"; }
inline std::size_t dtype_bytes(DType d) { return d == DType::f32 ? 4 : 8; }

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

Container parse_container(Span<const std::uint8_t> bytes, std::string_view name);

// ---- the digest (digest.cpp) ----------------------------------------------------------------

std::string digest_v2(const std::map<std::string, std::string>& metadata,
                      const std::map<std::string, TensorRef>& tensors);
std::string digest_v1(const std::map<std::string, TensorRef>& tensors);

// ---- the rnnbptt layer and the conversion (validate.cpp) -----------------------------------

struct Validated {
  ModelConfig config;
  ScalarType dtype = ScalarType::float32;
  std::optional<Vocab> vocab;
  std::variant<std::monostate, SgdSettings, AdamSettings> optimizer;  // the entry's settings, checked
  std::string trainer_json;
  Index runner_batch = 0;  // 0: no runner state
  bool has_history = false;
  bool dense_history = false;  // trainer.runner.history_inputs holds dense inputs (k, n, d), not ids
  Index history = 0;
  std::map<std::string, TensorRef> tensors;  // the checked tensors by name
};

Validated validate(Span<const std::uint8_t> bytes, std::string_view name);

// What StreamRunner::restore requires of a runner state (finite values, history ids in
// [0, input_size), the last history row equal to the state): CheckpointError naming `name`
// otherwise. Reading and writing both check it (validate.cpp).
template <class Scalar>
void check_runner(const RunnerState<Scalar>& r, const ModelConfig& config, std::string_view name);

template <class Scalar>
constexpr ScalarType scalar_type() {
  return std::is_same_v<Scalar, float> ? ScalarType::float32 : ScalarType::float64;
}

template <class Scalar, class Out>
void convert(const TensorRef& t, Out& out) {
  read_values<Scalar>(t.data, static_cast<std::size_t>(t.count), out);
}

// The checked contents as a Checkpoint of Scalar (CheckpointError for the other scalar type).
template <class Scalar>
Checkpoint<Scalar> to_checkpoint(Validated&& v, std::string_view name);

// ---- writing (write.cpp) and files (files.cpp) ---------------------------------------------

template <class Scalar>
std::vector<std::uint8_t> serialize(const Checkpoint<Scalar>& ckpt, std::string_view name);

std::vector<std::uint8_t> read_file(const std::filesystem::path& path);
void write_atomically(const std::filesystem::path& path, const std::vector<std::uint8_t>& bytes);

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

}  // namespace rnnbptt::checkpoint_format
