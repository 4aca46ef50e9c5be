// AdamW that updates all parameters of a group at once. LibTorch's C++ AdamW
// loops over the parameters with about ten kernel launches each: for
// BERT-Base's ~200 tensors that is ~2000 launches a step, which on a GPU costs
// more than the update's arithmetic. Here a group takes a handful of
// multi-tensor (_foreach) kernels, or one fused kernel on CUDA with LibTorch
// >= 2.1. The state is the base class's AdamWParamState, so checkpoints and
// their format are unchanged, and the update is the same arithmetic.
//
// On the CPU there are no launches to save, and the per-parameter loop keeps
// each small tensor in cache through all its updates while the multi-tensor
// kernels stream every tensor through memory once per operation: for the demo
// model (1.9M parameters, 2 cores) the loop took ~9.5 ms a step against ~12.5
// ms. Auto therefore keeps LibTorch's loop there.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

namespace smx {

enum class AdamWKind {
  Auto,       ///< CUDA: Fused where available (LibTorch >= 2.1), else Foreach; CPU: Reference
  Fused,      ///< one fused kernel per group (CUDA, LibTorch >= 2.1)
  Foreach,    ///< multi-tensor kernels, any device
  Reference,  ///< LibTorch's own per-parameter loop
};
std::string to_string(AdamWKind kind);
/// "auto", "fused", "foreach" or "reference"; throws std::invalid_argument otherwise.
AdamWKind adamw_kind_from_string(const std::string& name);
/// True where the fused kernel exists in this LibTorch build.
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
  bool can_fuse(const Lists& l, const torch::optim::AdamWOptions& o) const;
  /// Whether the first parameter with a gradient is on CUDA (what Auto goes by).
  bool on_cuda() const;

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
