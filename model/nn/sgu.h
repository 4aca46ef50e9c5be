// gMLP's Spatial Gating Unit (SGU) and the sMLP paper's sMoE, its sparse form over hidden channels, as
// token-mixing sublayers next to mixing.h (SMLP.md §1). They map the U projection's output [B, S, F]
// to [B, S, F/2]: Z = [Z1 | Z2] split on channels, s(Z) = Z1 ⊙ (W·LN(Z2) + b) with W causal
// (lower-triangular) n×n and b ∈ R^n. Inputs shorter than n use W[:S, :S] and b[:S] (the gpt-neox
// pitfall: an unsliced bias breaks S < n).
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/config/model_config.h"
#include "model/nn/mixing.h"

namespace smx {

/// The causal SGU. W starts near 0 (uniform ±1e-3/n, as lucidrains' g-mlp), b at 1, so s(Z) ≈ Z1.
class SpatialGatingUnit : public MixingSublayer {
 public:
  SpatialGatingUnit(int64_t d_ffn, int64_t context, double layer_norm_eps);
  /// z: [B, S, F] -> [B, S, F/2]; S <= context. The mask is not used (LM streams have no padding).
  torch::Tensor forward(const torch::Tensor& z, const torch::Tensor& mask) override;
  /// "sequence": the causal W (masked as applied) [n, n].
  std::vector<NamedMatrix> matrices() const override;
  std::string kind() const override { return "sgu"; }
  /// W[:S, :S] with the upper triangle zeroed: [S, S].
  torch::Tensor causal_weight(int64_t S) const;
  torch::nn::LayerNorm norm{nullptr};
  torch::Tensor w, b;  // [n, n], [n]
};

/// What the sMoE decided for a batch (detached; telemetry and the views read it).
struct SmoeDecision {
  /// [C] expert of each gate channel (deterministic) or [B, C] per sequence (partial, learned).
  torch::Tensor expert;
  /// [B, C, E] router probabilities per channel (partial, learned); undefined for deterministic.
  torch::Tensor probs;
  /// Sizes of the router's input [B, C, r]: r = prefix p (partial) or n (learned).
  std::vector<int64_t> router_input_sizes;
};

/// sMoE: E experts, each a causal SGU with its own W_e [n, n] and b_e [n], sharing the LayerNorm.
/// Deterministic: gate channel c goes to expert floor(c·E/C) (C = F/2, contiguous chunks); no router.
/// Partial: a router Linear(p -> E) reads each channel's first p tokens of LN(Z2) (p = floor(0.2·n));
/// the channel takes its top-1 expert, scaled by the gate probability; tokens at positions >= p never
/// change routing, so outputs at t >= p are causal. Learned (App. B, leaks): the router reads the whole
/// column (n tokens, zero-padded when S < n), future tokens included; teaching only.
/// Partial and learned compute every expert on every channel and keep the routed one (E x the SGU
/// matmul; fine at demo size, counted so by the cost model).
class SparseGatingUnit : public MixingSublayer {
 public:
  SparseGatingUnit(int64_t d_ffn, int64_t context, int64_t num_experts, SmoeRouting routing,
                   int64_t prefix, double layer_norm_eps, double init_std);
  struct Output {
    torch::Tensor y;                    ///< [B, S, F/2]
    torch::Tensor load_balancing_loss;  ///< scalar (partial, learned: Switch loss over channels), else 0
  };
  Output forward_with_loss(const torch::Tensor& z);
  torch::Tensor forward(const torch::Tensor& z, const torch::Tensor& mask) override;
  /// "expert 0" ... "expert E-1": each expert's causal W_e [n, n].
  std::vector<NamedMatrix> matrices() const override;
  std::string kind() const override { return "smoe-" + to_string(routing_); }
  SmoeRouting routing() const { return routing_; }
  int64_t num_experts() const { return num_experts_; }
  int64_t prefix() const { return prefix_; }
  /// Deterministic rule: expert of each of the C gate channels, floor(c·E/C): [C] int64.
  torch::Tensor channel_experts() const;
  torch::nn::LayerNorm norm{nullptr};
  torch::Tensor w, b;                  // [E, n, n], [E, n]
  torch::nn::Linear router{nullptr};  // partial: p -> E, learned: n -> E; null for deterministic
  /// The last forward's routing, detached.
  SmoeDecision last_routing;

 private:
  torch::Tensor causal_weights(int64_t S) const;  // [E, S, S]
  int64_t channels_, context_, num_experts_, prefix_;
  SmoeRouting routing_;
};

}  // namespace smx
