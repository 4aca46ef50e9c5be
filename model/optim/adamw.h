// AdamW that updates all parameters of a group at once. LibTorch's C++ AdamW
// loops over the parameters with about ten kernel launches each: for
// BERT-Base's ~200 tensors that is ~2000 launches a step, which on a GPU costs
// more than the update's arithmetic. Here a group takes a handful of
// multi-tensor (_foreach) kernels, or one fused kernel on CUDA with LibTorch
// >= 2.1. The state is the base class's AdamWParamState, so checkpoints and
// their format are unchanged, and the update is the same arithmetic.
//
// On the CPU there are no launches to save but memory passes: LibTorch's loop
// and the multi-tensor kernels alike run each of the update's six or seven
// operations as a pass over the tensor. Fused there is our one-pass kernel
// (adamw_cpu.h), bit-identical to LibTorch's loop with LibTorch 1.13 here. On
// 2 cores a step took BERT-Base 54-69 ms instead of 171-184 with the loop, and
// the demo 1.1-1.2 ms instead of 3.1-3.3. Auto takes it there.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

namespace smx {

enum class AdamWKind {
  Auto,       ///< Fused where it takes the tensors (CUDA: LibTorch >= 2.1; CPU: float32), else Foreach
  Fused,      ///< one fused kernel per group (CUDA, LibTorch >= 2.1), or one pass per tensor (CPU)
  Foreach,    ///< multi-tensor kernels, any device
  Reference,  ///< LibTorch's own per-parameter loop
};
std::string to_string(AdamWKind kind);
/// "auto", "fused", "foreach" or "reference"; throws std::invalid_argument otherwise.
AdamWKind adamw_kind_from_string(const std::string& name);
/// Drops every parameter's gradient, as LibTorch 2.x's zero_grad() does by
/// default (1.13's zeroes them): the next backward then writes fresh gradients
/// instead of adding into zeroed ones, so no pass zeroes them and none adds.
/// A parameter the next step does not reach then keeps no gradient, and
/// AdamW leaves it alone, as it leaves one that never had a gradient.
void release_gradients(torch::optim::Optimizer& optimizer);
/// True where LibTorch's fused CUDA kernel exists in this build (the CPU's is ours: always there).
bool fused_adamw_available();

class AdamW : public torch::optim::AdamW {
 public:
  AdamW(std::vector<torch::optim::OptimizerParamGroup> groups, torch::optim::AdamWOptions defaults,
        AdamWKind kind = AdamWKind::Auto);
  AdamW(std::vector<torch::Tensor> params, torch::optim::AdamWOptions defaults, AdamWKind kind = AdamWKind::Auto);

  torch::Tensor step(LossClosure closure = nullptr) override;

  /// What the last step used (Auto resolved; Reference before the first step).
  AdamWKind last_kind() const { return last_kind_; }

 private:
  /// One group's parameters with gradients, and their state, in matching order.
  struct Lists {
    std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs;
    std::vector<torch::optim::AdamWParamState*> states;
  };
  Lists collect(torch::optim::OptimizerParamGroup& group);
  void foreach_update(Lists& l, const torch::optim::AdamWOptions& o);
  void fused_update(Lists& l, const torch::optim::AdamWOptions& o);
  void fused_cpu_update(Lists& l, const torch::optim::AdamWOptions& o);
  bool can_fuse(const Lists& l, const torch::optim::AdamWOptions& o) const;

  AdamWKind kind_;
  AdamWKind last_kind_ = AdamWKind::Reference;
  /// The fused kernel reads each parameter's step count from a float32 device
  /// tensor. Kept here beside the host count it mirrors (the checkpointed one),
  /// and re-made when they disagree (after loading a checkpoint).
  struct DeviceStep {
    torch::Tensor count;
    int64_t host = -1;
  };
  std::unordered_map<const void*, DeviceStep> device_steps_;
};

}  // namespace smx
