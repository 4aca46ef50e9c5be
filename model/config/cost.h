// Analytic parameter counts and FLOPs of a ModelConfig, per layer and in total,
// plus the routing geometry (token groups, expert capacity) that both the cost
// model and the MoE layer use. Torch-free; a test checks the parameter counts
// against the real modules.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config/model_config.h"

namespace smx {

/// Number of routing groups for `tokens` tokens: the smallest n >= max(tokens div
/// max_group_size, 1) that divides `tokens` (as the reference implementation).
int64_t routing_group_count(int64_t tokens, int64_t max_group_size);
/// Expert capacity: max(round(cf * group_tokens / experts), min_capacity),
/// never more than the group itself; round() as Python's, half to even.
int64_t expert_capacity(int64_t group_tokens, int64_t num_experts, double capacity_factor, int64_t min_capacity);
/// Slots per expert per group for a router: expert_capacity() for Tokens and
/// Experts Choose; floor(cf * ceil(T / E)) for Switch and floor(2 cf * ceil(T / E))
/// for GShard (fairseq's gates), raised to min_capacity and at most T; T / E
/// (rounded up) for Base and Hash, whose loads are set by the assignment.
int64_t router_capacity(const RouterConfig& router, int64_t group_tokens, int64_t num_experts, double capacity_factor);

/// The shape of the work whose cost is counted.
struct CostShape {
  /// Examples per batch (MoE capacity depends on the batch's token groups).
  int64_t batch_size = 1;
  /// Tokens per example (0 = the config's max_seq_len).
  int64_t seq_len = 0;
  /// Masked positions scored by the MLM head per example (-1 = BERT's rule:
  /// 20 per 128 tokens, at most 80).
  int64_t mlm_predictions = -1;
  /// Use the train (true) or eval (false) capacity factor.
  bool training = true;
};

int64_t default_mlm_predictions(int64_t seq_len);

struct LayerCost {
  int64_t index = 0;
  /// "attention" or the mixing kind's name.
  std::string mixing;
  bool moe = false;
  int64_t params = 0;
  /// Parameters one token passes through (experts weighted by top-k or capacity factor).
  double active_params = 0;
  /// Forward FLOPs per example (a multiply-add counts 2).
  double forward_flops = 0;
  /// MoE only: capacity per expert per group, and groups per batch.
  int64_t capacity = 0, groups = 0;
};

struct ModelCost {
  std::vector<LayerCost> layers;
  int64_t embedding_params = 0, head_params = 0, total_params = 0;
  double active_params = 0;
  double embedding_flops = 0, head_flops = 0;
  /// Forward FLOPs per example, whole model.
  double forward_flops = 0;
  /// Training step FLOPs per example (forward + backward = 3x forward).
  double train_flops = 0;
};

/// Encoders and decoder LMs alike. Decoder LMs: embeddings = token + position tables, head = the final
/// LayerNorm (the output projection is tied to the token table: no parameters, 2·S·D·V FLOPs).
ModelCost model_cost(const ModelConfig& config, const CostShape& shape = {});

/// Rough memory of a training step in bytes (float32), to refuse sizes that
/// cannot fit before anything is allocated. An estimate, not a measurement:
/// it counts what must exist, so the real peak is higher, never much lower.
struct MemoryEstimate {
  double parameters = 0;
  double weights = 0;     ///< 4 bytes a parameter
  double optimizer = 0;   ///< gradients and AdamW's two moments: 12 bytes a parameter
  double activations = 0; ///< kept for the backward pass: per layer and token, plus the MLM logits
  double total() const { return weights + optimizer + activations; }
};
MemoryEstimate training_memory(const ModelConfig& config, const CostShape& shape);
/// "needs about 61 GB (weights 3.5 GB, gradients and AdamW state 10 GB, activations 47 GB)"
std::string describe(const MemoryEstimate& m);
/// "1.5 GB", "300 MB", "12 kB"
std::string format_bytes(double bytes);
/// This machine's physical memory in bytes (0 when unknown).
double physical_memory_bytes();

// ---- module costs of the sMLP paper's Table 3 (n = context, one example of n tokens) -------------------

/// Self-attention with biases: 4·(D² + D).
int64_t attention_parameter_count(int64_t d_model);
/// Self-attention forward FLOPs: projections 8·S·D², scores and weighted sum 4·S²·D.
double attention_forward_flops(int64_t d_model, int64_t seq_len);
/// Spatial Gating Unit: LayerNorm over the d_ffn/2 gate channels (2·d_ffn/2) + per head an n×n W and
/// an n-vector b. d_ffn 4096, n 1024: 1,053,696 (1 head), 16,797,696 (16 heads).
int64_t sgu_parameter_count(int64_t d_ffn, int64_t n, int64_t heads = 1);
/// SGU forward FLOPs: the S×S spatial matmul over d_ffn/2 channels, 2·S²·d_ffn/2, counted dense as
/// executed (the causal mask zeroes the upper triangle but the matmul is not skipped). Heads split
/// the channels, so the count does not depend on them.
double sgu_forward_flops(int64_t d_ffn, int64_t seq_len);

}  // namespace smx
