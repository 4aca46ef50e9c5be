// The trainer's set-up: configs (or the run being resumed), corpus or task,
// tokenizer (trained on first use), the model and optimizer, the run's entry
// in the store.
#include <iterator>

#include <nlohmann/json.hpp>

#include "model/train/trainer_state.h"

#include "model/nn/hash_routing.h"

namespace smx {

torch::Device pick_device(const std::string& d, int local_rank) {
  try {
    torch::Device device(inspect::resolve_device(d));
    // Ranks on one machine spread over its GPUs (rank r on GPU r mod GPUs) unless the run names one.
    if (device.is_cuda() && (d == "auto" || d == "cuda") && local_rank > 0)
      device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank % int(torch::cuda::device_count())));
    compat::set_current_device(device);  // CUDA's generators and caching allocator follow the current device
    return device;
  } catch (const ConfigError& e) {
    std::string what = e.what();  // "device 'cuda:1' is not on this machine: ..."
    if (what.rfind("device ", 0) == 0) what.erase(0, 7);
    throw ConfigError("training field 'device': " + what);
  }
}

namespace {


// A file-name-safe key naming a corpus's default tokenizer.
std::string corpus_key(const std::string& corpus) {
  if (corpus.empty() || corpus == "wordnet") return "wordnet";
  const uint64_t h = fnv1a(kFnvBasis, fs::absolute(corpus).lexically_normal().string());
  std::string stem = fs::path(corpus).filename().string();
  for (auto& c : stem)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '-';
  char buf[24];
  std::snprintf(buf, sizeof buf, "-%08llx", static_cast<unsigned long long>(h & 0xffffffffULL));
  return stem.substr(0, 40) + buf;
}

}  // namespace

void Trainer::State::resolve_configs() {
  data_dir = opt.data_dir.empty() ? store::default_data_dir() : opt.data_dir;
  const fs::path store_path = data_dir / "runs.sqlite";
  store = std::make_unique<store::RunStore>(store_path);
  model_config = opt.model;
  cfg = opt.training;
  if (opt.resume_run) {
    const auto rec = store->find_run(*opt.resume_run);
    if (!rec) throw ConfigError("there is no run " + std::to_string(*opt.resume_run) + " in " + store_path.string());
    if (!opt.resume_kind.empty() && rec->kind != opt.resume_kind) {
      const bool pre = rec->kind == "pretrain";
      throw ConfigError("run " + std::to_string(rec->id) + " (" + rec->name + ") is a " + (pre ? "pre-training" : "fine-tuning") +
                        " run, not a " + (pre ? "fine-tuning" : "pre-training") + " run: resume it with `smx " +
                        (pre ? "pretrain" : "finetune") + " --resume " + std::to_string(rec->id) + "`" +
                        (pre ? ", or fine-tune from it with `smx finetune --from " + std::to_string(rec->id) + "`" : ""));
    }
    const int64_t steps = cfg.steps;
    run_config_from_json_text(rec->config_json, model_config, cfg);
    cfg.steps = std::max(cfg.steps, steps);  // a resume may extend the run, never shorten it
    run_id = rec->id;
    run_dir = store->run_folder(run_id);  // data_dir/runs/ID, checked: never a folder the row names elsewhere
  }
  cfg.validate();
  model_config.validate();
  device = pick_device(cfg.device, opt.dist.local_world_size > 0 ? opt.dist.rank % opt.dist.local_world_size : 0);
  const int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (cfg.threads > cpus) {
    // A new run is refused; a run resumed on a smaller machine goes on with what there is.
    if (!opt.resume_run)
      throw ConfigError("training field 'threads' = " + std::to_string(cfg.threads) + ": this machine has " +
                        std::to_string(cpus) + " CPUs; give at most " + std::to_string(cpus) + " (or 0: LibTorch's choice)");
    warn("the run asked for " + std::to_string(cfg.threads) + " threads; this machine has " + std::to_string(cpus) +
         " CPUs, so it uses " + std::to_string(cpus));
    cfg.threads = cpus;
  }
  if (cfg.threads > 0) torch::set_num_threads(cfg.threads);
  else if (opt.dist.local_world_size > 1) torch::set_num_threads(std::max(1, cpus / opt.dist.local_world_size));  // ranks share the CPUs
  if (opt.dist.world_size > 1 && cfg.batch_size % opt.dist.world_size != 0)
    throw ConfigError("batch_size " + std::to_string(cfg.batch_size) + " cannot be split evenly over " +
                      std::to_string(opt.dist.world_size) + " ranks: give a multiple of " + std::to_string(opt.dist.world_size) +
                      " (it is the global batch; each rank trains on batch_size / ranks rows)");
  // A new run from scratch: its model is known now. Fine-tuning takes the model from the
  // checkpoint (later); a resumed run is checked in fix_seq_len.
  if (opt.init_checkpoint.empty() && !opt.resume_run) {
    cfg.validate(model_config);
    check_memory();  // before a tokenizer is trained or a corpus read
  }
}

