// The one place where LibTorch versions differ. The engine builds against
// Debian's LibTorch 1.13 (CPU) and PyTorch 2.x's LibTorch (CUDA).
#pragma once

#include <new>
#include <string>

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#if !defined(TORCH_VERSION_MAJOR)
#include <torch/version.h>
#endif

// SMX_WITH_CUDA: set by CMake when LibTorch was built with CUDA.
#if defined(SMX_WITH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#define SMX_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace smx::compat {

/// True where at::scaled_dot_product_attention (fused/flash kernels) exists.
constexpr bool kHasFusedAttention = SMX_TORCH_AT_LEAST(2, 0);

/// Softmax(q k^T / sqrt(d) + mask) v with dropout on the probabilities.
/// q, k, v: [B, H, S, Dh]; additive_mask: [B, 1, 1, S] (0 or a large negative),
/// or undefined for none.
inline torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     const torch::Tensor& additive_mask, double dropout_p) {
#if SMX_TORCH_AT_LEAST(2, 0)
  // An undefined tensor would still be an optional *with* a value: pass none
  // ({}) instead, which also lets CUDA pick the flash kernel.
  if (!additive_mask.defined()) return at::scaled_dot_product_attention(q, k, v, {}, dropout_p);
  return at::scaled_dot_product_attention(q, k, v, additive_mask, dropout_p);
#else
  (void)q; (void)k; (void)v; (void)additive_mask; (void)dropout_p;
  TORCH_CHECK(false, "fused attention needs LibTorch >= 2.0");
#endif
}

/// Turns CUDA autocast off in a scope (routers and losses stay float32).
class AutocastOff {
 public:
#if SMX_TORCH_AT_LEAST(2, 4)
  AutocastOff() : was_(at::autocast::is_autocast_enabled(at::kCUDA)) {
    at::autocast::set_autocast_enabled(at::kCUDA, false);
  }
  ~AutocastOff() { at::autocast::set_autocast_enabled(at::kCUDA, was_); }
#else
  AutocastOff() : was_(at::autocast::is_enabled()) { at::autocast::set_enabled(false); }
  ~AutocastOff() { at::autocast::set_enabled(was_); }
#endif
  AutocastOff(const AutocastOff&) = delete;
  AutocastOff& operator=(const AutocastOff&) = delete;

 private:
  bool was_;
};

/// bf16 autocast on CUDA in a scope (matmuls in bf16, reductions in float32).
class CudaAutocastBf16 {
 public:
#if SMX_TORCH_AT_LEAST(2, 4)
  CudaAutocastBf16() : was_(at::autocast::is_autocast_enabled(at::kCUDA)) {
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
  }
  ~CudaAutocastBf16() {
    at::autocast::set_autocast_enabled(at::kCUDA, was_);
    at::autocast::clear_cache();
  }
#else
  CudaAutocastBf16() : was_(at::autocast::is_enabled()) {
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
  }
  ~CudaAutocastBf16() {
    at::autocast::set_enabled(was_);
    at::autocast::clear_cache();
  }
#endif
  CudaAutocastBf16(const CudaAutocastBf16&) = delete;
  CudaAutocastBf16& operator=(const CudaAutocastBf16&) = delete;

 private:
  bool was_;
};

/// Starts a new peak of the CUDA caching allocator's statistics (no-op elsewhere).
inline void reset_peak_memory(const torch::Device& device) {
#if defined(SMX_WITH_CUDA)
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.has_index() ? device.index() : 0);
#else
  (void)device;
#endif
}

/// The most bytes CUDA tensors held since reset_peak_memory; -1 off CUDA.
inline int64_t peak_memory_bytes(const torch::Device& device) {
#if defined(SMX_WITH_CUDA)
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.has_index() ? device.index() : 0);
    return stats.allocated_bytes[0].peak;  // [0]: StatType::AGGREGATE, in every version
  }
#else
  (void)device;
#endif
  return -1;
}

/// Bytes CUDA tensors hold now; -1 off CUDA.
inline int64_t allocated_memory_bytes(const torch::Device& device) {
#if defined(SMX_WITH_CUDA)
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.has_index() ? device.index() : 0);
    return stats.allocated_bytes[0].current;
  }
#else
  (void)device;
#endif
  return -1;
}

/// Makes a GPU the calling thread's current CUDA device (no-op elsewhere): its
/// generator, caching allocator and kernels without a tensor to follow.
inline void set_current_device(const torch::Device& device) {
#if defined(SMX_WITH_CUDA)
  if (device.is_cuda() && device.has_index()) c10::cuda::set_device(device.index());
#else
  (void)device;
#endif
}

/// Hands the blocks the CUDA caching allocator keeps back to the driver, so
/// that what runs next (the studio's playground, another run) has the GPU's
/// memory after a run ran out of it. No-op without CUDA.
inline void release_cached_memory() {
#if defined(SMX_WITH_CUDA)
  if (torch::cuda::is_available()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
}

/// Whether an error is an allocation failure: CUDA's out-of-memory error, the
/// CPU allocator's refusal (a c10::Error in LibTorch 1.13), or std::bad_alloc.
inline bool is_out_of_memory(const std::exception& e) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) || dynamic_cast<const std::bad_alloc*>(&e)) return true;
  if (!dynamic_cast<const c10::Error*>(&e)) return false;
  const std::string what = static_cast<const c10::Error&>(e).what_without_backtrace();
  for (const char* words : {"out of memory", "can't allocate memory", "not enough memory", "Cannot allocate memory"})
    if (what.find(words) != std::string::npos) return true;
  return false;
}

/// Raises an error at any host-device synchronisation on CUDA while it lives
/// (the tests put a training step inside one). A no-op without CUDA.
class ForbidCudaSync {
 public:
#if defined(SMX_WITH_CUDA)
  ForbidCudaSync() : was_(c10::cuda::warning_state().get_sync_debug_mode()) {
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
  }
  ~ForbidCudaSync() { c10::cuda::warning_state().set_sync_debug_mode(was_); }
#else
  ForbidCudaSync() = default;
#endif
  ForbidCudaSync(const ForbidCudaSync&) = delete;
  ForbidCudaSync& operator=(const ForbidCudaSync&) = delete;

#if defined(SMX_WITH_CUDA)
 private:
  c10::cuda::SyncDebugMode was_;
#endif
};

/// Waits for queued device work (no-op on CPU); used by timing code only.
inline void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

}  // namespace smx::compat
