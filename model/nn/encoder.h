// The encoder model: BERT embeddings, post-LN blocks (mixing or attention,
// then dense or MoE MLP), pooler, and the heads (MLM tied to the word
// embeddings, NSP, classification/regression). One module for the whole
// family: BERT, Sparse Mixer and sparse BERT differ only in their config.
#pragma once

#include <memory>
#include <vector>

#include <torch/torch.h>

#include "model/config/model_config.h"
#include "model/nn/dropout.h"
#include "model/nn/mixing.h"
#include "model/nn/moe.h"

namespace smx {

/// word + position + segment embeddings, LayerNorm, Dense to d_model, dropout.
class EmbeddingsImpl : public torch::nn::Module {
 public:
  explicit EmbeddingsImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& types);  // [B, S] -> [B, S, D]
  torch::nn::Embedding word{nullptr}, position{nullptr}, segment{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear projection{nullptr};
  Dropout dropout{nullptr};
};
TORCH_MODULE(Embeddings);

/// Dense(d_ff) -> GELU (tanh approximation) -> Dense(d_model) -> dropout.
class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t d_model, int64_t d_ff, double dropout, double init_std);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear in{nullptr}, out{nullptr};
  Dropout dropout{nullptr};
};
TORCH_MODULE(FeedForward);

/// Post-LN block: x = LN(in + mix(in)); out = LN(x + MLP(x)). Padding rows
/// are zeroed before mixing and routed nowhere, so they never reach real tokens.
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const ModelConfig& c, int64_t layer);
  struct Output {
    torch::Tensor y;                    ///< [B, S, D]
    torch::Tensor load_balancing_loss;  ///< scalar or undefined (dense MLP)
    torch::Tensor z_loss;
  };
  /// x: [B, S, D]; mask: [B, S] (undefined = no padding); ids: [B, S] token ids (for Hash routing).
  Output forward(const torch::Tensor& x, const torch::Tensor& mask, const torch::Tensor& ids = {});
  bool is_moe() const { return !moe.is_empty(); }

  std::shared_ptr<MixingSublayer> mixing;
  Dropout mixing_dropout{nullptr};  // attention only, as BERT
  torch::nn::LayerNorm mixing_norm{nullptr}, output_norm{nullptr};
  FeedForward feed_forward{nullptr};
  Moe moe{nullptr};
};
TORCH_MODULE(Block);

/// A pre-training batch. B examples of S tokens, P masked positions each.
struct PretrainBatch {
  torch::Tensor ids;            ///< [B, S] int64
  torch::Tensor types;          ///< [B, S] int64 segment ids
  torch::Tensor mask;           ///< [B, S] 1 = token, 0 = padding
  torch::Tensor mlm_positions;  ///< [B, P] int64
  torch::Tensor mlm_labels;     ///< [B, P] int64, -100 where the prediction slot is unused
  torch::Tensor nsp_labels;     ///< [B] int64: 0 = B follows A, 1 = random
  PretrainBatch to(const torch::Device& device) const;
};

/// Losses and accuracies of a pre-training step (scalar tensors).
struct PretrainLosses {
  torch::Tensor total, mlm, nsp, load_balancing, z_loss;
  torch::Tensor mlm_accuracy, nsp_accuracy;
};

class EncoderModelImpl : public torch::nn::Module {
 public:
  explicit EncoderModelImpl(const ModelConfig& config);

  struct Output {
    torch::Tensor hidden;               ///< [B, S, D]
    torch::Tensor pooled;               ///< [B, D]
    torch::Tensor load_balancing_loss;  ///< scalar: sum over MoE layers
    torch::Tensor z_loss;               ///< scalar: sum over MoE layers
  };
  /// ids, types, mask: [B, S] (mask may be undefined = all tokens).
  Output forward(const torch::Tensor& ids, const torch::Tensor& types, const torch::Tensor& mask);

  /// MLM logits at the given positions only: hidden [B, S, D], positions [B, P] -> [B, P, V].
  torch::Tensor mlm_logits(const torch::Tensor& hidden, const torch::Tensor& positions);
  torch::Tensor nsp_logits(const torch::Tensor& pooled);       ///< [B, 2]
  torch::Tensor classify(const torch::Tensor& pooled);         ///< [B, num_classes]
  /// MLM + NSP + weighted router losses, with accuracies.
  PretrainLosses pretrain_losses(const PretrainBatch& batch);

  const ModelConfig& config() const { return config_; }
  /// Blocks with an MoE sublayer, in layer order, with their layer index.
  std::vector<std::pair<int64_t, Moe>> moe_layers() const;
  /// Sets the train and eval capacity factors of every MoE layer.
  void set_capacity_factors(double train, double eval);

  Embeddings embeddings{nullptr};
  std::vector<Block> blocks;
  torch::nn::Linear pooler{nullptr}, mlm_dense{nullptr}, nsp{nullptr}, classifier{nullptr};
  torch::nn::LayerNorm mlm_norm{nullptr};
  torch::Tensor mlm_bias;  // [V]
  Dropout classifier_dropout{nullptr};

 private:
  ModelConfig config_;
};
TORCH_MODULE(EncoderModel);

/// Number of parameters of a module (all, trainable or not).
int64_t count_parameters(const torch::nn::Module& m);

}  // namespace smx
