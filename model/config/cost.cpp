// Parameter and FLOP accounting; see cost.h. Counts match the modules in
// model/nn exactly (tested), FLOPs count the matmuls the engine executes.
#include "model/config/cost.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace smx {

int64_t routing_group_count(int64_t tokens, int64_t max_group_size) {
  if (tokens <= 0) return 1;
  int64_t n = std::max<int64_t>(tokens / std::max<int64_t>(max_group_size, 1), 1);
  while (tokens % n != 0) ++n;
  return n;
}

int64_t expert_capacity(int64_t group_tokens, int64_t num_experts, double capacity_factor, int64_t min_capacity) {
  // Python's round() as the reference: half to even (std::nearbyint in the
  // default rounding mode), so cf * T / E = 2.5 gives 2, not 3.
  const auto c = static_cast<int64_t>(std::nearbyint(capacity_factor * double(group_tokens) / double(num_experts)));
  return std::min(std::max(c, min_capacity), group_tokens);
}

int64_t router_capacity(const RouterConfig& r, int64_t T, int64_t E, double cf) {
  const double fair = double((T + E - 1) / E);  // ceil(T / E)
  auto clamp = [&](double c) { return std::min(std::max(static_cast<int64_t>(std::floor(c)), r.min_capacity), T); };
  switch (r.kind) {
    case RouterKind::TokensChoose:
    case RouterKind::ExpertsChoose: return expert_capacity(T, E, cf, r.min_capacity);
    case RouterKind::Switch: return clamp(cf * fair);
    case RouterKind::GShard: return clamp(2 * cf * fair);
    case RouterKind::Base:
    case RouterKind::Hash: return int64_t(fair);
  }
  return int64_t(fair);
}

int64_t default_mlm_predictions(int64_t seq_len) {
  return std::clamp<int64_t>((seq_len * 20 + 127) / 128, 1, 80);
}

int64_t attention_parameter_count(int64_t d_model) { return 4 * (d_model * d_model + d_model); }

double attention_forward_flops(int64_t d_model, int64_t seq_len) {
  const double D = double(d_model), S = double(seq_len);
  return 8 * S * D * D + 4 * S * S * D;
}

int64_t sgu_parameter_count(int64_t d_ffn, int64_t n, int64_t heads) {
  return 2 * (d_ffn / 2) + heads * (n * n + n);
}

double sgu_forward_flops(int64_t d_ffn, int64_t seq_len) {
  const double S = double(seq_len);
  return 2 * S * S * double(d_ffn / 2);
}

namespace {

void add_totals(ModelCost& cost) {
  cost.total_params = cost.embedding_params + cost.head_params;
  cost.active_params = double(cost.embedding_params + cost.head_params);
  cost.forward_flops = cost.embedding_flops + cost.head_flops;
  for (const auto& L : cost.layers) {
    cost.total_params += L.params;
    cost.active_params += L.active_params;
    cost.forward_flops += L.forward_flops;
  }
  cost.train_flops = 3 * cost.forward_flops;
}

// Decoder LM (model/nn/decoder.h): pre-LN blocks. Dense: attention + FFN, or one gMLP block
// (U: D -> F, GELU, SGU, V: F/2 -> D). Sparse: the token mixing (sMoE in a gMLP block, or the dense
// mixing) + a pre-LN MoE FFN (tMoE).
ModelCost decoder_cost(const ModelConfig& c, const CostShape& shape) {
  ModelCost cost;
  const int64_t Si = shape.seq_len > 0 ? shape.seq_len : c.max_seq_len, n = c.max_seq_len;
  const double S = double(Si), D = double(c.d_model), F = double(c.d_ff), V = double(c.vocab_size);
  const double E = double(c.num_experts), Fe = double(c.expert_hidden());
  cost.embedding_params = int64_t((V + double(n)) * D);
  cost.embedding_flops = 0;  // table lookups
  cost.head_params = int64_t(2 * D);  // final LayerNorm; the projection is the tied token table
  cost.head_flops = 2 * S * D * V;

  const double cf = shape.training ? c.router.train_capacity_factor : c.router.eval_capacity_factor;
  const int64_t tokens = shape.batch_size * Si;
  const int64_t groups = routing_group_count(tokens, c.router.max_group_size);
  const int64_t capacity = router_capacity(c.router, tokens / groups, c.num_experts, cf);
  const double ffn_params = D * F + F + F * D + D, ffn_flops = 4 * S * D * F;
  const double gated_outer_params = 2 * D + (D * F + F) + (F / 2 * D + D);  // LN, U, V
  const double gated_outer_flops = 2 * S * D * F + S * F * D;

  for (int64_t l = 0; l < c.num_layers; ++l) {
    LayerCost L;
    L.index = l;
    const bool sparse = c.is_moe_layer(l);
    double mix_params = 0, mix_flops = 0;
    if (c.lm_mixing == LmMixing::Attention) {
      L.mixing = "causal-attention";
      mix_params = 2 * D + double(attention_parameter_count(c.d_model));
      mix_flops = attention_forward_flops(c.d_model, Si);
    } else if (sparse && c.smoe_routing != SmoeRouting::None) {
      L.mixing = "smoe-" + to_string(c.smoe_routing);
      double router = 0, router_flops = 0, expert_flops = sgu_forward_flops(c.d_ff, Si);
      if (c.smoe_routing != SmoeRouting::Deterministic) {
        // Router over each channel's prefix (partial) or whole column (learned): r -> E with bias.
        // Every expert is computed for every channel and the routed one kept (E x the SGU matmul).
        const double r = double(c.smoe_routing == SmoeRouting::Partial ? c.routing_prefix() : n);
        router = r * E + E;
        router_flops = 2 * r * E * (F / 2);
        expert_flops *= E;
      }
      mix_params = gated_outer_params + F + E * double(n * n + n) + router;
      mix_flops = gated_outer_flops + expert_flops + router_flops;
    } else {
      L.mixing = "sgu";
      mix_params = gated_outer_params + double(sgu_parameter_count(c.d_ff, n));
      mix_flops = gated_outer_flops + sgu_forward_flops(c.d_ff, Si);
    }
    double mlp_params = 0, mlp_active = 0, mlp_flops = 0;
    if (sparse) {
      L.moe = true;
      L.capacity = capacity;
      L.groups = groups;
      const double router = D * E + E, expert = D * Fe + Fe + Fe * D + D;
      // Experts a token passes through: its choices, or cf on average for Experts Choose.
      const double per_token = c.router.kind == RouterKind::ExpertsChoose ? cf : double(c.router.choices_per_token());
      mlp_params = 2 * D + router + E * expert;
      mlp_active = 2 * D + router + per_token * expert;
      const double slots_per_example = double(groups * c.num_experts * capacity) / double(shape.batch_size);
      mlp_flops = 2 * S * D * E + slots_per_example * 4 * D * Fe;
    } else if (c.lm_mixing == LmMixing::Attention) {
      mlp_params = mlp_active = 2 * D + ffn_params;
      mlp_flops = ffn_flops;
    }
    L.params = int64_t(mix_params + mlp_params);
    L.active_params = mix_params + mlp_active;
    L.forward_flops = mix_flops + mlp_flops;
    cost.layers.push_back(L);
  }
  add_totals(cost);
  return cost;
}

}  // namespace

