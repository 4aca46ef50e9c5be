// Tokens Choose (top-k with Batch Prioritized Routing), Experts Choose,
// Switch, GShard, BASE and Hash routing; see routing.h for the shapes. Follows the reference implementation
// (google-research sparse_mixers / flaxformer MoE routing): stable orderings
// (lower index first on ties), capacity rounded half to even. Unlike the
// reference, which pads every input to max_seq_len and routes the padding
// too, pad tokens here claim no slot and count in no loss or statistic.
#include "model/nn/routing.h"

#include <algorithm>
#include <limits>

#include "model/core/compat.h"
#include "model/nn/base_routing.h"
#include "model/nn/hash_routing.h"
#include "model/nn/init.h"

namespace smx {

RouterImpl::RouterImpl(int64_t d_model, int64_t num_experts, RouterConfig config, double init_std, int64_t vocab_size)
    : config_(config), num_experts_(num_experts), vocab_size_(vocab_size) {
  TORCH_CHECK(num_experts > 0, "experts must be > 0, got ", num_experts);
  dense = register_module("dense", init_dense(d_model, num_experts, init_std));
  if (config.kind == RouterKind::Hash) {
    TORCH_CHECK(vocab_size > 0, "a hash router needs the vocabulary size, got ", vocab_size);
    hash_table = register_buffer("hash_table", torch::tensor(random_hash_table(vocab_size, num_experts), torch::kLong));
  }
}

void RouterImpl::set_hash_table(const std::vector<int64_t>& table) {
  TORCH_CHECK(hash_table.defined(), "only a hash router has a table");
  TORCH_CHECK(int64_t(table.size()) == vocab_size_, "hash table of ", table.size(), " ids for a vocabulary of ",
              vocab_size_);
  for (int64_t e : table) TORCH_CHECK(e >= 0 && e < num_experts_, "hash table names expert ", e, " of ", num_experts_);
  torch::NoGradGuard no_grad;
  hash_table.copy_(torch::tensor(table, torch::kLong));
}

torch::Tensor RouterImpl::hash_table_or_random() {
  if (hash_table.defined()) return hash_table;
  TORCH_CHECK(vocab_size_ > 0, "hash routing needs the model's vocabulary size");
  return torch::tensor(random_hash_table(vocab_size_, num_experts_), torch::kLong).to(dense->weight.device());
}

TokenMask token_mask(const torch::Tensor& mask, int64_t num_experts, double capacity_factor, int64_t min_capacity,
                     RouterKind kind) {
  TokenMask m;
  if (!mask.defined()) return m;
  m.valid = mask.to(torch::kBool);                       // [G, T]
  if (kind == RouterKind::Base || kind == RouterKind::Hash) return m;  // loads come from the assignment
  auto real = m.valid.sum(1).to(torch::kDouble);         // [G] real tokens per group
  torch::Tensor c;
  if (kind == RouterKind::Switch || kind == RouterKind::GShard) {
    // floor(k cf ceil(n / E)), as fairseq's gates.
    const double k = kind == RouterKind::GShard ? 2.0 : 1.0;
    c = torch::floor(k * capacity_factor * torch::ceil(real / double(num_experts)));
  } else {
    // expert_capacity() per group: round_half_even(cf * n / E); torch::round rounds half to even, as Python's round.
    c = torch::round(real * capacity_factor / double(num_experts));
  }
  // Raised to the minimum, never more than the group's real tokens.
  m.group_capacity = torch::minimum(c.clamp_min(double(min_capacity)), real).to(torch::kLong);  // [G]
  return m;
}

std::pair<torch::Tensor, torch::Tensor> stable_topk(const torch::Tensor& x, int64_t k) {
  // A stable descending sort keeps equal values in index order; topk does not promise to.
  auto index = std::get<1>(x.sort(/*stable=*/true, /*dim=*/-1, /*descending=*/true)).narrow(-1, 0, k);
  return {x.gather(-1, index), index};
}

torch::Tensor load_balancing_loss(const torch::Tensor& probs, const torch::Tensor& chosen, const torch::Tensor& valid) {
  const int64_t E = probs.size(-1);
  auto mask = torch::one_hot(chosen, E).amax(-2).to(torch::kFloat);  // [G, T, E]: e among the token's top-k
  if (!valid.defined())
    return (mask.mean(1) * probs.mean(1)).mean() * double(E * E);  // f [G, E] * P [G, E]
  auto w = valid.to(probs.scalar_type()).unsqueeze(-1);  // [G, T, 1]
  auto n = w.sum(1);                                      // [G, 1] real tokens per group
  auto f = (mask * w).sum(1) / n.clamp_min(1);            // [G, E] fraction of real tokens choosing e
  auto p = (probs * w).sum(1) / n.clamp_min(1);           // [G, E] mean probability of e
  auto groups = n.gt(0).sum().clamp_min(1).to(probs.scalar_type());  // groups with a real token
  return (f * p).sum() / (groups * double(E)) * double(E * E);
}

torch::Tensor router_z_loss(const torch::Tensor& logits, const torch::Tensor& valid) {
  auto z = torch::logsumexp(logits, -1).pow(2);  // [G, T]
  if (!valid.defined()) return z.mean();
  auto w = valid.to(z.scalar_type());
  return (z * w).sum() / w.sum().clamp_min(1);
}

namespace {

// Places given choices (expert, gate: [G, T, K]) into expert slots: all k-th
// choices before any (k+1)-th, tokens in `order` ([G, T], highest priority
// first). Padding makes no claim, so it moves no real token's slot. With
// `renormalize` the kept gates of each token are scaled to sum to 1.
RoutingDecision place_choices(const torch::Tensor& probs, const torch::Tensor& expert, const torch::Tensor& gate,
                              int64_t capacity, const torch::Tensor& order, const TokenMask& mask, bool renormalize) {
  const int64_t G = probs.size(0), T = probs.size(1), E = probs.size(2), K = expert.size(2), C = capacity;
  RoutingDecision d;
  d.probs = probs;
  d.capacity = C;
  d.valid = mask.valid;
  d.group_capacity = mask.group_capacity;
  d.wanted = expert;
  auto by_rank = [&](const torch::Tensor& t) {  // [G, T, K] -> [G, K*T] in claim order
    return t.gather(1, order.unsqueeze(-1).expand({G, T, K})).transpose(1, 2).reshape({G, K * T});
  };
  auto claim_expert = by_rank(expert);                           // [G, K*T]
  auto claim_gate = by_rank(gate);                               // [G, K*T]
  auto claim_token = order.unsqueeze(1).expand({G, K, T}).reshape({G, K * T});  // [G, K*T]

  // Slot of each claim inside its expert = how many earlier claims chose the same expert.
  auto onehot = torch::one_hot(claim_expert, E);                                // [G, K*T, E]
  if (mask.valid.defined()) onehot = onehot * mask.valid.gather(1, order).repeat({1, K}).unsqueeze(-1);
  auto slot = (onehot.cumsum(1) * onehot).sum(-1) - 1;                          // [G, K*T], -1 = no claim
  auto limit = mask.group_capacity.defined() ? mask.group_capacity.unsqueeze(1) : torch::full({1, 1}, C, slot.options());
  auto kept = slot.ge(0) & slot.lt(limit);                                      // [G, K*T]
  if (renormalize) {
    // Per token (in claim order), the sum of its kept gates.
    auto kept_gate = (claim_gate * kept.to(claim_gate.scalar_type())).view({G, K, T});        // [G, K, T]
    auto denom = kept_gate.sum(1, /*keepdim=*/true).clamp_min(std::numeric_limits<float>::epsilon());  // [G, 1, T]
    claim_gate = (claim_gate.view({G, K, T}) / denom).reshape({G, K * T});
  }
  // Kept claims write to slot e*C + s; the others to a trash slot E*C, sliced off.
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

torch::Tensor sequence_order(const torch::Tensor& probs) {  // [G, T]: 0, 1, ..., T-1
  return torch::arange(probs.size(1), probs.options().dtype(torch::kLong)).expand({probs.size(0), probs.size(1)});
}

// A dispatch plan from one expert per token ([G, T] int64), tokens in
// sequence order inside each expert, weights [G, T]; C = the largest load
// (a host synchronisation) unless given.
RoutingDecision dispatch_assignment(const torch::Tensor& probs, const torch::Tensor& expert, const torch::Tensor& weight,
                                    const TokenMask& mask, int64_t capacity = -1) {
  const int64_t G = probs.size(0), T = probs.size(1), E = probs.size(2);
  RoutingDecision d;
  d.probs = probs;
  d.valid = mask.valid;
  auto onehot = torch::one_hot(expert, E);                                   // [G, T, E]
  if (mask.valid.defined()) onehot = onehot * mask.valid.unsqueeze(-1);
  const int64_t C = capacity >= 0 ? capacity : std::max<int64_t>(onehot.sum(1).max().item<int64_t>(), 1);
  auto slot = (onehot.cumsum(1) * onehot).sum(-1) - 1;                       // [G, T], -1 = padding
  auto flat = torch::where(slot.ge(0), expert * C + slot, torch::full_like(slot, E * C));
  auto token = torch::arange(T, expert.options()).expand({G, T});
  d.capacity = C;
  d.dispatch = torch::full({G, E * C + 1}, T, flat.options()).scatter_(1, flat, token).narrow(1, 0, E * C).view({G, E, C});
  d.combine = torch::zeros({G, E * C + 1}, weight.options()).scatter_(1, flat, weight).narrow(1, 0, E * C).view({G, E, C});
  d.load_balancing_loss = torch::zeros({}, probs.options());
  return d;
}

}  // namespace

RoutingDecision route_tokens_choose(const torch::Tensor& probs, int64_t top_k, int64_t capacity,
                                    bool batch_prioritized, const TokenMask& mask) {
  const int64_t E = probs.size(2), K = top_k;
  TORCH_CHECK(K >= 1 && K <= E, "top_k must be in [1, ", E, "], got ", K);
  auto [gate, expert] = stable_topk(probs, K);  // [G, T, K] each
  // Order in which tokens claim slots: by their top-1 probability with BPR
  // (a stable sort: equal probabilities keep sequence order), else in sequence order.
  torch::Tensor order = batch_prioritized
                            ? std::get<1>(gate.select(-1, 0).sort(/*stable=*/true, /*dim=*/-1, /*descending=*/true))
                            : sequence_order(probs);
  RoutingDecision d = place_choices(probs, expert, gate, capacity, order, mask, /*renormalize=*/false);
  d.load_balancing_loss = load_balancing_loss(probs, expert, mask.valid);
  return d;
}

RoutingDecision route_switch(const torch::Tensor& probs, int64_t capacity, const TokenMask& mask) {
  auto [gate, expert] = stable_topk(probs, 1);  // [G, T, 1]
  RoutingDecision d = place_choices(probs, expert, gate, capacity, sequence_order(probs), mask, false);
  d.load_balancing_loss = load_balancing_loss(probs, expert, mask.valid);
  return d;
}

RoutingDecision route_gshard(const torch::Tensor& probs, const torch::Tensor& logits, int64_t capacity,
                             const TokenMask& mask, bool sample_second) {
  const int64_t E = probs.size(2);
  TORCH_CHECK(E >= 2, "gshard routing needs at least 2 experts, got ", E);
  auto [gate1, expert1] = stable_topk(probs, 1);  // [G, T, 1]
  // The second expert: Gumbel-max sampling over the other experts' logits
  // while training, else the second best (ties to the lower index).
  torch::Tensor score = logits.detach();
  if (sample_second) {
    auto u = torch::rand_like(score).clamp(1e-20, 1.0 - 1e-7);
    score = score - torch::log(-torch::log(u));
  }
  score = score.scatter(-1, expert1, -std::numeric_limits<float>::infinity());
  auto expert2 = std::get<1>(stable_topk(score, 1));  // [G, T, 1]
  auto expert = torch::cat({expert1, expert2}, -1);    // [G, T, 2]
  auto gate = probs.gather(-1, expert);                 // [G, T, 2]
  RoutingDecision d = place_choices(probs, expert, gate, capacity, sequence_order(probs), mask, /*renormalize=*/true);
  d.load_balancing_loss = load_balancing_loss(probs, expert1, mask.valid);  // f from top-1 choices
  return d;
}

RoutingDecision route_base(const torch::Tensor& affinity, const TokenMask& mask, bool training) {
  const int64_t G = affinity.size(0), T = affinity.size(1), E = affinity.size(2);
  if (training)
    TORCH_CHECK(T % E == 0, "BASE routing balances every routing group exactly: its ", T,
                " tokens must divide by the ", E, " experts (change the batch size, the sequence length or "
                "router.max_group_size)");
  auto expert = torch::empty({G, T}, torch::kLong);  // [G, T] on the host
  {
    torch::NoGradGuard no_grad;
    auto a = affinity.detach().to(torch::kCPU, torch::kDouble);  // [G, T, E]
    // Padding: the same affinity for every expert, so it settles wherever real tokens gain least.
    if (mask.valid.defined()) a = a * mask.valid.to(torch::kCPU).unsqueeze(-1);
    a = a.contiguous();
    for (int64_t g = 0; g < G; ++g) {
      const double* p = a[g].data_ptr<double>();
      const std::vector<double> scores(p, p + T * E);
      const auto assigned = training ? balanced_assignment(scores, T, E, T / E) : greedy_assignment(scores, T, E);
      std::copy(assigned.begin(), assigned.end(), expert[g].data_ptr<int64_t>());
    }
  }
  expert = expert.to(affinity.device());
  // Output weight sigmoid(x . c_e) of the chosen expert, with its gradient (as BASE's alpha).
  auto weight = torch::sigmoid(affinity).gather(-1, expert.unsqueeze(-1)).squeeze(-1);  // [G, T]
  RoutingDecision d = dispatch_assignment(torch::softmax(affinity, -1), expert, weight, mask, training ? T / E : -1);
  d.logits = affinity;
  return d;
}

RoutingDecision route_hash(const torch::Tensor& expert, int64_t num_experts, const TokenMask& mask) {
  auto probs = torch::one_hot(expert, num_experts).to(torch::kFloat);  // [G, T, E]: the table's choice
  RoutingDecision d = dispatch_assignment(probs, expert, torch::ones(expert.sizes(), probs.options()), mask);
  d.logits = torch::zeros_like(probs);
  return d;
}

RoutingDecision route_experts_choose(const torch::Tensor& probs, int64_t capacity, const TokenMask& mask) {
  const int64_t G = probs.size(0), T = probs.size(1);
  RoutingDecision d;
  d.probs = probs;
  d.capacity = std::min(capacity, T);
  d.valid = mask.valid;
  d.group_capacity = mask.group_capacity;
  const int64_t C = d.capacity;
  auto by_expert = probs.transpose(1, 2);  // [G, E, T]
  // Padding ranks below every real token (probabilities are >= 0), and each
  // group's capacity never exceeds its real tokens, so padding is never taken.
  auto score = mask.valid.defined() ? by_expert.masked_fill(mask.valid.logical_not().unsqueeze(1), -1.0) : by_expert;
  auto token = std::get<1>(score.sort(/*stable=*/true, /*dim=*/-1, /*descending=*/true)).narrow(-1, 0, C);  // [G, E, C]
  auto weight = by_expert.gather(-1, token);                                                                 // [G, E, C]
  if (mask.group_capacity.defined()) {
    auto keep = torch::arange(C, token.options()).view({1, 1, C}).lt(mask.group_capacity.view({G, 1, 1}));
    token = torch::where(keep, token, torch::full_like(token, T));
    weight = weight * keep.to(weight.scalar_type());
  }
  d.dispatch = token;
  d.combine = weight;
  d.load_balancing_loss = torch::zeros({}, probs.options());
  return d;
}

torch::Tensor RouterImpl::logits(const torch::Tensor& x) {
  compat::AutocastOff autocast_off;  // routing decisions are numerically sensitive
  auto h = x.to(torch::kFloat);      // [G, T, D]
  if (is_training() && config_.jitter > 0)
    h = h * torch::empty_like(h).uniform_(1.0 - config_.jitter, 1.0 + config_.jitter);
  auto w = dense->weight.to(torch::kFloat), b = dense->bias.to(torch::kFloat);
  if (config_.kind == RouterKind::Base) b = torch::Tensor();  // affinity with the centroids, no bias
  if (config_.precision == RouterPrecision::BFloat16) {
    // The reference's default: inputs, weights and logits in bfloat16, the
    // products summed in float32 (as a TPU's bf16 matmul). Rounding through
    // bf16 and multiplying in float32 computes exactly that on any device.
    auto bf16 = [](const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kFloat); };
    return bf16(torch::nn::functional::linear(bf16(h), bf16(w), b.defined() ? bf16(b) : b));  // [G, T, E]
  }
  return torch::nn::functional::linear(h, w, b);  // [G, T, E]
}

RoutingDecision RouterImpl::forward(const torch::Tensor& x, int64_t capacity, const TokenMask& mask,
                                    const torch::Tensor& ids) {
  compat::AutocastOff autocast_off;
  if (config_.kind == RouterKind::Hash) {
    TORCH_CHECK(ids.defined(), "hash routing needs the token ids");
    RoutingDecision d = route_hash(hash_table_or_random().index({ids.reshape({x.size(0), x.size(1)})}), num_experts_, mask);
    d.z_loss = torch::zeros({}, d.probs.options());
    return d;
  }
  auto z = logits(x);  // [G, T, E]
  if (config_.kind == RouterKind::Base) {
    RoutingDecision d = route_base(z, mask, is_training());  // chosen by the module's mode, not requires_grad
    d.z_loss = torch::zeros({}, z.options());
    return d;
  }
  auto probs = torch::softmax(z, -1);  // [G, T, E]
  if (config_.precision == RouterPrecision::BFloat16) probs = probs.to(torch::kBFloat16).to(torch::kFloat);
  RoutingDecision d;
  switch (config_.kind) {
    case RouterKind::TokensChoose:
      d = route_tokens_choose(probs, config_.top_k, capacity, config_.batch_prioritized, mask);
      break;
    case RouterKind::Switch: d = route_switch(probs, capacity, mask); break;
    case RouterKind::GShard: d = route_gshard(probs, z, capacity, mask, is_training()); break;
    default: d = route_experts_choose(probs, capacity, mask); break;
  }
  d.logits = z;
  d.z_loss = router_z_loss(z, mask.valid);
  return d;
}

RoutingStats summarize(const RoutingDecision& d, int64_t max_bins) {
  RoutingStats s;
  torch::NoGradGuard no_grad;
  const int64_t G = d.probs.size(0), T = d.probs.size(1), E = d.probs.size(2);
  s.groups = G;
  s.tokens_per_group = T;
  s.num_experts = E;
  auto valid = d.valid.defined() ? d.valid.to(torch::kCPU) : torch::ones({G, T}, torch::kBool);  // [G, T]
  s.real_tokens = valid.sum().item<int64_t>();
  s.capacity = d.group_capacity.defined() ? d.group_capacity.max().item<int64_t>() : d.capacity;
  const int64_t slots = d.group_capacity.defined() ? d.group_capacity.sum().item<int64_t>() : G * d.capacity;
  auto dispatch = d.dispatch.to(torch::kCPU);  // [G, E, C]
  auto filled = dispatch.lt(T);                // [G, E, C]
  auto per_expert = filled.sum(std::vector<int64_t>{0, 2});  // [E]
  for (int64_t e = 0; e < E; ++e) {
    s.tokens_per_expert.push_back(per_expert[e].item<int64_t>());
    s.fill.push_back(double(s.tokens_per_expert.back()) / double(std::max<int64_t>(slots, 1)));
  }
  // Experts per real token: count each (group, token) over the filled slots.
  auto offsets = torch::arange(G, torch::kLong).view({G, 1, 1}) * (T + 1);
  auto ids = (dispatch + offsets).flatten();
  auto counts = torch::bincount(ids, {}, G * (T + 1)).view({G, T + 1}).narrow(1, 0, T);  // [G, T]
  auto binned = counts.masked_select(valid).clamp_max(max_bins - 1);
  auto hist = torch::bincount(binned, {}, max_bins);
  for (int64_t b = 0; b < max_bins; ++b) s.experts_per_token.push_back(hist[b].item<int64_t>());
  s.unrouted_tokens = s.experts_per_token[0];
  const int64_t kept = filled.sum().item<int64_t>();
  if (d.wanted.defined()) s.dropped_choices = s.real_tokens * d.wanted.size(2) - kept;
  auto p = d.probs.detach().to(torch::kCPU);
  auto entropy = -(p * torch::log(p.clamp_min(1e-12))).sum(-1);  // [G, T]
  s.router_entropy = s.real_tokens > 0 ? entropy.masked_select(valid).mean().item<double>() : 0.0;
  s.router_confidence = kept > 0 ? d.combine.detach().to(torch::kCPU, torch::kDouble).sum().item<double>() / double(kept) : 0.0;
  if (d.load_balancing_loss.defined()) s.load_balancing_loss = d.load_balancing_loss.item<double>();
  if (d.z_loss.defined()) s.z_loss = d.z_loss.item<double>();
  return s;
}

}  // namespace smx
