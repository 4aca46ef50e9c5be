#include "model/inspect/inspector.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include <torch/torch.h>

#include "model/bench/bench.h"
#include "model/config/train_config.h"
#include "model/inspect/runtime.h"
#include "model/nn/decoder.h"
#include "model/nn/encoder.h"
#include "model/store/data_dir.h"
#include "model/text/corpus.h"
#include "model/text/tokenizer.h"
#include "model/train/checkpoint.h"
#include "model/train/telemetry.h"
#include "model/train/trainer.h"

namespace fs = std::filesystem;

namespace smx::inspect {

namespace {

torch::Device device_named(const std::string& d) {
  try {
    return torch::Device(smx::inspect::resolve_device(d));
  } catch (const ConfigError& e) {
    throw InspectError(e.what());
  }
}

}  // namespace

struct Inspector::Impl {
  fs::path checkpoint;
  CheckpointInfo info;
  ModelConfig model_config;
  TrainConfig training;
  torch::Device device{torch::kCPU};
  EncoderModel model{nullptr};  // encoders
  CausalLm lm{nullptr};         // decoder LMs
  std::optional<text::Tokenizer> tokenizer;
  int64_t seq_len = 0;
  std::vector<std::string> held_out;  // route_batch's sentences, drawn once
  std::optional<LmWindows> lm_held_out;  // decoder LMs: leak_check's and route_batch's windows, read once
  int64_t lm_held_out_asked = 0;         // how many windows were asked for (the corpus may have fewer)

  bool decoder() const { return model_config.is_decoder(); }
  MoeLayers moe_layers() { return decoder() ? lm->moe_layers() : model->moe_layers(); }
  void require_encoder(const char* what) const {
    if (decoder())
      throw InspectError(std::string(what) + " needs an encoder (masked-language model); '" + model_config.name +
                         "' is a decoder LM: generate text or run the leak check instead");
  }
  void require_decoder(const char* what) const {
    if (!decoder())
      throw InspectError(std::string(what) + " needs a decoder LM; '" + model_config.name +
                         "' is an encoder (masked-language model): predict [MASK] tokens instead");
  }

  /// Decoder LMs: the text as the LM reads it (no [CLS]/[SEP], no padding), at most seq_len tokens; as
  /// the trainer's probe.
  Probe encode_lm(const std::vector<int32_t>& ids) const {
    Probe p;
    std::vector<int64_t> v(ids.begin(), ids.end());
    if (static_cast<int64_t>(v.size()) > seq_len) v.erase(v.begin(), v.end() - seq_len);  // the newest tokens
    p.ids = torch::tensor(v, torch::kLong).unsqueeze(0).to(device);  // [1, S]
    for (auto id : v) p.tokens.push_back(tokenizer->piece(static_cast<int32_t>(id)));
    return p;
  }

  /// Decoder LMs: the first `n` held-out windows of the run's corpus (read once, then reused).
  const LmWindows& lm_windows(int64_t n, const fs::path& data_dir) {
    if (!lm_held_out || lm_held_out_asked < n) {
      fs::path dir = data_dir;
      if (dir.empty()) {
        const fs::path tok = fs::path(info.tokenizer_path).parent_path();
        dir = tok.filename() == "tokenizers" ? tok.parent_path() : store::default_data_dir();
      }
      try {
        lm_held_out = lm_heldout_windows(model_config, training, dir, n);
        lm_held_out_asked = n;
      } catch (const std::exception& e) {
        throw InspectError(std::string("cannot read the run's held-out text: ") + e.what());
      }
    }
    return *lm_held_out;
  }

