// One-pass CPU AdamW; see adamw_cpu.h. The loop is plain C++ that the
// compiler vectorises (this file is built with -O3 -fno-math-errno, so that
// the square root vectorises too, and -ffp-contract=off, so that nothing is
// fused but the multiply-adds written as std::fma), in one version per
// instruction set, picked when the program loads (target_clones).
#include "model/optim/adamw_cpu.h"

#include <ATen/Parallel.h>

#include <cmath>

namespace smx {

namespace {

/// The float32 constants, rounded once as LibTorch rounds its scalar arguments.
struct Constants {
  float decay;            // 1 - lr * wd
  float beta1, one_minus_beta1;
  float beta2, one_minus_beta2;
  float sqrt_correction2;  // sqrt(1 - beta2^t)
  float eps;
  float neg_step_size;    // -lr / (1 - beta1^t)
};

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SMX_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SMX_VECTOR_CLONES
#endif

// The moments use fused multiply-adds where LibTorch's vectorised add_(x, alpha)
// and addcmul_ kernels do; so written, the result was bit-identical to
// torch::optim::AdamW (LibTorch 1.13, AVX-512 machine, 5 steps of 1M elements).
SMX_VECTOR_CLONES
void update_span(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                 int64_t n, const Constants c) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = std::fma(gi, c.one_minus_beta1, m[i] * c.beta1);       // exp_avg.mul_(b1).add_(g, 1 - b1)
    const float vi = std::fma(c.one_minus_beta2 * gi, gi, v[i] * c.beta2);  // exp_avg_sq.mul_(b2).addcmul_(g, g, 1 - b2)
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / c.sqrt_correction2 + c.eps;  // (sqrt / sqrt(bc2)).add_(eps)
    p[i] = p[i] * c.decay + c.neg_step_size * mi / denom;           // p.mul_(decay).addcdiv_(m, denom, -step)
  }
}

}  // namespace

bool adamw_cpu_supports(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                        const at::Tensor& exp_avg_sq) {
  for (const auto* t : {&param, &grad, &exp_avg, &exp_avg_sq})
    if (!t->defined() || !t->device().is_cpu() || t->scalar_type() != at::kFloat || !t->is_contiguous() ||
        t->sizes() != param.sizes())
      return false;
  return true;
}

void adamw_cpu_update(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg,
                      at::Tensor& exp_avg_sq, const AdamWStepConstants& k) {
  TORCH_CHECK(adamw_cpu_supports(param, grad, exp_avg, exp_avg_sq),
              "the one-pass CPU AdamW needs contiguous float32 CPU tensors of one shape");
  TORCH_CHECK(k.step >= 1, "AdamW step count must be >= 1, got ", k.step);
  const double t = double(k.step);
  const Constants c{float(1 - k.lr * k.weight_decay),
                    float(k.beta1),
                    float(1 - k.beta1),
                    float(k.beta2),
                    float(1 - k.beta2),
                    float(std::sqrt(1 - std::pow(k.beta2, t))),
                    float(k.eps),
                    float(-k.lr / (1 - std::pow(k.beta1, t)))};
  float* p = param.data_ptr<float>();
  const float* g = grad.data_ptr<float>();
  float* m = exp_avg.data_ptr<float>();
  float* v = exp_avg_sq.data_ptr<float>();
  // 32K floats a task: small tensors run on the calling thread.
  at::parallel_for(0, param.numel(), 32768, [&](int64_t begin, int64_t end) {
    update_span(p + begin, g + begin, m + begin, v + begin, end - begin, c);
  });
}

}  // namespace smx
