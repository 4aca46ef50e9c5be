// The trainer's private state, shared by trainer_setup.cpp (data, tokenizer,
// model, the run's store entry) and trainer.cpp (steps, evaluation,
// checkpoints, snapshots, the loop). Not part of the engine's interface.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <thread>

#include <torch/torch.h>

#include "model/config/cost.h"
#include "model/core/compat.h"
#include "model/core/hash.h"
#include "model/data/metrics.h"
#include "model/data/tasks.h"
#include "model/dist/expert_parallel.h"
#include "model/dist/process_group.h"
#include "model/inspect/runtime.h"
#include "model/nn/decoder.h"
#include "model/nn/encoder.h"
#include "model/optim/adamw.h"
#include "model/store/run_store.h"
#include "model/text/corpus.h"
#include "model/text/lm_data.h"
#include "model/text/pretraining_data.h"
#include "model/text/tokenizer.h"
#include "model/train/batches.h"
#include "model/train/trainer.h"
#include "model/train/checkpoint.h"
#include "model/train/stability.h"
#include "model/train/telemetry.h"

namespace smx {
namespace fs = std::filesystem;

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// "auto", "cpu", "cuda" or "cuda:N" (refused with a clear message when absent); makes a GPU the current device.
/// A distributed rank on a machine of several GPUs takes GPU local_rank mod GPUs for auto and cuda.
torch::Device pick_device(const std::string& d, int local_rank = 0);

/// A distributed rank's share of a batch's counts, times the number of ranks:
/// a loss averaged over this rank's masked predictions (or scored targets, or
/// real tokens) is weighted by it, so that the mean over ranks is the loss of
/// the whole batch, exactly as one process computes it. 1 on a single process.
struct BatchShares {
  double predictions = 1;  ///< MLM predictions, LM targets
  double real_tokens = 1;  ///< non-padding tokens (router z-loss)
  bool ones() const { return predictions == 1 && real_tokens == 1; }
};

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
  std::string init_tokenizer;  ///< fine-tuning from a checkpoint: the tokenizer its model was trained with

  // pre-training data
  std::unique_ptr<text::TokenizedCorpus> corpus;
  std::unique_ptr<text::PretrainingData> pretraining;
  // language-model data (decoder LMs)
  std::unique_ptr<text::LmData> lm_data;
  // fine-tuning data
  data::TaskData task;
  std::vector<EncodedExample> train_examples, dev_examples;
  double majority = -1;

  EncoderModel model{nullptr};  // encoders
  CausalLm lm{nullptr};          // decoder LMs (sMLP family): the same loop, the LM objective
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::vector<torch::Tensor> parameters;
  Probe probe;
  // distributed runs (opt.dist.world_size > 1); null on a single process
  std::unique_ptr<dist::ProcessGroup> group;
  std::unique_ptr<dist::GradientAverager> gradients;
  fs::path resumed_from;  ///< the checkpoint a resumed run loaded (rank 0 shares its bytes)
  // expert parallelism (opt.dist.expert_parallel > 1)
  std::unique_ptr<dist::ExpertParallel> experts;
  std::unique_ptr<dist::GradientAverager> expert_gradients;
  std::vector<torch::Tensor> expert_tensors;  ///< every MoE layer's w_in, b_in, w_out, b_out
  std::vector<torch::Tensor> dense_parameters;  ///< the others: the same on every rank
  int64_t seq_len = 0;
  int64_t start_step = 0;
  double wall_offset = 0;  // training seconds before this session (resumed runs)
  Clock::time_point started;
  RunOutcome outcome;

