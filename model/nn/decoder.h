// The decoder LM of the sMLP family (nanoGPT-simple): token + position embeddings, pre-LN blocks,
// final LayerNorm, output head tied to the token table over all positions, next-token loss with a
// loss mask. One module for the family: Transformer-LM, gMLP and sMLP differ only in their config
// (ModelConfig::family = decoder-lm; lm_mixing, smoe_routing, moe_layers/moe_layout).
#pragma once

#include <memory>
#include <vector>

#include <torch/torch.h>

#include "model/config/model_config.h"
#include "model/nn/dropout.h"
#include "model/nn/encoder.h"
#include "model/nn/mixing.h"
#include "model/nn/moe.h"
#include "model/nn/sgu.h"

namespace smx {

/// gMLP sublayer without its residual: V · s(GELU(U · LN(x))), dropout. The unit s is a causal SGU
/// or an sMoE. x: [B, S, D] -> [B, S, D].
class GatedMlpImpl : public torch::nn::Module {
 public:
  GatedMlpImpl(const ModelConfig& c, bool sparse);
  struct Output {
    torch::Tensor y;                    ///< [B, S, D]
    torch::Tensor load_balancing_loss;  ///< sMoE (partial, learned) only; else undefined
  };
  Output forward(const torch::Tensor& x);
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear u{nullptr}, v{nullptr};
  std::shared_ptr<MixingSublayer> unit;        ///< SpatialGatingUnit or SparseGatingUnit
  std::shared_ptr<SparseGatingUnit> sparse;    ///< the same unit when it is an sMoE, else null
  Dropout dropout{nullptr};
};
TORCH_MODULE(GatedMlp);

/// Pre-LN decoder block. Attention: x += drop(attn(LN x)); x += FFN(LN x) (dense) or MoE(LN x)
/// (sparse). gMLP: x += gMLP(x) (dense: no FFN, as gMLP) and, in sparse blocks, x += MoE(LN x).
class DecoderBlockImpl : public torch::nn::Module {
 public:
  DecoderBlockImpl(const ModelConfig& c, int64_t layer);
  struct Output {
    torch::Tensor y;                    ///< [B, S, D]
    torch::Tensor load_balancing_loss;  ///< scalar or undefined: tMoE (router-weighted)
    torch::Tensor z_loss;               ///< scalar or undefined: tMoE
    torch::Tensor smoe_balancing_loss;  ///< scalar or undefined: partial/learned sMoE
  };
  /// x: [B, S, D]; ids: [B, S] token ids, read by a Hash router only.
  Output forward(const torch::Tensor& x, const torch::Tensor& ids = {});
  bool is_sparse() const { return !moe.is_empty(); }
  /// The token-mixing sublayer (attention, SGU or sMoE), for the views.
  std::shared_ptr<MixingSublayer> mixing() const;

  torch::nn::LayerNorm attention_norm{nullptr}, mlp_norm{nullptr};
  std::shared_ptr<SelfAttention> attention;  ///< attention blocks
  Dropout attention_dropout{nullptr};
  GatedMlp gated{nullptr};                   ///< gMLP blocks
  FeedForward feed_forward{nullptr};         ///< dense attention blocks
  Moe moe{nullptr};                          ///< sparse blocks (tMoE)
};
TORCH_MODULE(DecoderBlock);

/// A language-model batch: B contiguous windows of S tokens.
struct LmBatch {
  torch::Tensor ids;        ///< [B, S] int64
  torch::Tensor loss_mask;  ///< [B, S] 1 where the token may be a target; undefined = all
  LmBatch to(const torch::Device& device) const;
};

/// Next-token losses of an LM step (scalar tensors; counts as int64 scalars).
struct LmLosses {
  torch::Tensor total;            ///< nll + weighted balancing losses + z-loss
  torch::Tensor nll;              ///< mean over scored targets (nats)
  torch::Tensor nll_sum;          ///< sum over scored targets
  torch::Tensor targets;          ///< number of scored targets
  torch::Tensor accuracy;         ///< next-token top-1 accuracy over scored targets
  torch::Tensor load_balancing;   ///< tMoE, summed over layers
  torch::Tensor z_loss;           ///< tMoE
  torch::Tensor smoe_balancing;   ///< partial/learned sMoE, summed over layers
};

class CausalLmImpl : public torch::nn::Module {
 public:
  explicit CausalLmImpl(const ModelConfig& config);
  struct Output {
    torch::Tensor logits;               ///< [B, S, V]
    torch::Tensor load_balancing_loss;  ///< scalar, sum over sparse blocks
    torch::Tensor z_loss;
    torch::Tensor smoe_balancing_loss;
  };
  /// ids: [B, S] with 1 <= S <= max_seq_len.
  Output forward(const torch::Tensor& ids);
  /// Teacher-forced next-token loss: the prediction at position t scores token t+1 where loss_mask
  /// allows it, and (partial prediction) only from positions t >= the routing prefix p.
  LmLosses lm_losses(const LmBatch& batch);
  /// Position of the first target the loss counts: p + 1 for partial prediction, else 1.
  int64_t first_scored_target() const { return config_.routing_prefix() + 1; }

  const ModelConfig& config() const { return config_; }
  /// Sparse blocks' tMoE layers with their block index.
  std::vector<std::pair<int64_t, Moe>> moe_layers() const;
  void set_capacity_factors(double train, double eval);

  torch::nn::Embedding token{nullptr}, position{nullptr};
  Dropout dropout{nullptr};
  std::vector<DecoderBlock> blocks;
  torch::nn::LayerNorm final_norm{nullptr};

 private:
  ModelConfig config_;
};
TORCH_MODULE(CausalLm);

struct GenerateOptions {
  /// New tokens to produce.
  int64_t max_new_tokens = 40;
  /// 0: greedy (argmax); > 0: sample from softmax(logits / temperature).
  double temperature = 0.0;
  /// Sampling only: keep the k most likely tokens (0: all).
  int64_t top_k = 0;
  /// Stop after producing this token (< 0: never).
  int64_t stop_token = -1;
  uint64_t seed = 0;
};
/// Autoregressive generation from `prompt` (>= 1 token): each step runs the model on the last
/// max_seq_len tokens and picks the next one. Returns the new tokens only. The model should be in eval
/// mode. Throws c10::Error naming the bad option.
std::vector<int64_t> generate(CausalLm& model, const std::vector<int64_t>& prompt, const GenerateOptions& options);

/// Token-by-token NLL: target t+1 scored from a forward pass over ids[:, :t+1] alone (what
/// autoregressive generation sees), summed over the targets lm_losses counts. Returns {sum, count}.
/// Equal to the teacher-forced sum for causal models; lower for the leaky learned sMoE.
std::pair<double, int64_t> token_by_token_nll(CausalLm& model, const LmBatch& batch);

}  // namespace smx
