// The trainer. One State per run() holds the data, model and optimizer; the
// loop below is shared by pre-training and fine-tuning.
#include "model/train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <regex>

#include <torch/torch.h>

#include "model/config/cost.h"
#include "model/core/compat.h"
#include "model/data/metrics.h"
#include "model/data/tasks.h"
#include "model/nn/encoder.h"
#include "model/store/run_store.h"
#include "model/text/corpus.h"
#include "model/text/pretraining_data.h"
#include "model/text/tokenizer.h"
#include "model/train/batches.h"
#include "model/train/checkpoint.h"
#include "model/train/stability.h"
#include "model/train/telemetry.h"

namespace smx {
namespace fs = std::filesystem;

double StepMetrics::get(const std::string& name, double fallback) const {
  for (const auto& [k, v] : values)
    if (k == name) return v;
  return fallback;
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

torch::Device pick_device(const std::string& d) {
  if (d == "cuda") {
    if (!torch::cuda::is_available()) throw ConfigError("training field 'device': cuda requested but no CUDA device is available");
    return torch::kCUDA;
  }
  if (d == "auto" && torch::cuda::is_available()) return torch::kCUDA;
  return torch::kCPU;
}

// A file-name-safe key naming a corpus's default tokenizer.
std::string corpus_key(const std::string& corpus) {
  if (corpus.empty() || corpus == "wordnet") return "wordnet";
  uint64_t h = 1469598103934665603ULL;
  const std::string abs = fs::absolute(corpus).lexically_normal().string();
  for (unsigned char c : abs) h = (h ^ c) * 1099511628211ULL;
  std::string stem = fs::path(corpus).filename().string();
  for (auto& c : stem)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '-';
  char buf[24];
  std::snprintf(buf, sizeof buf, "-%08llx", static_cast<unsigned long long>(h & 0xffffffffULL));
  return stem.substr(0, 40) + buf;
}

double resident_megabytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return double(resident) * double(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

std::string step_file(const char* prefix, int64_t step, const char* ext) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%08lld.%s", prefix, static_cast<long long>(step), ext);
  return buf;
}

// Linear warm-up to the peak, then linear decay to zero at the last step.
double learning_rate_at(const TrainConfig& t, int64_t step) {
  const int64_t warmup = t.effective_warmup();
  if (warmup > 0 && step < warmup) return t.learning_rate * double(step + 1) / double(warmup);
  const int64_t decay = std::max<int64_t>(1, t.steps - warmup);
  return t.learning_rate * std::max(0.0, double(t.steps - step) / double(decay));
}

}  // namespace

// ---------------------------------------------------------------------------

fs::path newest_checkpoint(const fs::path& run_dir, std::string* skipped) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir / "checkpoints", ec))
    if (e.path().extension() == ".ckpt") files.push_back(e.path());
  std::sort(files.rbegin(), files.rend());  // zero-padded step numbers: newest first
  for (const auto& f : files) {
    try {
      read_checkpoint_info(f);
      return f;
    } catch (const CheckpointError& e) {
      if (skipped) *skipped += std::string(e.what()) + "\n";
    }
  }
  return {};
}

struct Trainer::State {
  Trainer& owner;
  TrainerOptions& opt;
  ModelConfig model_config;
  TrainConfig cfg;
  fs::path data_dir, run_dir;
  std::unique_ptr<store::RunStore> store;
  int64_t run_id = 0;
  torch::Device device{torch::kCPU};
  std::optional<text::Tokenizer> tokenizer;
  fs::path tokenizer_path;

  // pre-training data
  std::unique_ptr<text::TokenizedCorpus> corpus;
  std::unique_ptr<text::PretrainingData> pretraining;
  // fine-tuning data
  data::TaskData task;
  std::vector<EncodedExample> train_examples, dev_examples;
  double majority = -1;

