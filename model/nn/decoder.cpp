// Decoder LM; see decoder.h. B batch, S sequence, D d_model, F d_ffn, V vocabulary.
#include "model/nn/decoder.h"

#include <limits>

#include <ATen/CPUGeneratorImpl.h>

#include "model/core/compat.h"
#include "model/nn/init.h"

namespace smx {

namespace {
torch::nn::LayerNorm layer_norm(int64_t dim, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps));
}
torch::nn::Embedding embedding(int64_t n, int64_t dim, double std) {
  torch::nn::Embedding e(torch::nn::EmbeddingOptions(n, dim));
  torch::NoGradGuard g;
  e->weight.normal_(0.0, std);
  return e;
}
}  // namespace

// ---- gMLP sublayer ----------------------------------------------------------

GatedMlpImpl::GatedMlpImpl(const ModelConfig& c, bool sparse_unit) {
  norm = register_module("norm", layer_norm(c.d_model, c.layer_norm_eps));
  u = register_module("u", init_dense(c.d_model, c.d_ff, c.init_std));
  if (sparse_unit) {
    sparse = std::make_shared<SparseGatingUnit>(c.d_ff, c.max_seq_len, c.num_experts, c.smoe_routing,
                                                c.routing_prefix(), c.layer_norm_eps, c.init_std);
    unit = register_module("smoe", sparse);
  } else {
    unit = register_module("sgu", std::make_shared<SpatialGatingUnit>(c.d_ff, c.max_seq_len, c.layer_norm_eps));
  }
  v = register_module("v", init_dense(c.d_ff / 2, c.d_model, c.init_std));
  dropout = register_module("dropout", Dropout(c.dropout));
}

GatedMlpImpl::Output GatedMlpImpl::forward(const torch::Tensor& x) {
  auto h = gelu_tanh(u(norm(x)));  // [B, S, F]
  Output out;
  torch::Tensor gated;                        // [B, S, F/2]
  if (sparse) {
    auto r = sparse->forward_with_loss(h);
    gated = r.y;
    out.load_balancing_loss = r.load_balancing_loss;
  } else {
    gated = unit->forward(h, {});
  }
  out.y = dropout(v(gated));  // [B, S, D]
  return out;
}

// ---- block ------------------------------------------------------------------

DecoderBlockImpl::DecoderBlockImpl(const ModelConfig& c, int64_t layer) {
  const bool sparse = c.is_moe_layer(layer);
  if (c.lm_mixing == LmMixing::Attention) {
    attention_norm = register_module("attention_norm", layer_norm(c.d_model, c.layer_norm_eps));
    attention = register_module(
        "attention", std::make_shared<SelfAttention>(c.d_model, c.num_heads, c.dropout, c.init_std, /*causal=*/true));
    attention_dropout = register_module("attention_dropout", Dropout(c.dropout));
  } else {
    gated = register_module("gmlp", GatedMlp(c, sparse && c.smoe_routing != SmoeRouting::None));
  }
  if (sparse || c.lm_mixing == LmMixing::Attention) mlp_norm = register_module("mlp_norm", layer_norm(c.d_model, c.layer_norm_eps));
  if (sparse)
    moe = register_module("moe", Moe(c.d_model, c.expert_hidden(), c.num_experts, c.router, c.expert_dropout,
                                     c.init_std, c.vocab_size));
  else if (c.lm_mixing == LmMixing::Attention)
    feed_forward = register_module("feed_forward", FeedForward(c.d_model, c.d_ff, c.dropout, c.init_std));
}

std::shared_ptr<MixingSublayer> DecoderBlockImpl::mixing() const {
  return attention ? std::static_pointer_cast<MixingSublayer>(attention) : gated->unit;
}

DecoderBlockImpl::Output DecoderBlockImpl::forward(const torch::Tensor& in, const torch::Tensor& ids) {
  Output out;
  torch::Tensor x;  // [B, S, D]
  if (attention) {
    x = in + attention_dropout(attention->forward(attention_norm(in), {}));
  } else {
    auto g = gated(in);
    x = in + g.y;
    out.smoe_balancing_loss = g.load_balancing_loss;
  }
  if (is_sparse()) {
    auto r = moe->forward(mlp_norm(x), {}, ids);  // ids: Hash routing
    x = x + r.y;
    out.load_balancing_loss = r.load_balancing_loss;
    out.z_loss = r.z_loss;
  } else if (!feed_forward.is_empty()) {
    x = x + feed_forward(mlp_norm(x));
  }
  out.y = x;  // [B, S, D]
  return out;
}

