// Named presets: the paper's Base models (Table 8), its scaled sizes
// (appendix A.5, speed-accuracy table) and a small `demo` for a laptop CPU.
#include <functional>
#include <map>

#include "model/config/model_config.h"

namespace smx {
namespace {

ModelConfig bert(const std::string& name, int64_t layers, int64_t d_model, int64_t d_ff, int64_t heads) {
  ModelConfig c;
  c.name = name;
  c.num_layers = layers;
  c.d_model = d_model;
  c.d_ff = d_ff;
  c.num_heads = heads;
  c.attention_layers = layers;  // every layer is self-attention
  c.attention_layout = Layout::Top;
  c.moe_layers = 0;
  c.num_experts = 16;
  return c;
}

// Sparse Mixer: Linear mixing everywhere but `attn` TOP attention layers, and
// `moe` MIDDLE Experts-Choose MoE layers with `experts` experts (cf 1.0).
ModelConfig sparse_mixer(const std::string& name, int64_t layers, int64_t d_model, int64_t d_ff,
                         int64_t heads, int64_t attn, int64_t moe, int64_t experts) {
  ModelConfig c;
  c.name = name;
  c.num_layers = layers;
  c.d_model = d_model;
  c.d_ff = d_ff;
  c.num_heads = heads;
  c.mixing = MixingKind::Linear;
  c.attention_layers = attn;
  c.attention_layout = Layout::Top;
  c.moe_layers = moe;
  c.moe_layout = Layout::Middle;
  c.num_experts = experts;
  c.router.kind = RouterKind::ExpertsChoose;
  c.router.train_capacity_factor = c.router.eval_capacity_factor = 1.0;
  return c;
}

ModelConfig with_capacity(ModelConfig c, const std::string& name, double cf) {
  c.name = name;
  c.router.train_capacity_factor = c.router.eval_capacity_factor = cf;
  return c;
}

ModelConfig sparse_bert(const std::string& name, int64_t moe) {
  ModelConfig c = bert(name, 12, 768, 3072, 12);
  c.moe_layers = moe;
  c.moe_layout = Layout::Middle;
  c.num_experts = 16;
  c.router.kind = RouterKind::ExpertsChoose;
  return c;
}

ModelConfig demo() {
  // Small enough to train visibly on a 2-core CPU: ~1.5M parameters, 64 tokens.
  ModelConfig c = sparse_mixer("demo", 4, 128, 256, 4, 1, 2, 8);
  c.vocab_size = 4000;
  c.max_seq_len = 64;
  c.router.max_group_size = 512;
  return c;
}

using Factory = std::function<ModelConfig()>;
const std::vector<std::pair<std::string, Factory>>& registry() {
  static const std::vector<std::pair<std::string, Factory>> r = {
      {"demo", demo},
      {"bert-base", [] { return bert("bert-base", 12, 768, 3072, 12); }},
      {"sparse-mixer", [] { return sparse_mixer("sparse-mixer", 14, 512, 2048, 8, 4, 4, 16); }},
      {"fast-sparse-mixer",
       [] { return with_capacity(sparse_mixer("", 14, 512, 2048, 8, 4, 4, 16), "fast-sparse-mixer", 0.5); }},
      {"sparse-bert-4", [] { return sparse_bert("sparse-bert-4", 4); }},
      {"sparse-bert-12", [] { return sparse_bert("sparse-bert-12", 12); }},
      // Appendix A.5: BERT vs Sparse Mixer across sizes (layers, d_model, d_ff,
      // attention layers, MoE layers, experts). Named after their shapes.
      {"bert-l2-h256", [] { return bert("bert-l2-h256", 2, 256, 1024, 4); }},
      {"bert-l4-h256", [] { return bert("bert-l4-h256", 4, 256, 1024, 4); }},
      {"bert-l4-h512", [] { return bert("bert-l4-h512", 4, 512, 2048, 8); }},
      {"bert-l8-h512", [] { return bert("bert-l8-h512", 8, 512, 2048, 8); }},
      {"bert-l18-h768", [] { return bert("bert-l18-h768", 18, 768, 3072, 12); }},
      {"bert-large", [] { return bert("bert-large", 24, 1024, 4096, 16); }},
      {"sparse-mixer-l2-h256", [] { return sparse_mixer("sparse-mixer-l2-h256", 2, 256, 1024, 4, 2, 2, 16); }},
      {"sparse-mixer-l4-h256", [] { return sparse_mixer("sparse-mixer-l4-h256", 4, 256, 1024, 4, 2, 2, 16); }},
      {"sparse-mixer-l4-h512", [] { return sparse_mixer("sparse-mixer-l4-h512", 4, 512, 2048, 8, 2, 2, 16); }},
      {"sparse-mixer-l8-h512", [] { return sparse_mixer("sparse-mixer-l8-h512", 8, 512, 2048, 8, 4, 4, 16); }},
      {"sparse-mixer-l18-h768",
       [] { return sparse_mixer("sparse-mixer-l18-h768", 18, 768, 3072, 12, 6, 6, 32); }},
      {"sparse-mixer-large", [] { return sparse_mixer("sparse-mixer-large", 24, 1024, 4096, 16, 6, 6, 64); }},
  };
  return r;
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : registry()) names.push_back(name);
  return names;
}

ModelConfig preset(const std::string& name) {
  for (const auto& [n, factory] : registry())
    if (n == name) {
      ModelConfig c = factory();
      c.validate();
      return c;
    }
  std::string known;
  for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
  throw ConfigError("unknown preset '" + name + "' (known: " + known + ")");
}

}  // namespace smx
