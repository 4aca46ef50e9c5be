#include "model/train/telemetry.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "model/nn/mixing.h"
#include "model/nn/routing.h"

namespace smx {

telemetry::Matrix to_matrix(const std::string& name, const torch::Tensor& m, int max_dim) {
  torch::NoGradGuard no_grad;
  auto t = m.detach().to(torch::kCPU, torch::kFloat);
  if (t.size(0) > max_dim || t.size(1) > max_dim) {
    // adaptive average pooling = block averages with near-equal blocks
    t = torch::adaptive_avg_pool2d(t.unsqueeze(0), {std::min<int64_t>(t.size(0), max_dim),
                                                    std::min<int64_t>(t.size(1), max_dim)})
            .squeeze(0);
  }
  t = t.contiguous();
  telemetry::Matrix out;
  out.name = name;
  out.rows = static_cast<int>(t.size(0));
  out.cols = static_cast<int>(t.size(1));
  out.values.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  return out;
}

namespace {

// Each MoE layer's routing of the first T = tokens.size() tokens of a batch of
// one (its last decision).
std::vector<telemetry::ProbeRouting> probe_rows(const MoeLayers& layers, const std::vector<std::string>& tokens) {
  std::vector<telemetry::ProbeRouting> out;
  const int64_t T = static_cast<int64_t>(tokens.size());
  for (const auto& [layer, moe] : layers) {
    const auto& d = moe->last_decision;
    if (!d.probs.defined()) continue;
    telemetry::ProbeRouting r;
    r.layer = static_cast<int>(layer);
    const int64_t E = d.probs.size(2);
    r.num_experts = static_cast<int>(E);
    r.tokens = tokens;
    // Groups cover the batch's tokens in order; a batch of one is [G * (S/G)].
    auto probs = d.probs.reshape({-1, E}).narrow(0, 0, T).to(torch::kCPU, torch::kFloat).contiguous();
    r.probs.assign(probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel());
    const int64_t G = d.probs.size(0), Tg = d.probs.size(1);
    auto dispatch = d.dispatch.to(torch::kCPU);  // [G, E, C]
    std::vector<uint8_t> assigned(T * E, 0);
    auto acc = dispatch.accessor<int64_t, 3>();
    for (int64_t g = 0; g < G; ++g)
      for (int64_t e = 0; e < E; ++e)
        for (int64_t c = 0; c < dispatch.size(2); ++c) {
          const int64_t t = acc[g][e][c];
          if (t < Tg && g * Tg + t < T) assigned[(g * Tg + t) * E + e] = 1;
        }
    r.assigned = std::move(assigned);
    if (d.wanted.defined()) {
      auto wanted = d.wanted.reshape({-1, d.wanted.size(2)}).to(torch::kCPU);
      const auto want = wanted.accessor<int64_t, 2>();
      std::vector<uint8_t> w(T * E, 0);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < wanted.size(1); ++j) w[t * E + want[t][j]] = 1;
      r.wanted = std::move(w);
    }
    out.push_back(std::move(r));
  }
  return out;
}

telemetry::MixingSnapshot attention_maps(int layer, const torch::Tensor& probabilities, int64_t T) {
  telemetry::MixingSnapshot m;
  m.layer = layer;
  m.kind = "attention";
  auto p = probabilities[0].narrow(1, 0, T).narrow(2, 0, T);  // [H, T, T] of the real tokens
  for (int64_t h = 0; h < p.size(0); ++h) m.matrices.push_back(to_matrix("head " + std::to_string(h), p[h], 128));
  return m;
}

// An sMoE layer's channel -> expert assignment of its last forward: [C, E].
torch::Tensor channels_to_experts(const SparseGatingUnit& smoe) {
  const auto& r = smoe.last_routing;
  const int64_t E = smoe.num_experts();
  if (r.probs.defined()) return r.probs.to(torch::kCPU, torch::kFloat).mean(0);  // [B, C, E] -> [C, E]
  auto expert = r.expert.defined() ? r.expert : smoe.channel_experts();
  return torch::one_hot(expert.to(torch::kCPU, torch::kLong), E).to(torch::kFloat);  // [C, E]
}

}  // namespace

