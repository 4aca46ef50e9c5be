// Layers initialised as the reference code does (weights normal(0, std), biases
// zero), and its activation.
#pragma once

#include <torch/torch.h>

namespace smx {

inline torch::nn::Linear init_dense(int64_t in, int64_t out, double std) {
  torch::nn::Linear l(torch::nn::LinearOptions(in, out).bias(true));
  torch::NoGradGuard g;
  l->weight.normal_(0.0, std);
  l->bias.zero_();
  return l;
}

/// GELU as the reference code's (flax nn.gelu): the tanh approximation
/// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in the MLPs, the experts and the MLM head.
inline torch::Tensor gelu_tanh(const torch::Tensor& x) { return torch::gelu(x, "tanh"); }

}  // namespace smx