  /// [CLS] text [SEP], padded to seq_len; ids/types/mask [1, S] on the device.
  Probe encode(const std::string& text) const {
    auto ids = tokenizer->encode(text);
    if (static_cast<int64_t>(ids.size()) > seq_len - 2) ids.resize(seq_len - 2);
    ids.insert(ids.begin(), text::Tokenizer::kCls);
    ids.push_back(text::Tokenizer::kSep);
    Probe p;
    p.ids = torch::zeros({1, seq_len}, torch::kLong);
    p.mask = torch::zeros({1, seq_len}, torch::kLong);
    auto id = p.ids.accessor<int64_t, 2>();
    auto m = p.mask.accessor<int64_t, 2>();
    for (size_t i = 0; i < ids.size(); ++i) {
      id[0][i] = ids[i];
      m[0][i] = 1;
      p.tokens.push_back(tokenizer->piece(ids[i]));
    }
    p.types = torch::zeros({1, seq_len}, torch::kLong).to(device);
    p.ids = p.ids.to(device);
    p.mask = p.mask.to(device);
    return p;
  }

  /// Runs f with the MoE layers' capacity factor and router kind changed, then restores them.
  template <typename F>
  auto with_routing(double capacity_factor, const std::string& router, F&& f) {
    struct Saved {
      double train, eval;
      RouterKind kind;
    };
    std::vector<Saved> saved;
    std::optional<RouterKind> kind;
    if (!router.empty()) {
      try {
        kind = router_kind_from_string(router);
      } catch (const std::exception& e) {
        throw InspectError(e.what());
      }
    }
    if (capacity_factor > 64) throw InspectError("capacity factor " + std::to_string(capacity_factor) + " is too large (at most 64)");
    for (auto& [l, moe] : moe_layers()) {
      auto& rc = moe->router->mutable_config();
      saved.push_back({rc.train_capacity_factor, rc.eval_capacity_factor, rc.kind});
      if (capacity_factor > 0) moe->set_capacity_factors(rc.train_capacity_factor, capacity_factor);
      if (kind) rc.kind = *kind;
    }
    auto restore = [&] {
      size_t i = 0;
      for (auto& [l, moe] : moe_layers()) {
        moe->set_capacity_factors(saved[i].train, saved[i].eval);
        moe->router->mutable_config().kind = saved[i].kind;
        ++i;
      }
    };
    try {
      auto r = f();
      restore();
      return r;
    } catch (...) {
      restore();
      throw;
    }
  }
};

Inspector::Inspector(const fs::path& checkpoint, const std::string& device) : impl_(std::make_unique<Impl>()) {
  auto& s = *impl_;
  s.checkpoint = checkpoint;
  try {
    s.info = read_checkpoint_info(checkpoint);
    checkpoint_run_config(checkpoint, s.info, s.model_config, s.training);
  } catch (const std::exception& e) {
    throw InspectError(e.what());
  }
  s.device = device_named(device);
  if (s.info.tokenizer_path.empty() || !fs::exists(s.info.tokenizer_path))
    throw InspectError("the tokenizer of checkpoint '" + checkpoint.string() + "' is missing: '" + s.info.tokenizer_path +
                       "' (it lives in the data folder the run was trained with)");
  try {
    s.tokenizer = text::Tokenizer::load(s.info.tokenizer_path);
  } catch (const std::exception& e) {
    throw InspectError(e.what());
  }
  s.seq_len = s.training.seq_len > 0 ? std::min(s.training.seq_len, s.model_config.max_seq_len)
                                     : s.model_config.max_seq_len;
  torch::nn::Module* module = nullptr;
  try {
    if (s.decoder()) {
      s.lm = CausalLm(s.model_config);
      module = s.lm.get();
    } else {
      s.model = EncoderModel(s.model_config);
      module = s.model.get();
    }
    load_checkpoint(checkpoint, *module, nullptr, /*restore_rng=*/false, /*strict=*/true);
  } catch (const std::exception& e) {
    const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
    throw InspectError(c10_error ? c10_error->what_without_backtrace() : e.what());
  }
  module->to(s.device);
  module->eval();
}

Inspector::~Inspector() = default;

const fs::path& Inspector::checkpoint() const { return impl_->checkpoint; }
int64_t Inspector::step() const { return impl_->info.step; }
bool Inspector::live() const { return impl_->info.live; }
int64_t Inspector::run_id() const { return impl_->info.run_id; }
std::string Inspector::device() const { return impl_->device.is_cuda() ? "cuda" : "cpu"; }
const ModelConfig& Inspector::model_config() const { return impl_->model_config; }
const std::string& Inspector::probe_text() const { return impl_->training.probe_text; }
bool Inspector::is_decoder() const { return impl_->decoder(); }

Prediction Inspector::predict(const std::string& text, int top_k) {
  auto& s = *impl_;
  s.require_encoder("masked-token prediction");
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) throw InspectError("type a sentence first");
  torch::NoGradGuard no_grad;
  const Probe p = s.encode(text);
  Prediction out;
  out.tokens = p.tokens;
  for (size_t i = 0; i < p.tokens.size(); ++i)
    if (p.tokens[i] == s.tokenizer->piece(text::Tokenizer::kMask)) out.masked.push_back(static_cast<int>(i));

