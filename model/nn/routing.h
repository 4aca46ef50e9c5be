// Routers of the MoE layers. A router turns token groups into a dispatch plan:
// for every expert, which token of the group sits in each of its `capacity`
// slots and with what weight. The MoE layer executes the plan by gather,
// batched expert matmuls and scatter-add, so its cost follows the capacity.
// Routers always compute in float32, also under CUDA autocast.
#pragma once

#include <vector>

#include <torch/torch.h>

#include "model/config/model_config.h"

namespace smx {

/// What one routing decision holds. G groups, T tokens per group, E experts,
/// C capacity, K choices per token (Tokens Choose).
struct RoutingDecision {
  torch::Tensor logits;    ///< [G, T, E] float32 router logits
  torch::Tensor probs;     ///< [G, T, E] float32 softmax over experts
  torch::Tensor dispatch;  ///< [G, E, C] int64: token index in its group, or T for an empty slot
  torch::Tensor combine;   ///< [G, E, C] float32: output weight of the slot (0 when empty)
  torch::Tensor wanted;    ///< [G, T, K] int64: experts each token asked for (Tokens Choose only)
  torch::Tensor load_balancing_loss;  ///< scalar; zero for Experts Choose
  torch::Tensor z_loss;               ///< scalar: mean over tokens of logsumexp(logits)^2
  int64_t capacity = 0;
};

/// Dense(d_model -> E, with bias) + softmax, then Tokens Choose or Experts Choose.
class RouterImpl : public torch::nn::Module {
 public:
  RouterImpl(int64_t d_model, int64_t num_experts, RouterConfig config, double init_std);
  /// x: [G, T, D] token groups; capacity: slots per expert per group.
  RoutingDecision forward(const torch::Tensor& x, int64_t capacity);
  const RouterConfig& config() const { return config_; }
  RouterConfig& mutable_config() { return config_; }
  torch::nn::Linear dense{nullptr};

 private:
  RouterConfig config_;
  int64_t num_experts_;
};
TORCH_MODULE(Router);

/// The two routing rules on given probabilities, exposed for tests and the
/// what-if view. probs: [G, T, E] float32.
RoutingDecision route_tokens_choose(const torch::Tensor& probs, int64_t top_k, int64_t capacity,
                                    bool batch_prioritized);
RoutingDecision route_experts_choose(const torch::Tensor& probs, int64_t capacity);

/// Switch load-balancing loss: mean_e(f_e * P_e) * E^2 averaged over groups,
/// f = fraction of tokens choosing e among their top-k, P = mean probability.
torch::Tensor load_balancing_loss(const torch::Tensor& probs, const torch::Tensor& chosen_experts);
/// Router z-loss: mean over tokens of logsumexp(logits)^2.
torch::Tensor router_z_loss(const torch::Tensor& logits);

/// Plain numbers summarising a decision, for telemetry and the views.
struct RoutingStats {
  int64_t groups = 0, tokens_per_group = 0, num_experts = 0, capacity = 0;
  std::vector<int64_t> tokens_per_expert;  ///< [E] slots filled, summed over groups
  std::vector<double> fill;                ///< [E] tokens_per_expert / (groups * capacity)
  /// Tokens taken by 0, 1, 2, ... experts (index = number of experts, last bin = that many or more).
  std::vector<int64_t> experts_per_token;
  /// Tokens Choose: choices dropped because the expert was full.
  int64_t dropped_choices = 0;
  /// Tokens no expert took (they pass through the residual only).
  int64_t unrouted_tokens = 0;
  double router_entropy = 0;  ///< mean over tokens, in nats
  double load_balancing_loss = 0, z_loss = 0;
};
RoutingStats summarize(const RoutingDecision& d, int64_t max_bins = 4);

}  // namespace smx