  EncoderModel model{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::vector<torch::Tensor> parameters;
  Probe probe;
  int64_t seq_len = 0;
  int64_t start_step = 0;
  double wall_offset = 0;  // training seconds before this session (resumed runs)
  Clock::time_point started;
  RunOutcome outcome;

  State(Trainer& t) : owner(t), opt(t.options_) {}
  bool pretraining_run() const { return cfg.is_pretraining(); }
  double wall() const { return wall_offset + seconds_since(started); }
  void stage(const std::string& s, double f) {
    if (owner.observer_) owner.observer_->on_stage(s, f);
  }
  void event(int64_t step, const std::string& kind, const std::string& message, double value = 0) {
    store->log_event(store::EventRecord{run_id, step, wall(), kind, message, value});
    if (owner.observer_) owner.observer_->on_event(RunEvent{step, kind, message, value});
  }

  // --- set-up --------------------------------------------------------------
  void resolve_configs() {
    data_dir = opt.data_dir.empty() ? store::default_data_dir() : opt.data_dir;
    const fs::path store_path = opt.store_path.empty() ? data_dir / "runs.sqlite" : opt.store_path;
    store = std::make_unique<store::RunStore>(store_path);
    model_config = opt.model;
    cfg = opt.training;
    if (opt.resume_run) {
      const auto rec = store->find_run(*opt.resume_run);
      if (!rec) throw ConfigError("there is no run " + std::to_string(*opt.resume_run) + " in " + store_path.string());
      const int64_t steps = cfg.steps;
      run_config_from_json_text(rec->config_json, model_config, cfg);
      cfg.steps = std::max(cfg.steps, steps);  // a resume may extend the run, never shorten it
      run_id = rec->id;
      run_dir = rec->directory;
    }
    cfg.validate();
    model_config.validate();
    device = pick_device(cfg.device);
    if (cfg.threads > 0) torch::set_num_threads(cfg.threads);
  }

  void load_tokenizer(const std::function<std::vector<std::string>()>& sentences) {
    tokenizer_path = cfg.tokenizer.empty()
                         ? data_dir / "tokenizers" / (corpus_key(cfg.corpus) + "-" + std::to_string(model_config.vocab_size) + ".model")
                         : fs::path(cfg.tokenizer);
    if (fs::exists(tokenizer_path)) {
      stage("loading tokenizer", -1);
      tokenizer = text::Tokenizer::load(tokenizer_path);
    } else if (!cfg.tokenizer.empty()) {
      throw text::TokenizerError("tokenizer " + tokenizer_path.string() + " does not exist");
    } else {
      text::TokenizerTrainOptions t;
      t.model_path = tokenizer_path;
      t.vocab_size = static_cast<int>(model_config.vocab_size);
      tokenizer = text::Tokenizer::train(sentences(), t, [&](const std::string& s, double f) { stage("tokenizer: " + s, f); });
    }
    cfg.tokenizer = fs::absolute(tokenizer_path).string();
    if (tokenizer->vocab_size() != model_config.vocab_size) model_config.vocab_size = tokenizer->vocab_size();
  }

  void fix_seq_len() {
    seq_len = cfg.seq_len > 0 ? std::min(cfg.seq_len, model_config.max_seq_len) : model_config.max_seq_len;
  }

  void setup_pretraining() {
    fix_seq_len();
    stage("reading corpus", -1);
    std::optional<text::Corpus> raw = text::load_corpus(cfg.corpus);
    load_tokenizer([&] { return raw->sentences; });
    bool cached = false;
    corpus = std::make_unique<text::TokenizedCorpus>(text::tokenize_corpus(
        *raw, *tokenizer, data_dir / "cache", [&](const std::string& s, double f) { stage(s, f); }, &cached));
    raw.reset();
    text::PretrainingOptions p;
    p.seq_len = static_cast<int>(seq_len);
    p.max_predictions = static_cast<int>(cfg.max_predictions > 0 ? cfg.max_predictions : default_mlm_predictions(seq_len));
    p.seed = cfg.seed;
    pretraining = std::make_unique<text::PretrainingData>(*corpus, tokenizer->vocab_size(), tokenizer->num_special(), p);
  }

  std::vector<EncodedExample> encode(const std::vector<data::TaskExample>& examples) {
    std::vector<EncodedExample> out;
    out.reserve(examples.size());
    for (const auto& ex : examples) {
      const size_t budget = static_cast<size_t>(seq_len) - (ex.text_b.empty() ? 2 : 3);  // [CLS] a [SEP] (b [SEP])
      auto a = tokenizer->encode(ex.text_a);
      auto b = ex.text_b.empty() ? std::vector<int32_t>{} : tokenizer->encode(ex.text_b);
      while (a.size() + b.size() > budget) (a.size() >= b.size() ? a : b).pop_back();  // longest first
      EncodedExample e;
      e.ids.push_back(text::Tokenizer::kCls);
      e.ids.insert(e.ids.end(), a.begin(), a.end());
      e.ids.push_back(text::Tokenizer::kSep);
      e.segments.assign(e.ids.size(), 0);
      if (!ex.text_b.empty()) {
        e.ids.insert(e.ids.end(), b.begin(), b.end());
        e.ids.push_back(text::Tokenizer::kSep);
        e.segments.resize(e.ids.size(), 1);
      }
      e.label = ex.label;
      e.target = static_cast<float>(ex.target);
      out.push_back(std::move(e));
    }
    return out;
  }

  void setup_finetuning(CheckpointInfo* init) {
    stage("loading task", -1);
    const data::TaskInfo info = data::task_info(cfg.task);
    const fs::path dir = info.name == "wordnet-lexname" && cfg.task_dir.empty() ? data::default_wordnet_dir() : fs::path(cfg.task_dir);
    if (dir.empty()) throw ConfigError("training field 'task_dir': give the folder of the " + info.name + " task");
    task = data::load_task(cfg.task, dir);
    cfg.task = task.info.name;
    if (task.train.empty() || task.dev.empty())
      throw ConfigError("task " + task.info.name + " in " + dir.string() + " has no training or no dev examples");
    if (task.info.num_labels > 0) majority = data::majority_baseline(task);
    if (init) {
      ModelConfig parent_model;
      TrainConfig parent_training;
      run_config_from_json_text(init->run_config_json, parent_model, parent_training);
      model_config = parent_model;
      if (cfg.tokenizer.empty()) cfg.tokenizer = init->tokenizer_path;
      if (cfg.corpus.empty() || cfg.corpus == "wordnet") cfg.corpus = parent_training.corpus;
    }
    fix_seq_len();  // the model (and its max_seq_len) may come from the checkpoint
    model_config.num_classes = task.info.num_labels > 0 ? task.info.num_labels : 1;
    if (cfg.expert_dropout >= 0) model_config.expert_dropout = cfg.expert_dropout;
    load_tokenizer([&] {
      std::vector<std::string> s;
      for (const auto& e : task.train) {
        s.push_back(e.text_a);
        if (!e.text_b.empty()) s.push_back(e.text_b);
      }
      return s;
    });
    stage("tokenizing task", -1);
    train_examples = encode(task.train);
    dev_examples = encode(task.dev);
  }

  void build_model(const CheckpointInfo* init) {
    stage("building model", -1);
    torch::manual_seed(cfg.seed);
    model = EncoderModel(model_config);
    if (init && !opt.init_checkpoint.empty())
      load_checkpoint(opt.init_checkpoint, *model, nullptr, /*restore_rng=*/false, /*strict=*/false);
    model->to(device);
    // AdamW without weight decay on biases and LayerNorm scales, as BERT.
    std::vector<torch::Tensor> decay, no_decay;
    for (const auto& p : model->named_parameters()) {
      const std::string& n = p.key();
      auto ends_with = [&](const std::string& suffix) {
        return n.size() >= suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0;
      };
      const bool is_bias = ends_with("bias") || ends_with("b_in") || ends_with("b_out");
      (is_bias || p.value().dim() <= 1 ? no_decay : decay).push_back(p.value());
      parameters.push_back(p.value());
    }
    std::vector<torch::optim::OptimizerParamGroup> groups;
    auto options = [&](double wd) {
      return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(cfg.learning_rate)
                                                              .betas({cfg.adam_beta1, cfg.adam_beta2})
                                                              .eps(cfg.adam_epsilon)
                                                              .weight_decay(wd));
    };
    groups.emplace_back(decay, options(cfg.weight_decay));
    groups.emplace_back(no_decay, options(0.0));
    optimizer = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(cfg.learning_rate));
  }

  void make_probe() {
    auto ids = tokenizer->encode(cfg.probe_text);
    if (static_cast<int64_t>(ids.size()) > seq_len - 2) ids.resize(seq_len - 2);
    ids.insert(ids.begin(), text::Tokenizer::kCls);
    ids.push_back(text::Tokenizer::kSep);
    probe.ids = torch::zeros({1, seq_len}, torch::kLong);
    probe.mask = torch::zeros({1, seq_len}, torch::kLong);
    for (size_t i = 0; i < ids.size(); ++i) {
      probe.ids[0][i] = ids[i];
      probe.mask[0][i] = 1;
      probe.tokens.push_back(tokenizer->piece(ids[i]));
    }
    probe.types = torch::zeros({1, seq_len}, torch::kLong);
    probe.ids = probe.ids.to(device);
    probe.mask = probe.mask.to(device);
    probe.types = probe.types.to(device);
  }

  void setup() {
    resolve_configs();
    std::optional<CheckpointInfo> init;
    if (!opt.init_checkpoint.empty() && !opt.resume_run) init = read_checkpoint_info(opt.init_checkpoint);
    if (pretraining_run()) setup_pretraining();
    else setup_finetuning(init ? &*init : nullptr);
    model_config.validate();
    build_model(init ? &*init : nullptr);
    make_probe();

    if (opt.resume_run) {
      std::string skipped;
      const fs::path ckpt = newest_checkpoint(run_dir, &skipped);
      if (ckpt.empty())
        throw CheckpointError("run " + std::to_string(run_id) + " has no loadable checkpoint in " + (run_dir / "checkpoints").string() +
                              (skipped.empty() ? "" : ":\n" + skipped));
      const auto info = load_checkpoint(ckpt, *model, optimizer.get(), /*restore_rng=*/true, /*strict=*/true, device);
      start_step = info.step;
      wall_offset = info.wall_seconds;
      store->set_config(run_id, run_config_to_json_text(model_config, cfg));
      started = Clock::now();
      if (!skipped.empty()) event(start_step, "checkpoint-skipped", skipped);
      event(start_step, "resumed", "resumed from " + ckpt.filename().string());
    } else {
      store::NewRun r;
      r.name = !opt.run_name.empty() ? opt.run_name
               : pretraining_run()    ? "pretrain " + model_config.name
                                      : "finetune " + cfg.task + " " + model_config.name;
      r.kind = pretraining_run() ? "pretrain" : "finetune";
      r.config_json = run_config_to_json_text(model_config, cfg);
      r.device = device.str();
      r.parent_id = opt.parent_run;
      run_id = store->create_run(r);
      run_dir = data_dir / "runs" / std::to_string(run_id);
      store->set_directory(run_id, run_dir.string());
      started = Clock::now();
    }
    fs::create_directories(run_dir / "checkpoints");
    fs::create_directories(run_dir / "snapshots");
    // Partial files of a process killed while writing: never loadable, only litter.
    for (const char* sub : {"checkpoints", "snapshots"})
      for (const auto& e : fs::directory_iterator(run_dir / sub))
        if (e.path().filename().string().find(".tmp-") != std::string::npos) fs::remove(e.path());
    owner.run_id_ = run_id;
    outcome.run_id = run_id;
    outcome.majority_baseline = majority;
  }

  // --- steps ----------------------------------------------------------------
  struct StepResult {
    torch::Tensor total;
    std::vector<std::pair<std::string, torch::Tensor>> scalars;
    int64_t tokens = 0;
  };

  StepResult forward_pretrain(const PretrainBatch& batch) {
    std::optional<compat::CudaAutocastBf16> autocast;
    if (device.is_cuda() && cfg.bf16) autocast.emplace();
    auto L = model->pretrain_losses(batch);
    return {L.total,
            {{"loss/mlm", L.mlm}, {"loss/nsp", L.nsp}, {"loss/load_balancing", L.load_balancing},
             {"loss/z", L.z_loss}, {"accuracy/mlm", L.mlm_accuracy}, {"accuracy/nsp", L.nsp_accuracy}},
            0};
  }

  torch::Tensor task_logits(const TaskBatch& b, EncoderModelImpl::Output* out_keep = nullptr) {
    std::optional<compat::CudaAutocastBf16> autocast;
    if (device.is_cuda() && cfg.bf16) autocast.emplace();
    auto out = model->forward(b.ids, b.types, b.mask);
    auto logits = model->classify(out.pooled);
    if (out_keep) *out_keep = out;
    return logits.to(torch::kFloat);
  }

  StepResult forward_task(const TaskBatch& b) {
    EncoderModelImpl::Output out;
    auto logits = task_logits(b, &out);
    compat::AutocastOff off;
    torch::Tensor loss, acc;
    if (task.info.num_labels > 0) {
      loss = torch::nn::functional::cross_entropy(logits, b.labels);
      acc = logits.detach().argmax(-1).eq(b.labels).to(torch::kFloat).mean();
    } else {
      loss = torch::mse_loss(logits.squeeze(-1), b.targets);
    }
    auto zero = torch::zeros({}, logits.options());
    auto lb = out.load_balancing_loss.defined() ? out.load_balancing_loss : zero;
    auto z = out.z_loss.defined() ? out.z_loss : zero;
    auto total = loss + model_config.router.load_balancing_weight * lb + model_config.router.z_loss_weight * z;
    StepResult r{total, {{"loss/task", loss}, {"loss/load_balancing", lb}, {"loss/z", z}}, 0};
    if (acc.defined()) r.scalars.emplace_back("accuracy/train", acc);
    return r;
  }

  // --- evaluation -------------------------------------------------------------
  StepMetrics evaluate(int64_t step, bool full) {
    torch::NoGradGuard no_grad;
    model->eval();
    StepMetrics m;
    m.step = step;
    if (pretraining_run()) {
      double mlm = 0, mlm_acc = 0, nsp_acc = 0;
      for (int64_t i = 0; i < cfg.eval_batches; ++i) {
        auto b = make_pretrain_batch(*pretraining, text::Split::Heldout, i, cfg.batch_size).to(device);
        auto r = forward_pretrain(b);
        mlm += r.scalars[0].second.item<double>();
        mlm_acc += r.scalars[4].second.item<double>();
        nsp_acc += r.scalars[5].second.item<double>();
      }
      const double n = double(cfg.eval_batches);
      m.values = {{"eval/loss_mlm", mlm / n}, {"eval/accuracy_mlm", mlm_acc / n}, {"eval/accuracy_nsp", nsp_acc / n}};
    } else {
      // Periodic evaluations use a fixed random sample of the dev split (the
      // files are often sorted by label); the final one uses all of it.
      const size_t n = full ? dev_examples.size()
                            : std::min(dev_examples.size(), static_cast<size_t>(cfg.eval_batches * cfg.batch_size));
      const std::vector<size_t> order = full ? std::vector<size_t>() : shuffled_rows(dev_examples.size(), static_cast<int64_t>(n), 12345, 0);
      std::vector<int> pred, gold;
      std::vector<double> pred_r, gold_r;
      double loss = 0;
      for (size_t begin = 0; begin < n; begin += cfg.batch_size) {
        std::vector<size_t> rows;
        for (size_t i = begin; i < std::min(n, begin + cfg.batch_size); ++i) rows.push_back(full ? i : order[i]);
        auto b = make_task_batch(dev_examples, rows, seq_len).to(device);
        auto logits = task_logits(b).to(torch::kCPU);
        if (task.info.num_labels > 0) {
          loss += torch::nn::functional::cross_entropy(logits, b.labels.to(torch::kCPU), torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)).item<double>();
          auto p = logits.argmax(-1);
          for (size_t i = 0; i < rows.size(); ++i) {
            pred.push_back(static_cast<int>(p[i].item<int64_t>()));
            gold.push_back(dev_examples[rows[i]].label);
          }
        } else {
          for (size_t i = 0; i < rows.size(); ++i) {
            pred_r.push_back(logits[i][0].item<double>());
            gold_r.push_back(dev_examples[rows[i]].target);
          }
        }
      }
      const auto values = task.info.num_labels > 0 ? data::evaluate_classification(task.info, pred, gold)
                                                   : data::evaluate_regression(task.info, pred_r, gold_r);
      for (const auto& v : values) m.values.emplace_back("eval/" + data::to_string(v.kind), v.value);
      if (task.info.num_labels > 0) m.values.emplace_back("eval/loss", loss / double(std::max<size_t>(n, 1)));
      m.values.emplace_back("eval/examples", double(n));
    }
    model->train();
    m.wall_seconds = wall();
    return m;
  }

  std::string headline_metric() const {
    return pretraining_run() ? "eval/accuracy_mlm" : "eval/" + data::to_string(task.info.metrics.front());
  }

  void record_eval(const StepMetrics& m) {
    store->log_metrics(run_id, m.step, m.wall_seconds, m.values);
    if (owner.observer_) owner.observer_->on_eval(m);
    outcome.last_eval = m;
    const std::string key = headline_metric();
    if (outcome.best_eval.values.empty() || m.get(key) > outcome.best_eval.get(key)) outcome.best_eval = m;
  }

  // --- checkpoints and snapshots ----------------------------------------------
  void checkpoint(int64_t step) {
    CheckpointInfo info;
    info.run_config_json = run_config_to_json_text(model_config, cfg);
    info.step = step;
    info.examples_seen = static_cast<uint64_t>(step * cfg.batch_size * cfg.accumulation);
    info.run_id = run_id;
    info.wall_seconds = wall();
    info.tokenizer_path = cfg.tokenizer;
    const fs::path file = run_dir / "checkpoints" / step_file("step", step, "ckpt");
    save_checkpoint(file, info, *model, optimizer.get());
    outcome.last_checkpoint = file;
    // Keep the newest keep_checkpoints files.
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(run_dir / "checkpoints"))
      if (e.path().extension() == ".ckpt") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (size_t i = 0; i + cfg.keep_checkpoints < files.size(); ++i) fs::remove(files[i]);
    event(step, "checkpoint", file.string());
  }

  void snapshot(int64_t step, std::vector<telemetry::MoeLayerStats> moe) {
    telemetry::Snapshot s;
    s.step = step;
    s.wall_seconds = wall();
    s.moe = std::move(moe);
    s.probe = capture_probe_routing(model, probe, &s.mixing);
    auto mixing = capture_mixing(model);
    s.mixing.insert(s.mixing.end(), mixing.begin(), mixing.end());
    std::sort(s.mixing.begin(), s.mixing.end(), [](const auto& a, const auto& b) { return a.layer < b.layer; });
    const fs::path file = run_dir / "snapshots" / step_file("step", step, "snap");
    telemetry::save_snapshot(s, file);
    store->add_snapshot(run_id, step, file.string());
    if (owner.observer_) owner.observer_->on_snapshot(s);
  }

  // --- the loop -----------------------------------------------------------------
  void loop() {
    model->train();
    store->set_status(run_id, "running");
    StabilityMonitor monitor(cfg.spike_factor, cfg.spike_window);
    const uint64_t micro = static_cast<uint64_t>(cfg.accumulation);
    const uint64_t first_batch = static_cast<uint64_t>(start_step) * micro;
    std::unique_ptr<Prefetcher<PretrainBatch>> pretrain_batches;
    std::unique_ptr<Prefetcher<TaskBatch>> task_batches;
    if (pretraining_run())
      pretrain_batches = std::make_unique<Prefetcher<PretrainBatch>>(
          [this](uint64_t i) { return make_pretrain_batch(*pretraining, text::Split::Train, i, cfg.batch_size); },
          first_batch, 1, 4);
    else
      task_batches = std::make_unique<Prefetcher<TaskBatch>>(
          [this](uint64_t i) {
            return make_task_batch(train_examples, shuffled_rows(train_examples.size(), cfg.batch_size, cfg.seed, i), seq_len);
          },
          first_batch, 1, 4);

    outcome.status = "finished";
    int64_t step = start_step;
    double examples = 0, tokens = 0, train_time = 0;
    if (step == 0 && cfg.snapshot_every > 0) snapshot(0, {});
    for (; step < cfg.steps; ++step) {
      if (owner.paused_ && !owner.stop_) {
        store->set_status(run_id, "paused");
        event(step, "paused", "paused at step " + std::to_string(step));
        const auto pause_began = Clock::now();
        owner.wait_while_paused();
        wall_offset -= seconds_since(pause_began);  // wall time counts training, not pauses
        if (!owner.stop_) {
          store->set_status(run_id, "running");
          event(step, "continued", "continued at step " + std::to_string(step));
        }
      }
      if (owner.stop_) {
        outcome.status = "stopped";
        break;
      }
      const auto t0 = Clock::now();
      const double lr = learning_rate_at(cfg, step);
      for (auto& g : optimizer->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
      optimizer->zero_grad();
      torch::Tensor total_sum;
      std::vector<std::pair<std::string, torch::Tensor>> scalar_sums;
      int64_t step_tokens = 0;
      for (uint64_t m = 0; m < micro; ++m) {
        const uint64_t index = static_cast<uint64_t>(step) * micro + m;
        StepResult r;
        if (pretraining_run()) {
          auto batch = pretrain_batches->get(index);
          step_tokens += batch.mask.sum().item<int64_t>();
          r = forward_pretrain(batch.to(device));
        } else {
          auto batch = task_batches->get(index);
          step_tokens += batch.mask.sum().item<int64_t>();
          r = forward_task(batch.to(device));
        }
        if (step == cfg.inject_nan_at_step) r.total = r.total * std::numeric_limits<float>::quiet_NaN();
        (r.total / double(micro)).backward();
        total_sum = total_sum.defined() ? total_sum + r.total.detach() : r.total.detach();
        if (scalar_sums.empty()) {
          for (auto& [k, v] : r.scalars) scalar_sums.emplace_back(k, v.detach());
        } else {
          for (size_t i = 0; i < r.scalars.size(); ++i) scalar_sums[i].second = scalar_sums[i].second + r.scalars[i].second.detach();
        }
      }
      const double grad_norm = cfg.clip_norm > 0
                                   ? torch::nn::utils::clip_grad_norm_(parameters, cfg.clip_norm)
                                   : torch::nn::utils::clip_grad_norm_(parameters, std::numeric_limits<double>::infinity());
      const double loss = total_sum.item<double>() / double(micro);

      const StabilityVerdict verdict = monitor.check(loss, grad_norm);
      bool apply = true;
      if (verdict.kind != StabilityVerdict::Healthy) {
        const bool nonfinite = verdict.kind == StabilityVerdict::NonFinite;
        const StabilityPolicy policy = nonfinite ? cfg.on_nonfinite : cfg.on_spike;
        event(step, nonfinite ? "nonfinite" : "loss-spike",
              verdict.describe(loss, grad_norm) + " (policy: " + to_string(policy) + ")", loss);
        if (policy == StabilityPolicy::Stop) {
          outcome.status = "diverged";
          break;
        }
        apply = policy == StabilityPolicy::Continue;
      }
      if (apply) {
        optimizer->step();
        monitor.accept(loss);
      }
      const double step_seconds = seconds_since(t0);
      train_time += step_seconds;
      examples += double(cfg.batch_size * cfg.accumulation);
      tokens += double(step_tokens);
      const int64_t done = step + 1;

      if (done % cfg.log_every == 0 || done == cfg.steps) {
        StepMetrics m;
        m.step = done;
        m.wall_seconds = wall();
        m.values.emplace_back("loss/total", loss);
        for (auto& [k, v] : scalar_sums) m.values.emplace_back(k, v.item<double>() / double(micro));
        m.values.emplace_back("optim/lr", lr);
        m.values.emplace_back("optim/grad_norm", grad_norm);
        m.values.emplace_back("speed/step_ms", step_seconds * 1000.0);
        m.values.emplace_back("speed/examples_per_s", double(cfg.batch_size * cfg.accumulation) / step_seconds);
        m.values.emplace_back("speed/tokens_per_s", double(step_tokens) / step_seconds);
        m.values.emplace_back("memory/resident_mb", resident_megabytes());
        if (!apply) m.values.emplace_back("stability/skipped", 1.0);
        auto moe = capture_moe_stats(model);
        for (auto& kv : moe_scalars(moe)) m.values.push_back(kv);
        store->log_metrics(run_id, done, m.wall_seconds, m.values);
        store->set_last_step(run_id, done);
        if (owner.observer_) owner.observer_->on_step(m);
        if (cfg.snapshot_every > 0 && done % cfg.snapshot_every == 0) snapshot(done, std::move(moe));
      } else if (cfg.snapshot_every > 0 && done % cfg.snapshot_every == 0) {
        snapshot(done, capture_moe_stats(model));
      }
      if (cfg.eval_every > 0 && done % cfg.eval_every == 0 && done != cfg.steps) record_eval(evaluate(done, false));
      if (cfg.checkpoint_every > 0 && done % cfg.checkpoint_every == 0 && done != cfg.steps) checkpoint(done);
    }
    outcome.steps_done = step;
    outcome.train_seconds = train_time;
    outcome.examples_per_second = train_time > 0 ? examples / train_time : 0;
    outcome.tokens_per_second = train_time > 0 ? tokens / train_time : 0;
    if (outcome.status != "diverged") {
      // Final evaluation (fine-tuning: the whole dev split) and checkpoint.
      record_eval(evaluate(step, /*full=*/true));
      checkpoint(step);
    }
    store->set_status(run_id, outcome.status);
    event(step, outcome.status, outcome.status == "finished" ? "reached step " + std::to_string(step)
                                                             : outcome.status + " at step " + std::to_string(step));
  }
};

