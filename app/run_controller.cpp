#include "app/run_controller.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QProcess>
#include <QTimer>
#include <algorithm>

#include "model/dist/launcher.h"
#include "model/store/run_store.h"

namespace smx::app {

/// Lives on the controller's thread; runs one Trainer at a time.
class TrainingWorker : public QObject, public TrainerObserver {
 public:
  explicit TrainingWorker(RunController* controller) : controller_(controller) {}

  void run(const RunRequest& request) {
    RunOutcome outcome;
    QString status = "failed", message;
    std::vector<std::unique_ptr<QProcess>> ranks;
    try {
      TrainerOptions options = request.options;
      if (options.dist.world_size > 1) ranks = startRanks(options);
      {
        std::lock_guard lock(trainer_mutex_);
        trainer_ = std::make_unique<Trainer>(options, this);
        if (pause_on_start_) trainer_->pause();
      }
      outcome = trainer_->run();
      status = QString::fromStdString(outcome.status);
    } catch (const std::exception& e) {
      message = QString::fromUtf8(e.what());
    } catch (...) {
      message = "unknown error";
    }
    endRanks(ranks, status == "failed");
    qint64 id = outcome.run_id;
    {
      std::lock_guard lock(trainer_mutex_);
      if (trainer_ && id == 0) id = trainer_->run_id();
      trainer_.reset();
    }
    controller_->requestDrain();
    QMetaObject::invokeMethod(controller_, [c = controller_, id, status, message, outcome] {
      c->workerDone(id, status, message, outcome);
    }, Qt::QueuedConnection);
  }

  // Thread-safe controls (called on the GUI thread).
  template <typename F>
  void control(F&& f) {
    std::lock_guard lock(trainer_mutex_);
    if (trainer_) f(*trainer_);
  }

  // TrainerObserver: called on this worker's thread.
  void on_stage(const std::string& stage, double fraction) override {
    push([&](LiveBatch& b) {
      b.stage = QString::fromStdString(stage);
      b.stage_fraction = fraction;
      b.has_stage = true;
    });
  }
  void on_step(const StepMetrics& m) override {
    push([&](LiveBatch& b) { b.steps.push_back(m); });
  }
  void on_eval(const StepMetrics& m) override {
    push([&](LiveBatch& b) { b.evals.push_back(m); });
  }
  void on_event(const RunEvent& e) override {
    push([&](LiveBatch& b) { b.events.push_back(e); });
  }
  void on_snapshot(const telemetry::Snapshot& s) override {
    auto shared = std::make_shared<const telemetry::Snapshot>(s);
    push([&](LiveBatch& b) { b.snapshots.push_back(std::move(shared)); });
  }

  void on_live_weights(const LiveWeights& w) override {
    const qint64 id = current_id(), step = w.step;
    const QString file = QString::fromStdString(w.file.string()), error = QString::fromStdString(w.error);
    QMetaObject::invokeMethod(controller_, [c = controller_, id, step, file, error] {
      Q_EMIT c->liveWeightsReady(id, step, file, error);
    }, Qt::QueuedConnection);
  }

  std::atomic<bool> pause_on_start_{false};

 private:
  /// A multi-process run: this process trains as rank 0 (its controls, telemetry and store as for any run) and
  /// `smx` processes join as ranks 1..N-1; they take the run's config, tokenizer and weights from rank 0.
  std::vector<std::unique_ptr<QProcess>> startRanks(TrainerOptions& options) {
    const QString smx = smxExecutable();
    if (smx.isEmpty())
      throw std::runtime_error("a run with " + std::to_string(options.dist.world_size) +
                               " processes needs the smx command beside smx-studio (" +
                               QCoreApplication::applicationDirPath().toStdString() + "), and it is not there");
    options.dist.rank = 0;
    options.dist.master_addr = "127.0.0.1";
    options.dist.master_port = dist::free_port();
    options.dist.local_world_size = options.dist.world_size;
    std::vector<std::unique_ptr<QProcess>> ranks;
    for (int r = 1; r < options.dist.world_size; ++r) {
      auto p = std::make_unique<QProcess>();
      p->setProcessChannelMode(QProcess::ForwardedChannels);  // their errors reach the studio's terminal
      auto env = QProcessEnvironment::systemEnvironment();
      env.insert("LOCAL_WORLD_SIZE", QString::number(options.dist.world_size));
      p->setProcessEnvironment(env);
      const QString data = QString::fromStdString(
          (options.data_dir.empty() ? store::default_data_dir() : options.data_dir).string());
      p->start(smx, {options.training.is_pretraining() ? "pretrain" : "finetune", "--rank", QString::number(r),
                     "--world-size", QString::number(options.dist.world_size), "--master-addr",
                     QString::fromStdString(options.dist.master_addr), "--master-port",
                     QString::number(options.dist.master_port), "--dist-timeout",
                     QString::number(options.dist.timeout_seconds), "--data-dir", data, "--quiet"});
      if (!p->waitForStarted(10000)) {
        const std::string why = p->errorString().toStdString();
        endRanks(ranks, true);
        throw std::runtime_error("could not start rank " + std::to_string(r) + " (" + smx.toStdString() + "): " + why);
      }
      ranks.push_back(std::move(p));
    }
    return ranks;
  }

  /// Rank 0 has ended: the others end with it (at once when it failed: they may still wait for it).
  static void endRanks(std::vector<std::unique_ptr<QProcess>>& ranks, bool failed) {
    for (auto& p : ranks)
      if (failed) p->terminate();
    for (auto& p : ranks)
      if (!p->waitForFinished(failed ? 5000 : 30000)) {
        p->kill();
        p->waitForFinished(5000);
      }
    ranks.clear();
  }