std::vector<telemetry::MoeLayerStats> capture_moe_stats(const MoeLayers& layers) {
  std::vector<telemetry::MoeLayerStats> out;
  for (const auto& [layer, moe] : layers) {
    const auto& d = moe->last_decision;
    if (!d.probs.defined()) continue;
    const RoutingStats s = summarize(d);
    telemetry::MoeLayerStats m;
    m.layer = static_cast<int>(layer);
    m.router = to_string(moe->router->config().kind);
    m.num_experts = static_cast<int>(s.num_experts);
    m.capacity = static_cast<int>(s.capacity);
    m.groups = static_cast<int>(s.groups);
    m.tokens_per_group = static_cast<int>(s.tokens_per_group);
    for (auto v : s.tokens_per_expert) m.tokens_per_expert.push_back(static_cast<float>(v));
    for (auto v : s.fill) m.fill.push_back(static_cast<float>(v));
    for (auto v : s.experts_per_token) m.experts_per_token.push_back(static_cast<float>(v));
    const double tokens = double(s.real_tokens);  // padding is not routed
    const double choices = d.wanted.defined() ? tokens * double(d.wanted.size(2)) : 0.0;
    m.dropped_fraction = choices > 0 ? float(s.dropped_choices / choices) : 0.f;
    m.unrouted_fraction = tokens > 0 ? float(s.unrouted_tokens / tokens) : 0.f;
    m.router_entropy = static_cast<float>(s.router_entropy);
    m.router_confidence = static_cast<float>(s.router_confidence);
    m.load_balancing_loss = static_cast<float>(s.load_balancing_loss);
    m.z_loss = static_cast<float>(s.z_loss);
    m.router_logit_max = d.logits.abs().max().item<float>();
    out.push_back(std::move(m));
  }
  return out;
}

void add_routing_details(const MoeLayers& moe_layers, const torch::Tensor& ids, const torch::Tensor& mask,
                         const std::function<std::string(int32_t)>& piece,
                         std::vector<telemetry::MoeLayerStats>& layers, int top_k) {
  torch::NoGradGuard no_grad;
  const int64_t S = ids.size(1);
  auto flat_ids = ids.reshape({-1}).to(torch::kCPU, torch::kLong);
  auto flat_real = mask.reshape({-1}).to(torch::kCPU).to(torch::kBool);
  const int64_t N = flat_ids.size(0);
  size_t k = 0;
  for (const auto& [layer, moe] : moe_layers) {
    const auto& d = moe->last_decision;
    if (!d.probs.defined() || k >= layers.size()) continue;
    auto& out = layers[k++];
    const int64_t G = d.probs.size(0), Tg = d.probs.size(1), E = d.probs.size(2);
    if (G * Tg != N) continue;  // not this batch's decision
    // Which tokens each expert took: a [G, Tg + 1, E] map (slot Tg = empty).
    auto dispatch = d.dispatch.to(torch::kCPU);                      // [G, E, C]
    auto taken = torch::zeros({G, Tg + 1, E}, torch::kBool);
    taken.scatter_(1, dispatch.permute({0, 2, 1}), true);            // index [G, C, E]
    taken = taken.narrow(1, 0, Tg).reshape({N, E}) & flat_real.unsqueeze(1);
    out.top_tokens.assign(E, {});
    for (int64_t e = 0; e < E; ++e) {
      auto chosen = flat_ids.masked_select(taken.select(1, e));
      if (chosen.numel() == 0) continue;
      auto unique = torch::_unique2(chosen, /*sorted=*/false, /*return_inverse=*/false, /*return_counts=*/true);
      const auto& counts = std::get<2>(unique);
      const int64_t n = std::min<int64_t>(top_k, counts.size(0));
      auto top = counts.argsort(/*dim=*/0, /*descending=*/true).narrow(0, 0, n);
      auto top_ids = std::get<0>(unique).index_select(0, top).contiguous();
      auto top_counts = counts.index_select(0, top).contiguous();
      for (int64_t i = 0; i < n; ++i)
        out.top_tokens[e].push_back({piece(static_cast<int32_t>(top_ids.data_ptr<int64_t>()[i])),
                                     static_cast<int>(top_counts.data_ptr<int64_t>()[i])});
    }
    out.dropped_by_position.clear();
    if (d.wanted.defined()) {
      auto wanted = torch::zeros({G, Tg, E}, torch::kBool).scatter_(2, d.wanted.to(torch::kCPU), true).reshape({N, E});
      auto lost = (wanted & ~taken).any(1) & flat_real;                // [N]
      auto pos = torch::arange(N, torch::kLong).remainder(S);
      auto lost_at = torch::zeros({S}, torch::kDouble).index_add_(0, pos, lost.to(torch::kDouble));
      auto real_at = torch::zeros({S}, torch::kDouble).index_add_(0, pos, flat_real.to(torch::kDouble));
      auto share = (lost_at / real_at.clamp_min(1)).to(torch::kFloat).contiguous();
      out.dropped_by_position.assign(share.data_ptr<float>(), share.data_ptr<float>() + S);
    }
  }
}

