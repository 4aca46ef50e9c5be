// Layers initialised as the reference code does: weights normal(0, std), biases zero.
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

}  // namespace smx
