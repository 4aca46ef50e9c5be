// Encoder model; see encoder.h. B batch, S sequence, D d_model, De embedding
// width, V vocabulary, P masked positions per example.
#include "model/nn/encoder.h"

#include "model/core/compat.h"
#include "model/nn/init.h"

namespace smx {

namespace {
torch::nn::Embedding embedding(int64_t n, int64_t dim, double std) {
  torch::nn::Embedding e(torch::nn::EmbeddingOptions(n, dim));
  torch::NoGradGuard g;
  e->weight.normal_(0.0, std);
  return e;
}
torch::nn::LayerNorm layer_norm(int64_t dim, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps));
}
}  // namespace

// ---- embeddings, MLP, block -------------------------------------------------

EmbeddingsImpl::EmbeddingsImpl(const ModelConfig& c) {
  const int64_t de = c.embedding_dim();
  word = register_module("word", embedding(c.vocab_size, de, c.init_std));
  position = register_module("position", embedding(c.max_seq_len, de, c.init_std));
  segment = register_module("segment", embedding(c.type_vocab_size, de, c.init_std));
  norm = register_module("norm", layer_norm(de, c.layer_norm_eps));
  projection = register_module("projection", init_dense(de, c.d_model, c.init_std));
  dropout = register_module("dropout", Dropout(c.dropout));
}

torch::Tensor EmbeddingsImpl::forward(const torch::Tensor& ids, const torch::Tensor& types) {
  const int64_t S = ids.size(1);
  TORCH_CHECK(S <= position->weight.size(0), "sequence of ", S, " tokens exceeds max_seq_len ",
              position->weight.size(0));
  auto pos = torch::arange(S, ids.options()).unsqueeze(0);           // [1, S]
  auto e = word(ids) + position(pos) + segment(types);               // [B, S, De]
  return dropout(projection(norm(e)));                               // [B, S, D]
}

FeedForwardImpl::FeedForwardImpl(int64_t d_model, int64_t d_ff, double p, double init_std) {
  in = register_module("in", init_dense(d_model, d_ff, init_std));
  out = register_module("out", init_dense(d_ff, d_model, init_std));
  dropout = register_module("dropout", Dropout(p));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  return dropout(out(gelu_tanh(in(x))));  // [B, S, D]
}

BlockImpl::BlockImpl(const ModelConfig& c, int64_t layer) {
  mixing = register_module("mixing", make_mixing(c, layer));
  mixing_dropout = register_module("mixing_dropout", Dropout(c.is_attention_layer(layer) ? c.dropout : 0.0));
  mixing_norm = register_module("mixing_norm", layer_norm(c.d_model, c.layer_norm_eps));
  if (c.is_moe_layer(layer))
    moe = register_module("moe", Moe(c.d_model, c.expert_hidden(), c.num_experts, c.router, c.expert_dropout,
                                     c.init_std, c.vocab_size));
  else
    feed_forward = register_module("feed_forward", FeedForward(c.d_model, c.d_ff, c.dropout, c.init_std));
  output_norm = register_module("output_norm", layer_norm(c.d_model, c.layer_norm_eps));
}

BlockImpl::Output BlockImpl::forward(const torch::Tensor& in, const torch::Tensor& mask, const torch::Tensor& ids) {
  // Padding is inert: its rows are zero where tokens mix, so no real token
  // sees them (the reference instead pads to max_seq_len and mixes the pads).
  auto mixed = mask.defined() ? in * mask.to(in.scalar_type()).unsqueeze(-1) : in;  // [B, S, D]
  auto x = mixing_norm(in + mixing_dropout(mixing->forward(mixed, mask)));         // [B, S, D]
  Output out;
  torch::Tensor mlp;
  if (is_moe()) {
    auto r = moe(x, mask, ids);
    mlp = r.y;
    out.load_balancing_loss = r.load_balancing_loss;
    out.z_loss = r.z_loss;
  } else {
    mlp = feed_forward(x);
  }
  out.y = output_norm(x + mlp);  // [B, S, D]
  return out;
}

// ---- model ------------------------------------------------------------------

PretrainBatch PretrainBatch::to(const torch::Device& d) const {
  auto move = [&](const torch::Tensor& t) { return t.defined() ? t.to(d, /*non_blocking=*/true) : t; };
  return {move(ids), move(types), move(mask), move(mlm_positions), move(mlm_labels), move(nsp_labels)};
}