std::vector<std::pair<std::string, double>> moe_scalars(const std::vector<telemetry::MoeLayerStats>& layers) {
  if (layers.empty()) return {};
  double logit_max = 0, entropy = 0, confidence = 0, spread = 0, dropped = 0, unrouted = 0, dead = 0;
  for (const auto& l : layers) {
    logit_max = std::max(logit_max, double(l.router_logit_max));
    entropy += l.router_entropy;
    confidence += l.router_confidence;
    dropped += l.dropped_fraction;
    unrouted += l.unrouted_fraction;
    double mean = 0, var = 0;
    for (float t : l.tokens_per_expert) mean += t;
    mean /= std::max<size_t>(l.tokens_per_expert.size(), 1);
    for (float t : l.tokens_per_expert) {
      var += (t - mean) * (t - mean);
      if (t == 0) dead += 1;
    }
    var /= std::max<size_t>(l.tokens_per_expert.size(), 1);
    spread += mean > 0 ? std::sqrt(var) / mean : 0;
  }
  const double n = double(layers.size());
  return {{"router/logit_max", logit_max},     {"router/entropy", entropy / n},
          {"router/confidence", confidence / n},
          {"moe/dead_experts", dead},          {"moe/load_spread", spread / n},
          {"moe/dropped_fraction", dropped / n}, {"moe/unrouted_fraction", unrouted / n}};
}

std::vector<SelfAttention*> attention_sublayers(torch::nn::Module& model) {
  std::vector<SelfAttention*> out;
  for (const auto& m : model.modules(/*include_self=*/false))
    if (auto* a = dynamic_cast<SelfAttention*>(m.get())) out.push_back(a);
  return out;
}

std::vector<std::pair<std::string, double>> attention_scalars(const std::vector<SelfAttention*>& layers) {
  double entropy = 0, logit_max = -std::numeric_limits<double>::infinity();
  int n = 0;
  for (const auto* a : layers) {
    if (!a->last_entropy.defined()) continue;
    entropy += a->last_entropy.item<double>();
    logit_max = std::max(logit_max, a->last_logit_max.item<double>());
    ++n;
  }
  if (n == 0) return {};
  return {{"attention/entropy", entropy / n}, {"attention/logit_max", logit_max}};
}

std::vector<telemetry::ProbeRouting> capture_probe_routing(EncoderModel& model, const Probe& probe,
                                                           std::vector<telemetry::MixingSnapshot>* attention) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  std::vector<SelfAttention*> attn;
  for (size_t l = 0; l < model->blocks.size(); ++l)
    if (auto* a = dynamic_cast<SelfAttention*>(model->blocks[l]->mixing.get()); a && attention) {
      a->record_probabilities = true;
      attn.push_back(a);
    }
  // Keep the training batch's decisions: the per-step stats read them.
  std::vector<RoutingDecision> saved;
  for (auto& [layer, moe] : model->moe_layers()) saved.push_back(moe->last_decision);
  model->forward(probe.ids, probe.types, probe.mask);

  auto out = probe_rows(model->moe_layers(), probe.tokens);
  const int64_t T = static_cast<int64_t>(probe.tokens.size());
  size_t k = 0;
  for (auto& [layer, moe] : model->moe_layers()) moe->last_decision = saved[k++];
  if (attention) {
    for (size_t l = 0; l < model->blocks.size(); ++l) {
      auto* a = dynamic_cast<SelfAttention*>(model->blocks[l]->mixing.get());
      if (!a || !a->last_probabilities.defined()) continue;
      attention->push_back(attention_maps(static_cast<int>(l), a->last_probabilities, T));
      a->record_probabilities = false;
      a->last_probabilities = torch::Tensor();
    }
  }
  for (auto* a : attn) a->record_probabilities = false;
  if (was_training) model->train();
  return out;
}

