// The safetensors container: errors, little-endian bytes and parse_container (format.hpp).
#include "io/checkpoint/format.hpp"

#include <system_error>

#include "io/python_json.hpp"

namespace rnnbptt::checkpoint_format {

std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char lead = byte(i);
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // the second byte's range (RFC 3629's table)
    if (lead < 0x80)
      length = 1;
    else if (lead >= 0xC2 && lead <= 0xDF)
      length = 2;
    else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;  // no surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    }
    bool ok = length > 0 && i + length <= text.size();
    for (std::size_t k = 1; ok && k < length; ++k) {
      const unsigned char c = byte(i + k);
      ok = k == 1 ? c >= low && c <= high : c >= 0x80 && c <= 0xBF;
    }
    if (ok) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      static const char digits[] = "0123456789abcdef";
      out += "\\x";
      out += digits[lead >> 4];
      out += digits[lead & 15];
      ++i;
    }
  }
  return out;
}

std::string system_error_text(int error) { return std::error_code(error, std::generic_category()).message(); }

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

namespace {

std::uint64_t json_unsigned(std::string_view name, const json& value, const std::string& what) {
  if (!value.is_number_unsigned()) {
    if (value.is_number_integer()) fail(name, what, ": expected an integer >= 0, got ", value.get<std::int64_t>());
    fail(name, what, ": expected an integer >= 0, got a JSON ", value.type_name(), " (", value.dump(), ")");
  }
  return value.get<std::uint64_t>();
}

}  // namespace

Container parse_container(Span<const std::uint8_t> bytes, std::string_view name) {
  if (bytes.size() < 0 || (bytes.data() == nullptr && bytes.size() > 0))
    fail(name, "expected a buffer of bytes, got a null pointer or a negative length ", bytes.size());
  const auto size = static_cast<std::uint64_t>(bytes.size());
  if (size < 8)
    fail_is(name, "is not a readable safetensors file (not a checkpoint, truncated or another format: ", size,
            " bytes, fewer than the 8 of the safetensors header length)");
  const std::uint64_t header_size = read_u64(bytes.data());
  if (header_size > size - 8)
    fail_is(name,
            "is not a readable safetensors file (not a checkpoint, truncated or another format: the header "
            "length says ",
            header_size, " bytes, the file holds ", size - 8, " after it)");
  if (header_size > kMaxHeader)
    fail_is(name, "is not a readable safetensors file (not a checkpoint: its header of ", header_size,
            " bytes exceeds the safetensors limit of ", kMaxHeader, ")");
  const auto* header = reinterpret_cast<const char*>(bytes.data() + 8);
  if (header_size < 2 || header[0] != '{')
    fail_is(name,
            "is not a readable safetensors file (not a checkpoint, another format: its header does not start "
            "with '{')");
  if (const int depth = detail::json_depth({header, static_cast<std::size_t>(header_size)}); depth > kMaxJsonDepth)
    fail_is(name, "is not a readable safetensors file (corrupt or not a checkpoint: its header nests ", depth,
            " deep (at most ", kMaxJsonDepth, " expected)");
  json parsed;
  try {
    parsed = json::parse(header, header + header_size);
  } catch (const json::exception& error) {
    fail_is(name, "is not a readable safetensors file (corrupt or not a checkpoint: its header is not valid JSON: ",
            error.what(), ")");
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
      fail_is(name, "is not a readable safetensors file (truncated or corrupt: ", what, " ends at byte ", tensor.end,
              " of the data, which holds ", data_size, " bytes)");
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

}  // namespace rnnbptt::checkpoint_format
