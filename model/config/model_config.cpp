// ModelConfig: enum names, layer layouts, validation and JSON.
#include "model/config/model_config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "model/config/json_fields.h"

namespace smx {
namespace {

template <typename Enum, size_t N>
Enum enum_from(const std::string& s, const std::pair<Enum, const char*> (&table)[N], const char* what) {
  for (const auto& [value, name] : table)
    if (s == name) return value;
  std::string known;
  for (const auto& entry : table) known += std::string(known.empty() ? "" : ", ") + entry.second;
  throw ConfigError("unknown " + std::string(what) + " '" + s + "' (known: " + known + ")");
}
template <typename Enum, size_t N>
std::string enum_name(Enum e, const std::pair<Enum, const char*> (&table)[N]) {
  for (const auto& [value, name] : table)
    if (value == e) return name;
  return "?";
}

const std::pair<MixingKind, const char*> kMixing[] = {
    {MixingKind::Linear, "linear"},       {MixingKind::Fourier, "fourier"},
    {MixingKind::Hartley, "hartley"},     {MixingKind::Circulant, "circulant"},
    {MixingKind::Toeplitz, "toeplitz"}};
const std::pair<Layout, const char*> kLayout[] = {
    {Layout::Top, "top"}, {Layout::Bottom, "bottom"}, {Layout::Middle, "middle"}, {Layout::Mixed, "mixed"},
    {Layout::FairseqInsert, "fairseq-insert"}};
const std::pair<RouterKind, const char*> kRouter[] = {
    {RouterKind::TokensChoose, "tokens-choose"}, {RouterKind::ExpertsChoose, "experts-choose"},
    {RouterKind::Switch, "switch"},           {RouterKind::GShard, "gshard"},
    {RouterKind::Base, "base"},               {RouterKind::Hash, "hash"}};
const std::pair<HashTable, const char*> kHashTable[] = {{HashTable::Random, "random"}, {HashTable::Balanced, "balanced"}};
const std::pair<RouterPrecision, const char*> kPrecision[] = {
    {RouterPrecision::Float32, "float32"}, {RouterPrecision::BFloat16, "bfloat16"}};

const std::pair<ModelFamily, const char*> kFamily[] = {
    {ModelFamily::Encoder, "encoder"}, {ModelFamily::DecoderLm, "decoder-lm"}};
const std::pair<LmMixing, const char*> kLmMixing[] = {{LmMixing::Attention, "attention"}, {LmMixing::Sgu, "sgu"}};
const std::pair<SmoeRouting, const char*> kSmoe[] = {{SmoeRouting::None, "none"},
                                                     {SmoeRouting::Deterministic, "deterministic"},
                                                     {SmoeRouting::Partial, "partial"},
                                                     {SmoeRouting::Learned, "learned"}};

std::string num(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}
// Caps of single sizes: far above every real model, low enough that their
// products (parameter counts, FLOPs) stay well inside int64 and double.
constexpr int64_t kMaxVocab = 1'000'000;
constexpr int64_t kMaxWidth = 65'536;
constexpr int64_t kMaxHidden = 1'048'576;
constexpr int64_t kMaxExperts = 4096;
constexpr double kMaxParameters = 1e12;

void require(bool ok, const std::string& field, const std::string& value, const std::string& rule) {
  if (!ok) throw ConfigError("config field '" + field + "' = " + value + ": " + rule);
}
void require_int(bool ok, const std::string& field, int64_t v, const std::string& rule) {
  require(ok, field, std::to_string(v), rule);
}
void require_real(bool ok, const std::string& field, double v, const std::string& rule) {
  require(ok && std::isfinite(v), field, num(v), rule);
}

}  // namespace

std::string to_string(MixingKind k) { return enum_name(k, kMixing); }
std::string to_string(Layout l) { return enum_name(l, kLayout); }
std::string to_string(RouterKind r) { return enum_name(r, kRouter); }
std::string to_string(RouterPrecision p) { return enum_name(p, kPrecision); }
std::string to_string(HashTable h) { return enum_name(h, kHashTable); }
HashTable hash_table_from_string(const std::string& s) { return enum_from(s, kHashTable, "hash table"); }
bool tokens_choose_family(RouterKind k) {
  return k == RouterKind::TokensChoose || k == RouterKind::Switch || k == RouterKind::GShard;
}
int64_t RouterConfig::choices_per_token() const {
  switch (kind) {
    case RouterKind::TokensChoose: return top_k;
    case RouterKind::GShard: return 2;
    case RouterKind::ExpertsChoose: return 0;
    case RouterKind::Switch:
    case RouterKind::Base:
    case RouterKind::Hash: return 1;
  }
  return 1;
}
MixingKind mixing_kind_from_string(const std::string& s) { return enum_from(s, kMixing, "mixing"); }
Layout layout_from_string(const std::string& s) { return enum_from(s, kLayout, "layout"); }
RouterKind router_kind_from_string(const std::string& s) { return enum_from(s, kRouter, "router"); }
RouterPrecision router_precision_from_string(const std::string& s) {
  return enum_from(s, kPrecision, "router precision");
}

std::string to_string(ModelFamily f) { return enum_name(f, kFamily); }
std::string to_string(LmMixing m) { return enum_name(m, kLmMixing); }
std::string to_string(SmoeRouting r) { return enum_name(r, kSmoe); }
ModelFamily model_family_from_string(const std::string& s) { return enum_from(s, kFamily, "model family"); }
LmMixing lm_mixing_from_string(const std::string& s) { return enum_from(s, kLmMixing, "LM token mixing"); }
SmoeRouting smoe_routing_from_string(const std::string& s) { return enum_from(s, kSmoe, "sMoE routing"); }

std::vector<bool> fairseq_insert_layout(int64_t dense, int64_t sparse) {
  // fairseq transformer_decoder.py (BASE layers): layers.insert(((i+1)*N)//(M+1), BaseLayer) for i < M.
  std::vector<bool> layers(size_t(std::max<int64_t>(dense, 0)), false);
  for (int64_t i = 0; i < sparse; ++i) layers.insert(layers.begin() + ((i + 1) * dense) / (sparse + 1), true);
  return layers;
}

int64_t partial_prefix_length(int64_t n, double fraction) {
  return static_cast<int64_t>(std::floor(fraction * double(n) + 1e-9));
}

bool layer_is_selected(Layout layout, int64_t k, int64_t L, int64_t l) {
  if (k <= 0 || l < 0 || l >= L) return false;
  switch (layout) {
    case Layout::Bottom: return l < k;
    case Layout::Top: return l >= L - k;
    case Layout::Middle: return L - k <= 2 * l && 2 * l < L + k;
    case Layout::Mixed: {
      const int64_t stride = std::max<int64_t>(L / k, 1);  // k <= L in a valid config
      return l % stride == 0;
    }
    case Layout::FairseqInsert: return fairseq_insert_layout(L - k, k)[size_t(l)];
  }
  return false;
}

int64_t selected_layer_count(Layout layout, int64_t k, int64_t L) {
  int64_t n = 0;
  for (int64_t l = 0; l < L; ++l) n += layer_is_selected(layout, k, L, l) ? 1 : 0;
  return n;
}

void ModelConfig::validate() const {
  require(!name.empty(), "name", "\"\"", "must not be empty");
  require_int(vocab_size >= 8 && vocab_size <= kMaxVocab, "vocab_size", vocab_size,
              "must be in [8, " + std::to_string(kMaxVocab) + "] (5 special tokens + text)");
  require_int(max_seq_len >= 2 && max_seq_len <= 8192, "max_seq_len", max_seq_len, "must be in [2, 8192]");
  require_int(type_vocab_size >= 1 && type_vocab_size <= 1024, "type_vocab_size", type_vocab_size, "must be in [1, 1024]");
  require_int(d_embedding >= 0 && d_embedding <= kMaxWidth, "d_embedding", d_embedding,
              "must be in [0, " + std::to_string(kMaxWidth) + "] (0 = d_model)");
  require_int(d_model >= 1 && d_model <= kMaxWidth, "d_model", d_model, "must be in [1, " + std::to_string(kMaxWidth) + "]");
  require_int(d_ff >= 1 && d_ff <= kMaxHidden, "d_ff", d_ff, "must be in [1, " + std::to_string(kMaxHidden) + "]");
  require_int(num_layers >= 1 && num_layers <= 256, "num_layers", num_layers, "must be in [1, 256]");
  require_int(num_heads >= 1 && num_heads <= d_model, "num_heads", num_heads,
              "must be in [1, d_model = " + std::to_string(d_model) + "]");
  if (attention_layers > 0)
    require_int(d_model % num_heads == 0, "num_heads", num_heads,
                "d_model (" + std::to_string(d_model) + ") must be divisible by num_heads");
  require_int(attention_layers >= 0 && attention_layers <= num_layers, "attention_layers", attention_layers,
              "must be in [0, num_layers = " + std::to_string(num_layers) + "]");
  require_int(moe_layers >= 0 && moe_layers <= num_layers, "moe_layers", moe_layers,
              "must be in [0, num_layers = " + std::to_string(num_layers) + "]");
  if (moe_layers > 0) {
    require_int(num_experts >= 1 && num_experts <= kMaxExperts, "num_experts", num_experts,
                "must be in [1, " + std::to_string(kMaxExperts) + "] when moe_layers > 0");
    require_int(expert_d_ff >= 0 && expert_d_ff <= kMaxHidden, "expert_d_ff", expert_d_ff,
                "must be in [0, " + std::to_string(kMaxHidden) + "] (0 = d_ff)");
    require_int(router.top_k >= 1 && router.top_k <= num_experts, "router.top_k", router.top_k,
                "must be in [1, num_experts = " + std::to_string(num_experts) + "]");
    if (router.kind == RouterKind::GShard)
      require_int(num_experts >= 2, "num_experts", num_experts, "must be >= 2 for the gshard router (top-2)");
    require_real(router.train_capacity_factor > 0, "router.train_capacity_factor", router.train_capacity_factor,
                 "must be > 0");
    require_real(router.eval_capacity_factor > 0, "router.eval_capacity_factor", router.eval_capacity_factor,
                 "must be > 0");
    require_int(router.min_capacity >= 1, "router.min_capacity", router.min_capacity, "must be >= 1");
    require_int(router.max_group_size >= 1, "router.max_group_size", router.max_group_size, "must be >= 1");
    require_real(router.jitter >= 0 && router.jitter < 1, "router.jitter", router.jitter, "must be in [0, 1)");
    require_real(router.load_balancing_weight >= 0, "router.load_balancing_weight",
                 router.load_balancing_weight, "must be >= 0");
    require_real(router.z_loss_weight >= 0, "router.z_loss_weight", router.z_loss_weight, "must be >= 0");
  }
  require_real(dropout >= 0 && dropout < 1, "dropout", dropout, "must be in [0, 1)");
  require_real(expert_dropout >= 0 && expert_dropout < 1, "expert_dropout", expert_dropout, "must be in [0, 1)");
  require_int(num_classes >= 1 && num_classes <= kMaxVocab, "num_classes", num_classes,
              "must be in [1, " + std::to_string(kMaxVocab) + "] (1 = regression)");
  require_real(init_std > 0, "init_std", init_std, "must be > 0");
  require_real(layer_norm_eps > 0, "layer_norm_eps", layer_norm_eps, "must be > 0");
  // Each size may be in range and the product still absurd (and past what the
  // int64 parameter counts hold): a rough count, in double, against a cap.
  const double De = double(embedding_dim()), D = double(d_model), S = double(max_seq_len);
  const double params = (double(vocab_size) + S + double(type_vocab_size)) * De + De * D +
                        double(num_layers) * (S * S + 4 * D * D + 2 * D * double(d_ff)) +
                        double(moe_layers) * double(num_experts) * 2 * D * double(expert_hidden()) +
                        D * double(vocab_size);
  if (params > kMaxParameters)
    throw ConfigError("this config has about " + num(params) + " parameters (" + num(params * 4 / 1e12) +
                      " TB of float32 weights alone), more than the " + num(kMaxParameters) +
                      " any machine can hold: check d_model, d_ff, num_layers, num_experts and vocab_size");
  if (!is_decoder()) {
    require(smoe_routing == SmoeRouting::None, "smoe_routing", to_string(smoe_routing),
            "sMoE token mixing needs family 'decoder-lm'");
    return;
  }
  // Decoder LM (sMLP family).
  const bool gated = lm_mixing == LmMixing::Sgu || smoe_routing != SmoeRouting::None;
  if (gated) require_int(d_ff % 2 == 0, "d_ff", d_ff, "must be even: the SGU splits d_ff into two halves");
  if (lm_mixing == LmMixing::Attention)
    require_int(d_model % num_heads == 0, "num_heads", num_heads,
                "d_model (" + std::to_string(d_model) + ") must be divisible by num_heads");
  if (smoe_routing != SmoeRouting::None) {
    require(lm_mixing == LmMixing::Sgu, "smoe_routing", to_string(smoe_routing),
            "needs lm_mixing 'sgu' (the sMoE replaces the SGU of a gMLP block)");
    require_int(moe_layers >= 1, "moe_layers", moe_layers, "must be >= 1: the sMoE lives in the sparse blocks");
    require_int(num_experts >= 1 && num_experts <= d_ff / 2, "num_experts", num_experts,
                "must be in [1, d_ff / 2 = " + std::to_string(d_ff / 2) + "] (sMoE experts own gate channels)");
    if (smoe_routing == SmoeRouting::Deterministic)
      require_int((d_ff / 2) % num_experts == 0, "num_experts", num_experts,
                  "must divide d_ff / 2 = " + std::to_string(d_ff / 2) + " (equal channel chunks per expert)");
    require_real(smoe_balancing_weight >= 0, "smoe_balancing_weight", smoe_balancing_weight, "must be >= 0");
  }
  if (smoe_routing == SmoeRouting::Partial) {
    require_real(smoe_prefix_fraction > 0 && smoe_prefix_fraction < 1, "smoe_prefix_fraction",
                 smoe_prefix_fraction, "must be in (0, 1)");
    const int64_t p = routing_prefix();
    require_int(p >= 1 && p <= max_seq_len - 2, "smoe_prefix_fraction", p,
                "gives a routing prefix of that many tokens; it must be in [1, max_seq_len - 2 = " +
                    std::to_string(max_seq_len - 2) + "]");
  }
}

// ---- JSON -------------------------------------------------------------------

void to_json(nlohmann::json& j, const ModelConfig& c) {
  j = nlohmann::json{
      {"name", c.name},
      {"family", to_string(c.family)},
      {"vocab_size", c.vocab_size},
      {"max_seq_len", c.max_seq_len},
      {"type_vocab_size", c.type_vocab_size},
      {"d_embedding", c.d_embedding},
      {"d_model", c.d_model},
      {"d_ff", c.d_ff},
      {"num_layers", c.num_layers},
      {"num_heads", c.num_heads},
      {"mixing", to_string(c.mixing)},
      {"attention_layers", c.attention_layers},
      {"attention_layout", to_string(c.attention_layout)},
      {"moe_layers", c.moe_layers},
      {"moe_layout", to_string(c.moe_layout)},
      {"num_experts", c.num_experts},
      {"expert_d_ff", c.expert_d_ff},
      {"router",
       {{"kind", to_string(c.router.kind)},
        {"top_k", c.router.top_k},
        {"batch_prioritized", c.router.batch_prioritized},
        {"train_capacity_factor", c.router.train_capacity_factor},
        {"eval_capacity_factor", c.router.eval_capacity_factor},
        {"min_capacity", c.router.min_capacity},
        {"max_group_size", c.router.max_group_size},
        {"jitter", c.router.jitter},
        {"load_balancing_weight", c.router.load_balancing_weight},
        {"z_loss_weight", c.router.z_loss_weight},
        {"precision", to_string(c.router.precision)},
        {"hash_table", to_string(c.router.hash_table)}}},
      {"dropout", c.dropout},
      {"expert_dropout", c.expert_dropout},
      {"num_classes", c.num_classes},
      {"init_std", c.init_std},
      {"layer_norm_eps", c.layer_norm_eps},
  };
  if (c.is_decoder()) {
    j["lm_mixing"] = to_string(c.lm_mixing);
    j["smoe_routing"] = to_string(c.smoe_routing);
    j["smoe_prefix_fraction"] = c.smoe_prefix_fraction;
    j["smoe_balancing_weight"] = c.smoe_balancing_weight;
  }
}


void from_json(const nlohmann::json& j, ModelConfig& c) {
  FieldReader r(j, "");
  r.read("name", c.name);
  r.read_enum("family", c.family, &model_family_from_string);
  r.read_enum("lm_mixing", c.lm_mixing, &lm_mixing_from_string);
  r.read_enum("smoe_routing", c.smoe_routing, &smoe_routing_from_string);
  r.read("smoe_prefix_fraction", c.smoe_prefix_fraction);
  r.read("smoe_balancing_weight", c.smoe_balancing_weight);
  r.read("vocab_size", c.vocab_size);
  r.read("max_seq_len", c.max_seq_len);
  r.read("type_vocab_size", c.type_vocab_size);
  r.read("d_embedding", c.d_embedding);
  r.read("d_model", c.d_model);
  r.read("d_ff", c.d_ff);
  r.read("num_layers", c.num_layers);
  r.read("num_heads", c.num_heads);
  r.read_enum("mixing", c.mixing, &mixing_kind_from_string);
  r.read("attention_layers", c.attention_layers);
  r.read_enum("attention_layout", c.attention_layout, &layout_from_string);
  r.read("moe_layers", c.moe_layers);
  r.read_enum("moe_layout", c.moe_layout, &layout_from_string);
  r.read("num_experts", c.num_experts);
  r.read("expert_d_ff", c.expert_d_ff);
  r.read("dropout", c.dropout);
  r.read("expert_dropout", c.expert_dropout);
  r.read("num_classes", c.num_classes);
  r.read("init_std", c.init_std);
  r.read("layer_norm_eps", c.layer_norm_eps);
  r.mark("router");
  if (auto it = j.find("router"); it != j.end()) {
    FieldReader rr(*it, "router.");
    rr.read_enum("kind", c.router.kind, &router_kind_from_string);
    rr.read("top_k", c.router.top_k);
    rr.read("batch_prioritized", c.router.batch_prioritized);
    rr.read("train_capacity_factor", c.router.train_capacity_factor);
    rr.read("eval_capacity_factor", c.router.eval_capacity_factor);
    rr.read("min_capacity", c.router.min_capacity);
    rr.read("max_group_size", c.router.max_group_size);
    rr.read("jitter", c.router.jitter);
    rr.read("load_balancing_weight", c.router.load_balancing_weight);
    rr.read("z_loss_weight", c.router.z_loss_weight);
    rr.read_enum("precision", c.router.precision, &router_precision_from_string);
    rr.read_enum("hash_table", c.router.hash_table, &hash_table_from_string);
    rr.reject_unknown();
  }
  r.reject_unknown();
}

ModelConfig config_from_json_text(const std::string& text) {
  nlohmann::json j = parse_json_text(text);
  ModelConfig c;
  // A config may start from a preset and override some fields: {"preset": "demo", "d_model": 64}.
  if (j.is_object() && j.contains("preset")) {
    if (!j["preset"].is_string()) throw ConfigError("config field 'preset' must be a string");
    c = preset(j["preset"].get<std::string>());
    j.erase("preset");
  }
  from_json(j, c);
  c.validate();
  return c;
}

ModelConfig config_from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot open config file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return config_from_json_text(ss.str());
  } catch (const ConfigError& e) {
    throw ConfigError(path + ": " + e.what());
  }
}

std::string config_to_json_text(const ModelConfig& c, int indent) {
  nlohmann::json j = c;
  return j.dump(indent);
}

}  // namespace smx
