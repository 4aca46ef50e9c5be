// The main window's runs: launching them, following the live one (telemetry
// batches, status bar, end), the curves of the shown runs, and the snapshots
// behind the routing, capacity and mixing views. Construction, menus and
// settings are in main_window.cpp; the stability lab in main_window_lab.cpp.
#include "app/main_window.h"

#include <QAction>
#include <QDateTime>
#include <QFileInfo>
#include <QItemSelectionModel>
#include <QLabel>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableView>
#include <QTableWidget>
#include <cmath>
#include <nlohmann/json.hpp>

#include "app/launcher_dialog.h"
#include "app/run_list_model.h"
#include "model/config/train_config.h"
#include "model/inspect/inspector.h"
#include "model/store/run_store.h"
#include "widgets/capacity_view.h"
#include "widgets/mixing_view.h"
#include "widgets/playground_view.h"
#include "widgets/routing_view.h"
#include "widgets/training_curves_view.h"

namespace smx::app {

namespace {

/// Snapshots the routing view's history holds (per-expert top tokens, stability).
constexpr int kRoutingHistory = 8;

/// A key equal for runs whose configs differ only in seed and name: such runs
/// are drawn as mean +- band.
QString seed_group(const std::string& config_json) {
  try {
    auto j = nlohmann::json::parse(config_json);
    if (j.contains("training")) j["training"].erase("seed");
    if (j.contains("model")) j["model"].erase("name");
    return QString::number(qHash(QString::fromStdString(j.dump())), 16);
  } catch (const std::exception&) {
    return {};
  }
}

QString format_eta(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "—";
  const qint64 s = qint64(seconds);
  if (s >= 3600) return QString("%1 h %2 min").arg(s / 3600).arg((s % 3600) / 60);
  if (s >= 60) return QString("%1 min %2 s").arg(s / 60).arg(s % 60);
  return QString("%1 s").arg(s);
}

}  // namespace

// ---- launching ---------------------------------------------------------------

void MainWindow::startDemo(int steps, const QString& presetName) {
  ModelConfig m;
  try {
    m = preset(presetName.toStdString());
  } catch (const std::exception& e) {
    log(tr("demo: %1").arg(QString::fromUtf8(e.what())));
    return;
  }
  RunRequest r;
  r.options.model = m;
  r.options.training = recommended_pretraining(m);
  if (steps > 0) r.options.training.steps = steps;
  r.options.data_dir = data_dir_.toStdString();
  r.options.run_name = presetName.toStdString();
  r.label = presetName;
  focus_follows_live_ = true;
  launch({r});
  showTab("Curves");
}

void MainWindow::openLauncher() {
  LauncherDialog dialog(runs_->store(), data_dir_, classroom_, this);
  if (dialog.exec() == QDialog::Accepted) launch(dialog.requests());
}

void MainWindow::launch(const QVector<RunRequest>& requests) {
  for (const auto& r : requests) {
    controller_->enqueue(r);
    if (controller_->queuedCount() > 0) log(tr("queued: %1").arg(r.label));
  }
  updateActions();
}

QString MainWindow::resumeRun(qint64 runId) {
  auto* store = runs_->store();
  const auto rec = store ? store->find_run(runId) : std::nullopt;
  if (!rec) return tr("There is no run %1 in the run store.").arg(runId);
  RunRequest r;
  r.options.resume_run = runId;
  r.options.data_dir = data_dir_.toStdString();
  try {
    store->run_folder(runId);  // the trainer checks again; refusing here queues nothing
    run_config_from_json_text(rec->config_json, r.options.model, r.options.training);
  } catch (const std::exception& e) {
    return tr("Run %1 cannot be resumed:\n\n%2").arg(runId).arg(QString::fromUtf8(e.what()));
  }
  r.label = QString::fromStdString(rec->name);
  launch({r});
  return {};
}

QString MainWindow::deleteRun(qint64 runId) {
  if (runId == live_run_) return tr("Run %1 is training; stop it first.").arg(runId);
  auto* store = runs_->store();
  if (!store) return tr("The run store is not open.");
  QString error;
  try {
    store->delete_run_and_folder(runId);
  } catch (const store::RunFolderError& e) {
    error = tr("Run %1 was not deleted:\n\n%2").arg(runId).arg(QString::fromUtf8(e.what()));
  } catch (const std::exception& e) {
    error = QString::fromUtf8(e.what());
  }
  if (focus_run_ == runId && !store->find_run(runId)) focusRun(0);
  runs_->refresh();
  rebuildCurves();
  return error;
}

void MainWindow::onRunStarting(const QString& label) {
  log(tr("starting %1").arg(label));
  progress_->setRange(0, 0);
  progress_->show();
  steps_total_ = controller_->currentRequest() ? controller_->currentRequest()->options.training.steps : 0;
  steps_seen_ = 0;
  updateActions();
}

void MainWindow::onRunStarted(qint64 runId, const QString& label, const QString& group) {
  live_run_ = runId;
  log(tr("run %1 (%2) is training").arg(runId).arg(label));
  runs_->refresh();
  if (!group.isEmpty() && group == lab_group_) {
    updateLabCell(runId, group, label, "running", nullptr);
  }
  if (!group.isEmpty() && group == compare_group_) updateComparisonRow(runId, group, label, "running", nullptr);
  if (focus_follows_live_ || focus_run_ == 0) focusRun(runId);
  else rebuildCurves();
  const int row = runs_->rowOf(runId);
  if (row >= 0 && focus_run_ == runId) {
    const QSignalBlocker block(run_table_->selectionModel());
    run_table_->selectRow(row);
  }
  progress_->setRange(0, int(std::max<qint64>(steps_total_, 1)));
  updateActions();
}

void MainWindow::onLiveBatch(const LiveBatch& batch) {
  if (batch.has_stage) {
    statusBar()->showMessage(batch.stage_fraction >= 0
                                 ? tr("%1 %2%").arg(batch.stage).arg(int(batch.stage_fraction * 100))
                                 : batch.stage + "…");
  }
  for (const auto& e : batch.events) {
    log(tr("step %1: %2 %3").arg(e.step).arg(QString::fromStdString(e.kind), QString::fromStdString(e.message)));
  }
  // Curves: append the live run's new points of the shown metric.
  const int index = curve_runs_.indexOf(batch.run_id);
  if (index >= 0 && !batch.steps.isEmpty()) {
    std::vector<double> xs, ys, wall;
    for (const auto* list : {&batch.steps, &batch.evals})
      for (const auto& m : *list) {
        for (const auto& [name, value] : m.values)
          if (QString::fromStdString(name) == metric_) {
            xs.push_back(double(m.step));
            ys.push_back(value);
            wall.push_back(m.wall_seconds);
          }
      }
    if (!xs.empty()) curves_->appendPoints(index, xs, ys, wall);
    QVector<widgets::CurveEvent> events;  // all of them, as from the store: the view draws the stability ones
    for (const auto& e : batch.events)
      events.push_back({double(e.step), QString::fromStdString(e.kind), QString::fromStdString(e.message)});
    if (!events.isEmpty()) curves_->appendEvents(index, events);
  } else if (index < 0 && !batch.evals.isEmpty() && metric_.startsWith("eval/")) {
    rebuildCurves();
  }
  if (!batch.steps.isEmpty()) {
    if (!batch.has_stage && steps_seen_ == 0) statusBar()->clearMessage();  // set-up is over
    // The first steps of a run: if it does not record the shown metric (an encoder's metric for a
    // language model), rebuilding picks its headline curve.
    if (steps_seen_ == 0 && index >= 0) {
      bool has_metric = false;
      for (const auto& [name, value] : batch.steps.front().values) has_metric = has_metric || QString::fromStdString(name) == metric_;
      if (!has_metric) rebuildCurves();
    }
    steps_seen_ += batch.steps.size();
    updateStatusBar(&batch.steps.back());
  }
  if (!batch.snapshots.isEmpty() && batch.run_id == focus_run_) {
    for (const auto& s : batch.snapshots)  // the store may already have given us some of them
      if (focus_snapshots_.isEmpty() || s->step > focus_snapshots_.back()->step) focus_snapshots_.push_back(s);
    heavy_dirty_ = true;
    if (!heavy_timer_.isActive()) heavy_timer_.start();
  }
}

void MainWindow::onRunEnded(qint64 runId, const QString& label, const QString& group, const QString& status,
                            const QString& message, const RunOutcome& outcome) {
  progress_->hide();
  if (status == "failed") {
    log(tr("%1 failed: %2").arg(label, message));
    if (group.isEmpty()) {
      // Window-modal but not blocking: the queue, the views and scripted
      // callers (--quit-when-idle) go on while the message is shown.
      auto* box = new QMessageBox(QMessageBox::Warning, tr("Run failed"),
                                  runId > 0 ? tr("Run %1 (%2) failed:\n\n%3").arg(runId).arg(label, message)
                                            : tr("%1 could not start:\n\n%2").arg(label, message),
                                  QMessageBox::Ok, this);
      box->setAttribute(Qt::WA_DeleteOnClose);
      box->open();
    }
  } else {
    QString line = tr("run %1 (%2) %3 at step %4").arg(runId).arg(label, status).arg(outcome.steps_done);
    if (outcome.tokens_per_second > 0) line += tr(", %1 tokens/s").arg(outcome.tokens_per_second, 0, 'f', 0);
    log(line);
    statusBar()->showMessage(line, 10000);
  }
  if (!group.isEmpty() && group == lab_group_) updateLabCell(runId, group, label, status, &outcome);
  if (!group.isEmpty() && group == compare_group_) updateComparisonRow(runId, group, label, status, &outcome);
  live_run_ = 0;
  // Jobs still waiting for a live copy: the run ended first, its final checkpoint holds those weights.
  if (live_jobs_run_ != 0 && live_jobs_run_ == runId) runLiveJobs(checkpointOf(runId));
  runs_->refresh();
  refreshBestTable();
  if (runId == focus_run_) {
    describePlaygroundModel();
    rebuildCurves();  // the final evaluation
    heavy_dirty_ = true;
    refreshHeavyViews();
  }
  updateActions();
}

void MainWindow::updateActions() {
  const bool busy = controller_->busy();
  pause_action_->setEnabled(busy);
  stop_action_->setEnabled(busy);
  pause_action_->setText(controller_->paused() ? tr("Continue") : tr("Pause"));
  pause_action_->setIcon(QIcon::fromTheme(controller_->paused() ? "media-playback-start" : "media-playback-pause"));
  const int queued = controller_->queuedCount();
  new_action_->setText(busy ? tr("Queue run…") : tr("New run…"));
  if (queued > 0) statusBar()->showMessage(tr("%n run(s) queued", nullptr, queued), 5000);
}

void MainWindow::updateStatusBar(const StepMetrics* last) {
  if (!last) return;
  const double tokens = last->get("speed/tokens_per_s", 0);
  const double step_ms = last->get("speed/step_ms", 0);
  step_label_->setText(tr("run %1 · step %2 / %3").arg(live_run_).arg(last->step).arg(steps_total_));
  // A multi-process run records each rank's speed: shown beside the total, so a slow rank stands out.
  QStringList ranks;
  for (int r = 0;; ++r) {
    const double v = last->get("dist/rank" + std::to_string(r) + "_tokens_per_s", -1);
    if (v < 0) break;
    ranks << QString::number(v, 'f', 0);
  }
  speed_label_->setText(ranks.isEmpty() ? tr("%1 tokens/s").arg(tokens, 0, 'f', 0)
                                        : tr("%1 tokens/s (ranks: %2)").arg(tokens, 0, 'f', 0).arg(ranks.join(" · ")));
  // GPU runs: what tensors hold now and the most since the run started; CPU runs: the process's resident memory.
  const double gpu_mb = last->get("memory/gpu_allocated_mb", -1), gpu_peak_mb = last->get("memory/gpu_peak_mb", -1);
  const double ram_mb = last->get("memory/resident_mb", -1);
  if (gpu_mb >= 0) {
    memory_label_->setText(tr("GPU %1 GiB · peak %2 GiB").arg(gpu_mb / 1024, 0, 'f', 2).arg(gpu_peak_mb / 1024, 0, 'f', 2));
    memory_label_->setToolTip(tr("GPU memory the run's tensors hold now, and the most since it started "
                                 "(the curves have both: memory/gpu_allocated_mb, memory/gpu_peak_mb)."));
  } else if (ram_mb >= 0) {
    memory_label_->setText(ram_mb >= 1024 ? tr("RAM %1 GiB").arg(ram_mb / 1024, 0, 'f', 2) : tr("RAM %1 MiB").arg(ram_mb, 0, 'f', 0));
    memory_label_->setToolTip(tr("Memory this process holds (resident), run and studio together."));
  }
  const double eta = step_ms > 0 ? double(steps_total_ - last->step) * step_ms / 1000.0 : -1;
  eta_label_->setText(tr("ETA %1").arg(format_eta(eta)));
  progress_->setValue(int(last->step));
}

void MainWindow::log(const QString& line) {
  log_->appendPlainText(QDateTime::currentDateTime().toString("hh:mm:ss  ") + line);
}

// ---- curves --------------------------------------------------------------------

widgets::CurveRun curveRunFromStore(const store::RunStore& store, qint64 runId, const QString& metric,
                                    const QString& label, const QString& group) {
  widgets::CurveRun run;
  run.label = label;
  run.group = group;
  for (const auto& p : store.metric(runId, metric.toStdString())) {
    run.series.x.push_back(double(p.step));
    run.series.y.push_back(p.value);
    run.wall.push_back(p.wall_seconds);
  }
  for (const auto& e : store.events(runId))
    run.events.push_back({double(e.step), QString::fromStdString(e.kind), QString::fromStdString(e.message)});
  return run;
}

QVector<qint64> MainWindow::overlayRuns() const {
  QVector<qint64> ids;
  if (run_table_) {
    for (const QModelIndex& i : run_table_->selectionModel()->selectedRows())
      ids.push_back(runs_->data(i.siblingAtColumn(0), Qt::UserRole).toLongLong());
  }
  if (focus_run_ != 0 && !ids.contains(focus_run_)) ids.prepend(focus_run_);
  if (live_run_ != 0 && !ids.contains(live_run_)) ids.push_back(live_run_);
  return ids;
}

void MainWindow::rebuildCurves() {
  auto* store = runs_->store();
  curve_runs_.clear();  // index i of the curves view is run curve_runs_[i]
  QVector<widgets::CurveRun> curve_runs;
  QSet<QString> names;
  if (store) {
    for (qint64 id : overlayRuns()) {
      const auto rec = store->find_run(id);
      if (!rec) continue;
      curve_runs_.push_back(id);
      for (const auto& n : store->metric_names(id)) names.insert(QString::fromStdString(n));
      curve_runs.push_back(curveRunFromStore(*store, id, metric_, QString("%1 · %2").arg(id).arg(QString::fromStdString(rec->name)),
                                             seed_group(rec->config_json)));
    }
  }
  // A metric the shown runs do not record (an encoder's loss/mlm for a language model, say):
  // show the focused run's headline curve instead, without changing the saved choice.
  if (!names.isEmpty() && !names.contains(metric_)) {
    const auto rec = store ? store->find_run(focus_run_ != 0 ? focus_run_ : live_run_) : std::nullopt;
    const QStringList fallbacks = rec && runIsLm(*rec) ? QStringList{"eval/perplexity", "loss/nll", "loss/total"}
                                                       : QStringList{"loss/total"};
    for (const QString& m : fallbacks)
      if (names.contains(m)) {
        metric_ = m;
        return rebuildCurves();
      }
  }
  QStringList sorted(names.begin(), names.end());
  if (sorted.isEmpty()) sorted << metric_;
  sorted.sort();
  curves_->setMetricNames(sorted);
  curves_->setMetricName(metric_);
  curves_->setRuns(curve_runs);
  refreshBestTable();
}

void MainWindow::refreshBestTable() {
  const QVector<qint64> ids = curve_runs_;
  QStringList metrics;
  for (qint64 id : ids)
    for (const auto& [name, value] : runs_->bestMetrics(id))
      if (!metrics.contains(name)) metrics << name;
  best_table_->clear();
  best_table_->setColumnCount(metrics.size() + 2);
  QStringList header = {tr("Run"), tr("Status")};
  for (const auto& m : metrics) header << tr("best %1").arg(m.mid(5));
  best_table_->setHorizontalHeaderLabels(header);
  best_table_->setRowCount(ids.size());
  for (int r = 0; r < ids.size(); ++r) {
    const auto* rec = runs_->runAt(runs_->rowOf(ids[r]));
    best_table_->setItem(r, 0, new QTableWidgetItem(rec ? QString("%1 · %2").arg(ids[r]).arg(QString::fromStdString(rec->name)) : QString::number(ids[r])));
    best_table_->setItem(r, 1, new QTableWidgetItem(rec ? QString::fromStdString(rec->status) : QString()));
    for (const auto& [name, value] : runs_->bestMetrics(ids[r]))
      best_table_->setItem(r, 2 + metrics.indexOf(name), new QTableWidgetItem(QString::number(value, 'f', 4)));
  }
  best_table_->resizeColumnsToContents();
}

// ---- snapshots -------------------------------------------------------------------

void MainWindow::describePlaygroundModel() {
  if (focus_run_ == 0) {
    playground_->setModelDescription({});
    return;
  }
  // A decoder LM generates text (and has the leak check); an encoder predicts [MASK] tokens.
  if (auto* store = runs_->store()) {
    try {
      if (const auto rec = store->find_run(focus_run_)) playground_->setLanguageModel(runIsLm(*rec));
    } catch (const std::exception&) {
    }
  }
  if (controller_->busy() && controller_->currentRunId() == focus_run_) {
    playground_->setModelDescription(tr("run %1 · training: answers from a live copy of its weights, taken when you ask")
                                         .arg(focus_run_));
    return;
  }
  const QString ckpt = checkpointOf(focus_run_);
  playground_->setModelDescription(
      ckpt.isEmpty() ? tr("run %1: no checkpoint yet (one is written every 'checkpoint every' steps and at the end)").arg(focus_run_)
                     : tr("run %1 · checkpoint %2").arg(focus_run_).arg(QFileInfo(ckpt).fileName()));
}

void MainWindow::focusRun(qint64 runId) {
  focus_run_ = runId;
  pinned_snapshot_ = -1;
  describePlaygroundModel();
  loadFocusSnapshots();
  rebuildCurves();
  heavy_dirty_ = true;
  refreshHeavyViews();
}

void MainWindow::loadFocusSnapshots() {
  focus_snapshots_.clear();
  auto* store = runs_->store();
  if (!store || focus_run_ == 0) return;
  int damaged = 0;
  for (const auto& rec : store->snapshots(focus_run_)) {
    try {
      focus_snapshots_.push_back(
          std::make_shared<const telemetry::Snapshot>(telemetry::load_snapshot(store->snapshot_file(rec))));
    } catch (const std::exception&) {
      ++damaged;  // a damaged or deleted snapshot file: skip it, say so once
    }
  }
  if (damaged > 0) log(tr("run %1: %2 snapshot file(s) could not be read and were skipped").arg(focus_run_).arg(damaged));
}

void MainWindow::refreshHeavyViews() {
  if (!heavy_dirty_) return;
  heavy_dirty_ = false;
  QElapsedTimer t;
  t.start();
  const int end = pinned_snapshot_ >= 0 ? std::min<int>(pinned_snapshot_ + 1, focus_snapshots_.size())
                                        : focus_snapshots_.size();
  const QVector<widgets::SnapshotPtr> upto = focus_snapshots_.mid(0, end);
  routing_->setSnapshots(upto.mid(std::max<int>(0, upto.size() - kRoutingHistory)));
  capacity_->setSnapshots(upto);
  mixing_->setSnapshots(focus_snapshots_);
  if (pinned_snapshot_ >= 0 && pinned_snapshot_ < focus_snapshots_.size()) mixing_->setCurrentSnapshot(pinned_snapshot_);
  last_heavy_ms_ = t.nsecsElapsed() / 1e6;
}

void MainWindow::jumpToStep(double step) {
  if (focus_snapshots_.isEmpty()) {
    statusBar()->showMessage(tr("run %1 has no snapshots to show for step %2").arg(focus_run_).arg(step), 5000);
    return;
  }
  int best = 0;
  for (int i = 0; i < focus_snapshots_.size(); ++i)
    if (std::abs(double(focus_snapshots_[i]->step) - step) < std::abs(double(focus_snapshots_[best]->step) - step)) best = i;
  pinned_snapshot_ = best;
  heavy_dirty_ = true;
  refreshHeavyViews();
  showTab("Routing");
  statusBar()->showMessage(tr("showing the snapshot of step %1, nearest to the event at step %2 (View ▸ Follow the "
                              "newest snapshot to go back)")
                               .arg(focus_snapshots_[best]->step)
                               .arg(step),
                           10000);
}

void MainWindow::withWeights(qint64 runId, std::function<void(const QString& file)> job) {
  if (runId != 0 && controller_->busy() && controller_->currentRunId() == runId) {
    // Training now: a copy of the weights taken at the next step boundary, so each answer sees the model
    // as it is then. Jobs asked for meanwhile share that copy.
    if (live_jobs_run_ != runId) live_jobs_.clear();  // (a previous run's jobs were answered at its end)
    live_jobs_run_ = runId;
    live_jobs_.push_back(std::move(job));
    controller_->requestLiveWeights();
    return;
  }
  job(checkpointOf(runId));
}

void MainWindow::runLiveJobs(const QString& file) {
  auto jobs = std::move(live_jobs_);
  live_jobs_.clear();
  live_jobs_run_ = 0;
  for (auto& job : jobs) job(file);
}

QString MainWindow::checkpointOf(qint64 runId) const {
  if (runId == 0 || !runs_->store()) return {};
  try {
    return QString::fromStdString(inspect::latest_checkpoint(runs_->store()->run_folder(runId)).string());
  } catch (const std::exception&) {
    return {};  // no such run, or a damaged row: no checkpoint to offer
  }
}

}  // namespace smx::app
