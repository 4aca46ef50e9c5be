// MoE sublayer: group tokens, route, gather into expert buffers, batched
// expert MLPs, weighted scatter-add back. G groups, T tokens per group,
// E experts, C capacity, D d_model, F expert hidden width.
#include "model/nn/moe.h"

#include "model/config/cost.h"
#include "model/nn/dropout.h"
#include "model/nn/init.h"

namespace smx {

MoeImpl::MoeImpl(int64_t d_model, int64_t d_ff, int64_t num_experts, RouterConfig router_config,
                 double expert_dropout, double init_std, int64_t vocab_size)
    : num_experts_(num_experts), expert_dropout_(expert_dropout) {
  TORCH_CHECK(num_experts > 0, "experts must be > 0, got ", num_experts);
  router = register_module("router", Router(d_model, num_experts, router_config, init_std, vocab_size));
  w_in = register_parameter("w_in", torch::randn({num_experts, d_model, d_ff}) * init_std);
  b_in = register_parameter("b_in", torch::zeros({num_experts, 1, d_ff}));
  w_out = register_parameter("w_out", torch::randn({num_experts, d_ff, d_model}) * init_std);
  b_out = register_parameter("b_out", torch::zeros({num_experts, 1, d_model}));
}

double MoeImpl::capacity_factor() const {
  const auto& rc = router->config();
  return is_training() ? rc.train_capacity_factor : rc.eval_capacity_factor;
}

void MoeImpl::set_capacity_factors(double train, double eval) {
  TORCH_CHECK(train > 0 && eval > 0, "capacity factors must be > 0, got ", train, " and ", eval);
  router->mutable_config().train_capacity_factor = train;
  router->mutable_config().eval_capacity_factor = eval;
}

MoeImpl::Output MoeImpl::forward(const torch::Tensor& x, const torch::Tensor& mask, const torch::Tensor& ids) {
  const int64_t B = x.size(0), S = x.size(1), D = x.size(2), E = num_experts_;
  const auto& rc = router->config();
  const int64_t G = routing_group_count(B * S, rc.max_group_size), T = B * S / G;
  auto groups = x.reshape({G, T, D});  // [G, T, D]
  // Buffers hold C slots (the capacity of a group without padding); with
  // padding each group fills at most the capacity of its real tokens.
  const double cf = capacity_factor();
  const TokenMask tokens = token_mask(mask.defined() ? mask.reshape({G, T}) : mask, E, cf, rc.min_capacity, rc.kind);
  RoutingDecision d = router->forward(groups, router_capacity(rc, T, E, cf), tokens,
                                      ids.defined() ? ids.reshape({G, T}) : ids);
  const int64_t C = d.capacity;

  // Gather: slot (g, e, c) reads token dispatch[g, e, c]; index T is a zero row.
  auto padded = torch::cat({groups, torch::zeros({G, 1, D}, groups.options())}, 1);  // [G, T+1, D]
  auto index = d.dispatch.reshape({G, E * C, 1}).expand({G, E * C, D});              // [G, E*C, D]
  auto buffers = padded.gather(1, index)                                              // [G, E*C, D]
                     .view({G, E, C, D})
                     .transpose(0, 1)
                     .reshape({E, G * C, D});  // [E, G*C, D]

  // Experts: Dense(F) -> GELU -> Dense(D) -> dropout, all experts in one bmm each.
  torch::Tensor y;
  if (!sharded()) {
    auto h = gelu_tanh(torch::baddbmm(b_in, buffers, w_in));  // [E, G*C, F]
    y = torch::baddbmm(b_out, h, w_out);                       // [E, G*C, D]
    y = smx::dropout(y, expert_dropout_, is_training());
  } else {
    // Expert parallelism: K ranks hold L = E/K experts each. Each rank's buffers go to their experts'
    // ranks, every rank runs its L experts over the K ranks' tokens, and the outputs come back.
    const int64_t K = exchange->shards(), L = E / K, N = G * C;
    auto mine = exchange->exchange(buffers)                   // [E, N, D]: chunk m = member m's tokens for my experts
                    .view({K, L, N, D})
                    .transpose(0, 1)
                    .reshape({L, K * N, D});                   // [L, K*N, D]
    auto h = gelu_tanh(torch::baddbmm(b_in, mine, w_in));     // [L, K*N, F]
    auto o = torch::baddbmm(b_out, h, w_out);                  // [L, K*N, D]
    o = smx::dropout(o, expert_dropout_, is_training());
    y = exchange->exchange(o.view({L, K, N, D}).transpose(0, 1).reshape({E, N, D}));  // back, in expert order
  }
  y = y.view({E, G, C, D}).transpose(0, 1).reshape({G, E * C, D});            // [G, E*C, D]
  y = y * d.combine.reshape({G, E * C, 1}).to(y.scalar_type());               // weighted by router prob

  // Scatter-add back to tokens; empty slots land on the discarded row T.
  auto out = torch::zeros({G, T + 1, D}, y.options()).scatter_add(1, index, y);  // [G, T+1, D]

  Output result{out.narrow(1, 0, T).reshape({B, S, D}), d.load_balancing_loss, d.z_loss};
  last_decision = d;
  for (auto* t : {&last_decision.logits, &last_decision.probs, &last_decision.combine,
                  &last_decision.load_balancing_loss, &last_decision.z_loss})
    if (t->defined()) *t = t->detach();
  return result;
}

}  // namespace smx
