// Named presets, one table per family. Encoders: the Sparse Mixer paper's Base models (Table 8), its
// scaled sizes (appendix A.5, speed-accuracy table) and a small `demo` for a laptop CPU. Decoder LMs:
// the sMLP paper's models at demo size and (for the cost model) at the paper's sizes.
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

// A "sparse BERT" of a dense BERT preset: the same model with `moe` of its feed-forward sublayers (MIDDLE
// layout) replaced by Experts-Choose MoE, as the paper's sparse BERT-4 and -12 are of BERT-Base (Table 10).
ModelConfig sparse_bert_of(ModelConfig c, const std::string& name, int64_t moe, int64_t experts) {
  c.name = name;
  c.moe_layers = moe;
  c.moe_layout = Layout::Middle;
  c.num_experts = experts;
  c.router.kind = RouterKind::ExpertsChoose;
  c.router.train_capacity_factor = c.router.eval_capacity_factor = 1.0;
  return c;
}

ModelConfig sparse_bert(const std::string& name, int64_t moe) {
  return sparse_bert_of(bert(name, 12, 768, 3072, 12), name, moe, 16);
}

// Sized for a laptop CPU: 64 tokens, a 4000-piece vocabulary and small groups.
ModelConfig demo_sized(ModelConfig c) {
  c.vocab_size = 4000;
  c.max_seq_len = 64;
  c.router.max_group_size = 512;
  return c;
}

ModelConfig demo() {
  // Small enough to train visibly on a 2-core CPU: ~1.5M parameters, 64 tokens.
  return demo_sized(sparse_mixer("demo", 4, 128, 256, 4, 1, 2, 8));
}

// The stability lab's Table 10 set at the demo's size: BERT (attention in every layer), and BERT with MoE in
// half and in all of its layers; the Sparse Mixer of the set is `demo` itself.
ModelConfig demo_bert() { return demo_sized(bert("demo-bert", 4, 128, 256, 4)); }
ModelConfig demo_sparse_bert(int64_t moe) {
  return sparse_bert_of(demo_bert(), "demo-sparse-bert-" + std::to_string(moe), moe, 8);
}