EncoderModelImpl::EncoderModelImpl(const ModelConfig& c) : config_(c) {
  c.validate();
  TORCH_CHECK(!c.is_decoder(), "config '", c.name, "' is a decoder LM (family 'decoder-lm'); the encoder needs "
              "family 'encoder'");
  embeddings = register_module("embeddings", Embeddings(c));
  for (int64_t l = 0; l < c.num_layers; ++l)
    blocks.push_back(register_module("block" + std::to_string(l), Block(c, l)));
  pooler = register_module("pooler", init_dense(c.d_model, c.d_model, c.init_std));
  mlm_dense = register_module("mlm_dense", init_dense(c.d_model, c.embedding_dim(), c.init_std));
  mlm_norm = register_module("mlm_norm", layer_norm(c.embedding_dim(), c.layer_norm_eps));
  mlm_bias = register_parameter("mlm_bias", torch::zeros({c.vocab_size}));
  nsp = register_module("nsp", init_dense(c.d_model, 2, c.init_std));
  classifier = register_module("classifier", init_dense(c.d_model, c.num_classes, c.init_std));
  classifier_dropout = register_module("classifier_dropout", Dropout(c.dropout));
}

EncoderModelImpl::Output EncoderModelImpl::forward(const torch::Tensor& ids, const torch::Tensor& types,
                                                   const torch::Tensor& mask) {
  TORCH_CHECK(ids.dim() == 2, "ids must be [batch, seq], got ", ids.sizes());
  auto x = embeddings(ids, types.defined() ? types : torch::zeros_like(ids));  // [B, S, D]
  Output out;
  out.load_balancing_loss = torch::zeros({}, x.options().dtype(torch::kFloat));
  out.z_loss = torch::zeros({}, x.options().dtype(torch::kFloat));
  for (auto& block : blocks) {
    auto r = block(x, mask, ids);
    x = r.y;
    if (r.load_balancing_loss.defined()) out.load_balancing_loss = out.load_balancing_loss + r.load_balancing_loss;
    if (r.z_loss.defined()) out.z_loss = out.z_loss + r.z_loss;
  }
  out.hidden = x;
  out.pooled = torch::tanh(pooler(x.select(1, 0)));  // [B, D] from [CLS]
  return out;
}

torch::Tensor EncoderModelImpl::mlm_logits(const torch::Tensor& hidden, const torch::Tensor& positions) {
  const int64_t D = hidden.size(2);
  auto picked = hidden.gather(1, positions.unsqueeze(-1).expand({positions.size(0), positions.size(1), D}));  // [B, P, D]
  auto h = mlm_norm(gelu_tanh(mlm_dense(picked)));                                     // [B, P, De]
  return torch::nn::functional::linear(h, embeddings->word->weight, mlm_bias);         // [B, P, V], tied
}

torch::Tensor EncoderModelImpl::nsp_logits(const torch::Tensor& pooled) { return nsp(pooled); }

torch::Tensor EncoderModelImpl::classify(const torch::Tensor& pooled) {
  return classifier(classifier_dropout(pooled));
}

PretrainLosses EncoderModelImpl::pretrain_losses(const PretrainBatch& b) {
  auto out = forward(b.ids, b.types, b.mask);
  // Heads run under the caller's autocast (bf16 matmuls on CUDA); the losses in float32.
  auto mlm = mlm_logits(out.hidden, b.mlm_positions);  // [B, P, V]
  auto nsp_out = nsp_logits(out.pooled);               // [B, 2]
  compat::AutocastOff autocast_off;
  PretrainLosses L;
  auto logits = mlm.to(torch::kFloat);
  const int64_t V = logits.size(-1);
  L.mlm = torch::nn::functional::cross_entropy(logits.view({-1, V}), b.mlm_labels.view({-1}),
                                               torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
  auto nsp_logit = nsp_out.to(torch::kFloat);
  L.nsp = torch::nn::functional::cross_entropy(nsp_logit, b.nsp_labels);
  L.load_balancing = out.load_balancing_loss;
  L.z_loss = out.z_loss;
  L.total = L.mlm + L.nsp + config_.router.load_balancing_weight * L.load_balancing +
            config_.router.z_loss_weight * L.z_loss;
  torch::NoGradGuard no_grad;
  auto valid = b.mlm_labels.ne(-100);
  L.mlm_accuracy = (logits.argmax(-1).eq(b.mlm_labels) & valid).sum().to(torch::kFloat) /
                   valid.sum().clamp_min(1).to(torch::kFloat);
  L.nsp_accuracy = nsp_logit.argmax(-1).eq(b.nsp_labels).to(torch::kFloat).mean();
  return L;
}

std::vector<std::pair<int64_t, Moe>> EncoderModelImpl::moe_layers() const {
  std::vector<std::pair<int64_t, Moe>> r;
  for (size_t l = 0; l < blocks.size(); ++l)
    if (blocks[l]->is_moe()) r.emplace_back(int64_t(l), blocks[l]->moe);
  return r;
}

void EncoderModelImpl::set_capacity_factors(double train, double eval) {
  for (auto& [l, moe] : moe_layers()) moe->set_capacity_factors(train, eval);
}

int64_t count_parameters(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

}  // namespace smx