  if (s.device.is_cuda()) torch::cuda::synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  auto o = s.model->forward(p.ids, p.types, p.mask);
  torch::Tensor probs;
  if (!out.masked.empty()) {
    auto positions = torch::tensor(std::vector<int64_t>(out.masked.begin(), out.masked.end()), torch::kLong)
                         .unsqueeze(0)
                         .to(s.device);
    probs = torch::softmax(s.model->mlm_logits(o.hidden, positions).to(torch::kFloat), -1)[0];  // [P, V]
  }
  if (s.device.is_cuda()) torch::cuda::synchronize();
  out.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  if (probs.defined()) {
    const int64_t k = std::min<int64_t>(std::max(top_k, 1), probs.size(1));
    auto [values, indices] = probs.topk(k, -1);
    values = values.to(torch::kCPU).contiguous();
    indices = indices.to(torch::kCPU).contiguous();
    auto v = values.accessor<float, 2>();
    auto ix = indices.accessor<int64_t, 2>();
    for (int64_t m = 0; m < values.size(0); ++m) {
      out.top.emplace_back();
      for (int64_t j = 0; j < k; ++j) out.top.back().emplace_back(s.tokenizer->piece(static_cast<int32_t>(ix[m][j])), v[m][j]);
    }
  }
  // Routing of the same forward pass.
  for (const auto& r : capture_probe_routing(s.model, p)) {
    out.moe_layers.push_back(r.layer);
    std::vector<std::vector<int>> per_token(r.tokens.size());
    for (size_t t = 0; t < r.tokens.size(); ++t)
      for (int e = 0; e < r.num_experts; ++e)
        if (r.assigned[t * r.num_experts + e]) per_token[t].push_back(e);
    out.experts.push_back(std::move(per_token));
  }
  return out;
}