ModelCost model_cost(const ModelConfig& c, const CostShape& shape) {
  if (c.is_decoder()) return decoder_cost(c, shape);
  ModelCost cost;
  const double S = double(shape.seq_len > 0 ? shape.seq_len : c.max_seq_len);
  const double Smax = double(c.max_seq_len);
  const double D = double(c.d_model), F = double(c.d_ff), De = double(c.embedding_dim());
  const double V = double(c.vocab_size), E = double(c.num_experts), Fe = double(c.expert_hidden());
  const int64_t P = shape.mlm_predictions >= 0 ? shape.mlm_predictions : default_mlm_predictions(int64_t(S));

  // Embeddings: word + position + segment tables, LayerNorm, projection to d_model.
  cost.embedding_params = int64_t((V + Smax + double(c.type_vocab_size)) * De + 2 * De + De * D + D);
  cost.embedding_flops = 2 * S * De * D;

  const double cf = shape.training ? c.router.train_capacity_factor : c.router.eval_capacity_factor;
  const int64_t tokens = shape.batch_size * int64_t(S);
  const int64_t groups = routing_group_count(tokens, c.router.max_group_size);
  const int64_t capacity = router_capacity(c.router, tokens / groups, c.num_experts, cf);

  for (int64_t l = 0; l < c.num_layers; ++l) {
    LayerCost L;
    L.index = l;
    double mix_params = 0, mix_flops = 0;
    if (c.is_attention_layer(l)) {
      L.mixing = "attention";
      mix_params = 4 * (D * D + D);
      mix_flops = 8 * S * D * D + 4 * S * S * D;  // q,k,v,o projections; scores; weighted sum
    } else {
      L.mixing = to_string(c.mixing);
      switch (c.mixing) {
        case MixingKind::Linear: mix_params = Smax * Smax + D * D; break;
        case MixingKind::Circulant: mix_params = Smax + D; break;
        case MixingKind::Toeplitz: mix_params = (2 * Smax - 1) + (2 * D - 1); break;
        case MixingKind::Fourier:
        case MixingKind::Hartley: mix_params = 0; break;
      }
      if (c.mixing == MixingKind::Fourier || c.mixing == MixingKind::Hartley)
        // real-input 2-D FFT, ~5 N log2 N / 2, along the sequence at max_seq_len (see FourierMixing)
        mix_flops = 2.5 * Smax * D * std::log2(Smax * D);
      else
        mix_flops = 2 * S * S * D + 2 * S * D * D;  // M_seq . X . M_hidden
    }
    const double ln_params = 4 * D;  // two post-LNs
    double mlp_params, mlp_active, mlp_flops;
    if (c.is_moe_layer(l)) {
      L.moe = true;
      L.capacity = capacity;
      L.groups = groups;
      const double router = D * E + E;
      const double expert = D * Fe + Fe + Fe * D + D;
      // Experts a token passes through: its choices, or cf on average for Experts Choose.
      const double per_token = c.router.kind == RouterKind::ExpertsChoose ? cf : double(c.router.choices_per_token());
      mlp_params = router + E * expert;
      mlp_active = router + per_token * expert;
      const double slots_per_example = double(groups * c.num_experts * capacity) / double(shape.batch_size);
      mlp_flops = 2 * S * D * E + slots_per_example * 4 * D * Fe;
    } else {
      mlp_params = mlp_active = D * F + F + F * D + D;
      mlp_flops = 4 * S * D * F;
    }
    L.params = int64_t(mix_params + ln_params + mlp_params);
    L.active_params = mix_params + ln_params + mlp_active;
    L.forward_flops = mix_flops + mlp_flops;
    cost.layers.push_back(L);
  }

  // Heads: pooler (Dense + tanh on [CLS]), MLM (Dense, LN, tied decoder + bias),
  // NSP (2-way) and the task classifier.
  const double pooler = D * D + D, mlm = D * De + De + 2 * De + V, nsp = 2 * D + 2;
  const double classifier = D * double(c.num_classes) + double(c.num_classes);
  cost.head_params = int64_t(pooler + mlm + nsp + classifier);
  cost.head_flops = 2 * D * D + 4 * D + double(P) * (2 * D * De + 2 * De * V);

  add_totals(cost);
  return cost;
}

