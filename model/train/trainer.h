// The trainer: pre-training (MLM + NSP) and fine-tuning runs, driven by the
// CLI and by the studio's worker thread alike. It owns the data, the model
// and the optimizer, records every number in the run store, writes
// checkpoints and telemetry snapshots, and watches stability.
// No LibTorch in this header (the State is private), so the studio's Qt code
// can include it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/config/model_config.h"
#include "model/config/train_config.h"
#include "model/dist/dist_options.h"
#include "model/store/snapshot.h"

namespace smx {

/// Scalars of one step (or one evaluation), by name.
struct StepMetrics {
  int64_t step = 0;
  double wall_seconds = 0;
  std::vector<std::pair<std::string, double>> values;
  double get(const std::string& name, double fallback = 0) const;
};

struct RunEvent {
  int64_t step = 0;
  std::string kind;  ///< nonfinite, loss-spike, checkpoint, resumed, paused, stopped, diverged, finished, ...
  std::string message;
  double value = 0;
};

/// A copy of a running run's weights, taken between two optimizer steps on
/// request (Trainer::request_live_weights): a weights-only file in the
/// checkpoint format under the run's live/ folder, flagged live so that
/// nothing resumes from it. The trainer keeps the newest two (a reader may
/// still be opening the previous one) and deletes the folder when the run ends.
struct LiveWeights {
  int64_t step = 0;  ///< optimizer steps done when the copy was taken
  std::filesystem::path file;  ///< empty when it could not be written (see error); the run goes on
  std::string error;
};

/// What a caller hears from a run; every method is called on the training thread.
class TrainerObserver {
 public:
  virtual ~TrainerObserver() = default;
  /// Set-up stages before the first step (corpus, tokenizer, tokenizing, model).
  virtual void on_stage(const std::string& /*stage*/, double /*fraction*/) {}
  virtual void on_step(const StepMetrics&) {}
  virtual void on_eval(const StepMetrics&) {}
  virtual void on_event(const RunEvent&) {}
  virtual void on_snapshot(const telemetry::Snapshot&) {}
  /// A live copy asked for with request_live_weights() has been written.
  virtual void on_live_weights(const LiveWeights&) {}
};

struct LmWindows;

struct TrainerOptions {
  ModelConfig model;
  TrainConfig training;
  std::string run_name;
  std::filesystem::path data_dir;    ///< runs.sqlite, tokenizers/, cache/, runs/ live here; empty: the default
  /// Resume this run from its newest loadable checkpoint (model and training
  /// configs then come from the run; training.steps may be raised).
  std::optional<int64_t> resume_run;
  /// "pretrain" or "finetune": the kind of run the caller means to resume; a
  /// run of the other kind is refused (its data, heads and schedule differ).
  /// Empty: either.
  std::string resume_kind;
  /// Fine-tuning: start from this checkpoint's weights (the model config
  /// comes from it, with a new classifier head).
  std::filesystem::path init_checkpoint;
  /// The run init_checkpoint came from, recorded as the new run's parent; it
  /// must be a run of this data folder's store (see RunStore::run_holding).
  std::optional<int64_t> parent_run;
  /// A distributed run (world_size > 1): this process's rank and how to reach
  /// the others. training.batch_size stays the global batch: each rank trains
  /// on its share of every batch and gradients are averaged, so the run (and
  /// its checkpoints) are the same whatever the number of ranks. Rank 0 alone
  /// writes the run store, telemetry and checkpoints; the other ranks take the
  /// run's config, tokenizer and weights from it.
  dist::DistOptions dist;
  /// Testing: before this step (1-based) the trainer asks the run's device for
  /// an impossible amount of memory, so the out-of-memory path (OutOfMemory,
  /// the run recorded as failed, its checkpoints kept) runs on any machine. 0: never.
  int64_t fail_allocation_at_step = 0;
};

/// A run that ran out of memory (the GPU's, or the machine's). what() says on
/// which device and at which step, suggests a smaller batch, and names the
/// newest checkpoint kept; the run is recorded as failed.
struct OutOfMemory : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The final state of a run.
struct RunOutcome {
  int64_t run_id = 0;
  std::string status;  ///< finished, stopped, diverged, failed
  int64_t steps_done = 0;
  StepMetrics last_eval;
  StepMetrics best_eval;           ///< by the headline metric (fine-tuning) or MLM accuracy
  double majority_baseline = -1;   ///< fine-tuning classification: dev accuracy of the most frequent label
  std::filesystem::path last_checkpoint;
  double train_seconds = 0;
  double examples_per_second = 0, tokens_per_second = 0;
};

class Trainer {
 public:
  explicit Trainer(TrainerOptions options, TrainerObserver* observer = nullptr);
  ~Trainer();
  /// Prepares data, tokenizer, model and the run's store entry, then trains
  /// until the configured steps, a stop request or divergence. Errors in the
  /// set-up throw (nothing is recorded); errors while training mark the run
  /// "failed" in the store and rethrow.
  RunOutcome run();

  // Thread-safe controls, effective between steps.
  void pause();
  void resume();
  void stop();
  bool paused() const { return paused_; }
  /// Asks for a copy of the current weights: at the next step boundary (at
  /// once while paused) the trainer writes one and calls on_live_weights.
  /// Requests made before that boundary are answered by the same copy; one
  /// made after the last step gets no answer (the run's final checkpoint has
  /// the same weights).
  void request_live_weights();
  /// The run's id once run() has created or reopened it (0 before).
  int64_t run_id() const { return run_id_; }

 private:
  struct State;
  TrainerOptions options_;
  TrainerObserver* observer_;
  std::atomic<bool> paused_{false}, stop_{false}, live_requested_{false};
  std::atomic<int64_t> run_id_{0};
  std::mutex control_mutex_;
  std::condition_variable control_cv_;
  /// Returns on resume, stop, or a live-weights request (or after `limit`, when given).
  void wait_while_paused(std::chrono::milliseconds limit = std::chrono::milliseconds::max());
  friend StepMetrics evaluate_checkpoint(const std::filesystem::path&, const std::filesystem::path&, TrainerObserver*,
                                         const std::string&);
  friend LmWindows lm_heldout_windows(const ModelConfig&, const TrainConfig&, const std::filesystem::path&, int64_t);
};


/// Evaluates a checkpoint on its held-out data (pre-training: MLM and NSP
/// accuracy; fine-tuning: the task's metrics on its whole dev split).
StepMetrics evaluate_checkpoint(const std::filesystem::path& checkpoint, const std::filesystem::path& data_dir,
                                TrainerObserver* observer = nullptr, const std::string& device = "auto");

/// Token ids of held-out LM windows: `rows` windows of `seq_len` tokens, row-major.
struct LmWindows {
  int64_t rows = 0, seq_len = 0;
  std::vector<int64_t> ids;
};
/// The first `windows` held-out windows (at most as many as there are) of a decoder-LM run's corpus,
/// read exactly as the run's evaluation reads them: the same corpus, tokenizer, seq_len and split.
/// data_dir holds the tokenized-corpus cache (empty: the default data folder). Throws ConfigError for
/// an encoder.
LmWindows lm_heldout_windows(const ModelConfig& model, const TrainConfig& training,
                             const std::filesystem::path& data_dir, int64_t windows);

}  // namespace smx