Trainer::Trainer(TrainerOptions options, TrainerObserver* observer) : options_(std::move(options)), observer_(observer) {}
Trainer::~Trainer() = default;

void Trainer::pause() { paused_ = true; }
void Trainer::resume() {
  paused_ = false;
  control_cv_.notify_all();
}
void Trainer::stop() {
  stop_ = true;
  control_cv_.notify_all();
}

void Trainer::wait_while_paused() {
  std::unique_lock lock(control_mutex_);
  control_cv_.wait(lock, [&] { return !paused_ || stop_; });
}

RunOutcome Trainer::run() {
  State s(*this);
  s.setup();
  try {
    s.loop();
  } catch (const std::exception& e) {
    try {
      const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
      s.store->set_status(s.run_id, "failed");
      s.event(s.outcome.steps_done, "failed", c10_error ? c10_error->what_without_backtrace() : e.what());
    } catch (...) {
    }
    throw;
  }
  return s.outcome;
}

StepMetrics evaluate_checkpoint(const fs::path& checkpoint, const fs::path& data_dir, TrainerObserver* observer,
                                const std::string& device) {
  const auto info = read_checkpoint_info(checkpoint);
  TrainerOptions o;
  run_config_from_json_text(info.run_config_json, o.model, o.training);
  o.training.device = device;
  o.data_dir = data_dir;
  Trainer t(o, observer);
  Trainer::State s(t);
  s.data_dir = data_dir.empty() ? store::default_data_dir() : data_dir;
  s.model_config = o.model;
  s.cfg = o.training;
  s.device = pick_device(device);
  if (s.pretraining_run()) s.setup_pretraining();
  else s.setup_finetuning(nullptr);
  s.model = EncoderModel(s.model_config);
  load_checkpoint(checkpoint, *s.model, nullptr, false, true);
  s.model->to(s.device);
  s.started = Clock::now();
  return s.evaluate(info.step, /*full=*/true);
}

}  // namespace smx
