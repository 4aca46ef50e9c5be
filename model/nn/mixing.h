// Token-mixing sublayers: multi-head self-attention and the parameter-light
// mixings of the Sparse Mixer paper (Linear, Fourier, Hartley, Circulant,
// Toeplitz). All map [B, S, D] -> [B, S, D].
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "model/config/model_config.h"

namespace smx {

/// A named matrix a mixing layer applies, for the views ("sequence", "hidden",
/// or "attention" probabilities).
using NamedMatrix = std::pair<std::string, torch::Tensor>;

class MixingSublayer : public torch::nn::Module {
 public:
  /// x: [B, S, D] with padding rows zero (the block zeroes them); mask: [B, S],
  /// 1 for real tokens and 0 for padding (may be undefined = no padding).
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask) = 0;
  /// The matrices this layer mixes with, on the CPU, detached (for S = max_seq_len).
  virtual std::vector<NamedMatrix> matrices() const = 0;
  virtual std::string kind() const = 0;
};

/// BERT self-attention (q, k, v, o projections with bias, dropout on the
/// probabilities). Uses the fused kernel where LibTorch has one, unless the
/// probabilities are being recorded. Masks keys and queries: no token attends
/// to padding, and padding rows get a zero output. Causal (decoder LMs):
/// position i attends to j <= i only.
class SelfAttention : public MixingSublayer {
 public:
  SelfAttention(int64_t d_model, int64_t num_heads, double dropout, double init_std, bool causal = false);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask) override;
  std::vector<NamedMatrix> matrices() const override;
  std::string kind() const override { return causal_ ? "causal-attention" : "attention"; }
  /// When true, the next forward passes keep their probabilities [B, H, S, S].
  bool record_probabilities = false;
  torch::Tensor last_probabilities;
  /// When true, training forward passes measure the attention's health on the batch's first
  /// kStatisticsExamples examples (no gradient; a few percent of the layer's cost): the mean entropy of
  /// the real query rows' distributions (nats) and the largest pre-softmax score. Both 0-dim tensors.
  bool track_statistics = false;
  torch::Tensor last_entropy, last_logit_max;
  static constexpr int64_t kStatisticsExamples = 4;

 private:
  int64_t d_model_, num_heads_;
  double dropout_;
  bool causal_;
  torch::nn::Linear q_{nullptr}, k_{nullptr}, v_{nullptr}, o_{nullptr};
};

/// Y = W_seq . X . W_hidden with both matrices learned (no bias). Inputs
/// shorter than max_seq_len use the top-left S x S block of W_seq.
class LinearMixing : public MixingSublayer {
 public:
  LinearMixing(int64_t max_seq_len, int64_t d_model, double init_std);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask) override;
  std::vector<NamedMatrix> matrices() const override;
  std::string kind() const override { return "linear"; }
  torch::Tensor w_seq, w_hidden;  // [S, S], [D, D]
};

/// Fourier: Re(F_seq X F_hidden); Hartley: Re - Im of the same. No parameters.
/// F_seq is the max_seq_len-point DFT: a shorter input uses its top-left
/// S x S block (the transform of the input zero-padded to max_seq_len, as the
/// reference computes), so outputs do not depend on how long the batch is.
class FourierMixing : public MixingSublayer {
 public:
  FourierMixing(int64_t max_seq_len, int64_t d_model, bool hartley);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask) override;
  std::vector<NamedMatrix> matrices() const override;
  std::string kind() const override { return hartley_ ? "hartley" : "fourier"; }

 private:
  int64_t max_seq_len_, d_model_;
  bool hartley_;
};

/// Circulant C[i,j] = v[(i-j) mod N] or Toeplitz T[i,j] = v[N-1-i+j] (v of
/// length 2N-1), one learned vector per dimension, applied as M_seq X M_hidden^T.
class StructuredMixing : public MixingSublayer {
 public:
  StructuredMixing(int64_t max_seq_len, int64_t d_model, bool toeplitz, double init_std);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask) override;
  std::vector<NamedMatrix> matrices() const override;
  std::string kind() const override { return toeplitz_ ? "toeplitz" : "circulant"; }
  /// The dense matrix built from a vector: [N, N].
  torch::Tensor seq_matrix() const;
  torch::Tensor hidden_matrix() const;
  torch::Tensor v_seq, v_hidden;

 private:
  torch::Tensor build(const torch::Tensor& v, const torch::Tensor& index) const;
  bool toeplitz_;
  torch::Tensor seq_index_, hidden_index_;  // [N, N] int64 buffers
};

/// The mixing sublayer of layer `layer` of `config` (attention where the layout says).
std::shared_ptr<MixingSublayer> make_mixing(const ModelConfig& config, int64_t layer);

/// Circulant product along one dim via FFT: C(v) applied along `dim` of x,
/// equal to the dense path; used by tests and where N is large.
torch::Tensor circulant_apply_fft(const torch::Tensor& v, const torch::Tensor& x, int64_t dim);

}  // namespace smx
