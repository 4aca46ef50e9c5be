// Runs training jobs on a worker thread, one at a time from a queue, and hands
// their telemetry to the GUI thread. The trainer calls back on the worker
// thread; the callbacks only append to a buffer, and the GUI thread drains it
// at most 5 times a second by default (one queued signal per drain), so a fast
// GPU run cannot flood the event loop. Each drain wakes the GUI to replot; on a
// 2-core machine every wake-up also stalls LibTorch's two compute threads, and
// at ~30 drains a second the demo trained ~15-20% slower than the headless CLI
// (at 5 a second the difference is within the noise).
#pragma once

#include <QElapsedTimer>
#include <QMetaType>
#include <QObject>
#include <QString>
#include <QThread>
#include <QVector>
#include <atomic>
#include <deque>
#include <memory>
#include <mutex>

#include "model/train/trainer.h"
#include "widgets/view_data.h"

namespace smx::app {

/// One queued run.
struct RunRequest {
  TrainerOptions options;
  QString label;  ///< shown while queued (the run's name)
  QString group;  ///< a stability-lab batch this run belongs to (empty: none)
  int seed_index = 0;
};

/// What the worker heard since the last drain, in order per kind.
struct LiveBatch {
  qint64 run_id = 0;
  QVector<StepMetrics> steps, evals;
  QVector<RunEvent> events;
  QVector<widgets::SnapshotPtr> snapshots;
  QString stage;
  double stage_fraction = -1;
  bool has_stage = false;
};

class TrainingWorker;

class RunController : public QObject {
  Q_OBJECT
 public:
  explicit RunController(QObject* parent = nullptr);
  ~RunController() override;

  void enqueue(RunRequest request);
  /// Controls of the running job (no-ops when idle).
  void pause();
  void resume();
  void stop();
  /// Asks the running job for a copy of its current weights; liveWeightsReady
  /// answers at its next step boundary (at once while paused). No-op when idle.
  void requestLiveWeights();
  /// Drops queued (not running) jobs of a group, or all when group is empty.
  void clearQueue(const QString& group = {});
  /// Cancels a group (the lab's batch, a router comparison): drops its queued
  /// jobs and stops its run if one is running now.
  void cancelGroup(const QString& group);

  bool busy() const { return running_; }
  bool paused() const { return paused_; }
  int queuedCount() const { return static_cast<int>(queue_.size()); }
  QStringList queuedLabels() const;
  qint64 currentRunId() const { return current_run_; }
  const RunRequest* currentRequest() const { return running_ ? &current_ : nullptr; }
  /// Minimum milliseconds between two drains (200 = 5 per second).
  void setDrainInterval(int ms) { drain_interval_ms_ = ms; }
  int drainCount() const { return drains_; }

 Q_SIGNALS:
  void runStarting(const QString& label, const QString& group);
  /// The run exists in the store (set-up done); run_id is final.
  void runStarted(qint64 runId, const QString& label, const QString& group);
  /// Coalesced telemetry of the running job.
  void liveBatch(const smx::app::LiveBatch& batch);
  /// status: finished, stopped, diverged, failed; message: the error for failed.
  void runEnded(qint64 runId, const QString& label, const QString& group, const QString& status,
                const QString& message, const smx::RunOutcome& outcome);
  void queueChanged();
  void pausedChanged(bool paused);
  /// A live copy asked for with requestLiveWeights(): the weights after `step`
  /// steps, in the checkpoint format (weights only; the trainer deletes it later).
  /// file is empty and error says why when it could not be written.
  void liveWeightsReady(qint64 runId, qint64 step, const QString& file, const QString& error);

 private:
  friend class TrainingWorker;
  void startNext();
  void requestDrain();  // worker thread
  void drain();         // GUI thread, rate-limited
  void drainNow();
  void workerDone(qint64 runId, QString status, QString message, smx::RunOutcome outcome);

  QThread thread_;
  TrainingWorker* worker_ = nullptr;
  std::deque<RunRequest> queue_;
  RunRequest current_;
  bool running_ = false, paused_ = false;
  qint64 current_run_ = 0;
  bool started_emitted_ = false;

  std::mutex mutex_;  // guards pending_
  LiveBatch pending_;
  std::atomic<bool> drain_requested_{false};
  QElapsedTimer since_drain_;
  int drain_interval_ms_ = 200;
  int drains_ = 0;
};

}  // namespace smx::app

Q_DECLARE_METATYPE(smx::app::LiveBatch)
Q_DECLARE_METATYPE(smx::RunOutcome)
