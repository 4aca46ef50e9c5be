// smx tokenizer train | pretrain | finetune | eval
#include <atomic>
#include <cstdlib>
#include <set>
#include <csignal>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "model/cli/commands.h"
#include "model/cli/progress.h"
#include "model/config/train_config.h"
#include "model/dist/launcher.h"
#include "model/store/run_store.h"
#include "model/text/corpus.h"
#include "model/text/tokenizer.h"
#include "model/train/checkpoint.h"
#include "model/train/trainer.h"

namespace smx::cli {
namespace fs = std::filesystem;

namespace {

// Upper ends of the option ranges: beyond any real run, and far from overflow.
constexpr double kMaxSteps = 1e12;

// Ctrl-C asks the run to stop after the current step (it checkpoints and
// records "stopped"); a second Ctrl-C kills the process.
std::atomic<int> g_interrupts{0};
extern "C" void on_interrupt(int) {
  if (g_interrupts.fetch_add(1) >= 1) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
  }
}

class InterruptWatcher {
 public:
  explicit InterruptWatcher(Trainer& t) : trainer_(t) {
    g_interrupts = 0;
    previous_ = std::signal(SIGINT, on_interrupt);
    previous_term_ = std::signal(SIGTERM, on_interrupt);  // the launcher ends ranks with SIGTERM: record, don't vanish
    thread_ = std::thread([this] {
      while (!done_) {
        if (g_interrupts > 0 && !stopped_) {
          fmt::print(stderr, "\nstopping after this step (Ctrl-C again to kill)...\n");
          trainer_.stop();
          stopped_ = true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  ~InterruptWatcher() {
    done_ = true;
    thread_.join();
    std::signal(SIGINT, previous_);
    std::signal(SIGTERM, previous_term_);
  }

 private:
  Trainer& trainer_;
  std::atomic<bool> done_{false};
  bool stopped_ = false;
  std::thread thread_;
  void (*previous_)(int);
  void (*previous_term_)(int);
};

// Training flags shared by pretrain and finetune; only the given ones override.
struct TrainFlags {
  std::string training_config, corpus, tokenizer, device, data_dir, name, on_nonfinite, on_spike;
  int64_t steps = 0, batch = 0, accumulation = 0, seq = 0, warmup = -2, eval_every = -1, eval_batches = 0,
          checkpoint_every = -1, snapshot_every = -1, log_every = 0, inject_nan_at = -1;
  double lr = 0, clip = -1, weight_decay = -1, expert_dropout = -2;
  uint64_t seed = 0;
  int threads = 0;
  bool no_bf16 = false, quiet = false, json = false;
  // distributed runs
  int nproc = 1, rank = 0, world_size = 1, master_port = 29500, expert_parallel = 1;
  std::string master_addr = "127.0.0.1", backend = "auto", inject_rank_fault;
  int64_t inject_allocation_failure = 0;
  double dist_timeout = 600;
  CLI::App* cmd = nullptr;

  void add(CLI::App& c, bool pretraining) {
    cmd = &c;
    c.add_option("--training-config", training_config, "training config JSON (the \"training\" object of a run config)")
        ->check(CLI::ExistingFile);
    if (pretraining) c.add_option("--corpus", corpus, "\"wordnet\" (default) or a UTF-8 text file/folder");
    c.add_option("--tokenizer", tokenizer, "SentencePiece .model (default: trained for the corpus on first use)");
    c.add_option("--steps", steps, "optimizer steps")->check(in_range(1, kMaxSteps));
    c.add_option("--batch", batch, "examples per micro-batch")->check(in_range(1, 65536));
    c.add_option("--accumulation", accumulation, "micro-batches per step")->check(in_range(1, 65536));
    c.add_option("--seq", seq, "sequence length (default: the model's max_seq_len, which is also the largest)")
        ->check(in_range(8, 8192));
    c.add_option("--lr", lr, "peak learning rate")->check(in_range(0, 1, "", /*lo_open=*/true));
    c.add_option("--warmup", warmup, "warm-up steps (default: 10% of steps)")->check(in_range(0, kMaxSteps));
    c.add_option("--weight-decay", weight_decay, "AdamW weight decay")->check(in_range(0, 1));
    c.add_option("--clip", clip, "gradient clipping norm (0: off)")->check(in_range(0, 1e6));
    if (!pretraining)
      c.add_option("--expert-dropout", expert_dropout, "dropout inside experts (default 0.2, as the paper)")
          ->check(in_range(0, 1, "", false, /*hi_open=*/true));
    c.add_option("--seed", seed, "seed of initialisation, data order and dropout")
        ->check(in_range(0, double(std::numeric_limits<uint64_t>::max())));
    c.add_option("--device", device, "auto, cpu, cuda or cuda:N (auto: the first GPU, else the CPU)")->check(device_choice());
    c.add_flag("--no-bf16", no_bf16, "no bf16 autocast on CUDA");
    c.add_option("--threads", threads, "CPU threads for LibTorch")->check(in_range(1, cpu_count(), "the CPUs of this machine"));
    c.add_option("--eval-every", eval_every, "evaluate every N steps (0: only at the end)")->check(in_range(0, kMaxSteps));
    c.add_option("--eval-batches", eval_batches, "batches per periodic evaluation")->check(in_range(1, 1e6));
    c.add_option("--checkpoint-every", checkpoint_every, "checkpoint every N steps (0: only at the end)")
        ->check(in_range(0, kMaxSteps));
    c.add_option("--snapshot-every", snapshot_every, "telemetry snapshot every N steps (0: none)")->check(in_range(0, kMaxSteps));
    c.add_option("--log-every", log_every, "record scalar metrics every N steps")->check(in_range(1, kMaxSteps));
    c.add_option("--on-nonfinite", on_nonfinite, "NaN/Inf loss or gradient: stop, skip or continue")
        ->check(CLI::IsMember({"stop", "skip", "continue"}));
    c.add_option("--on-spike", on_spike, "loss spike: stop, skip or continue")->check(CLI::IsMember({"stop", "skip", "continue"}));
    c.add_option("--inject-nan-at", inject_nan_at, "testing: make this step's loss NaN")->check(in_range(0, kMaxSteps))->group("");  // hidden
    c.add_option("--name", name, "run name in the run store");
    c.add_option("--data-dir", data_dir, "data folder: run store, tokenizers, caches, checkpoints");
    c.add_flag("--quiet,-q", quiet, "no progress bar");
    c.add_flag("--json", json, "print the outcome as JSON on stdout");
    const char* d = "Distributed (c10d; also from RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)";
    c.add_option("--nproc", nproc, "start this many local processes, one rank each (--batch is split over them)")
        ->check(in_range(1, 256))->group(d);
    c.add_option("--rank", rank, "this process's rank, 0 .. world size - 1 (multi-machine runs)")->check(in_range(0, 1 << 20))->group(d);
    c.add_option("--world-size", world_size, "processes in the run, on all machines")->check(in_range(1, 1 << 20))->group(d);
    c.add_option("--master-addr", master_addr, "host of rank 0, where the others rendezvous")->group(d);
    c.add_option("--master-port", master_port, "port of rank 0's rendezvous store (--nproc: a free one by default)")
        ->check(in_range(1, 65535))->group(d);
    c.add_option("--backend", backend, "gloo (CPU), nccl (CUDA builds with NCCL) or auto")
        ->check(CLI::IsMember({"auto", "gloo", "nccl"}))->group(d);
    c.add_option("--expert-parallel", expert_parallel,
                 "spread each MoE layer's experts over groups of this many ranks (divides the ranks and the experts)")
        ->check(in_range(1, 1 << 20))->group(d);
    c.add_option("--dist-timeout", dist_timeout, "seconds a collective waits for a silent rank before the run ends (default 600)")
        ->check(in_range(1, 86400))->group(d);
    c.add_option("--inject-rank-fault", inject_rank_fault, "testing: RANK:STEP:kill|hang")->group("");  // hidden
    c.add_option("--inject-allocation-failure", inject_allocation_failure,
                 "testing: an impossible allocation on the run's device before this step")
        ->check(in_range(1, kMaxSteps))->group("");  // hidden
  }
  bool given(const char* flag) const {
    const auto* o = cmd->get_option_no_throw(flag);  // pretrain has no --expert-dropout
    return o && o->count() > 0;
  }

  /// This process's place in a distributed run: the environment, then the flags given.
  dist::DistOptions dist_options() const {
    dist::DistOptions d = dist::dist_options_from_environment();
    if (given("--rank")) d.rank = rank;
    if (given("--world-size")) d.world_size = world_size;
    if (given("--master-addr")) d.master_addr = master_addr;
    if (given("--master-port")) d.master_port = master_port;
    d.backend = backend;
    d.timeout_seconds = dist_timeout;
    d.expert_parallel = expert_parallel;
    if (given("--world-size") && !given("--rank") && !std::getenv("RANK"))
      throw ConfigError("--world-size " + std::to_string(world_size) + " needs --rank (or RANK) on each process");
    if (given("--nproc") && nproc > 1 && (given("--rank") || given("--world-size") || d.world_size > 1))
      throw ConfigError("--nproc starts all ranks on this machine: leave out --rank/--world-size (and RANK/WORLD_SIZE), "
                        "or start each process yourself with them");
    if (!inject_rank_fault.empty()) {
      const auto a = inject_rank_fault.find(':'), b = inject_rank_fault.rfind(':');
      if (a == std::string::npos || a == b) throw ConfigError("--inject-rank-fault: give RANK:STEP:kill|hang");
      d.fault_rank = std::stoi(inject_rank_fault.substr(0, a));
      d.fault_step = std::stoll(inject_rank_fault.substr(a + 1, b - a - 1));
      d.fault_kind = inject_rank_fault.substr(b + 1);
      if (d.fault_kind != "kill" && d.fault_kind != "hang") throw ConfigError("--inject-rank-fault: kind is kill or hang");
    }
    if (launches()) d.world_size = nproc;  // checked (--expert-parallel against it) as the ranks will see it
    dist::validate(d);
    return d;
  }
  bool launches() const { return given("--nproc") && nproc > 1; }

  /// The training config: the defaults, the --training-config file, the flags given; checked against the model.
  TrainConfig apply(TrainConfig t, const ModelConfig& model) const {
    if (!training_config.empty()) {
      t = training_config_from_file(training_config);
    }
    if (given("--corpus")) t.corpus = corpus;
    if (given("--tokenizer")) t.tokenizer = fs::absolute(tokenizer).string();
    if (given("--steps")) t.steps = steps;
    if (given("--batch")) t.batch_size = batch;
    if (given("--accumulation")) t.accumulation = accumulation;
    if (given("--seq")) t.seq_len = seq;
    if (given("--lr")) t.learning_rate = lr;
    if (given("--warmup")) t.warmup_steps = warmup;
    if (given("--weight-decay")) t.weight_decay = weight_decay;
    if (given("--clip")) t.clip_norm = clip;
    if (given("--expert-dropout")) t.expert_dropout = expert_dropout;
    if (given("--seed")) t.seed = seed;
    if (given("--device")) t.device = device;
    if (no_bf16) t.bf16 = false;
    if (given("--threads")) t.threads = threads;
    if (given("--eval-every")) t.eval_every = eval_every;
    if (given("--eval-batches")) t.eval_batches = eval_batches;
    if (given("--checkpoint-every")) t.checkpoint_every = checkpoint_every;
    if (given("--snapshot-every")) t.snapshot_every = snapshot_every;
    if (given("--log-every")) t.log_every = log_every;
    if (given("--on-nonfinite")) t.on_nonfinite = stability_policy_from_string(on_nonfinite);
    if (given("--on-spike")) t.on_spike = stability_policy_from_string(on_spike);
    if (given("--inject-nan-at")) t.inject_nan_at_step = inject_nan_at;
    t.validate(model);
    return t;
  }
};

// A resumed run keeps its stored config: an option that would be ignored is refused, naming it.
void refuse_options_ignored_by_resume(const CLI::App& cmd) {
  for (const CLI::Option* opt : cmd.get_options()) {
    const std::string name = opt->get_name();
    static const std::set<std::string> allowed{"--resume",      "--steps",       "--data-dir",    "--quiet",
                                               "--json",        "--help",        "--nproc",       "--rank",
                                               "--world-size",  "--master-addr", "--master-port", "--backend",
                                               "--dist-timeout", "--inject-rank-fault", "--expert-parallel"};
    if (opt->count() == 0 || allowed.count(name))
      continue;
    throw ConfigError(name + " cannot be used with --resume: a resumed run keeps the config it was started with "
                             "(only --steps may extend it)");
  }
}

void print_outcome(const RunOutcome& o, bool json) {
  if (json) {
    nlohmann::json j{{"run_id", o.run_id},
                     {"status", o.status},
                     {"steps", o.steps_done},
                     {"train_seconds", o.train_seconds},
                     {"examples_per_second", o.examples_per_second},
                     {"tokens_per_second", o.tokens_per_second},
                     {"checkpoint", o.last_checkpoint.string()}};
    for (const auto& [k, v] : o.last_eval.values) j["final"][k] = v;
    for (const auto& [k, v] : o.best_eval.values) j["best"][k] = v;
    if (o.majority_baseline >= 0) j["majority_baseline"] = o.majority_baseline;
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("run {} {} after {} steps ({}; {:.1f} examples/s, {:.0f} tokens/s)\n", o.run_id, o.status, o.steps_done,
             format_duration(o.train_seconds), o.examples_per_second, o.tokens_per_second);
  auto line = [](const char* what, const StepMetrics& m) {
    if (m.values.empty()) return;
    std::string s;
    for (const auto& [k, v] : m.values)
      if (k != "eval/examples") s += fmt::format(" {} {:.4f}", k.substr(5), v);
    fmt::print("{} (step {}):{}\n", what, m.step, s);
  };
  line("final", o.last_eval);
  line("best ", o.best_eval);
  if (o.majority_baseline >= 0) fmt::print("majority-class baseline: accuracy {:.4f}\n", o.majority_baseline);
  if (!o.last_checkpoint.empty()) fmt::print("checkpoint: {}\n", o.last_checkpoint.string());
}

// This command line without --nproc: what each launched rank runs.
std::vector<std::string> rank_command_line() {
  std::vector<std::string> args;
  const auto& all = command_line();
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i] == "--nproc") {
      ++i;  // and its value
      continue;
    }
    if (all[i].rfind("--nproc=", 0) == 0) continue;
    args.push_back(all[i]);
  }
  return args;
}

int run_trainer(TrainerOptions options, const TrainFlags& flags) {
  options.dist = flags.dist_options();
  options.fail_allocation_at_step = flags.inject_allocation_failure;
  if (flags.launches()) {
    // This process only starts and watches the ranks; rank 0 prints the progress and outcome.
    options.dist.world_size = flags.nproc;
    return dist::launch_local(flags.nproc, rank_command_line(), options.dist, !flags.given("--master-port"));
  }
  const bool follower = options.dist.enabled() && options.dist.rank != 0;
  TerminalProgress progress(options.training.steps, flags.quiet || follower);
  Trainer trainer(std::move(options), follower ? nullptr : &progress);
  RunOutcome outcome;
  {
    InterruptWatcher watcher(trainer);
    outcome = trainer.run();
  }
  if (follower) return 0;
  progress.finish_line();
  print_outcome(outcome, flags.json);
  return outcome.status == "finished" || outcome.status == "stopped" ? 0 : 3;
}

}  // namespace

void add_train_commands(CLI::App& app) {
  // --- tokenizer train ---
  {
    auto* tok = app.add_subcommand("tokenizer", "SentencePiece tokenizers");
    tok->require_subcommand(1);
    auto* cmd = tok->add_subcommand("train", "train a SentencePiece tokenizer on a corpus");
    struct Args {
      std::string corpus = "wordnet", output, type = "unigram";
      int vocab = 8000, threads = 0;
      int64_t max_sentences = 0;
      bool quiet = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--corpus", a->corpus, "\"wordnet\" or a UTF-8 text file/folder")->capture_default_str();
    cmd->add_option("--output,-o", a->output, "the .model file to write")->required();
    cmd->add_option("--vocab", a->vocab, "vocabulary size (at most: a small corpus gives fewer pieces)")
        ->check(in_range(16, 1000000))
        ->capture_default_str();
    cmd->add_option("--type", a->type, "model type")->check(CLI::IsMember({"unigram", "bpe", "word", "char"}))->capture_default_str();
    cmd->add_option("--threads", a->threads, "threads (default: all)")->check(in_range(1, cpu_count(), "the CPUs of this machine"));
    cmd->add_option("--max-sentences", a->max_sentences, "train on a sample of at most this many sentences (default: the trainer's rule)")
        ->check(in_range(1, 1e9));
    cmd->add_flag("--quiet,-q", a->quiet, "no progress");
    cmd->callback([a] {
      TerminalProgress progress(0, a->quiet);
      progress.on_stage("reading corpus", -1);
      const auto corpus = text::load_corpus(a->corpus);
      text::TokenizerTrainOptions o;
      o.model_path = a->output;
      o.vocab_size = a->vocab;
      o.model_type = a->type;
      o.threads = a->threads;
      if (a->max_sentences > 0) o.max_sentences = a->max_sentences;
      const auto t0 = std::chrono::steady_clock::now();
      auto tokenizer = text::Tokenizer::train(corpus.sentences, o, [&](const std::string& s, double f) { progress.on_stage(s, f); });
      progress.finish_line();
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      for (const auto& w : corpus.warnings) fmt::print(stderr, "warning: {}\n", w);
      if (const auto w = text::vocabulary_shortfall(tokenizer, a->vocab, a->corpus); !w.empty())
        fmt::print(stderr, "warning: {}\n", w);
      fmt::print("{}: {} pieces from {} sentences in {} documents ({})\n", tokenizer.model_file().string(),
                 tokenizer.vocab_size(), corpus.sentences.size(), corpus.num_documents(), format_duration(secs));
      const std::string example = corpus.sentences.front();
      std::string pieces;
      for (auto id : tokenizer.encode(example)) pieces += tokenizer.piece(id) + " ";
      fmt::print("example: {}\n      -> {}\n", example, pieces);
    });
  }

  // --- pretrain ---
  {
    auto* cmd = app.add_subcommand("pretrain", "pre-train a model on a corpus (MLM + NSP for encoders, next-token LM for decoder LMs); Ctrl-C stops and checkpoints");
    auto model = std::make_shared<ModelChoice>();
    auto flags = std::make_shared<TrainFlags>();
    auto resume = std::make_shared<int64_t>(0);
    model->add_options(*cmd, "demo");
    flags->add(*cmd, true);
    cmd->add_option("--resume", *resume, "continue pre-training run ID from its newest checkpoint (--steps may extend it)")
        ->check(in_range(1, kMaxId));
    cmd->callback([model, flags, resume, cmd] {
      TrainerOptions o;
      if (*resume > 0) {
        refuse_options_ignored_by_resume(*cmd);
        o.resume_run = *resume;
        o.resume_kind = "pretrain";  // a fine-tuning run is refused, naming `smx finetune --resume`
        o.training.steps = flags->given("--steps") ? flags->steps : 0;
        o.training.steps = std::max<int64_t>(o.training.steps, 1);
      } else {
        o.model = model->resolve();
        o.training = flags->apply(recommended_pretraining(o.model), o.model);
      }
      o.run_name = flags->name;
      o.data_dir = flags->data_dir;
      const int rc = run_trainer(std::move(o), *flags);
      if (rc != 0) throw CLI::RuntimeError(rc);
    });
  }

  // --- finetune ---
  {
    auto* cmd = app.add_subcommand("finetune", "fine-tune on a task (wordnet-lexname offline, or GLUE/SuperGLUE folders)");
    auto model = std::make_shared<ModelChoice>();
    auto flags = std::make_shared<TrainFlags>();
    auto task = std::make_shared<std::string>("wordnet-lexname");
    auto task_dir = std::make_shared<std::string>();
    auto from_run = std::make_shared<int64_t>(0);
    auto checkpoint = std::make_shared<std::string>();
    auto resume = std::make_shared<int64_t>(0);
    cmd->add_option("--task,-t", *task, "wordnet-lexname, sst2, cola, mrpc, stsb, qqp, mnli, qnli, rte, wic, boolq, cb")
        ->capture_default_str();
    cmd->add_option("--task-dir", *task_dir, "the task's folder (GLUE/SuperGLUE layout)");
    auto* f = cmd->add_option("--from", *from_run, "start from this pre-training run's newest checkpoint")->check(in_range(1, kMaxId));
    auto* c = cmd->add_option("--checkpoint", *checkpoint, "start from this checkpoint file")->check(CLI::ExistingFile);
    f->excludes(c);
    model->add_options(*cmd);
    flags->add(*cmd, false);
    cmd->add_option("--resume", *resume, "continue fine-tuning run ID from its newest checkpoint")->check(in_range(1, kMaxId));
    cmd->callback([=] {
      TrainerOptions o;
      o.run_name = flags->name;
      o.data_dir = flags->data_dir;
      if (*resume > 0) {
        refuse_options_ignored_by_resume(*cmd);
        o.resume_run = *resume;
        o.resume_kind = "finetune";  // a pre-training run is refused, naming `smx pretrain --resume`
        o.training.steps = flags->given("--steps") ? flags->steps : 1;
        const int rc = run_trainer(std::move(o), *flags);
        if (rc != 0) throw CLI::RuntimeError(rc);
        return;
      }
      if (const auto d = flags->dist_options(); d.enabled() && d.rank != 0) {
        // A rank other than 0 takes the model, weights and config from rank 0: its machine need not hold the parent run.
        const int rc = run_trainer(std::move(o), *flags);
        if (rc != 0) throw CLI::RuntimeError(rc);
        return;
      }
      // The model comes from the checkpoint when there is one: read it first for the defaults.
      // A --preset or --config beside it would be ignored, so it is refused, saying why.
      const bool model_given = !model->preset.empty() || !model->config_file.empty();
      if (model_given && (*from_run > 0 || !checkpoint->empty()))
        throw ConfigError(std::string(model->config_file.empty() ? "--preset " + model->preset : "--config " + model->config_file) +
                          " cannot be used with " + (*from_run > 0 ? "--from" : "--checkpoint") +
                          ": the model (its shape and weights) comes from the checkpoint; leave out " +
                          (model->config_file.empty() ? "--preset" : "--config") +
                          ", or give it without --from/--checkpoint to fine-tune a new model from scratch");
      fs::path init;
      if (*from_run > 0) {
        const fs::path data_dir = flags->data_dir.empty() ? store::default_data_dir() : fs::path(flags->data_dir);
        store::RunStore store(data_dir / "runs.sqlite");
        const auto rec = store.find_run(*from_run);
        if (!rec) throw ConfigError("there is no run " + std::to_string(*from_run) + " in " + store.path().string());
        std::string skipped;
        init = newest_checkpoint(store.run_folder(*from_run), &skipped);
        if (init.empty())
          throw ConfigError("run " + std::to_string(*from_run) + " has no loadable checkpoint" + (skipped.empty() ? "" : ":\n" + skipped));
        o.parent_run = *from_run;
      } else if (!checkpoint->empty()) {
        // A checkpoint file is usable anywhere; its run becomes the parent only
        // when the file lies in that run's folder in this data folder.
        init = fs::absolute(*checkpoint);
        const int64_t written_by = read_checkpoint_info(init).run_id;
        const fs::path data_dir = flags->data_dir.empty() ? store::default_data_dir() : fs::path(flags->data_dir);
        store::RunStore store(data_dir / "runs.sqlite");
        if (const auto holder = store.run_holding(init); holder && *holder == written_by) {
          o.parent_run = written_by;
        } else if (written_by > 0) {
          fmt::print(stderr, "note: {} was written by run {}, but not in that run's folder of this data folder ({}): "
                     "the new run records no parent run\n", init.string(), written_by,
                     store.run_folder_path(written_by).string());
        }
      } else if (!model->preset.empty() || !model->config_file.empty()) {
        o.model = model->resolve();  // from scratch: a baseline without pre-training
      } else {
        throw ConfigError("give --from RUN, --checkpoint FILE, or --preset/--config to fine-tune from scratch");
      }
      if (!init.empty()) {
        TrainConfig parent;
        checkpoint_run_config(init, read_checkpoint_info(init), o.model, parent);
        o.init_checkpoint = init;
      }
      o.training = flags->apply(recommended_finetuning(o.model, *task), o.model);
      o.training.task = *task;
      o.training.task_dir = task_dir->empty() ? "" : fs::absolute(*task_dir).string();
      const int rc = run_trainer(std::move(o), *flags);
      if (rc != 0) throw CLI::RuntimeError(rc);
    });
  }
  // --- eval ---
  {
    auto* cmd = app.add_subcommand("eval", "evaluate a checkpoint on its held-out data (pre-training) or dev split (task)");
    auto checkpoint = std::make_shared<std::string>();
    auto run = std::make_shared<int64_t>(0);
    auto device = std::make_shared<std::string>("auto");
    auto data_dir = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* c = cmd->add_option("--checkpoint", *checkpoint, "checkpoint file")->check(CLI::ExistingFile);
    auto* r = cmd->add_option("--run", *run, "the newest checkpoint of this run")->check(in_range(1, kMaxId));
    c->excludes(r);
    cmd->add_option("--device", *device, "auto, cpu, cuda or cuda:N")->check(device_choice());
    cmd->add_option("--data-dir", *data_dir, "data folder");
    cmd->add_flag("--json", *json, "JSON output");
    cmd->callback([=] {
      fs::path file = *checkpoint;
      const fs::path dir = data_dir->empty() ? store::default_data_dir() : fs::path(*data_dir);
      if (*run > 0) {
        store::RunStore store(dir / "runs.sqlite");
        const auto rec = store.find_run(*run);
        if (!rec) throw ConfigError("there is no run " + std::to_string(*run));
        file = newest_checkpoint(store.run_folder(*run));
        if (file.empty()) throw ConfigError("run " + std::to_string(*run) + " has no loadable checkpoint");
      }
      if (file.empty()) throw ConfigError("give --checkpoint FILE or --run ID");
      TerminalProgress progress(0, *json);
      const auto m = evaluate_checkpoint(file, dir, &progress, *device);
      progress.finish_line();
      if (*json) {
        nlohmann::json j{{"checkpoint", file.string()}, {"step", m.step}};
        for (const auto& [k, v] : m.values) j[k] = v;
        fmt::print("{}\n", j.dump(2));
      } else {
        fmt::print("{} (step {}):\n", file.string(), m.step);
        for (const auto& [k, v] : m.values) fmt::print("  {:<22} {:.4f}\n", k, v);
      }
    });
  }
}

}  // namespace smx::cli