  State(Trainer& t) : owner(t), opt(t.options_) {}
  bool pretraining_run() const { return cfg.is_pretraining(); }
  bool lm_run() const { return model_config.is_decoder(); }
  /// This process writes the run store, telemetry, checkpoints: a single process, or rank 0.
  bool writer() const { return !group || group->rank() == 0; }
  int world() const { return group ? group->size() : 1; }
  /// The model being trained, whichever family.
  torch::nn::Module& module() { return lm_run() ? static_cast<torch::nn::Module&>(*lm) : *model; }
  double wall() const { return wall_offset + seconds_since(started); }
  void stage(const std::string& s, double f) {
    if (owner.observer_) owner.observer_->on_stage(s, f);
  }
  /// Set-up warnings (a tokenizer smaller than asked for, a corpus file skipped):
  /// shown at once as a stage, recorded as "warning" events once the run exists.
  std::vector<std::string> warnings;
  void warn(const std::string& message) {
    warnings.push_back(message);
    stage("warning: " + message, -1);
  }
  void event(int64_t step, const std::string& kind, const std::string& message, double value = 0) {
    if (store) store->log_event(store::EventRecord{run_id, step, wall(), kind, message, value});
    if (owner.observer_) owner.observer_->on_event(RunEvent{step, kind, message, value});
  }

  // --- set-up --------------------------------------------------------------
  void resolve_configs();
  void load_tokenizer(const std::function<std::vector<std::string>()>& sentences);
  void fix_seq_len();
  /// Refuses a model and batch whose estimated training memory exceeds this machine's.
  void check_memory() const;
  void setup_pretraining();
  void setup_lm();

  void setup_finetuning(CheckpointInfo* init);
  void build_model(const CheckpointInfo* init);
  /// Hash routers with a balanced table: balance the training text's token
  /// frequencies (the corpus, or the task's examples) over the experts.
  void balance_hash_tables();
  void make_probe();
  void setup();
  /// A single process's set-up, and rank 0's.
  void setup_local();
  /// Ranks other than 0: the run's config and tokenizer from rank 0, then the same data and model.
  void setup_follower();
  /// Every rank starts from rank 0's weights (and, resuming, its optimizer state and step).
  void share_weights();
  /// Spreads the MoE layers' experts over groups of opt.dist.expert_parallel ranks.
  void setup_expert_parallel();
  /// Expert parallelism: all ranks gather the full experts before rank 0 uses the whole model
  /// (evaluation, checkpoint, snapshot, live copy) and shard them again after. No-ops otherwise.
  void gather_experts();
  void shard_experts();
  /// Clips to cfg.clip_norm (0: measures only) and returns the gradient norm of the whole model,
  /// with expert parallelism over every rank's shard.
  double clip_gradients();

  // --- steps ----------------------------------------------------------------
  struct StepResult {
    torch::Tensor total;
    std::vector<std::pair<std::string, torch::Tensor>> scalars;
    int64_t tokens = 0;
  };
  StepResult forward_pretrain(const PretrainBatch& batch, const BatchShares& shares = {});
  StepResult forward_lm(const LmBatch& batch, const BatchShares& shares = {});
  /// Held-out perplexity over `batches` batches of held-out windows (all of them when <= 0).
  StepMetrics evaluate_lm(int64_t batches);

  torch::Tensor task_logits(const TaskBatch& b, EncoderModelImpl::Output* out_keep = nullptr);
  StepResult forward_task(const TaskBatch& b, const BatchShares& shares = {});

  // --- evaluation -------------------------------------------------------------
  StepMetrics evaluate(int64_t step, bool full);
  std::string headline_metric() const;
  void record_eval(const StepMetrics& m);

  // --- checkpoints and snapshots ----------------------------------------------
  void checkpoint(int64_t step);
  /// The header of a checkpoint (or live copy) written at `step`.
  CheckpointInfo checkpoint_info(int64_t step) const;
  /// The last micro-batch's ids and mask (CPU): snapshots name the tokens experts took.
  torch::Tensor last_batch_ids, last_batch_mask;
  void snapshot(int64_t step, std::vector<telemetry::MoeLayerStats> moe);
  /// Answers a pending request_live_weights(): a weights-only copy in live/.
  void serve_live_weights(int64_t step);

  // --- the loop -----------------------------------------------------------------
  void loop();
  /// Testing (--inject-rank-fault): this rank kills itself or stops answering before `step`.
  void inject_fault(int64_t step);
  /// What OutOfMemory says: the device, the step (0: during set-up, -1: after the last), the batch, the cause,
  /// what to try, and the newest checkpoint kept.
  std::string out_of_memory_message(const std::exception& e, int64_t at_step) const;
};

}  // namespace smx