Generation Inspector::generate(const std::string& prompt, const GenerateSettings& settings) {
  auto& s = *impl_;
  s.require_decoder("text generation");
  if (prompt.find_first_not_of(" \t\r\n") == std::string::npos) throw InspectError("type a prompt first");
  if (settings.max_new_tokens < 1 || settings.max_new_tokens > 4096)
    throw InspectError("new tokens: " + std::to_string(settings.max_new_tokens) + " is outside 1 .. 4096");
  if (!(settings.temperature >= 0 && settings.temperature <= 100))
    throw InspectError("temperature: " + std::to_string(settings.temperature) + " is outside 0 .. 100");
  if (settings.top_k < 0 || settings.top_k > s.model_config.vocab_size)
    throw InspectError("top-k: " + std::to_string(settings.top_k) + " is outside 0 .. the vocabulary (" +
                       std::to_string(s.model_config.vocab_size) + ")");
  const auto ids = s.tokenizer->encode(prompt);
  if (ids.empty()) throw InspectError("the prompt has no tokens");
  std::vector<int64_t> prompt_ids(ids.begin(), ids.end());
  GenerateOptions o;
  o.max_new_tokens = settings.max_new_tokens;
  o.temperature = settings.temperature;
  o.top_k = settings.top_k;
  o.seed = settings.seed;
  o.stop_token = text::Tokenizer::kSep;  // documents end with [SEP] in the LM stream (as smx generate)
  torch::NoGradGuard no_grad;
  if (s.device.is_cuda()) torch::cuda::synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int64_t> produced;
  try {
    produced = smx::generate(s.lm, prompt_ids, o);
  } catch (const c10::Error& e) {
    throw InspectError(e.what_without_backtrace());
  }
  if (s.device.is_cuda()) torch::cuda::synchronize();
  Generation g;
  g.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::vector<int32_t> all(ids.begin(), ids.end()), fresh;
  for (auto id : produced) {
    if (id == text::Tokenizer::kSep) {
      g.stopped = true;
      break;
    }
    fresh.push_back(static_cast<int32_t>(id));
    all.push_back(static_cast<int32_t>(id));
  }
  for (auto id : ids) g.prompt_tokens.push_back(s.tokenizer->piece(id));
  for (auto id : fresh) g.new_tokens.push_back(s.tokenizer->piece(id));
  g.continuation = s.tokenizer->decode(fresh);
  // The routing of prompt + continuation in one pass (the newest seq_len tokens when longer).
  const Probe p = s.encode_lm(all);
  const size_t skipped = all.size() - p.tokens.size();
  for (const auto& r : capture_probe_routing(s.lm, p)) {
    g.moe_layers.push_back(r.layer);
    std::vector<std::vector<int>> per_token(skipped);  // tokens before the window: not routed in this pass
    for (size_t t = 0; t < r.tokens.size(); ++t) {
      per_token.emplace_back();
      for (int e = 0; e < r.num_experts; ++e)
        if (r.assigned[t * r.num_experts + e]) per_token.back().push_back(e);
    }
    g.experts.push_back(std::move(per_token));
  }
  return g;
}

LeakCheck Inspector::leak_check(int windows, const fs::path& data_dir) {
  auto& s = *impl_;
  s.require_decoder("the leak check");
  if (windows < 1 || windows > 256) throw InspectError("windows: " + std::to_string(windows) + " is outside 1 .. 256");
  const LmWindows& w = s.lm_windows(windows, data_dir);
  const int64_t rows = std::min<int64_t>(windows, w.rows);
  auto ids = torch::from_blob(const_cast<int64_t*>(w.ids.data()), {rows, w.seq_len}, torch::kLong).clone();  // [B, S]
  LmBatch batch{ids.to(s.device), {}};
  torch::NoGradGuard no_grad;
  LeakCheck r;
  try {
    // Both in eval mode: the routers' eval capacity, no dropout.
    const LmLosses L = s.lm->lm_losses(batch);
    const double tf_sum = L.nll_sum.item<double>();
    r.targets = L.targets.item<int64_t>();
    const auto [tbt_sum, tbt_count] = token_by_token_nll(s.lm, batch);
    const double n = double(std::max<int64_t>(r.targets, 1));
    r.teacher_forced_perplexity = std::exp(tf_sum / n);
    r.token_by_token_perplexity = std::exp(tbt_sum / double(std::max<int64_t>(tbt_count, 1)));
  } catch (const c10::Error& e) {
    throw InspectError(e.what_without_backtrace());
  }
  r.windows = rows;
  r.smoe_routing = to_string(s.model_config.smoe_routing);
  return r;
}

std::vector<telemetry::ProbeRouting> Inspector::route(const std::string& text, double capacity_factor,
                                                      const std::string& router) {
  auto& s = *impl_;
  const std::string& t = text.find_first_not_of(" \t\r\n") == std::string::npos ? s.training.probe_text : text;
  if (s.decoder()) {
    // The LM's feature-MoE layers read the text as the LM does: plain tokens, no [CLS].
    const auto ids = s.tokenizer->encode(t);
    if (ids.empty()) throw InspectError("the text has no tokens");
    return s.with_routing(capacity_factor, router, [&] { return capture_probe_routing(s.lm, s.encode_lm(ids)); });
  }
  return s.with_routing(capacity_factor, router, [&] { return capture_probe_routing(s.model, s.encode(t)); });
}

