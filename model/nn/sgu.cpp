// SGU and sMoE; see sgu.h. B batch, S sequence (<= n, the context), F = d_ffn, C = F/2 gate channels,
// E experts, p routing prefix, r router input length (p or n).
#include "model/nn/sgu.h"

#include "model/nn/routing.h"

namespace smx {

namespace {
torch::nn::LayerNorm layer_norm(int64_t dim, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps));
}
// The causal spatial mix of channel chunks: chunk e of C/E channels uses W[e]. W: [E, S, S] (lower
// triangular), bias [E, S], z2 [B, S, C] -> [B, S, C]. The dense SGU is E = 1 through the same code,
// so an sMoE with one expert equals it bitwise.
torch::Tensor chunked_spatial_mix(const torch::Tensor& W, const torch::Tensor& bias, const torch::Tensor& z2) {
  const int64_t B = z2.size(0), S = z2.size(1), C = z2.size(2), E = W.size(0);
  auto chunks = z2.view({B, S, E, C / E});                                   // [B, S, E, C/E]
  auto mixed = torch::einsum("ets,bsek->btek", {W, chunks});                 // [B, S, E, C/E]
  return (mixed + bias.t().reshape({1, S, E, 1})).reshape({B, S, C});        // [B, S, C]
}
void check_input(const torch::Tensor& z, int64_t channels, int64_t context) {
  TORCH_CHECK(z.dim() == 3 && z.size(2) == 2 * channels, "SGU input must be [batch, seq, ", 2 * channels,
              "], got ", z.sizes());
  TORCH_CHECK(z.size(1) >= 1 && z.size(1) <= context, "sequence of ", z.size(1),
              " tokens: the SGU needs 1 to context = ", context);
}
}  // namespace

// ---- dense SGU --------------------------------------------------------------

SpatialGatingUnit::SpatialGatingUnit(int64_t d_ffn, int64_t n, double eps) {
  TORCH_CHECK(d_ffn >= 2 && d_ffn % 2 == 0, "SGU d_ffn must be even and >= 2, got ", d_ffn);
  TORCH_CHECK(n >= 1, "SGU context must be >= 1, got ", n);
  norm = register_module("norm", layer_norm(d_ffn / 2, eps));
  w = register_parameter("w", torch::empty({n, n}).uniform_(-1e-3 / double(n), 1e-3 / double(n)));
  b = register_parameter("b", torch::ones({n}));
}

torch::Tensor SpatialGatingUnit::causal_weight(int64_t S) const {
  return torch::tril(w.narrow(0, 0, S).narrow(1, 0, S));  // [S, S], W_ij = 0 for j > i
}

torch::Tensor SpatialGatingUnit::forward(const torch::Tensor& z, const torch::Tensor&) {
  const int64_t C = norm->options.normalized_shape()[0], S = z.size(1);
  check_input(z, C, w.size(0));
  auto halves = z.chunk(2, -1);
  auto z1 = halves[0], z2 = norm(halves[1].contiguous());                 // [B, S, C] each
  auto W = causal_weight(S).to(z2.scalar_type()).unsqueeze(0);            // [1, S, S]
  auto bias = b.narrow(0, 0, S).to(z2.scalar_type()).unsqueeze(0);        // [1, S]
  return z1 * chunked_spatial_mix(W, bias, z2);                           // [B, S, C]
}

std::vector<NamedMatrix> SpatialGatingUnit::matrices() const {
  return {{"sequence", causal_weight(w.size(0)).detach().to(torch::kCPU, torch::kFloat)}};
}

// ---- sMoE -------------------------------------------------------------------

