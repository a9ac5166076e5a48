// The SHA-256 digests of format versions 1 and 2 (docs/checkpoints.md specifies the byte string).
#include "io/checkpoint/format.hpp"

#include "io/sha256.hpp"

namespace rnnbptt::checkpoint_format {

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

// Format versions 2 and 3: docs/checkpoints.md.
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

}  // namespace rnnbptt::checkpoint_format