std::vector<telemetry::MoeLayerStats> Inspector::route_batch(double capacity_factor, int sentences) {
  auto& s = *impl_;
  if (s.decoder()) {
    // Held-out windows of the run's corpus (as its evaluation reads them), at most 8 of them.
    const LmWindows& w = s.lm_windows(std::clamp(sentences, 1, 8), {});
    return s.with_routing(capacity_factor, "", [&] {
      torch::NoGradGuard no_grad;
      auto ids = torch::from_blob(const_cast<int64_t*>(w.ids.data()), {w.rows, w.seq_len}, torch::kLong).clone().to(s.device);
      s.lm->forward(ids);
      auto stats = capture_moe_stats(s.lm->moe_layers());
      add_routing_details(s.lm->moe_layers(), ids, torch::ones_like(ids), [&](int32_t id) { return s.tokenizer->piece(id); }, stats);
      return stats;
    });
  }
  if (s.held_out.empty()) {
    text::Corpus corpus;
    try {
      corpus = text::load_corpus(s.training.corpus.empty() ? "wordnet" : s.training.corpus);
    } catch (const std::exception& e) {
      throw InspectError(std::string("cannot read the run's corpus for a held-out batch: ") + e.what());
    }
    // Evenly spaced sentences: the same sample every time, spread over the corpus.
    const size_t n = corpus.sentences.size();
    for (int i = 0; i < sentences && n > 0; ++i) s.held_out.push_back(corpus.sentences[(size_t(i) * 7919 + 13) % n]);
    if (s.held_out.empty()) throw InspectError("the run's corpus has no sentences");
  }
  return s.with_routing(capacity_factor, "", [&] {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> ids, masks;
    for (const auto& sentence : s.held_out) {
      Probe p = s.encode(sentence);
      ids.push_back(p.ids);
      masks.push_back(p.mask);
    }
    auto batch_ids = torch::cat(ids), batch_mask = torch::cat(masks);
    s.model->forward(batch_ids, torch::zeros_like(batch_ids), batch_mask);
    auto stats = capture_moe_stats(s.model);
    add_routing_details(s.model->moe_layers(), batch_ids, batch_mask, [&](int32_t id) { return s.tokenizer->piece(id); }, stats);
    return stats;
  });
}

std::vector<SpeedRow> speed_bench(const std::vector<std::string>& presets, int batch, int seq_len,
                                  const std::string& device, const std::function<void(const std::string&)>& log) {
  if (batch < 1 || seq_len < 2) throw InspectError("batch must be at least 1 and the sequence at least 2 tokens");
  BenchOptions options;
  options.device = device_named(device).str();
  options.batch_size = batch;
  options.seq_len = seq_len;
  std::vector<SpeedRow> rows;
  for (const auto& name : presets) {
    ModelConfig m;
    try {
      m = preset(name);
    } catch (const std::exception& e) {
      throw InspectError(e.what());
    }
    if (seq_len > m.max_seq_len)
      throw InspectError(name + " takes at most " + std::to_string(m.max_seq_len) + " tokens per sequence");
    if (log) log("benchmarking " + name + " on " + options.device);
    const BenchResult r = run_bench(m, options, log);
    rows.push_back({name, r.train_ms_per_example(), r.infer_ms_per_example(), r.forward_flops_per_example / 1e9});
  }
  return rows;
}

fs::path latest_checkpoint(const fs::path& run_dir) {
  try {
    return newest_checkpoint(run_dir);
  } catch (const std::exception&) {
    return {};
  }
}

}  // namespace smx::inspect