void Trainer::State::check_memory() const {
  if (opt.resume_run) return;  // it ran here before: an estimate must not stop it now
  CostShape shape;
  shape.batch_size = cfg.batch_size;
  shape.seq_len = cfg.seq_len > 0 ? std::min(cfg.seq_len, model_config.max_seq_len) : model_config.max_seq_len;
  shape.mlm_predictions = cfg.max_predictions > 0 ? cfg.max_predictions : -1;
  const MemoryEstimate need = training_memory(model_config, shape);
  // On CUDA the weights and activations live on the GPU: only the host copy made while loading counts here.
  const double have = physical_memory_bytes();
  const double need_here = device.is_cuda() ? need.weights : need.total();
  if (have > 0 && need_here > 0.8 * have)
    throw ConfigError("model '" + model_config.name + "' " + describe(need) + " to train with batch_size " + std::to_string(cfg.batch_size) + " x " +
                      std::to_string(shape.seq_len) + " tokens, but this machine has " + format_bytes(have) +
                      " of memory: choose a smaller model (d_model, d_ff, num_layers, num_experts, vocab_size) or a "
                      "smaller batch_size / seq_len");
}

// The tokenizer a run config names, as this data folder holds it: a run made
// in a data folder that was later copied or moved names the tokenizer in the
// original's tokenizers/ folder. This data folder's copy is used instead when
// the original is gone or holds the same bytes, so the copy needs nothing of
// the original; a different file of the same name is never substituted.
static fs::path tokenizer_here(const fs::path& named, const fs::path& data_dir) {
  std::error_code ec;
  const fs::path folder = named.parent_path();
  if (folder.filename() != "tokenizers" || fs::equivalent(folder.parent_path(), data_dir, ec)) return named;
  const fs::path here = data_dir / "tokenizers" / named.filename();
  if (!fs::is_regular_file(here, ec)) return named;
  if (!fs::exists(named, ec)) return here;
  const auto bytes = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  return bytes(named) == bytes(here) ? here : named;
}

void Trainer::State::load_tokenizer(const std::function<std::vector<std::string>()>& sentences) {
  tokenizer_path = cfg.tokenizer.empty()
                       ? data_dir / "tokenizers" / (corpus_key(cfg.corpus) + "-" + std::to_string(model_config.vocab_size) + ".model")
                       : tokenizer_here(fs::path(cfg.tokenizer), data_dir);
  if (fs::exists(tokenizer_path)) {
    stage("loading tokenizer", -1);
    tokenizer = text::Tokenizer::load(tokenizer_path);
  } else if (!cfg.tokenizer.empty()) {
    throw text::TokenizerError("tokenizer " + tokenizer_path.string() + " does not exist");
  } else {
    text::TokenizerTrainOptions t;
    t.model_path = tokenizer_path;
    t.vocab_size = static_cast<int>(model_config.vocab_size);
    // A sample of 10 sentences per piece (at least 40k) gives the same kind of
    // vocabulary in a fraction of the time: the demo's 4000 pieces train in
    // ~7 s instead of ~25 s on WordNet's 166k sentences, so the studio's Demo
    // starts training within seconds.
    t.max_sentences = std::max<int64_t>(40000, 10 * model_config.vocab_size);
    tokenizer = text::Tokenizer::train(sentences(), t, [&](const std::string& s, double f) { stage("tokenizer: " + s, f); });
    if (const auto w = text::vocabulary_shortfall(*tokenizer, t.vocab_size, cfg.corpus); !w.empty()) warn(w);
  }
  cfg.tokenizer = fs::absolute(tokenizer_path).string();
  if (tokenizer->vocab_size() != model_config.vocab_size) {
    // Weights trained with another vocabulary cannot be used with this tokenizer:
    // the embeddings and the MLM head have one row per piece.
    if (!opt.init_checkpoint.empty() || opt.resume_run)
      throw ConfigError("tokenizer " + tokenizer_path.string() + " has " + std::to_string(tokenizer->vocab_size()) +
                        " pieces, but the model of the checkpoint was trained with a vocabulary of " +
                        std::to_string(model_config.vocab_size) +
                        (init_tokenizer.empty() ? "" : " (tokenizer " + init_tokenizer + ")") +
                        ": give the tokenizer it was trained with (or none: the checkpoint's is used)");
    model_config.vocab_size = tokenizer->vocab_size();  // a new model: sized to the tokenizer
  }
}

