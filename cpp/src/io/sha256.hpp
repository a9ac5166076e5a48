/// @file sha256.hpp
/// @brief SHA-256 (FIPS 180-4) for the checkpoint digest. Private to the library: not installed,
/// not exported from a shared build (a test compiles sha256.cpp into its own executable).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace rnnbptt {
namespace detail {

/// An incremental SHA-256: update() any number of times, then digest() or hex_digest() once
/// (a finished hasher throws StateError on further use; reset() starts over).
/// Not thread-safe: one hasher per thread.
class Sha256 {
 public:
  Sha256() { reset(); }
  /// Back to the initial state (the hash of nothing so far).
  void reset();
  /// Appends `size` bytes at `data` (data may be nullptr when size == 0).
  void update(const void* data, std::size_t size);
  /// The 32-byte digest of everything appended; finishes the hasher.
  std::array<std::uint8_t, 32> digest();
  /// The digest as 64 lower-case hexadecimal characters; finishes the hasher.
  std::string hex_digest();

 private:
  void compress(const std::uint8_t* block);  // one 64-byte block

  std::array<std::uint32_t, 8> state_{};
  std::array<std::uint8_t, 64> block_{};  // bytes of the block being filled
  std::size_t filled_ = 0;                // bytes in block_
  std::uint64_t length_ = 0;              // bytes appended in total (mod 2^64)
  bool finished_ = false;
};

/// SHA-256 of `size` bytes at `data` as 64 lower-case hexadecimal characters.
std::string sha256_hex(const void* data, std::size_t size);

}  // namespace detail
}  // namespace rnnbptt
