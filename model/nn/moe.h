// Mixture-of-Experts MLP sublayer. Experts are held as batched weights
// [E, D, F] and run as one batched matmul over per-expert token buffers that
// a router fills (gather), then the outputs are weighted and added back to
// their tokens (scatter-add). A token no expert takes gets zero output, so in
// the block it passes through the residual only.
#pragma once

#include <torch/torch.h>

#include "model/config/model_config.h"
#include "model/nn/routing.h"

namespace smx {

/// Expert parallelism: how a MoE layer whose experts are spread over several
/// ranks reaches the others. model/dist implements it on c10d; the layer sees only this.
class ExpertExchange {
 public:
  virtual ~ExpertExchange() = default;
  /// How many ranks share the experts (each holds num_experts / shards() of them), and this rank's place.
  virtual int64_t shards() const = 0;
  virtual int64_t index() const = 0;
  /// Differentiable all_to_all over dim 0 cut in shards() equal chunks: chunk j goes to member j, and
  /// chunk m of the result came from member m. Its backward is the same exchange of the gradients.
  virtual torch::Tensor exchange(const torch::Tensor& x) = 0;
};

class MoeImpl : public torch::nn::Module {
 public:
  /// vocab_size: the ids a Hash router's table covers (other routers ignore it).
  MoeImpl(int64_t d_model, int64_t expert_d_ff, int64_t num_experts, RouterConfig router, double expert_dropout,
          double init_std, int64_t vocab_size = 0);
  struct Output {
    torch::Tensor y;                    ///< [B, S, D]
    torch::Tensor load_balancing_loss;  ///< scalar, with graph
    torch::Tensor z_loss;               ///< scalar, with graph
  };
  /// x: [B, S, D]; mask: [B, S], 1 = token, 0 = padding (undefined = no
  /// padding). Padding takes no expert slot and counts in no loss; each routing
  /// group's capacity follows its real tokens. The routing decision is also
  /// kept, detached, in last_decision. ids: [B, S] token ids (Hash routing only).
  Output forward(const torch::Tensor& x, const torch::Tensor& mask = {}, const torch::Tensor& ids = {});

  /// Capacity factor used now (train or eval, by the module's mode).
  double capacity_factor() const;
  /// Changes the capacity factors (e.g. a what-if at inference).
  void set_capacity_factors(double train, double eval);

  Router router{nullptr};
  torch::Tensor w_in, b_in, w_out, b_out;  // [E, D, F], [E, 1, F], [E, F, D], [E, 1, D]
  /// Expert parallelism: set while this rank holds only its shard of the experts (w_in.size(0) < E);
  /// tokens then travel to their expert's rank and back through it.
  std::shared_ptr<ExpertExchange> exchange;
  int64_t num_experts() const { return num_experts_; }
  /// True while this layer holds a shard of its experts, not all of them.
  bool sharded() const { return exchange && w_in.size(0) != num_experts_; }
  /// The last forward's routing, detached (telemetry reads it; no extra compute).
  RoutingDecision last_decision;

 private:
  int64_t num_experts_;
  double expert_dropout_;
};
TORCH_MODULE(Moe);

}  // namespace smx
