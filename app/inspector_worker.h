// Inference jobs for the views (playground predictions, LM generation and
// the leak check, routing what-ifs, capacity probes, the speed benchmark) on their own thread, so they neither
// block the GUI nor wait for a training run to finish. Models are loaded from
// checkpoints (or a running run's live copies of its weights) once and kept
// while the same file is asked for; every answer names the step of its weights.
#pragma once

#include <QObject>
#include <QString>
#include <QThread>
#include <memory>
#include <vector>

#include "widgets/view_data.h"

namespace smx::inspect {
class Inspector;
}

namespace smx::app {

/// One what-if answer: the probe routed under other settings.
struct WhatIfResult {
  std::vector<telemetry::ProbeRouting> routing;
  QString caption, error;
};

class InspectorWorker : public QObject {
  Q_OBJECT
 public:
  InspectorWorker();
  ~InspectorWorker() override;

  // Called from the GUI thread; each queues a job and returns at once.
  void predict(const QString& checkpoint, const QString& text);
  /// Decoder LMs: continues `prompt`.
  void generate(const QString& checkpoint, const QString& prompt, const widgets::GenerationSettings& settings);
  /// Decoder LMs: teacher-forced vs token-by-token perplexity on `windows` held-out windows
  /// (dataDir: the folder with the run's tokenized-corpus cache; empty: the tokenizer's).
  void leakCheck(const QString& checkpoint, const QString& dataDir = {}, int windows = 4);
  void whatIf(const QString& checkpoint, const QString& text, double capacityFactor, const QString& router);
  void capacityProbe(const QString& checkpoint, double capacityFactor);
  void bench(const QStringList& presets, int batch, int seqLen, const QString& device);
  int pendingJobs() const { return pending_; }
  /// Which weights answered: "weights of step 140 (live, running)" or "checkpoint step 300".
  static QString weightsLabel(qint64 step, bool live);

 Q_SIGNALS:
  void predicted(const smx::widgets::PlaygroundResult& result, const QString& modelDescription);
  void generated(const smx::widgets::GenerationResult& result, const QString& modelDescription);
  void leakChecked(const smx::widgets::LeakCheckResult& result);
  void whatIfReady(const smx::app::WhatIfResult& result);
  void capacityReady(const smx::widgets::CapacityProbe& probe);
  void benchProgress(const QString& line);
  void benchReady(const smx::widgets::SpeedResult& result);

 private:
  /// The inspector for a checkpoint (loaded on first use); throws on failure. Job thread only.
  inspect::Inspector& inspector(const QString& checkpoint);
  template <typename F>
  void post(F&& job);

  QThread thread_;
  QObject* context_;  // lives on thread_: jobs run in its event loop
  std::unique_ptr<inspect::Inspector> inspector_;
  QString inspector_path_;
  std::atomic<int> pending_{0};
};

}  // namespace smx::app

Q_DECLARE_METATYPE(smx::app::WhatIfResult)
