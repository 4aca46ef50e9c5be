// Plain data the studio's views draw, besides the telemetry snapshots of
// model/store/snapshot.h. app/ fills these from the engine; widgets never see
// LibTorch.
#pragma once

#include <QMetaType>
#include <QString>
#include <QStringList>
#include <QVector>
#include <memory>

#include "model/store/snapshot.h"

namespace smx::widgets {

/// Snapshots are shared, never copied: a run keeps hundreds and several views
/// read the same ones.
using SnapshotPtr = std::shared_ptr<const telemetry::Snapshot>;

/// Routers in which tokens choose their experts, so that a full expert drops
/// a choice: "tokens-choose", "switch" and "gshard". The others (experts-choose,
/// base, hash) never drop; tokens may go unrouted instead.
inline bool router_drops_choices(const QString& router) {
  return router == QLatin1String("tokens-choose") || router == QLatin1String("switch") ||
         router == QLatin1String("gshard");
}

/// Playground: one sentence through a trained model.
struct PlaygroundToken {
  QString piece;
  bool masked = false;
  /// Per MoE layer: the experts that took this token (empty: none did).
  QVector<QVector<int>> experts;
};
struct MaskPrediction {
  int position = 0;  ///< index into tokens
  QVector<QPair<QString, double>> top;  ///< piece, probability; most likely first
};
struct PlaygroundResult {
  QVector<PlaygroundToken> tokens;
  QVector<int> moe_layers;  ///< block index of each MoE layer, matching experts[]
  QVector<MaskPrediction> predictions;
  double latency_ms = 0;  ///< one forward pass, tokenization excluded
  QString device;
  QString error;  ///< non-empty: nothing else is valid
};

/// Playground, decoder LMs: how to continue a prompt.
struct GenerationSettings {
  int max_new_tokens = 40;
  double temperature = 0.8;  ///< 0: greedy
  int top_k = 40;            ///< sampling: keep the k most likely tokens (0: all)
  quint64 seed = 0;
};
/// Playground, decoder LMs: a prompt and its continuation.
struct GenerationResult {
  QString prompt, continuation;
  /// The prompt's tokens, then the new ones (`masked` unused), with their feature-MoE routing.
  QVector<PlaygroundToken> tokens;
  int prompt_tokens = 0;    ///< the first prompt_tokens of tokens are the prompt
  QVector<int> moe_layers;  ///< block index of each feature-MoE layer, matching experts[]
  bool stopped = false;     ///< ended at the end-of-document token
  double latency_ms = 0;    ///< generation alone
  QString device;
  QString error;  ///< non-empty: nothing else is valid
};
/// Playground, decoder LMs: teacher-forced against token-by-token perplexity (the future-token-leak check).
struct LeakCheckResult {
  double teacher_forced = 0, token_by_token = 0;  ///< perplexities
  qint64 windows = 0, targets = 0;
  QString smoe_routing;  ///< "none", "deterministic", "partial", "learned"
  QString error;
};

/// Speed: the engine's benchmark for one preset.
struct SpeedRow {
  QString preset;
  double train_ms_per_example = 0, infer_ms_per_example = 0;
  double gflops_per_example = 0;  ///< forward FLOPs from the cost model (0 if unknown)
};
struct SpeedResult {
  QString device;
  int batch = 0, seq_len = 0;
  QVector<SpeedRow> rows;
  QString error;
};
/// Speed: what the arithmetic predicts for a preset, from the cost model (the app computes it).
struct SpeedEstimate {
  QString preset;
  double forward_gflops_per_example = 0;  ///< forward FLOPs per example / 1e9, at the view's batch and length
};

/// Stability lab: one run of the batch.
struct StabilityCell {
  QString config;  ///< label, e.g. "bert-base" or a config file's name
  int seed = 0;
  qint64 run_id = 0;
  QString status;  ///< queued, running, finished, stopped, diverged, failed
  qint64 divergence_step = -1;  ///< first non-finite or unrecovered-spike step, -1 if none
  double final_loss = 0;
  qint64 steps_done = 0;
  QString verdict;      ///< how the run fared, e.g. "loss spike at step 120, never back to …"; empty while pending
  QString explanation;  ///< diverged runs: what went wrong first (router logits, attention entropy, the loss)
};
/// The paper's Table 10 row a lab config stands for (e.g. "sparse BERT-4"), and its stable runs out of 4.
struct StabilityReference {
  QString model;        ///< the paper's model, e.g. "BERT-Base"
  QString stable;       ///< e.g. "3/4 · 4/4" (batch 64 · batch 256)
};
/// What the user asked the lab to run.
struct StabilityPlan {
  QStringList configs;  ///< preset names or config file paths
  int seeds = 3;
  double learning_rate = 1e-3;
  int batch = 32;
  int steps = 300;
  int warmup = -1;          ///< learning-rate warm-up steps; -1: 10% of the steps
  double clip = 1.0;        ///< gradient-norm clipping; 0: off
};

/// Capacity: routing of a held-out batch at a chosen eval capacity factor.
struct CapacityProbe {
  double capacity_factor = 1.0;
  std::vector<telemetry::MoeLayerStats> layers;
  QString weights;  ///< which weights routed it, e.g. "weights of step 140 (live, running)" (empty: unknown)
  QString error;
};

}  // namespace smx::widgets

Q_DECLARE_METATYPE(smx::widgets::SnapshotPtr)
Q_DECLARE_METATYPE(smx::widgets::PlaygroundResult)
Q_DECLARE_METATYPE(smx::widgets::GenerationSettings)
Q_DECLARE_METATYPE(smx::widgets::GenerationResult)
Q_DECLARE_METATYPE(smx::widgets::LeakCheckResult)
Q_DECLARE_METATYPE(smx::widgets::SpeedResult)
Q_DECLARE_METATYPE(smx::widgets::StabilityPlan)
Q_DECLARE_METATYPE(smx::widgets::CapacityProbe)