MemoryEstimate training_memory(const ModelConfig& c, const CostShape& shape) {
  MemoryEstimate m;
  const double S = double(shape.seq_len > 0 ? shape.seq_len : c.max_seq_len);
  const double B = double(std::max<int64_t>(shape.batch_size, 1)), T = B * S;
  const double D = double(c.d_model), F = double(c.d_ff), De = double(c.embedding_dim());
  const double V = double(c.vocab_size), E = double(c.num_experts), Fe = double(c.expert_hidden());
  const double H = double(c.num_heads);
  const double P = double(shape.mlm_predictions >= 0 ? shape.mlm_predictions : default_mlm_predictions(int64_t(S)));
  const double cf = std::max(c.router.train_capacity_factor, 1.0);
  const double per_token_experts =
      c.router.kind == RouterKind::ExpertsChoose ? cf : double(c.router.choices_per_token());
  // Parameters as model_cost counts them, in double (no int64 to overflow on absurd sizes).
  const double Smax = double(c.max_seq_len);
  m.parameters = (V + Smax + double(c.type_vocab_size)) * De + 2 * De + De * D + D;  // embeddings
  m.parameters += D * D + D + D * De + 3 * De + V + 2 * D + 2 + D * double(c.num_classes) + double(c.num_classes);
  double per_token = 6 * De;  // embeddings: tables' sum, LayerNorm, projection, dropout
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const bool attention = c.is_attention_layer(l);
    if (attention) m.parameters += 4 * (D * D + D);
    else if (c.mixing == MixingKind::Linear) m.parameters += Smax * Smax + D * D;
    else if (c.mixing == MixingKind::Circulant) m.parameters += Smax + D;
    else if (c.mixing == MixingKind::Toeplitz) m.parameters += (2 * Smax - 1) + (2 * D - 1);
    m.parameters += 4 * D;
    per_token += attention ? 8 * D + 3 * H * S : 4 * D;  // attention keeps scores and probabilities: H x S a token
    if (c.is_moe_layer(l)) {
      m.parameters += D * E + E + E * (2 * D * Fe + Fe + D);
      per_token += 2 * E + per_token_experts * (2 * Fe + 3 * D);
    } else {
      m.parameters += 2 * D * F + F + D;
      per_token += 2 * F + 4 * D;
    }
  }
  m.weights = 4 * m.parameters;
  m.optimizer = 12 * m.parameters;
  m.activations = 4 * (T * per_token + B * P * (2 * De + 2 * V));  // + the MLM logits and their gradient
  return m;
}

std::string format_bytes(double bytes) {
  char buf[32];
  if (bytes >= 1e12) std::snprintf(buf, sizeof buf, "%.3g TB", bytes / 1e12);
  else if (bytes >= 1e9) std::snprintf(buf, sizeof buf, "%.3g GB", bytes / 1e9);
  else if (bytes >= 1e6) std::snprintf(buf, sizeof buf, "%.3g MB", bytes / 1e6);
  else std::snprintf(buf, sizeof buf, "%.3g kB", bytes / 1e3);
  return buf;
}

std::string describe(const MemoryEstimate& m) {
  return "needs about " + format_bytes(m.total()) + " (weights " + format_bytes(m.weights) +
         ", gradients and AdamW state " + format_bytes(m.optimizer) + ", activations " + format_bytes(m.activations) + ")";
}

double physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? double(pages) * double(page) : 0;
}

}  // namespace smx