void Trainer::State::fix_seq_len() {
  if (opt.resume_run && cfg.seq_len > model_config.max_seq_len) {
    // Runs made before this check was added were capped silently: they resume as they ran.
    warn("the run's seq_len " + std::to_string(cfg.seq_len) + " is above the model's max_seq_len; it runs with " +
         std::to_string(model_config.max_seq_len) + " as before");
    cfg.seq_len = model_config.max_seq_len;
  }
  cfg.validate(model_config);  // a seq_len above the model's max_seq_len is refused, not capped
  seq_len = cfg.seq_len > 0 ? cfg.seq_len : model_config.max_seq_len;
}

void Trainer::State::setup_pretraining() {
  fix_seq_len();
  stage("reading corpus", -1);
  std::optional<text::Corpus> raw = text::load_corpus(cfg.corpus);
  for (const auto& w : raw->warnings) warn(w);
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

void Trainer::State::setup_lm() {
  fix_seq_len();
  stage("reading corpus", -1);
  std::optional<text::Corpus> raw = text::load_corpus(cfg.corpus);
  load_tokenizer([&] { return raw->sentences; });
  corpus = std::make_unique<text::TokenizedCorpus>(text::tokenize_corpus(
      *raw, *tokenizer, data_dir / "cache", [&](const std::string& s, double f) { stage(s, f); }));
  raw.reset();
  text::LmDataOptions o;
  o.seq_len = static_cast<int>(seq_len);
  o.separator = text::Tokenizer::kSep;
  o.seed = cfg.seed;
  try {
    lm_data = std::make_unique<text::LmData>(*corpus, o);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(std::string("corpus '") + cfg.corpus + "': " + e.what());
  }
}

void Trainer::State::setup_finetuning(CheckpointInfo* init) {
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
    checkpoint_run_config(opt.init_checkpoint, *init, parent_model, parent_training);
    model_config = parent_model;
    init_tokenizer = init->tokenizer_path;
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
  train_examples = encode_task_examples(task.train, *tokenizer, seq_len);
  dev_examples = encode_task_examples(task.dev, *tokenizer, seq_len);
}

void Trainer::State::build_model(const CheckpointInfo* init) {
  check_memory();
  stage("building model", -1);
  torch::manual_seed(cfg.seed);
  if (lm_run()) {
    lm = CausalLm(model_config);
  } else {
    model = EncoderModel(model_config);
  }
  balance_hash_tables();  // a checkpoint loaded below brings its own table
  // Fine-tuning replaces the task head (another number of classes); every other
  // tensor must load, or the error names it and both shapes.
  if (!lm_run() && init && !opt.init_checkpoint.empty())
    load_checkpoint(opt.init_checkpoint, *model, nullptr, /*restore_rng=*/false, /*strict=*/false);
  module().to(device);
  // AdamW without weight decay on biases and LayerNorm scales, as BERT.
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : module().named_parameters()) {
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
  // On CUDA one fused (or multi-tensor) update per group instead of a loop over parameters.
  optimizer = std::make_unique<AdamW>(groups, torch::optim::AdamWOptions(cfg.learning_rate));
}

void Trainer::State::balance_hash_tables() {
  if (model_config.router.kind != RouterKind::Hash || model_config.router.hash_table != HashTable::Balanced) return;
  std::vector<int64_t> frequency(size_t(model_config.vocab_size), 0);
  auto count = [&](const std::vector<int32_t>& ids) {
    const auto f = id_frequencies(ids, model_config.vocab_size);
    for (size_t i = 0; i < f.size(); ++i) frequency[i] += f[i];
  };
  if (corpus) count(corpus->tokens);
  for (const auto& e : train_examples) count(e.ids);
  stage("balancing the hash table", -1);
  const auto table = balanced_hash_table(frequency, model_config.num_experts);
  for (auto& [layer, moe] : lm_run() ? lm->moe_layers() : model->moe_layers())
    moe->router->set_hash_table(table);  // the same table at every depth
}

void Trainer::State::make_probe() {
  auto ids = tokenizer->encode(cfg.probe_text);
  if (lm_run()) {
    // Decoder LMs read the text as it is (no [CLS]/[SEP], no padding); a prefix
    // of it if longer than the context.
    if (static_cast<int64_t>(ids.size()) > seq_len) ids.resize(seq_len);
    if (ids.empty()) return;
    probe.ids = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).unsqueeze(0).to(device);
    for (auto id : ids) probe.tokens.push_back(tokenizer->piece(id));
    return;
  }
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

void Trainer::State::setup() {
  if (!opt.dist.enabled()) {
    setup_local();
    return;
  }
  group = dist::ProcessGroup::connect(opt.dist);
  if (group->rank() != 0) {
    setup_follower();
  } else {
    try {
      setup_local();
    } catch (const std::exception& e) {
      // The other ranks wait for the run's config: tell them why there is none.
      const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
      try {
        group->publish("smx/run", std::string("error\n") + (c10_error ? c10_error->what_without_backtrace() : e.what()));
      } catch (...) {
      }
      throw;
    }
    nlohmann::json j{{"config", run_config_to_json_text(model_config, cfg)},
                     {"run_id", run_id},
                     {"resumed_step", resumed_from.empty() ? int64_t(0) : start_step},
                     {"tokenizer", tokenizer_path.filename().string()}};
    std::ifstream in(tokenizer_path, std::ios::binary);
    group->publish("smx/tokenizer", std::string(std::istreambuf_iterator<char>(in), {}));
    group->publish("smx/run", j.dump());
  }
  share_weights();
}

void Trainer::State::setup_follower() {
  const std::string published = group->fetch("smx/run");
  if (published.rfind("error\n", 0) == 0)
    throw dist::DistError("rank " + std::to_string(group->rank()) + ": rank 0 could not set up the run: " + published.substr(6));
  const auto j = nlohmann::json::parse(published);
  data_dir = opt.data_dir.empty() ? store::default_data_dir() : opt.data_dir;
  run_config_from_json_text(j.at("config").get<std::string>(), model_config, cfg);
  run_id = j.at("run_id").get<int64_t>();
  device = pick_device(cfg.device, opt.dist.local_world_size > 0 ? opt.dist.rank % opt.dist.local_world_size : 0);
  const int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (cfg.threads > 0) torch::set_num_threads(std::min(cfg.threads, cpus));
  else if (opt.dist.local_world_size > 1) torch::set_num_threads(std::max(1, cpus / opt.dist.local_world_size));
  // Rank 0's tokenizer, in this data folder (another machine may have none, or an older one).
  const std::string bytes = group->fetch("smx/tokenizer");
  fs::path here = data_dir / "tokenizers" / fs::path(j.at("tokenizer").get<std::string>()).filename();
  std::string existing;
  if (std::ifstream in(here, std::ios::binary); in) existing.assign(std::istreambuf_iterator<char>(in), {});
  if (!existing.empty() && existing != bytes) {
    // This machine trained a tokenizer of that name itself: keep it, and store rank 0's beside it.
    here.replace_filename(here.stem().string() + "-rank0-" + std::to_string(fnv1a(kFnvBasis, bytes) & 0xffffffffULL) +
                          here.extension().string());
    existing.clear();
    if (std::ifstream in(here, std::ios::binary); in) existing.assign(std::istreambuf_iterator<char>(in), {});
  }
  if (existing != bytes) {
    fs::create_directories(here.parent_path());
    const fs::path tmp = here.string() + ".tmp-rank" + std::to_string(group->rank());
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out.write(bytes.data(), std::streamsize(bytes.size()));
      if (!out) throw std::runtime_error("rank " + std::to_string(group->rank()) + ": cannot write " + tmp.string());
    }
    fs::rename(tmp, here);
  }
  cfg.tokenizer = here.string();
  // The run exists (rank 0 made or reopened it): this rank only trains.
  opt.resume_run.reset();
  opt.init_checkpoint.clear();
  opt.parent_run.reset();
  if (lm_run()) setup_lm();
  else if (pretraining_run()) setup_pretraining();
  else setup_finetuning(nullptr);
  build_model(nullptr);
  start_step = j.at("resumed_step").get<int64_t>();
  started = Clock::now();
  owner.run_id_ = run_id;
  outcome.run_id = run_id;
}

