// Small non-cryptographic hashes shared by the engine (no LibTorch here):
// FNV-1a for checksums and cache keys of files, SplitMix64 for seeding and
// for hash-based splits that must not depend on std::hash's implementation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace smx {

inline constexpr uint64_t kFnvBasis = 1469598103934665603ULL;

/// Continues an FNV-1a hash `h` over n bytes (start with kFnvBasis).
inline uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}
inline uint64_t fnv1a(uint64_t h, std::string_view s) { return fnv1a(h, s.data(), s.size()); }

/// SplitMix64's output function: a well-mixed 64-bit value from any input.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace smx
