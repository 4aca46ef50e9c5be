// The one configuration of a Sparse Mixer family model: every architectural,
// routing and regularisation option, JSON in and out, validated, with presets.
// Torch-free on purpose: the GUI's launcher and the CLI read it without
// pulling in LibTorch.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace smx {

/// A config that fails validation; what() names the field and the bad value.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Token-mixing sublayer of the layers that are not self-attention.
enum class MixingKind { Linear, Fourier, Hartley, Circulant, Toeplitz };
/// Where k special layers (attention or MoE) sit among L: see layer_is_selected.
/// FairseqInsert: fairseq's BASE-layers rule for M sparse among N + M blocks (SMLP.md §1).
enum class Layout { Top, Bottom, Middle, Mixed, FairseqInsert };
/// Who picks which expert a token goes to:
/// - TokensChoose: each token its top-k experts (Batch Prioritized Routing optional);
/// - ExpertsChoose: each expert its top-capacity tokens;
/// - Switch: top-1, capacity floor(cf * ceil(T / E)), first come first served (fairseq's top1gate);
/// - GShard: top-1 plus a second expert (Gumbel-sampled while training), gates renormalised over the
///   kept choices, capacity floor(2 cf * ceil(T / E)), balancing loss on top-1 choices (fairseq's top2gate);
/// - Base: BASE layers, an exact balanced assignment by affinity with the expert centroids while
///   training (every expert exactly T / E tokens), greedy top-1 in evaluation; no balancing loss;
/// - Hash: Hash layers, a fixed token-id -> expert table; no router weights, no loss.
enum class RouterKind { TokensChoose, ExpertsChoose, Switch, GShard, Base, Hash };
/// How a Hash router's table is made: uniformly at random (seeded), or by
/// balancing the corpus frequency of the ids over the experts.
enum class HashTable { Random, Balanced };
/// Arithmetic of the router's logits and probabilities: float32 (ours, the
/// default) or the reference code's bfloat16 (for exact comparisons).
enum class RouterPrecision { Float32, BFloat16 };
/// The model family: bidirectional encoders (BERT, Sparse Mixer) or causal decoder LMs (sMLP paper).
enum class ModelFamily { Encoder, DecoderLm };
/// Token mixing of a decoder LM's dense blocks: causal self-attention (+ FFN) or a gMLP block (causal SGU).
enum class LmMixing { Attention, Sgu };
/// Token mixing of a decoder LM's sparse blocks (sMoE over hidden channels; SMLP.md §1). None: the
/// sparse blocks use the dense token mixing and only their feature mixing is an MoE.
/// Learned reads whole columns, future tokens included: a teaching variant that leaks.
enum class SmoeRouting { None, Deterministic, Partial, Learned };

std::string to_string(MixingKind k);
std::string to_string(Layout l);
std::string to_string(RouterKind r);
std::string to_string(RouterPrecision p);
std::string to_string(HashTable h);
std::string to_string(ModelFamily f);
std::string to_string(LmMixing m);
std::string to_string(SmoeRouting r);
ModelFamily model_family_from_string(const std::string& s);
LmMixing lm_mixing_from_string(const std::string& s);
SmoeRouting smoe_routing_from_string(const std::string& s);
MixingKind mixing_kind_from_string(const std::string& s);  // throws ConfigError
Layout layout_from_string(const std::string& s);
RouterKind router_kind_from_string(const std::string& s);
RouterPrecision router_precision_from_string(const std::string& s);
HashTable hash_table_from_string(const std::string& s);
/// True for the routers in which tokens choose (they can drop a choice at capacity).
bool tokens_choose_family(RouterKind k);

/// True when layer l (0-based) of L is one of the layers placed by `layout`
/// for k requested. Reference rules (google-research sparse_mixers): BOTTOM
/// l < k; MIDDLE L-k <= 2l < L+k; TOP l >= L-k; MIXED l mod (L div k) == 0,
/// which can select more than k layers (5 for L=14, k=4: 0, 3, 6, 9, 12).
bool layer_is_selected(Layout layout, int64_t k, int64_t L, int64_t l);
/// How many of L layers `layout` selects for k requested (k, except MIXED).
int64_t selected_layer_count(Layout layout, int64_t k, int64_t L);
/// fairseq's BASE-layers placement: start from N dense blocks and, for i < M, insert a sparse block at
/// ((i+1)·N) div (M+1) of the growing list. Returns N + M flags, true = sparse. N = M = 12 puts all 12
/// sparse blocks first. Layout FAIRSEQ-INSERT selects these for k = M of L = N + M.
std::vector<bool> fairseq_insert_layout(int64_t dense, int64_t sparse);
/// Partial-prediction prefix: floor(fraction · n) tokens (12 at n = 64, fraction 0.2).
int64_t partial_prefix_length(int64_t n, double fraction);