// ---- model ------------------------------------------------------------------

LmBatch LmBatch::to(const torch::Device& d) const {
  auto move = [&](const torch::Tensor& t) { return t.defined() ? t.to(d, /*non_blocking=*/true) : t; };
  return {move(ids), move(loss_mask)};
}

CausalLmImpl::CausalLmImpl(const ModelConfig& c) : config_(c) {
  c.validate();
  TORCH_CHECK(c.is_decoder(), "config '", c.name, "' is family '", to_string(c.family),
              "'; a causal LM needs family 'decoder-lm'");
  token = register_module("token", embedding(c.vocab_size, c.d_model, c.init_std));
  position = register_module("position", embedding(c.max_seq_len, c.d_model, c.init_std));
  dropout = register_module("dropout", Dropout(c.dropout));
  for (int64_t l = 0; l < c.num_layers; ++l)
    blocks.push_back(register_module("block" + std::to_string(l), DecoderBlock(c, l)));
  final_norm = register_module("final_norm", layer_norm(c.d_model, c.layer_norm_eps));
}

CausalLmImpl::Output CausalLmImpl::forward(const torch::Tensor& ids) {
  TORCH_CHECK(ids.dim() == 2, "ids must be [batch, seq], got ", ids.sizes());
  const int64_t S = ids.size(1);
  TORCH_CHECK(S >= 1 && S <= config_.max_seq_len, "sequence of ", S, " tokens: the model takes 1 to max_seq_len = ",
              config_.max_seq_len);
  auto pos = torch::arange(S, ids.options()).unsqueeze(0);  // [1, S]
  auto x = dropout(token(ids) + position(pos));             // [B, S, D]
  Output out;
  auto zero = torch::zeros({}, x.options().dtype(torch::kFloat));
  out.load_balancing_loss = out.z_loss = out.smoe_balancing_loss = zero;
  for (auto& block : blocks) {
    auto r = block->forward(x, ids);
    x = r.y;
    if (r.load_balancing_loss.defined()) out.load_balancing_loss = out.load_balancing_loss + r.load_balancing_loss;
    if (r.z_loss.defined()) out.z_loss = out.z_loss + r.z_loss;
    if (r.smoe_balancing_loss.defined()) out.smoe_balancing_loss = out.smoe_balancing_loss + r.smoe_balancing_loss;
  }
  out.logits = torch::nn::functional::linear(final_norm(x), token->weight);  // [B, S, V], tied
  return out;
}

namespace {
// [B, S-1] bool: which next-token targets (positions 1 .. S-1) the loss counts.
torch::Tensor scored_targets(const LmBatch& b, int64_t first_scored) {
  const int64_t B = b.ids.size(0), S = b.ids.size(1);
  auto w = torch::ones({B, S - 1}, b.ids.options().dtype(torch::kBool));
  if (b.loss_mask.defined()) w = w & b.loss_mask.narrow(1, 1, S - 1).to(torch::kBool);
  if (first_scored > 1) w.narrow(1, 0, std::min(first_scored - 1, S - 1)).fill_(false);
  return w;
}
}  // namespace

LmLosses CausalLmImpl::lm_losses(const LmBatch& b) {
  TORCH_CHECK(b.ids.dim() == 2 && b.ids.size(1) >= 2, "an LM batch needs [batch, seq >= 2] ids, got ",
              b.ids.sizes());
  const int64_t S = b.ids.size(1);
  auto out = forward(b.ids);
  compat::AutocastOff autocast_off;
  auto logits = out.logits.narrow(1, 0, S - 1).to(torch::kFloat);  // [B, S-1, V]
  auto targets = b.ids.narrow(1, 1, S - 1);                         // [B, S-1]
  auto w = scored_targets(b, first_scored_target());                // [B, S-1]
  const int64_t V = logits.size(-1);
  auto nll = torch::nn::functional::cross_entropy(
                 logits.reshape({-1, V}), targets.reshape({-1}),
                 torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone))
                 .view(targets.sizes());  // [B, S-1]
  const auto wf = w.to(torch::kFloat);
  LmLosses L;
  L.targets = w.sum();
  L.nll_sum = (nll * wf).sum();
  L.nll = L.nll_sum / L.targets.clamp_min(1).to(torch::kFloat);
  L.load_balancing = out.load_balancing_loss;
  L.z_loss = out.z_loss;
  L.smoe_balancing = out.smoe_balancing_loss;
  L.total = L.nll + config_.router.load_balancing_weight * L.load_balancing +
            config_.router.z_loss_weight * L.z_loss + config_.smoe_balancing_weight * L.smoe_balancing;
  torch::NoGradGuard no_grad;
  L.accuracy = (logits.argmax(-1).eq(targets) & w).sum().to(torch::kFloat) / L.targets.clamp_min(1).to(torch::kFloat);
  return L;
}