using Factory = std::function<ModelConfig()>;
const std::vector<std::pair<std::string, Factory>>& registry() {
  static const std::vector<std::pair<std::string, Factory>> r = {
      {"demo", demo},
      {"demo-bert", demo_bert},
      {"demo-sparse-bert-2", [] { return demo_sparse_bert(2); }},
      {"demo-sparse-bert-4", [] { return demo_sparse_bert(4); }},
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
      // Sparse BERTs of the small BERTs (MoE in half and in all layers, 16 experts as their Sparse Mixers).
      {"sparse-bert-l2-h256-moe1", [] { return sparse_bert_of(preset("bert-l2-h256"), "sparse-bert-l2-h256-moe1", 1, 16); }},
      {"sparse-bert-l2-h256-moe2", [] { return sparse_bert_of(preset("bert-l2-h256"), "sparse-bert-l2-h256-moe2", 2, 16); }},
      {"sparse-bert-l4-h256-moe2", [] { return sparse_bert_of(preset("bert-l4-h256"), "sparse-bert-l4-h256-moe2", 2, 16); }},
      {"sparse-bert-l4-h256-moe4", [] { return sparse_bert_of(preset("bert-l4-h256"), "sparse-bert-l4-h256-moe4", 4, 16); }},
      {"sparse-bert-l4-h512-moe2", [] { return sparse_bert_of(preset("bert-l4-h512"), "sparse-bert-l4-h512-moe2", 2, 16); }},
      {"sparse-bert-l4-h512-moe4", [] { return sparse_bert_of(preset("bert-l4-h512"), "sparse-bert-l4-h512-moe4", 4, 16); }},
      {"sparse-bert-l8-h512-moe4", [] { return sparse_bert_of(preset("bert-l8-h512"), "sparse-bert-l8-h512-moe4", 4, 16); }},
      {"sparse-bert-l8-h512-moe8", [] { return sparse_bert_of(preset("bert-l8-h512"), "sparse-bert-l8-h512-moe8", 8, 16); }},
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

// ---- decoder LMs (sMLP paper, SMLP.md §1, §5) --------------------------------

// A causal decoder LM: `dense` dense blocks and `sparse` sparse blocks placed by fairseq's BASE-layers
// insertion rule. Sparse blocks: sMoE token mixing (`smoe`) + an MoE FFN (tMoE) routed by BASE layers, as
// the paper's sMLP ("adopted from Base Layers", SMLP.md §1): an exact balanced assignment while training,
// greedy top-1 in evaluation. For the routers that drop, the eval capacity factor = experts, so no token is
// dropped in eval (a dropped token would depend on later tokens of its group: causality holds in eval only;
// BASE's balanced assignment in training also reads the whole group, as in the paper).
ModelConfig lm(const std::string& name, LmMixing mixing, SmoeRouting smoe, int64_t dense, int64_t sparse,
               int64_t d_model, int64_t d_ffn, int64_t heads, int64_t experts, int64_t context, int64_t vocab) {
  ModelConfig c;
  c.name = name;
  c.family = ModelFamily::DecoderLm;
  c.lm_mixing = mixing;
  c.smoe_routing = smoe;
  c.vocab_size = vocab;
  c.max_seq_len = context;
  c.d_model = d_model;
  c.d_ff = d_ffn;
  c.num_heads = heads;
  c.num_layers = dense + sparse;
  c.attention_layers = 0;  // the encoder's field; LM token mixing is lm_mixing
  c.moe_layers = sparse;
  c.moe_layout = Layout::FairseqInsert;
  c.num_experts = experts;
  c.expert_d_ff = d_ffn;
  c.router.kind = RouterKind::Base;
  c.router.top_k = 1;
  c.router.train_capacity_factor = 1.25;
  c.router.eval_capacity_factor = double(experts);
  c.router.min_capacity = 1;
  c.dropout = 0.1;
  c.expert_dropout = 0.1;
  c.layer_norm_eps = 1e-5;
  c.num_classes = 1;
  c.type_vocab_size = 1;
  return c;
}

// Demo sizes: V 4000, n 64, d 128, d_ffn 512, trainable on a 2-core CPU in minutes. The dense models are cut
// to about the sMLP demo's forward FLOPs per token (smx presets prints them): 9 gMLP blocks, 5 Transformer blocks.
ModelConfig lm_demo(const std::string& name, LmMixing mixing, SmoeRouting smoe, int64_t dense, int64_t sparse) {
  ModelConfig c = lm(name, mixing, smoe, dense, sparse, 128, 512, mixing == LmMixing::Attention ? 4 : 1, 4, 64, 4000);
  c.router.max_group_size = 512;
  return c;
}

// The paper's Transformer-MoE baselines (SMLP.md §2, its Table 4): attention blocks whose sparse ones
// carry an MoE FFN routed by `router`. Switch and GShard put a sparse block every other layer (layout
// MIXED), BASE and HASH insert theirs as fairseq's BASE layers do.
ModelConfig router_lm(const std::string& name, RouterKind router, int64_t dense, int64_t sparse, int64_t d_model,
                      int64_t d_ffn, int64_t heads, int64_t experts, int64_t context, int64_t vocab) {
  ModelConfig c = lm(name, LmMixing::Attention, SmoeRouting::None, dense, sparse, d_model, d_ffn, heads, experts,
                     context, vocab);
  c.router.kind = router;
  const bool every_other = router == RouterKind::Switch || router == RouterKind::GShard;
  c.moe_layout = every_other ? Layout::Mixed : Layout::FairseqInsert;
  if (router == RouterKind::Hash) c.router.hash_table = HashTable::Balanced;  // by corpus frequency
  if (every_other) c.router.train_capacity_factor = 1.0;  // fairseq's top1gate/top2gate default
  return c;
}

// Demo sizes of the baselines, each cut to about the sMLP demo's forward FLOPs per token (`smx presets`
// prints them; tst_lm checks they stay within 12%).
ModelConfig router_lm_demo(const std::string& name, RouterKind router, int64_t dense, int64_t sparse) {
  ModelConfig c = router_lm(name, router, dense, sparse, 128, 512, 4, 4, 64, 4000);
  c.router.max_group_size = 512;
  return c;
}

// Paper sizes (Table 2/5, SMLP.md §1): n 1024; the vocabulary is not given in the paper, 50264 is assumed
// (fairseq's GPT-2 BPE dictionary, RoBERTa data). For the cost model; too large to train here.
constexpr int64_t kPaperVocab = 50264;

const std::vector<std::pair<std::string, Factory>>& lm_registry() {
  static const std::vector<std::pair<std::string, Factory>> r = {
      {"smlp-demo", [] { return lm_demo("smlp-demo", LmMixing::Sgu, SmoeRouting::Deterministic, 4, 2); }},
      {"smlp-partial-demo",
       [] { return lm_demo("smlp-partial-demo", LmMixing::Sgu, SmoeRouting::Partial, 4, 2); }},
      {"gmlp-demo", [] { return lm_demo("gmlp-demo", LmMixing::Sgu, SmoeRouting::None, 9, 0); }},
      {"transformer-lm-demo",
       [] { return lm_demo("transformer-lm-demo", LmMixing::Attention, SmoeRouting::None, 5, 0); }},
      {"smlp-learned-demo",  // App. B: leaks future tokens; teaching only
       [] { return lm_demo("smlp-learned-demo", LmMixing::Sgu, SmoeRouting::Learned, 4, 2); }},
      {"switch-lm-demo", [] { return router_lm_demo("switch-lm-demo", RouterKind::Switch, 2, 2); }},
      {"gshard-lm-demo", [] { return router_lm_demo("gshard-lm-demo", RouterKind::GShard, 2, 2); }},
      {"base-lm-demo", [] { return router_lm_demo("base-lm-demo", RouterKind::Base, 2, 2); }},
      {"hash-lm-demo", [] { return router_lm_demo("hash-lm-demo", RouterKind::Hash, 2, 2); }},
      {"smlp-0.8t", [] { return lm("smlp-0.8t", LmMixing::Sgu, SmoeRouting::Deterministic, 28, 12, 1024, 4096, 1,
                                   32, 1024, kPaperVocab); }},
      {"gmlp-41", [] { return lm("gmlp-41", LmMixing::Sgu, SmoeRouting::None, 41, 0, 1024, 4096, 1, 32, 1024,
                                 kPaperVocab); }},
      {"transformer-24", [] { return lm("transformer-24", LmMixing::Attention, SmoeRouting::None, 24, 0, 1024,
                                        4096, 16, 32, 1024, kPaperVocab); }},
      {"smlp-2t", [] { return lm("smlp-2t", LmMixing::Sgu, SmoeRouting::Deterministic, 20, 8, 2048, 8192, 1, 32,
                                 1024, kPaperVocab); }},
      // Table 4's baselines (SMLP.md §1 table): BASE 12+12 at 0.8T; at 2.0T BASE and HASH 8+8, Switch 7+7
      // with 32 experts, GShard 7+7 with 64.
      {"base-0.8t", [] { return router_lm("base-0.8t", RouterKind::Base, 12, 12, 1024, 4096, 16, 32, 1024,
                                          kPaperVocab); }},
      {"base-2t", [] { return router_lm("base-2t", RouterKind::Base, 8, 8, 2048, 8192, 16, 32, 1024, kPaperVocab); }},
      {"hash-2t", [] { return router_lm("hash-2t", RouterKind::Hash, 8, 8, 2048, 8192, 16, 32, 1024, kPaperVocab); }},
      {"switch-2t",
       [] { return router_lm("switch-2t", RouterKind::Switch, 7, 7, 2048, 8192, 16, 32, 1024, kPaperVocab); }},
      {"gshard-2t",
       [] { return router_lm("gshard-2t", RouterKind::GShard, 7, 7, 2048, 8192, 16, 64, 1024, kPaperVocab); }},
  };
  return r;
}

}  // namespace

std::vector<std::string> lm_preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : lm_registry()) names.push_back(name);
  return names;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : registry()) names.push_back(name);
  return names;
}

ModelConfig preset(const std::string& name) {
  for (const auto* table : {&registry(), &lm_registry()})
    for (const auto& [n, factory] : *table)
      if (n == name) {
        ModelConfig c = factory();
        c.validate();
        return c;
      }
  std::string known;
  for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
  for (const auto& n : lm_preset_names()) known += ", " + n;
  throw ConfigError("unknown preset '" + name + "' (known: " + known + ")");
}

}  // namespace smx
