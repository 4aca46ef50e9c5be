// TrainConfig: everything about a training run except the model's shape.
// JSON in and out like ModelConfig; a run's full config is
// {"model": ModelConfig, "training": TrainConfig}. No LibTorch.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "model/config/model_config.h"

namespace smx {

/// What the stability monitor does when it sees a problem at a step.
enum class StabilityPolicy {
  Stop,      ///< record the event, end the run with status "diverged"
  Skip,      ///< record the event, drop the step's update, go on
  Continue,  ///< record the event, apply the step anyway
};
std::string to_string(StabilityPolicy p);
StabilityPolicy stability_policy_from_string(const std::string& s);  // throws ConfigError

struct TrainConfig {
  std::string task = "pretrain";  ///< "pretrain" or a fine-tuning task name ("wordnet-lexname", "sst2", ...)
  std::string corpus = "wordnet"; ///< pre-training: "wordnet" or a text file/folder
  std::string task_dir;           ///< fine-tuning: the GLUE/SuperGLUE task folder (not for wordnet-lexname)
  std::string tokenizer;          ///< a .model file; empty: the data folder's tokenizer for the corpus (trained on first use)

  int64_t steps = 1000;
  int64_t batch_size = 32;
  int64_t accumulation = 1;       ///< micro-batches per optimizer step
  int64_t seq_len = 0;            ///< 0: the model's max_seq_len
  int64_t max_predictions = 0;    ///< masked positions per sequence; 0: 15% of seq_len, at most 80
  double learning_rate = 1e-4;
  int64_t warmup_steps = -1;      ///< -1: 10% of steps
  /// "linear": warm-up then linear decay to 0 (BERT); "inverse-sqrt": warm-up then peak·sqrt(warmup/step)
  /// (fairseq's inverse_sqrt, the sMLP paper's).
  std::string schedule = "linear";
  double weight_decay = 0.01;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-6;
  double clip_norm = 1.0;         ///< 0: no clipping
  double expert_dropout = -1;     ///< fine-tuning: overrides the model's (the paper uses 0.2); -1 keeps it
  uint64_t seed = 0;
  std::string device = "auto";    ///< auto | cpu | cuda | cuda:N (auto: the first GPU, else the CPU)
  bool bf16 = true;               ///< bf16 autocast on CUDA (routers and losses stay float32)
  int threads = 0;                ///< CPU threads for LibTorch; 0: its default

  int64_t log_every = 1;          ///< scalar metrics into the run store
  int64_t eval_every = 200;
  int64_t eval_batches = 8;
  int64_t checkpoint_every = 500;
  int64_t keep_checkpoints = 2;
  int64_t snapshot_every = 50;    ///< telemetry snapshots; 0: none
  std::string probe_text =
      "a domesticated carnivorous mammal that typically has a long snout, an acute sense of smell, and a "
      "barking, howling, or whining voice";

  /// Loss spike: a total loss above spike_factor x the median of the previous spike_window steps.
  double spike_factor = 2.0;
  int64_t spike_window = 100;
  StabilityPolicy on_nonfinite = StabilityPolicy::Stop;
  StabilityPolicy on_spike = StabilityPolicy::Continue;
  /// For tests: the loss of this step is replaced by NaN (-1: never).
  int64_t inject_nan_at_step = -1;

  bool is_pretraining() const { return task == "pretrain"; }
  int64_t effective_warmup() const { return warmup_steps >= 0 ? warmup_steps : steps / 10; }
  /// The schedule: linear warm-up to the peak, then linear decay to zero at the last step, or (inverse-sqrt)
  /// peak·sqrt(warmup / (step + 1)).
  double learning_rate_at(int64_t step) const;
  /// Throws ConfigError naming the field.
  void validate() const;
  /// validate(), and the fields that depend on the model: seq_len at most its
  /// max_seq_len (never silently capped), max_predictions below the sequence length.
  void validate(const ModelConfig& model) const;
  /// More threads than any machine has: tens of thousands never start (LibTorch waited forever).
  static constexpr int kMaxThreads = 4096;
};

/// Training defaults for a model: the paper's pre-training learning rate 1e-4
/// (batch 32 here) for Base-sized models; small ones (d_model <= 256, like
/// `demo`) get a 10x larger peak, which they tolerate and need to learn
/// visibly within minutes on a CPU. Fine-tuning: 5e-5 for Base-sized models
/// (the top of BERT's grid; the paper finds MoE models like larger rates),
/// expert dropout 0.2 as the paper, no snapshots.
/// Decoder LMs (sMLP family) get the paper's optimiser: Adam β2 0.98, weight decay 0.1, inverse-sqrt
/// schedule with warm-up (the paper: 4000 of 25k steps, peak 5e-4; demo sizes: 100 steps, peak 2e-3,
/// batch 16), no snapshots (the telemetry views are the encoder's).
TrainConfig recommended_pretraining(const ModelConfig& m);
TrainConfig recommended_finetuning(const ModelConfig& m, const std::string& task);

void to_json(nlohmann::json& j, const TrainConfig& c);
void from_json(const nlohmann::json& j, TrainConfig& c);  // strict: unknown fields are errors

/// {"model": ..., "training": ...}
std::string run_config_to_json_text(const ModelConfig& model, const TrainConfig& training);
void run_config_from_json_text(const std::string& text, ModelConfig& model, TrainConfig& training);
/// A training config file (the "training" object of a run config); errors name the file.
TrainConfig training_config_from_file(const std::string& path);

}  // namespace smx
