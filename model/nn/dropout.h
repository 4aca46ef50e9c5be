// Dropout whose random numbers are cheap on the CPU.
//
// LibTorch's CPU dropout draws one Bernoulli number per element through its
// generator, serially: on Debian's LibTorch 1.13 (no MKL) dropping out BERT-Base's
// attention probabilities of one batch of 2 x 512 tokens took ~210 ms per layer,
// a quarter of the training step. Here the mask comes from a counter-based hash
// (SplitMix64 of one seed drawn from LibTorch's generator and the element's
// index), computed in parallel: the same under torch::manual_seed whatever the
// number of threads, and each call draws a fresh seed. Elsewhere than the CPU
// (CUDA's dropout is fast) it is LibTorch's dropout.
#pragma once

#include <torch/torch.h>

namespace smx {

/// Zeroes each element with probability p and scales the rest by 1 / (1 - p) while
/// training; x itself otherwise. Gradients flow through the kept elements.
torch::Tensor dropout(const torch::Tensor& x, double p, bool training);

/// The keep mask dropout multiplies by: 0 with probability p, 1 / (1 - p)
/// otherwise, in the given shape and floating type, on the CPU.
torch::Tensor dropout_mask(at::IntArrayRef shape, double p, torch::ScalarType type, uint64_t seed);

/// Dropout's place in a model (no parameters: checkpoints are the
/// same), calling smx::dropout.
class DropoutImpl : public torch::nn::Cloneable<DropoutImpl> {
 public:
  explicit DropoutImpl(double p = 0.5);
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& x) { return smx::dropout(x, p, is_training()); }
  void pretty_print(std::ostream& stream) const override;
  double p;
};
TORCH_MODULE(Dropout);

}  // namespace smx