SparseGatingUnit::SparseGatingUnit(int64_t d_ffn, int64_t n, int64_t E, SmoeRouting routing, int64_t prefix,
                                   double eps, double init_std)
    : channels_(d_ffn / 2), context_(n), num_experts_(E), prefix_(prefix), routing_(routing) {
  TORCH_CHECK(d_ffn >= 2 && d_ffn % 2 == 0, "sMoE d_ffn must be even and >= 2, got ", d_ffn);
  TORCH_CHECK(E >= 1 && E <= channels_, "sMoE experts must be in [1, d_ffn/2 = ", channels_, "], got ", E);
  TORCH_CHECK(routing != SmoeRouting::None, "sMoE needs a routing (deterministic, partial or learned)");
  if (routing == SmoeRouting::Deterministic)
    TORCH_CHECK(channels_ % E == 0, "deterministic sMoE: experts (", E, ") must divide d_ffn/2 = ", channels_);
  if (routing == SmoeRouting::Partial)
    TORCH_CHECK(prefix >= 1 && prefix < n, "partial sMoE: prefix must be in [1, context = ", n, "), got ", prefix);
  norm = register_module("norm", layer_norm(channels_, eps));
  w = register_parameter("w", torch::empty({E, n, n}).uniform_(-1e-3 / double(n), 1e-3 / double(n)));
  b = register_parameter("b", torch::ones({E, n}));
  if (routing == SmoeRouting::Partial || routing == SmoeRouting::Learned) {
    const int64_t r = routing == SmoeRouting::Partial ? prefix : n;
    router = register_module("router", torch::nn::Linear(torch::nn::LinearOptions(r, E).bias(true)));
    torch::NoGradGuard g;
    router->weight.normal_(0.0, init_std);
    router->bias.zero_();
  }
}

torch::Tensor SparseGatingUnit::channel_experts() const {
  return torch::arange(channels_, torch::kLong).mul(num_experts_).div(channels_, "floor");  // [C]
}

torch::Tensor SparseGatingUnit::causal_weights(int64_t S) const {
  return torch::tril(w.narrow(1, 0, S).narrow(2, 0, S));  // [E, S, S]
}

SparseGatingUnit::Output SparseGatingUnit::forward_with_loss(const torch::Tensor& z) {
  check_input(z, channels_, context_);
  const int64_t B = z.size(0), S = z.size(1), C = channels_, E = num_experts_;
  auto halves = z.chunk(2, -1);
  auto z1 = halves[0], z2 = norm(halves[1].contiguous());  // [B, S, C] each
  auto W = causal_weights(S).to(z2.scalar_type());                    // [E, S, S]
  auto bias = b.narrow(1, 0, S).to(z2.scalar_type());                 // [E, S]
  Output out;
  out.load_balancing_loss = torch::zeros({}, z.options().dtype(torch::kFloat));

  if (routing_ == SmoeRouting::Deterministic) {
    // Contiguous chunks: channel c = j·(C/E) + k belongs to expert j.
    out.y = z1 * chunked_spatial_mix(W, bias, z2);  // [B, S, C]
    last_routing = {channel_experts(), {}, {}};
    return out;
  }

  // Partial / learned: route each channel of each sequence by its first r tokens.
  const int64_t r = routing_ == SmoeRouting::Partial ? prefix_ : context_;
  auto columns = z2.transpose(1, 2);                                            // [B, C, S]
  auto router_in = S >= r ? columns.narrow(2, 0, r)                             // [B, C, r]
                          : torch::constant_pad_nd(columns, {0, r - S});        // zero-padded to r
  auto logits = router(router_in.to(torch::kFloat));                           // [B, C, E]
  auto probs = torch::softmax(logits, -1);                                      // [B, C, E]
  auto expert = probs.argmax(-1);                                               // [B, C]
  auto gate = probs.gather(-1, expert.unsqueeze(-1));                          // [B, C, 1]
  auto combine = torch::one_hot(expert, E).to(probs.scalar_type()) * gate;      // [B, C, E]
  auto all = torch::einsum("ets,bsc->betc", {W, z2}) + bias.view({1, E, S, 1});  // [B, E, S, C]
  auto mixed = torch::einsum("betc,bce->btc", {all, combine.to(all.scalar_type())});  // [B, S, C]
  out.y = z1 * mixed;                                                           // [B, S, C]
  out.load_balancing_loss = load_balancing_loss(probs, expert.unsqueeze(-1));   // Switch loss over channels
  last_routing = {expert.detach(), probs.detach(), {B, C, r}};
  return out;
}

torch::Tensor SparseGatingUnit::forward(const torch::Tensor& z, const torch::Tensor&) {
  return forward_with_loss(z).y;
}

std::vector<NamedMatrix> SparseGatingUnit::matrices() const {
  std::vector<NamedMatrix> m;
  auto W = causal_weights(context_).detach().to(torch::kCPU, torch::kFloat);  // [E, n, n]
  for (int64_t e = 0; e < num_experts_; ++e) m.emplace_back("expert " + std::to_string(e), W[e]);
  return m;
}

}  // namespace smx
