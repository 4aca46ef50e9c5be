// Expert parallelism: each MoE layer's experts spread over groups of K
// consecutive ranks. Rank r holds experts [j*E/K, (j+1)*E/K) with j = r % K;
// tokens travel to their expert's rank and back with an all_to_all inside the
// group (differentiable: its backward is the same exchange of the gradients).
// A shard's replicas (ranks j, K+j, 2K+j, ...) sum its gradients; nothing
// averages expert gradients across shards. Checkpoints, evaluation and
// snapshots see the full experts: gather() collects them (with their optimizer
// state) on every rank, shard() cuts them again.
#pragma once

#include <memory>
#include <vector>

#include <torch/torch.h>

#include "model/dist/process_group.h"
#include "model/nn/moe.h"

namespace smx::dist {

class ExpertParallel {
 public:
  /// A collective over `world`: every rank makes its group and its shard's replica group.
  ExpertParallel(ProcessGroup& world, int shards);
  ~ExpertParallel();

  int shards() const { return shards_; }
  /// This rank's shard: experts [index * E / shards, (index + 1) * E / shards).
  int index() const { return index_; }
  /// What the MoE layers exchange tokens through (ExpertExchange on the group).
  std::shared_ptr<ExpertExchange> exchange() const { return exchange_; }
  /// The ranks holding the other shards (for the all_to_all and the gradient norm).
  ProcessGroup& group() { return *group_; }
  /// The ranks holding this same shard (their gradients are summed).
  ProcessGroup& replicas() { return *replicas_; }

  /// Keeps this rank's shard (dim 0) of every tensor, and of its AdamW state. Local.
  void shard(const std::vector<torch::Tensor>& experts, torch::optim::Optimizer* optimizer) const;
  /// The full tensors (and AdamW state) again, on every rank of the group. A collective.
  void gather(const std::vector<torch::Tensor>& experts, torch::optim::Optimizer* optimizer);

 private:
  int shards_, index_;
  std::unique_ptr<ProcessGroup> group_, replicas_;
  std::shared_ptr<ExpertExchange> exchange_;
};

}  // namespace smx::dist
