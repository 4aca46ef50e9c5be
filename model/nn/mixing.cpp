// Mixing sublayers; see mixing.h. Shapes: B batch, S sequence, D d_model,
// H heads, Dh = D / H, N = max_seq_len.
#include "model/nn/mixing.h"

#include <algorithm>
#include <cmath>

#include "model/core/compat.h"
#include "model/nn/dropout.h"
#include "model/nn/init.h"

namespace smx {

// ---- self-attention ---------------------------------------------------------

namespace {

/// Inference attention on the CPU where LibTorch has no fused kernel (1.13): one
/// (example, head) at a time, so each head's [S, S] scores stay in cache through
/// the mask, the softmax and the product with V, instead of four passes over a
/// [B, H, S, S] tensor in memory (written by the matmul, scaled, masked,
/// softmaxed, read again). The scale is applied to Q ([S, Dh], 8x smaller than
/// the scores at S = 512, Dh = 64), and each head's output is written straight
/// into its columns of [B, S, H * Dh], so no transpose copy follows. The heads'
/// Q, K and V are read in place from the projections (row stride H * Dh).
/// q, k, v: [B, H, S, Dh] float; additive: undefined, [B or 1, 1, 1 or S, S].
/// Returns [B, S, H * Dh].
torch::Tensor attention_by_head(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& additive) {
  const int64_t B = q.size(0), H = q.size(1), S = q.size(2), Dh = q.size(3);
  const auto scaled = q.mul(1.0 / std::sqrt(double(Dh)));            // [B, H, S, Dh]
  auto out = torch::empty({B, S, H, Dh}, q.options());               // the heads side by side
  auto scores = torch::empty({S, S}, q.options()), probs = torch::empty({S, S}, q.options());
  for (int64_t b = 0; b < B; ++b) {
    const torch::Tensor mask = additive.defined() ? additive[additive.size(0) == 1 ? 0 : b][0] : torch::Tensor();  // [1 or S, S]
    for (int64_t h = 0; h < H; ++h) {
      torch::mm_out(scores, scaled[b][h], k[b][h].t());               // [S, S]
      if (mask.defined()) scores.add_(mask);
      torch::softmax_out(probs, scores, -1);
      auto target = out.select(0, b).select(1, h);                    // [S, Dh], row stride H * Dh
      torch::mm_out(target, probs, v[b][h]);
    }
  }
  return out.view({B, S, H * Dh});
}

}  // namespace

SelfAttention::SelfAttention(int64_t d_model, int64_t num_heads, double dropout, double init_std, bool causal)
    : d_model_(d_model), num_heads_(num_heads), dropout_(dropout), causal_(causal) {
  TORCH_CHECK(d_model % num_heads == 0, "d_model (", d_model, ") must be divisible by num_heads (", num_heads, ")");
  q_ = register_module("query", init_dense(d_model, d_model, init_std));
  k_ = register_module("key", init_dense(d_model, d_model, init_std));
  v_ = register_module("value", init_dense(d_model, d_model, init_std));
  o_ = register_module("output", init_dense(d_model, d_model, init_std));
}

torch::Tensor SelfAttention::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  const int64_t B = x.size(0), S = x.size(1), H = num_heads_, Dh = d_model_ / num_heads_;
  auto heads = [&](torch::nn::Linear& proj) { return proj(x).view({B, S, H, Dh}).transpose(1, 2); };
  auto q = heads(q_), k = heads(k_), v = heads(v_);  // [B, H, S, Dh]
  torch::Tensor additive;                              // [B, 1, 1, S]
  if (mask.defined()) additive = (1.0 - mask.to(q.dtype())).mul(-1e9).view({B, 1, 1, S});
  if (causal_) {
    auto future = torch::ones({S, S}, q.options().dtype(torch::kBool)).triu(1);      // [S, S], j > i
    auto causal = torch::zeros({S, S}, q.options()).masked_fill(future, -1e9).view({1, 1, S, S});
    additive = additive.defined() ? additive + causal : causal;                     // [B or 1, 1, S, S]
  }
  if (track_statistics && is_training()) {
    // Attention collapse (entropy falling towards 0, scores growing) is what the paper blames for sparse
    // BERT's instability; measured on a few examples so it costs little.
    torch::NoGradGuard no_grad;
    const int64_t n = std::min<int64_t>(B, kStatisticsExamples);
    auto scores = torch::matmul(q.narrow(0, 0, n), k.narrow(0, 0, n).transpose(-2, -1)).div(std::sqrt(double(Dh)));
    auto masked = additive.defined() ? scores + additive.narrow(0, 0, std::min<int64_t>(additive.size(0), n)) : scores;
    auto probs = torch::softmax(masked.to(torch::kFloat), -1);                             // [n, H, S, S]
    auto entropy = -(probs * probs.clamp_min(1e-30).log()).sum(-1);                       // [n, H, S]
    auto rows = mask.defined() ? mask.narrow(0, 0, n).to(torch::kFloat).view({n, 1, S}).expand({n, H, S})
                               : torch::ones({n, H, S}, entropy.options());
    last_entropy = (entropy * rows).sum() / rows.sum().clamp_min(1);
    last_logit_max = masked.max().to(torch::kFloat);
  }
  const double p = is_training() ? dropout_ : 0.0;
  if (!compat::kHasFusedAttention && !record_probabilities && !is_training() && !torch::GradMode::is_enabled() &&
      q.device().is_cpu() && q.scalar_type() == torch::kFloat) {
    auto y = o_(attention_by_head(q, k, v, additive));  // [B, S, D]
    return mask.defined() ? y * mask.to(y.scalar_type()).unsqueeze(-1) : y;
  }
  torch::Tensor context;  // [B, H, S, Dh]
  // SDPA's own dropout on the CPU is LibTorch's slow one: there a training step with dropout takes the
  // explicit path and smx::dropout.
  if (compat::kHasFusedAttention && !record_probabilities && (p == 0.0 || !q.device().is_cpu())) {
    context = compat::fused_attention(q, k, v, additive, p);
  } else {
    // Q is scaled rather than the scores: [S, Dh] instead of [S, S] per head, one pass fewer over the
    // largest tensor forward and backward; the mask is added in place for the same reason.
    auto scores = torch::matmul(q.mul(1.0 / std::sqrt(double(Dh))), k.transpose(-2, -1));  // [B, H, S, S]
    if (additive.defined()) scores.add_(additive);
    auto probs = torch::softmax(scores, -1);  // [B, H, S, S]
    if (record_probabilities) last_probabilities = probs.detach();
    context = torch::matmul(smx::dropout(probs, p, is_training()), v);
  }
  auto y = o_(context.transpose(1, 2).reshape({B, S, d_model_}));  // [B, S, D]
  // Query mask (the reference's make_attention_mask(q, k)): padding rows output nothing.
  return mask.defined() ? y * mask.to(y.scalar_type()).unsqueeze(-1) : y;
}

