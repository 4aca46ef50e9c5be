// AdamW on the CPU in one pass over each parameter. LibTorch's CPU AdamW (the
// per-parameter loop, and the multi-tensor kernels alike) runs six or seven
// element-wise operations per tensor, each a pass through memory; a BERT-Base
// step streams its 110M parameters, gradients and two moments through memory
// that many times. Here each element is read once (parameter, gradient, both
// moments) and written once (parameter, moments), vectorised and split over
// LibTorch's intra-op threads. Same arithmetic as torch::optim::AdamW::step,
// operation by operation, rounding where its kernels round (see the .cpp).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace smx {

/// One AdamW step's constants for one parameter (its own step count t >= 1).
struct AdamWStepConstants {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  int64_t step = 1;
};

/// Whether adamw_cpu_update takes these tensors: float32, contiguous, on the CPU, of one shape.
bool adamw_cpu_supports(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                        const at::Tensor& exp_avg_sq);

/// In place, without autograd: param *= 1 - lr * wd; the moments take the
/// gradient; param -= lr / (1 - beta1^t) * exp_avg / (sqrt(exp_avg_sq) / sqrt(1 - beta2^t) + eps).
void adamw_cpu_update(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg,
                      at::Tensor& exp_avg_sq, const AdamWStepConstants& c);

}  // namespace smx