void Trainer::State::share_weights() {
  if (start_step > 0) {
    // Resumed: rank 0's checkpoint (weights, optimizer state, step), loaded by every rank as rank 0 loaded it.
    std::string bytes;
    if (writer()) {
      std::ifstream in(resumed_from, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    bytes = group->broadcast_bytes(bytes, 0, "sharing the checkpoint to resume from");
    if (!writer()) {
      const fs::path tmp = fs::temp_directory_path() /
                           ("smx-resume-" + std::to_string(run_id) + "-rank" + std::to_string(group->rank()) + "-" +
                            std::to_string(::getpid()) + ".ckpt");
      {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), std::streamsize(bytes.size()));
      }
      struct Remove {
        fs::path p;
        ~Remove() {
          std::error_code ec;
          fs::remove(p, ec);
        }
      } remove{tmp};
      const auto info = load_checkpoint(tmp, module(), optimizer.get(), /*restore_rng=*/true, /*strict=*/true, device);
      start_step = info.step;
      wall_offset = info.wall_seconds;
    }
  } else {
    dist::broadcast_module(module(), *group);  // the same initial (or fine-tuning) weights everywhere
  }
  // Dropout and jitter draw different numbers on each rank, as each trains on different rows.
  if (!writer()) torch::manual_seed(cfg.seed + 1000003ULL * uint64_t(group->rank()) + uint64_t(start_step));
  if (opt.dist.expert_parallel > 1) setup_expert_parallel();
  for (const auto& p : parameters) {
    const bool expert = std::any_of(expert_tensors.begin(), expert_tensors.end(),
                                    [&](const torch::Tensor& e) { return e.is_same(p); });
    if (!expert) dense_parameters.push_back(p);
  }
  gradients = std::make_unique<dist::GradientAverager>(dense_parameters, *group);
}

