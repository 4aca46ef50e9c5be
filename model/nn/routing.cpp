// Tokens Choose (top-k with Batch Prioritized Routing) and Experts Choose
// routing; see routing.h for the shapes. Follows the reference implementation
// (google-research sparse_mixers / flaxformer MoE routing).
#include "model/nn/routing.h"

#include "model/core/compat.h"
#include "model/nn/init.h"

namespace smx {

RouterImpl::RouterImpl(int64_t d_model, int64_t num_experts, RouterConfig config, double init_std)
    : config_(config), num_experts_(num_experts) {
  TORCH_CHECK(num_experts > 0, "experts must be > 0, got ", num_experts);
  dense = register_module("dense", init_dense(d_model, num_experts, init_std));
}

torch::Tensor load_balancing_loss(const torch::Tensor& probs, const torch::Tensor& chosen) {
  const int64_t E = probs.size(-1);
  auto mask = torch::one_hot(chosen, E).amax(-2).to(torch::kFloat);  // [G, T, E]: e among the token's top-k
  auto f = mask.mean(1);                                              // [G, E] fraction of tokens choosing e
  auto p = probs.mean(1);                                             // [G, E] mean probability of e
  return (f * p).mean() * double(E * E);
}

torch::Tensor router_z_loss(const torch::Tensor& logits) {
  return torch::logsumexp(logits, -1).pow(2).mean();
}

RoutingDecision route_tokens_choose(const torch::Tensor& probs, int64_t top_k, int64_t capacity,
                                    bool batch_prioritized) {
  const int64_t G = probs.size(0), T = probs.size(1), E = probs.size(2), K = top_k, C = capacity;
  TORCH_CHECK(K >= 1 && K <= E, "top_k must be in [1, ", E, "], got ", K);
  RoutingDecision d;
  d.probs = probs;
  d.capacity = C;
  auto [gate, expert] = probs.topk(K, -1);  // [G, T, K] each
  d.wanted = expert;
  d.load_balancing_loss = load_balancing_loss(probs, expert);

  // Order in which tokens claim slots: by their top-1 probability with BPR,
  // else in sequence order. All top-1 choices are placed before any top-2.
  torch::Tensor order;  // [G, T] token indices, highest priority first
  if (batch_prioritized)
    order = gate.select(-1, 0).argsort(-1, /*descending=*/true);
  else
    order = torch::arange(T, probs.options().dtype(torch::kLong)).expand({G, T});
  auto by_rank = [&](const torch::Tensor& t) {  // [G, T, K] -> [G, K*T] in claim order
    return t.gather(1, order.unsqueeze(-1).expand({G, T, K})).transpose(1, 2).reshape({G, K * T});
  };
  auto claim_expert = by_rank(expert);                           // [G, K*T]
  auto claim_gate = by_rank(gate);                               // [G, K*T]
  auto claim_token = order.unsqueeze(1).expand({G, K, T}).reshape({G, K * T});  // [G, K*T]

  // Slot of each claim inside its expert = how many earlier claims chose the same expert.
  auto onehot = torch::one_hot(claim_expert, E);                                // [G, K*T, E]
  auto slot = (onehot.cumsum(1) * onehot).sum(-1) - 1;                           // [G, K*T]
  auto kept = slot < C;                                                          // [G, K*T]
  // Kept claims write to slot e*C + s; dropped ones to a trash slot E*C, sliced off.
  auto flat = torch::where(kept, claim_expert * C + slot, torch::full_like(slot, E * C));
  d.dispatch = torch::full({G, E * C + 1}, T, flat.options())
                   .scatter_(1, flat, claim_token)
                   .narrow(1, 0, E * C)
                   .view({G, E, C});
  d.combine = torch::zeros({G, E * C + 1}, claim_gate.options())
                  .scatter_(1, flat, claim_gate)
                  .narrow(1, 0, E * C)
                  .view({G, E, C});
  return d;
}

RoutingDecision route_experts_choose(const torch::Tensor& probs, int64_t capacity) {
  const int64_t T = probs.size(1);
  RoutingDecision d;
  d.probs = probs;
  d.capacity = std::min(capacity, T);
  auto [weight, token] = probs.transpose(1, 2).topk(d.capacity, -1);  // [G, E, C] each
  d.dispatch = token;
  d.combine = weight;
  d.load_balancing_loss = torch::zeros({}, probs.options());
  return d;
}

RoutingDecision RouterImpl::forward(const torch::Tensor& x, int64_t capacity) {
  compat::AutocastOff autocast_off;  // routing decisions are numerically sensitive
  auto h = x.to(torch::kFloat);      // [G, T, D]
  if (is_training() && config_.jitter > 0)
    h = h * torch::empty_like(h).uniform_(1.0 - config_.jitter, 1.0 + config_.jitter);
  auto logits = torch::nn::functional::linear(h, dense->weight.to(torch::kFloat),
                                              dense->bias.to(torch::kFloat));  // [G, T, E]
  auto probs = torch::softmax(logits, -1);                                     // [G, T, E]
  RoutingDecision d = config_.kind == RouterKind::TokensChoose
                          ? route_tokens_choose(probs, config_.top_k, capacity, config_.batch_prioritized)
                          : route_experts_choose(probs, capacity);
  d.logits = logits;
  d.z_loss = router_z_loss(logits);
  return d;
}

RoutingStats summarize(const RoutingDecision& d, int64_t max_bins) {
  RoutingStats s;
  torch::NoGradGuard no_grad;
  const int64_t G = d.probs.size(0), T = d.probs.size(1), E = d.probs.size(2);
  s.groups = G;
  s.tokens_per_group = T;
  s.num_experts = E;
  s.capacity = d.capacity;
  auto dispatch = d.dispatch.to(torch::kCPU);  // [G, E, C]
  auto filled = dispatch.lt(T);                // [G, E, C]
  auto per_expert = filled.sum(std::vector<int64_t>{0, 2});  // [E]
  for (int64_t e = 0; e < E; ++e) {
    s.tokens_per_expert.push_back(per_expert[e].item<int64_t>());
    s.fill.push_back(double(s.tokens_per_expert.back()) / double(std::max<int64_t>(G * d.capacity, 1)));
  }
  // Experts per token: count each (group, token) over the filled slots.
  auto offsets = torch::arange(G, torch::kLong).view({G, 1, 1}) * (T + 1);
  auto ids = (dispatch + offsets).flatten();
  auto counts = torch::bincount(ids, {}, G * (T + 1)).view({G, T + 1}).narrow(1, 0, T);  // [G, T]
  auto binned = counts.clamp_max(max_bins - 1).flatten();
  auto hist = torch::bincount(binned, {}, max_bins);
  for (int64_t b = 0; b < max_bins; ++b) s.experts_per_token.push_back(hist[b].item<int64_t>());
  s.unrouted_tokens = s.experts_per_token[0];
  if (d.wanted.defined()) s.dropped_choices = d.wanted.numel() - filled.sum().item<int64_t>();
  auto p = d.probs.detach().to(torch::kCPU);
  s.router_entropy = (-(p * torch::log(p.clamp_min(1e-12))).sum(-1)).mean().item<double>();
  if (d.load_balancing_loss.defined()) s.load_balancing_loss = d.load_balancing_loss.item<double>();
  if (d.z_loss.defined()) s.z_loss = d.z_loss.item<double>();
  return s;
}

}  // namespace smx
