#include "model/nn/dropout.h"

#include <cstdint>
#include <limits>

#include <ATen/Parallel.h>

namespace smx {

namespace {

// SplitMix64 (Steele, Lea & Flood 2014): a strong 64-bit mix of a counter.
inline uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

template <typename T>
void fill_mask(T* out, int64_t n, uint64_t seed, uint32_t drop_below, T kept) {
  // Each hash gives two 32-bit uniforms, for elements 2i and 2i + 1.
  const int64_t pairs = (n + 1) / 2;
  at::parallel_for(0, pairs, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const uint64_t h = splitmix64(seed + uint64_t(i) * 0x9E3779B97F4A7C15ull);
      const int64_t e = 2 * i;
      out[e] = uint32_t(h) < drop_below ? T(0) : kept;
      if (e + 1 < n) out[e + 1] = uint32_t(h >> 32) < drop_below ? T(0) : kept;
    }
  });
}

uint64_t fresh_seed() {
  // One draw from LibTorch's default generator: torch::manual_seed makes runs repeat.
  return uint64_t(torch::randint(std::numeric_limits<int64_t>::max(), {1}, torch::kLong).item<int64_t>());
}

}  // namespace

torch::Tensor dropout_mask(at::IntArrayRef shape, double p, torch::ScalarType type, uint64_t seed) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropout probability must be in [0, 1), got ", p);
  auto mask = torch::empty(shape, torch::TensorOptions().dtype(type == torch::kDouble ? torch::kDouble : torch::kFloat));
  // P(u < drop_below) = p for u uniform on 32 bits.
  const auto drop_below = uint32_t(std::min(p * 4294967296.0, 4294967295.0));
  const int64_t n = mask.numel();
  if (mask.scalar_type() == torch::kDouble)
    fill_mask(mask.data_ptr<double>(), n, seed, drop_below, 1.0 / (1.0 - p));
  else
    fill_mask(mask.data_ptr<float>(), n, seed, drop_below, float(1.0 / (1.0 - p)));
  return mask.scalar_type() == type ? mask : mask.to(type);
}

torch::Tensor dropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p == 0.0) return x;
  TORCH_CHECK(p > 0.0 && p <= 1.0, "dropout probability must be in [0, 1], got ", p);
  if (p == 1.0) return x * 0;
  TORCH_CHECK(x.is_floating_point(), "dropout needs a floating-point tensor, got ", x.scalar_type());
  if (!x.device().is_cpu()) return torch::dropout(x, p, true);  // LibTorch's: fast on CUDA
  return x * dropout_mask(x.sizes(), p, x.scalar_type(), fresh_seed());
}

DropoutImpl::DropoutImpl(double p) : p(p) {
  TORCH_CHECK(p >= 0.0 && p <= 1.0, "dropout probability must be in [0, 1], got ", p);
}

void DropoutImpl::pretty_print(std::ostream& stream) const { stream << "smx::Dropout(p=" << p << ")"; }

}  // namespace smx