void Trainer::State::setup_expert_parallel() {
  const int K = opt.dist.expert_parallel;
  auto layers = lm_run() ? lm->moe_layers() : model->moe_layers();
  if (layers.empty())
    throw ConfigError("--expert-parallel " + std::to_string(K) + ": model '" + model_config.name + "' has no MoE layers");
  for (const auto& [index, moe] : layers)
    if (moe->num_experts() % K != 0)
      throw ConfigError("--expert-parallel " + std::to_string(K) + ": the " + std::to_string(moe->num_experts()) +
                        " experts of layer " + std::to_string(index) + " do not split evenly over " + std::to_string(K) + " ranks");
  experts = std::make_unique<dist::ExpertParallel>(*group, K);
  for (auto& [index, moe] : layers) {
    moe->exchange = experts->exchange();
    for (const auto& t : {moe->w_in, moe->b_in, moe->w_out, moe->b_out}) expert_tensors.push_back(t);
  }
  experts->shard(expert_tensors, optimizer.get());
  // A shard's gradient is the sum over its replicas' tokens and the group's (the all_to_all brought
  // them); divided by all the ranks, it is the whole batch's gradient, as for the dense weights.
  expert_gradients = std::make_unique<dist::GradientAverager>(expert_tensors, experts->replicas(), double(world()));
}

