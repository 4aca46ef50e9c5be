// Telemetry capture: turns the model's tensors (the last routing decisions,
// the mixing matrices, a forward pass of the probe text) into the plain
// snapshot structs of model/store/snapshot.h that the store and views use.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "model/nn/decoder.h"
#include "model/nn/encoder.h"
#include "model/store/snapshot.h"

namespace smx {

/// A model's MoE layers with their block index (EncoderModel and CausalLm both list them).
using MoeLayers = std::vector<std::pair<int64_t, Moe>>;

/// Per-layer routing statistics of the last forward pass (training batch).
std::vector<telemetry::MoeLayerStats> capture_moe_stats(const MoeLayers& layers);
inline std::vector<telemetry::MoeLayerStats> capture_moe_stats(EncoderModel& model) {
  return capture_moe_stats(model->moe_layers());
}

/// Adds the per-snapshot routing details of the last forward pass to `layers`
/// (from capture_moe_stats on the same pass): per expert the tokens it took
/// most often (`piece` names an id) and, for Tokens Choose, the share of
/// tokens per sequence position that lost a choice to capacity. ids and mask
/// are that pass's batch, [B, S] on any device; padding is not counted.
void add_routing_details(const MoeLayers& moe_layers, const torch::Tensor& ids, const torch::Tensor& mask,
                         const std::function<std::string(int32_t)>& piece,
                         std::vector<telemetry::MoeLayerStats>& layers, int top_k = 8);

/// Scalars summarising the MoE layers for the per-step curves:
/// router/logit_max, router/entropy, router/confidence (mean probability of
/// the kept assignments, the reference's router_confidence), moe/dead_experts,
/// moe/load_spread (coefficient of variation of tokens per expert),
/// moe/dropped_fraction, moe/unrouted_fraction (averages over layers, except
/// logit_max and dead experts).
std::vector<std::pair<std::string, double>> moe_scalars(const std::vector<telemetry::MoeLayerStats>& layers);

/// A model's self-attention sublayers (encoder or LM), in module order.
std::vector<SelfAttention*> attention_sublayers(torch::nn::Module& model);
/// Scalars of the attention sublayers' last training pass (track_statistics on):
/// attention/entropy (mean over layers, nats) and attention/logit_max (max over
/// layers). Empty when no layer has measured yet.
std::vector<std::pair<std::string, double>> attention_scalars(const std::vector<SelfAttention*>& layers);

/// The probe text, tokenized, as a batch of one: ids [1, S], its token strings.
struct Probe {
  torch::Tensor ids, types, mask;
  std::vector<std::string> tokens;  ///< real tokens only (no padding)
};

/// Runs the probe through the model in eval mode without gradients and
/// records each MoE layer's routing of its real tokens, and attention maps.
std::vector<telemetry::ProbeRouting> capture_probe_routing(EncoderModel& model, const Probe& probe,
                                                           std::vector<telemetry::MixingSnapshot>* attention = nullptr);

/// Decoder LMs: the probe (ids [1, S], no padding) through the model in eval
/// mode; each tMoE layer's routing of its tokens and, for causal attention,
/// the attention maps. sMoE layers add their channel -> expert routing of the
/// probe to `mixing` (see capture_mixing).
std::vector<telemetry::ProbeRouting> capture_probe_routing(CausalLm& model, const Probe& probe,
                                                           std::vector<telemetry::MixingSnapshot>* mixing = nullptr);

/// Every mixing layer's matrices, block-averaged down to at most max_dim x max_dim.
std::vector<telemetry::MixingSnapshot> capture_mixing(EncoderModel& model, int max_dim = 128);
/// Decoder LMs: each SGU's causal spatial matrix, each sMoE expert's, and for
/// sMoE layers the channel -> expert assignment of the last forward pass
/// ("channels to experts": [C, E], one-hot for deterministic routing, the
/// router's probabilities averaged over the batch for partial and learned).
std::vector<telemetry::MixingSnapshot> capture_mixing(CausalLm& model, int max_dim = 128);

/// Block-average a 2-D tensor down to at most max_dim per side.
telemetry::Matrix to_matrix(const std::string& name, const torch::Tensor& m, int max_dim);

}  // namespace smx
