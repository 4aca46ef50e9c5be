// Routers of the MoE layers. A router turns token groups into a dispatch plan:
// for every expert, which token of the group sits in each of its `capacity`
// slots and with what weight. The MoE layer executes the plan by gather,
// batched expert matmuls and scatter-add, so its cost follows the capacity.
// Routers compute in float32, also under CUDA autocast (or, as an option, in
// the reference code's bfloat16). Orderings are stable, as the reference's:
// on equal probabilities the lower expert index and the earlier token win.
// Padding is inert: pad tokens never claim or get a slot, and are left out of
// the losses and statistics.
#pragma once

#include <utility>
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
  torch::Tensor z_loss;               ///< scalar: mean over real tokens of logsumexp(logits)^2
  /// [G, T] bool: real tokens (false = padding); undefined when every token is real.
  torch::Tensor valid;
  /// [G] int64: the capacity of each group, from its real tokens only (at most
  /// `capacity`); undefined when every group has `capacity`.
  torch::Tensor group_capacity;
  int64_t capacity = 0;  ///< C: slots per expert per group in the buffers
};

/// Which tokens of a routing call are real, and each group's capacity
/// computed from its real tokens alone, so that padding never changes who gets
/// a slot. Both undefined when there is no padding.
struct TokenMask {
  torch::Tensor valid;           ///< [G, T] bool
  torch::Tensor group_capacity;  ///< [G] int64
};
/// mask: [G, T] (1 = token, 0 = padding) or undefined. Capacities follow
/// the router's rule (router_capacity() in model/config/cost.h) on the group's
/// real-token count, computed on the device (no host synchronisation); Base
/// and Hash set no per-group capacity.
TokenMask token_mask(const torch::Tensor& mask, int64_t num_experts, double capacity_factor, int64_t min_capacity,
                     RouterKind kind = RouterKind::TokensChoose);

/// The k largest entries along the last dim, ties to the lower index (as
/// jax.lax.top_k): values and indices, [..., k] each. Differentiable in x.
std::pair<torch::Tensor, torch::Tensor> stable_topk(const torch::Tensor& x, int64_t k);

/// Dense(d_model -> E, with bias) + softmax, then the configured rule. Base
/// reads the dense weights as the expert centroids (no bias); Hash reads a
/// token-id table (a buffer, saved in checkpoints) and no weights. The dense
/// layer is kept for every kind, so one model can be re-routed by any rule
/// (the what-if view).
class RouterImpl : public torch::nn::Module {
 public:
  /// vocab_size: the token ids a Hash router's table covers (needed for Hash only).
  RouterImpl(int64_t d_model, int64_t num_experts, RouterConfig config, double init_std, int64_t vocab_size = 0);
  /// x: [G, T, D] token groups; capacity: slots per expert per group (Base
  /// and Hash size their buffers from the assignment); mask: which tokens are
  /// real and each group's capacity (may be empty); ids: [G, T] token ids (Hash only).
  RoutingDecision forward(const torch::Tensor& x, int64_t capacity, const TokenMask& mask = {},
                          const torch::Tensor& ids = {});
  /// Logits [G, T, E] in float32, computed at the configured router precision
  /// (Base: affinities x . c_e with the centroids, no bias).
  torch::Tensor logits(const torch::Tensor& x);
  const RouterConfig& config() const { return config_; }
  RouterConfig& mutable_config() { return config_; }
  /// Replaces the Hash table ([vocab] expert ids, every entry in [0, E)).
  void set_hash_table(const std::vector<int64_t>& table);
  /// The Hash table in use: the buffer of a Hash router, else a random one
  /// (seed 42) for re-routing a model trained with another rule.
  torch::Tensor hash_table_or_random();
  torch::nn::Linear dense{nullptr};
  torch::Tensor hash_table;  ///< [V] int64, Hash routers only (a buffer)

 private:
  RouterConfig config_;
  int64_t num_experts_, vocab_size_;
};
TORCH_MODULE(Router);

/// The two routing rules on given probabilities, exposed for tests and the
/// what-if view. probs: [G, T, E] float32; mask: real tokens and per-group
/// capacities (empty = no padding).
RoutingDecision route_tokens_choose(const torch::Tensor& probs, int64_t top_k, int64_t capacity,
                                    bool batch_prioritized, const TokenMask& mask = {});
RoutingDecision route_experts_choose(const torch::Tensor& probs, int64_t capacity, const TokenMask& mask = {});
/// Switch (fairseq's top1gate): top-1 in sequence order, first come first
/// served, weight = probability; balancing loss on the top-1 choices.
RoutingDecision route_switch(const torch::Tensor& probs, int64_t capacity, const TokenMask& mask = {});
/// GShard (fairseq's top2gate): top-1, then a second expert, by Gumbel
/// sampling over the other experts' logits when `sample_second` (training)
/// or the second best otherwise; all first choices claim slots before any
/// second; the kept gates are renormalised to sum to 1 per token; the
/// balancing loss counts top-1 choices only (as fairseq's code does).
RoutingDecision route_gshard(const torch::Tensor& probs, const torch::Tensor& logits, int64_t capacity,
                             const TokenMask& mask = {}, bool sample_second = false);
/// BASE layers: affinity [G, T, E] (with grad; the weights are
/// sigmoid(affinity) of the chosen expert). Training: every expert takes
/// exactly T / E tokens of each group (padding takes slots as a constant
/// affinity but produces nothing); T not divisible by E is refused.
/// Evaluation: greedy top-1. No balancing loss. Runs on the host.
RoutingDecision route_base(const torch::Tensor& affinity, const TokenMask& mask = {}, bool training = true);
/// Hash layers: expert [G, T] from the table; weight 1; no loss.
RoutingDecision route_hash(const torch::Tensor& expert, int64_t num_experts, const TokenMask& mask = {});

/// Switch load-balancing loss: mean_e(f_e * P_e) * E^2 averaged over groups,
/// f = fraction of tokens choosing e among their top-k, P = mean probability,
/// both over the real tokens (valid [G, T], undefined = all) of groups that have any.
torch::Tensor load_balancing_loss(const torch::Tensor& probs, const torch::Tensor& chosen_experts,
                                  const torch::Tensor& valid = {});
/// Router z-loss: mean over real tokens of logsumexp(logits)^2.
torch::Tensor router_z_loss(const torch::Tensor& logits, const torch::Tensor& valid = {});

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
  /// Real (not padding) tokens routed; the counts above are over these alone.
  int64_t real_tokens = 0;
  double router_entropy = 0;  ///< mean over real tokens, in nats
  /// Mean router probability of the kept (token, expert) assignments: the
  /// reference's router_confidence (sum of combine weights / slots filled).
  double router_confidence = 0;
  double load_balancing_loss = 0, z_loss = 0;
};
RoutingStats summarize(const RoutingDecision& d, int64_t max_bins = 4);

}  // namespace smx