void Trainer::State::setup_local() {
  resolve_configs();
  std::optional<CheckpointInfo> init;
  if (!opt.init_checkpoint.empty() && !opt.resume_run) init = read_checkpoint_info(opt.init_checkpoint);
  if (lm_run() && !pretraining_run())
    throw ConfigError("model '" + model_config.name + "' is a decoder LM: it trains with task 'pretrain' (the LM "
                      "objective); fine-tuning tasks are for encoders");
  if (lm_run()) setup_lm();
  else if (pretraining_run()) setup_pretraining();
  else setup_finetuning(init ? &*init : nullptr);
  model_config.validate();
  if (const int K = opt.dist.expert_parallel; K > 1) {
    // Refused before the run is recorded: the model must have experts to spread, in equal shares.
    if (model_config.moe_layer_count() == 0)
      throw ConfigError("--expert-parallel " + std::to_string(K) + ": model '" + model_config.name + "' has no MoE layers");
    if (model_config.num_experts % K != 0)
      throw ConfigError("--expert-parallel " + std::to_string(K) + ": the model's " + std::to_string(model_config.num_experts) +
                        " experts do not split evenly over " + std::to_string(K) + " ranks");
  }
  build_model(init ? &*init : nullptr);
  make_probe();

  if (opt.resume_run) {
    std::string skipped;
    const fs::path ckpt = newest_checkpoint(run_dir, &skipped);
    if (ckpt.empty())
      throw CheckpointError("run " + std::to_string(run_id) + " has no loadable checkpoint in " + (run_dir / "checkpoints").string() +
                            (skipped.empty() ? "" : ":\n" + skipped));
    const auto info = load_checkpoint(ckpt, module(), optimizer.get(), /*restore_rng=*/true, /*strict=*/true, device);
    resumed_from = ckpt;
    start_step = info.step;
    wall_offset = info.wall_seconds;
    store->set_config(run_id, run_config_to_json_text(model_config, cfg));
    started = Clock::now();
    if (!skipped.empty()) event(start_step, "checkpoint-skipped", skipped);
    for (const auto& w : warnings) event(start_step, "warning", w);
    event(start_step, "resumed", "resumed from " + ckpt.filename().string());
  } else {
    store::NewRun r;
    r.name = !opt.run_name.empty() ? opt.run_name
             : lm_run()             ? "lm " + model_config.name
             : pretraining_run()    ? "pretrain " + model_config.name
                                    : "finetune " + cfg.task + " " + model_config.name;
    r.kind = lm_run() ? "lm" : pretraining_run() ? "pretrain" : "finetune";
    r.config_json = run_config_to_json_text(model_config, cfg);
    r.device = device.str();  // "cpu", "cuda:0"; a distributed run adds its ranks: "cpu x2 ranks"
    if (opt.dist.world_size > 1) r.device += " x" + std::to_string(opt.dist.world_size) + " ranks";
    r.parent_id = opt.parent_run;
    run_id = store->create_run(r);
    run_dir = store->run_folder(run_id);
    started = Clock::now();
    for (const auto& w : warnings) event(0, "warning", w);
  }
  fs::create_directories(run_dir / "checkpoints");
  fs::create_directories(run_dir / "snapshots");
  // Partial files of a process killed while writing: never loadable, only litter.
  for (const char* sub : {"checkpoints", "snapshots"})
    for (const auto& e : fs::directory_iterator(run_dir / sub))
      if (e.path().filename().string().find(".tmp-") != std::string::npos) fs::remove(e.path());
  std::error_code ec;
  fs::remove_all(run_dir / "live", ec);  // live copies of a process that was killed: stale weights
  owner.run_id_ = run_id;
  outcome.run_id = run_id;
  outcome.majority_baseline = majority;
}

}  // namespace smx