std::vector<telemetry::MixingSnapshot> capture_mixing(EncoderModel& model, int max_dim) {
  std::vector<telemetry::MixingSnapshot> out;
  for (size_t l = 0; l < model->blocks.size(); ++l) {
    auto& mixing = model->blocks[l]->mixing;
    if (mixing->kind() == "attention") continue;  // attention maps come from the probe
    telemetry::MixingSnapshot m;
    m.layer = static_cast<int>(l);
    m.kind = mixing->kind();
    for (const auto& [name, t] : mixing->matrices()) m.matrices.push_back(to_matrix(name, t, max_dim));
    out.push_back(std::move(m));
  }
  return out;
}

// ---- decoder LMs -------------------------------------------------------------

std::vector<telemetry::ProbeRouting> capture_probe_routing(CausalLm& model, const Probe& probe,
                                                           std::vector<telemetry::MixingSnapshot>* mixing) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  for (auto& block : model->blocks)
    if (block->attention && mixing) block->attention->record_probabilities = true;
  // Keep the training batch's decisions: the per-step stats and snapshots read them.
  std::vector<RoutingDecision> saved;
  for (auto& [layer, moe] : model->moe_layers()) saved.push_back(moe->last_decision);
  std::vector<SmoeDecision> saved_smoe;
  for (auto& block : model->blocks)
    if (block->gated && block->gated->sparse) saved_smoe.push_back(block->gated->sparse->last_routing);
  model->forward(probe.ids);

  auto out = probe_rows(model->moe_layers(), probe.tokens);
  const int64_t T = static_cast<int64_t>(probe.tokens.size());
  size_t k = 0;
  for (auto& [layer, moe] : model->moe_layers()) moe->last_decision = saved[k++];
  k = 0;
  for (size_t l = 0; l < model->blocks.size(); ++l) {
    auto& block = model->blocks[l];
    if (block->attention) {
      if (mixing && block->attention->last_probabilities.defined())
        mixing->push_back(attention_maps(static_cast<int>(l), block->attention->last_probabilities, T));
      block->attention->record_probabilities = false;
      block->attention->last_probabilities = torch::Tensor();
    }
    if (block->gated && block->gated->sparse) {
      auto& smoe = *block->gated->sparse;
      if (mixing && smoe.routing() != SmoeRouting::Deterministic) {
        telemetry::MixingSnapshot m;
        m.layer = static_cast<int>(l);
        m.kind = "smoe-probe";
        m.matrices.push_back(to_matrix("probe: channels to experts", channels_to_experts(smoe), 128));
        mixing->push_back(std::move(m));
      }
      smoe.last_routing = saved_smoe[k++];
    }
  }
  if (was_training) model->train();
  return out;
}

std::vector<telemetry::MixingSnapshot> capture_mixing(CausalLm& model, int max_dim) {
  std::vector<telemetry::MixingSnapshot> out;
  for (size_t l = 0; l < model->blocks.size(); ++l) {
    auto& block = model->blocks[l];
    if (block->attention) continue;  // attention maps come from the probe
    auto mixing = block->mixing();
    telemetry::MixingSnapshot m;
    m.layer = static_cast<int>(l);
    m.kind = mixing->kind();
    for (const auto& [name, t] : mixing->matrices()) m.matrices.push_back(to_matrix(name, t, max_dim));
    if (block->gated->sparse) m.matrices.push_back(to_matrix("channels to experts", channels_to_experts(*block->gated->sparse), max_dim));
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace smx