std::vector<NamedMatrix> SelfAttention::matrices() const {
  if (!last_probabilities.defined()) return {};
  return {{"attention", last_probabilities[0].to(torch::kCPU, torch::kFloat)}};  // [H, S, S] of example 0
}

// ---- linear -----------------------------------------------------------------

LinearMixing::LinearMixing(int64_t max_seq_len, int64_t d_model, double init_std) {
  w_seq = register_parameter("w_seq", torch::randn({max_seq_len, max_seq_len}) * init_std);
  w_hidden = register_parameter("w_hidden", torch::randn({d_model, d_model}) * init_std);
}

torch::Tensor LinearMixing::forward(const torch::Tensor& x, const torch::Tensor&) {
  const int64_t S = x.size(1);
  TORCH_CHECK(S <= w_seq.size(0), "sequence of ", S, " tokens exceeds max_seq_len ", w_seq.size(0));
  auto ws = w_seq.narrow(0, 0, S).narrow(1, 0, S);      // [S, S]
  return torch::matmul(ws, torch::matmul(x, w_hidden));  // [B, S, D]
}

std::vector<NamedMatrix> LinearMixing::matrices() const {
  return {{"sequence", w_seq.detach().to(torch::kCPU, torch::kFloat)},
          {"hidden", w_hidden.detach().to(torch::kCPU, torch::kFloat)}};
}

// ---- Fourier / Hartley ------------------------------------------------------

FourierMixing::FourierMixing(int64_t max_seq_len, int64_t d_model, bool hartley)
    : max_seq_len_(max_seq_len), d_model_(d_model), hartley_(hartley) {}

torch::Tensor FourierMixing::forward(const torch::Tensor& x, const torch::Tensor&) {
  const int64_t S = x.size(1), D = x.size(2);
  TORCH_CHECK(S <= max_seq_len_, "sequence of ", S, " tokens exceeds max_seq_len ", max_seq_len_);
  // cuFFT has no bf16; the transform runs in float32 and returns the input dtype.
  // Along the sequence the N-point DFT of the zero-padded input, first S rows.
  const std::vector<int64_t> size{max_seq_len_, D};
  auto f = torch::fft::fft2(x.to(torch::kFloat), at::IntArrayRef(size), {1, 2}).narrow(1, 0, S);  // complex [B, S, D]
  auto y = hartley_ ? torch::real(f) - torch::imag(f) : torch::real(f);
  return y.to(x.scalar_type());
}