  /// The smx command: installed beside smx-studio, or in the build tree (build/app, build/tests).
  static QString smxExecutable() {
    const QDir here(QCoreApplication::applicationDirPath());
    for (const QString& candidate : {here.filePath("smx"), here.filePath("../model/cli/smx")})
      if (QFileInfo(candidate).isExecutable()) return QFileInfo(candidate).canonicalFilePath();
    return {};
  }

  template <typename F>
  void push(F&& f) {
    {
      std::lock_guard lock(controller_->mutex_);
      if (const int64_t id = current_id(); id != 0) controller_->pending_.run_id = id;
      f(controller_->pending_);
    }
    controller_->requestDrain();
  }
  int64_t current_id() {
    // The trainer exists while its callbacks run; no lock needed to read it here.
    return trainer_ ? trainer_->run_id() : 0;
  }

  RunController* controller_;
  std::mutex trainer_mutex_;
  std::unique_ptr<Trainer> trainer_;
};

RunController::RunController(QObject* parent) : QObject(parent) {
  qRegisterMetaType<LiveBatch>();
  qRegisterMetaType<RunOutcome>();
  worker_ = new TrainingWorker(this);
  worker_->moveToThread(&thread_);
  thread_.setObjectName("training");
  thread_.start();
  since_drain_.start();
}

RunController::~RunController() {
  queue_.clear();
  stop();
  worker_->control([](Trainer& t) { t.resume(); });
  thread_.quit();
  thread_.wait();
  delete worker_;
}

void RunController::enqueue(RunRequest request) {
  queue_.push_back(std::move(request));
  Q_EMIT queueChanged();
  if (!running_) startNext();
}

QStringList RunController::queuedLabels() const {
  QStringList out;
  for (const auto& r : queue_) out << r.label;
  return out;
}

void RunController::startNext() {
  if (running_ || queue_.empty()) return;
  current_ = std::move(queue_.front());
  queue_.pop_front();
  running_ = true;
  current_run_ = 0;
  started_emitted_ = false;
  worker_->pause_on_start_ = false;
  Q_EMIT runStarting(current_.label, current_.group);
  Q_EMIT queueChanged();
  QMetaObject::invokeMethod(worker_, [w = worker_, r = current_] { w->run(r); }, Qt::QueuedConnection);
}

void RunController::pause() {
  if (!running_) return;
  worker_->pause_on_start_ = true;
  worker_->control([](Trainer& t) { t.pause(); });
  paused_ = true;
  Q_EMIT pausedChanged(true);
}

void RunController::resume() {
  if (!running_) return;
  worker_->pause_on_start_ = false;
  worker_->control([](Trainer& t) { t.resume(); });
  paused_ = false;
  Q_EMIT pausedChanged(false);
}

void RunController::stop() {
  if (!running_) return;
  worker_->control([](Trainer& t) {
    t.stop();
    t.resume();  // a paused run must wake up to stop
  });
}

void RunController::requestLiveWeights() {
  if (!running_) return;
  worker_->control([](Trainer& t) { t.request_live_weights(); });
}

void RunController::clearQueue(const QString& group) {
  const auto before = queue_.size();
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                              [&](const RunRequest& r) { return group.isEmpty() || r.group == group; }),
               queue_.end());
  if (queue_.size() != before) Q_EMIT queueChanged();
}

void RunController::cancelGroup(const QString& group) {
  if (group.isEmpty()) return;
  clearQueue(group);
  if (currentRequest() && currentRequest()->group == group) stop();
}

void RunController::requestDrain() {
  if (drain_requested_.exchange(true)) return;  // one queued drain at a time
  QMetaObject::invokeMethod(this, [this] { drain(); }, Qt::QueuedConnection);
}

void RunController::drain() {
  const qint64 waited = since_drain_.elapsed();
  if (waited < drain_interval_ms_) {
    // Too soon: drain later; anything pushed meanwhile joins this drain.
    QTimer::singleShot(int(drain_interval_ms_ - waited), this, [this] { drain(); });
    return;
  }
  drainNow();
}

void RunController::drainNow() {
  LiveBatch batch;
  {
    std::lock_guard lock(mutex_);
    drain_requested_ = false;
    batch = std::move(pending_);
    pending_ = LiveBatch{};
    pending_.run_id = batch.run_id;
  }
  since_drain_.restart();
  ++drains_;
  if (batch.run_id != 0 && !started_emitted_ && running_) {
    current_run_ = batch.run_id;
    started_emitted_ = true;
    Q_EMIT runStarted(current_run_, current_.label, current_.group);
  }
  if (batch.has_stage || !batch.steps.isEmpty() || !batch.evals.isEmpty() || !batch.events.isEmpty() ||
      !batch.snapshots.isEmpty())
    Q_EMIT liveBatch(batch);
}

void RunController::workerDone(qint64 runId, QString status, QString message, RunOutcome outcome) {
  drainNow();  // deliver what is still buffered first, whatever the rate limit
  if (runId != 0 && !started_emitted_) Q_EMIT runStarted(runId, current_.label, current_.group);
  running_ = false;
  if (paused_) {
    paused_ = false;
    Q_EMIT pausedChanged(false);
  }
  const RunRequest finished = current_;
  current_run_ = 0;
  Q_EMIT runEnded(runId, finished.label, finished.group, status, message, outcome);
  startNext();
}

}  // namespace smx::app