struct RouterConfig {
  /// Tokens Choose or Experts Choose.
  RouterKind kind = RouterKind::ExpertsChoose;
  /// Tokens Choose: how many experts each token asks for.
  int64_t top_k = 1;
  /// Tokens Choose: place the most confident tokens first (Batch Prioritized Routing).
  bool batch_prioritized = true;
  /// Capacity factor while training: capacity = round(cf * group tokens / experts).
  double train_capacity_factor = 1.0;
  /// Capacity factor in eval mode (inference, evaluation).
  double eval_capacity_factor = 1.0;
  /// Capacity never falls below this many tokens (clamped to the group size).
  int64_t min_capacity = 4;
  /// Tokens are routed in groups of at most this many tokens.
  int64_t max_group_size = 4096;
  /// Multiplicative uniform noise on router inputs while training (0 = off).
  double jitter = 0.0;
  /// Weight of the Switch load-balancing loss in the total loss (Tokens Choose).
  double load_balancing_weight = 0.01;
  /// Weight of the router z-loss in the total loss.
  double z_loss_weight = 1e-4;
  /// Router arithmetic: float32, or the reference's bfloat16 logits and probabilities.
  RouterPrecision precision = RouterPrecision::Float32;
  /// Hash router: how its token-id -> expert table is made.
  HashTable hash_table = HashTable::Random;

  /// Choices per token: top_k for TokensChoose, 2 for GShard, 1 for Switch, Base and Hash, 0 for ExpertsChoose.
  int64_t choices_per_token() const;
};

struct ModelConfig {
  /// Preset name or a user label.
  std::string name = "custom";
  /// Encoder (the fields below as documented) or causal decoder LM: then num_layers counts dense + sparse
  /// blocks, moe_layers the sparse ones (placed by moe_layout), d_ff is gMLP's d_ffn, and mixing,
  /// attention_*, type_vocab_size, d_embedding and num_classes are not used.
  ModelFamily family = ModelFamily::Encoder;
  /// Decoder LM: token mixing of the dense blocks.
  LmMixing lm_mixing = LmMixing::Sgu;
  /// Decoder LM: token mixing of the sparse blocks (sMoE routing), or none.
  SmoeRouting smoe_routing = SmoeRouting::None;
  /// Decoder LM, partial prediction: the routing prefix is floor(fraction · max_seq_len) tokens.
  double smoe_prefix_fraction = 0.2;
  /// Decoder LM: weight of the partial/learned sMoE's Switch balancing loss over channels.
  double smoe_balancing_weight = 0.01;
  int64_t vocab_size = 32000;
  /// Longest input; Linear/Circulant/Toeplitz mixing matrices are this square.
  int64_t max_seq_len = 512;
  /// Segment (token type) vocabulary.
  int64_t type_vocab_size = 4;
  /// Width of the embedding tables; projected to d_model (0 = d_model).
  int64_t d_embedding = 0;
  int64_t d_model = 512;
  int64_t d_ff = 2048;
  int64_t num_layers = 14;
  int64_t num_heads = 8;
  /// Mixing used by every layer that is not self-attention.
  MixingKind mixing = MixingKind::Linear;
  int64_t attention_layers = 4;
  Layout attention_layout = Layout::Top;
  int64_t moe_layers = 4;
  Layout moe_layout = Layout::Middle;
  int64_t num_experts = 16;
  /// Hidden width of each expert (0 = d_ff).
  int64_t expert_d_ff = 0;
  RouterConfig router;
  /// Dropout on hidden states and attention probabilities.
  double dropout = 0.1;
  /// Dropout inside experts (the paper fine-tunes with 0.2).
  double expert_dropout = 0.1;
  /// Classification head outputs (1 = regression).
  int64_t num_classes = 2;
  double init_std = 0.02;
  double layer_norm_eps = 1e-12;

  int64_t embedding_dim() const { return d_embedding > 0 ? d_embedding : d_model; }
  int64_t expert_hidden() const { return expert_d_ff > 0 ? expert_d_ff : d_ff; }
  bool is_attention_layer(int64_t l) const {
    return layer_is_selected(attention_layout, attention_layers, num_layers, l);
  }
  bool is_moe_layer(int64_t l) const {
    return layer_is_selected(moe_layout, moe_layers, num_layers, l);
  }
  /// The number of attention / MoE layers the layouts really place (the
  /// MIXED rule can place more than asked for).
  int64_t attention_layer_count() const {
    return selected_layer_count(attention_layout, attention_layers, num_layers);
  }
  int64_t moe_layer_count() const { return selected_layer_count(moe_layout, moe_layers, num_layers); }
  bool is_decoder() const { return family == ModelFamily::DecoderLm; }
  /// Decoder LM with partial prediction: tokens before this position only decide routing (0 otherwise).
  int64_t routing_prefix() const {
    return is_decoder() && smoe_routing == SmoeRouting::Partial
               ? partial_prefix_length(max_seq_len, smoe_prefix_fraction) : 0;
  }

  /// Throws ConfigError naming the first bad field and its value.
  void validate() const;
};

void to_json(nlohmann::json& j, const ModelConfig& c);
/// Missing fields keep their defaults; unknown fields and bad values throw ConfigError.
void from_json(const nlohmann::json& j, ModelConfig& c);

ModelConfig config_from_json_text(const std::string& text);   // parses + validates
ModelConfig config_from_file(const std::string& path);         // reads + parses + validates
std::string config_to_json_text(const ModelConfig& c, int indent = 2);

/// Names of the encoder presets, in a stable order.
std::vector<std::string> preset_names();
/// Names of the decoder-LM presets (sMLP family), in a stable order.
std::vector<std::string> lm_preset_names();
/// The preset's config (either family); throws ConfigError listing the known names if unknown.
ModelConfig preset(const std::string& name);

}  // namespace smx