std::vector<NamedMatrix> FourierMixing::matrices() const {
  // The fixed bases: Re(F) = cos for Fourier, cas = cos + sin for Hartley.
  auto basis = [&](int64_t n) {
    auto idx = torch::arange(n, torch::kDouble);
    auto angle = torch::outer(idx, idx) * (2.0 * M_PI / double(n));  // [n, n]
    auto m = hartley_ ? torch::cos(angle) + torch::sin(angle) : torch::cos(angle);
    return m.to(torch::kFloat);
  };
  return {{"sequence", basis(max_seq_len_)}, {"hidden", basis(d_model_)}};
}

// ---- circulant / Toeplitz ---------------------------------------------------

namespace {
torch::Tensor structured_index(int64_t n, bool toeplitz) {
  auto i = torch::arange(n, torch::kLong).unsqueeze(1);  // [n, 1]
  auto j = torch::arange(n, torch::kLong).unsqueeze(0);  // [1, n]
  return toeplitz ? (n - 1 - i + j) : torch::remainder(i - j, n);  // [n, n]
}
}  // namespace

StructuredMixing::StructuredMixing(int64_t max_seq_len, int64_t d_model, bool toeplitz, double init_std)
    : toeplitz_(toeplitz) {
  const int64_t ns = toeplitz ? 2 * max_seq_len - 1 : max_seq_len;
  const int64_t nh = toeplitz ? 2 * d_model - 1 : d_model;
  v_seq = register_parameter("v_seq", torch::randn({ns}) * init_std);
  v_hidden = register_parameter("v_hidden", torch::randn({nh}) * init_std);
  seq_index_ = register_buffer("seq_index", structured_index(max_seq_len, toeplitz));
  hidden_index_ = register_buffer("hidden_index", structured_index(d_model, toeplitz));
}

torch::Tensor StructuredMixing::build(const torch::Tensor& v, const torch::Tensor& index) const {
  return v.index({index});  // [N, N]
}
torch::Tensor StructuredMixing::seq_matrix() const { return build(v_seq, seq_index_); }
torch::Tensor StructuredMixing::hidden_matrix() const { return build(v_hidden, hidden_index_); }

torch::Tensor StructuredMixing::forward(const torch::Tensor& x, const torch::Tensor&) {
  const int64_t S = x.size(1);
  TORCH_CHECK(S <= seq_index_.size(0), "sequence of ", S, " tokens exceeds max_seq_len ", seq_index_.size(0));
  auto ms = seq_matrix().narrow(0, 0, S).narrow(1, 0, S);         // [S, S]
  return torch::matmul(ms, torch::matmul(x, hidden_matrix().t()));  // [B, S, D]
}

std::vector<NamedMatrix> StructuredMixing::matrices() const {
  return {{"sequence", seq_matrix().detach().to(torch::kCPU, torch::kFloat)},
          {"hidden", hidden_matrix().detach().to(torch::kCPU, torch::kFloat)}};
}

torch::Tensor circulant_apply_fft(const torch::Tensor& v, const torch::Tensor& x, int64_t dim) {
  // (C x)_i = sum_j v[(i - j) mod N] x_j is the circular convolution v * x.
  auto xt = x.movedim(dim, -1);                                       // [..., N]
  auto y = torch::fft::irfft(torch::fft::rfft(v) * torch::fft::rfft(xt), xt.size(-1));  // [..., N]
  return y.movedim(-1, dim);
}

std::shared_ptr<MixingSublayer> make_mixing(const ModelConfig& c, int64_t layer) {
  if (c.is_attention_layer(layer))
    return std::make_shared<SelfAttention>(c.d_model, c.num_heads, c.dropout, c.init_std);
  switch (c.mixing) {
    case MixingKind::Linear: return std::make_shared<LinearMixing>(c.max_seq_len, c.d_model, c.init_std);
    case MixingKind::Fourier: return std::make_shared<FourierMixing>(c.max_seq_len, c.d_model, false);
    case MixingKind::Hartley: return std::make_shared<FourierMixing>(c.max_seq_len, c.d_model, true);
    case MixingKind::Circulant:
      return std::make_shared<StructuredMixing>(c.max_seq_len, c.d_model, false, c.init_std);
    case MixingKind::Toeplitz:
      return std::make_shared<StructuredMixing>(c.max_seq_len, c.d_model, true, c.init_std);
  }
  TORCH_CHECK(false, "unknown mixing kind");
}

}  // namespace smx