std::vector<std::pair<int64_t, Moe>> CausalLmImpl::moe_layers() const {
  std::vector<std::pair<int64_t, Moe>> r;
  for (size_t l = 0; l < blocks.size(); ++l)
    if (blocks[l]->is_sparse()) r.emplace_back(int64_t(l), blocks[l]->moe);
  return r;
}

void CausalLmImpl::set_capacity_factors(double train, double eval) {
  for (auto& [l, moe] : moe_layers()) moe->set_capacity_factors(train, eval);
}

std::vector<int64_t> generate(CausalLm& model, const std::vector<int64_t>& prompt, const GenerateOptions& o) {
  const int64_t V = model->config().vocab_size, n = model->config().max_seq_len;
  TORCH_CHECK(!prompt.empty(), "generation needs a prompt of at least one token");
  TORCH_CHECK(o.max_new_tokens >= 1 && o.max_new_tokens <= 4096, "max_new_tokens must be in [1, 4096], got ",
              o.max_new_tokens);
  TORCH_CHECK(o.temperature >= 0 && o.temperature <= 100, "temperature must be in [0, 100], got ", o.temperature);
  TORCH_CHECK(o.top_k >= 0 && o.top_k <= V, "top_k must be in [0, vocab_size = ", V, "], got ", o.top_k);
  for (auto id : prompt) TORCH_CHECK(id >= 0 && id < V, "prompt token ", id, " is outside the vocabulary [0, ", V, ")");
  torch::NoGradGuard no_grad;
  const auto device = model->token->weight.device();
  auto gen = at::detail::createCPUGenerator(o.seed);
  std::vector<int64_t> tokens = prompt, out;
  for (int64_t i = 0; i < o.max_new_tokens; ++i) {
    const int64_t start = std::max<int64_t>(0, int64_t(tokens.size()) - n);
    auto ids = torch::tensor(std::vector<int64_t>(tokens.begin() + start, tokens.end()), torch::kLong)
                   .unsqueeze(0).to(device);                                            // [1, S]
    auto logits = model->forward(ids).logits.select(1, ids.size(1) - 1)[0].to(torch::kCPU, torch::kFloat);  // [V]
    int64_t next;
    if (o.temperature == 0) {
      next = logits.argmax().item<int64_t>();
    } else {
      logits = logits / o.temperature;
      if (o.top_k > 0 && o.top_k < V) {
        auto kth = std::get<0>(logits.topk(o.top_k)).min();                              // k-th largest
        logits = logits.masked_fill(logits < kth, -std::numeric_limits<float>::infinity());
      }
      next = torch::multinomial(torch::softmax(logits, -1), 1, false, gen).item<int64_t>();
    }
    tokens.push_back(next);
    out.push_back(next);
    if (next == o.stop_token) break;
  }
  return out;
}

std::pair<double, int64_t> token_by_token_nll(CausalLm& model, const LmBatch& b) {
  torch::NoGradGuard no_grad;
  const int64_t S = b.ids.size(1);
  auto w = scored_targets(b, model->first_scored_target());  // [B, S-1]
  double sum = 0;
  int64_t count = 0;
  for (int64_t t = 0; t + 1 < S; ++t) {  // predict token t+1 from ids[:, :t+1] alone
    auto wt = w.select(1, t);             // [B]
    if (!wt.any().item<bool>()) continue;
    auto logits = model->forward(b.ids.narrow(1, 0, t + 1)).logits.select(1, t).to(torch::kFloat);  // [B, V]
    auto nll = torch::nn::functional::cross_entropy(
        logits, b.ids.select(1, t + 1), torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    sum += (nll * wt.to(torch::kFloat)).sum().item<double>();
    count += wt.sum().item<int64_t>();
  }
  return {sum, count};
}

}  // namespace smx
