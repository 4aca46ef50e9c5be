// The main window's stability lab: turns a plan (configs x seeds at one
// learning rate and batch) into queued runs, follows them into the lab's
// Table-10 cells, and overlays their loss curves.
#include <QFileInfo>
#include <QMessageBox>

#include "app/main_window.h"
#include "app/run_list_model.h"
#include "model/config/train_config.h"
#include "model/store/run_store.h"
#include "widgets/stability_lab_view.h"
#include "widgets/training_curves_view.h"

namespace smx::app {

void MainWindow::runLab(const widgets::StabilityPlan& plan) {
  lab_group_ = QString("lab-%1").arg(++lab_counter_);
  lab_cells_.clear();
  lab_cell_index_.clear();
  QVector<RunRequest> requests;
  for (const QString& config : plan.configs) {
    ModelConfig m;
    try {
      m = QFileInfo(config).suffix() == "json" ? config_from_file(config.toStdString()) : preset(config.toStdString());
    } catch (const std::exception& e) {
      QMessageBox::warning(this, tr("Stability lab"), QString::fromUtf8(e.what()));
      return;
    }
    for (int s = 0; s < plan.seeds; ++s) {
      RunRequest r;
      r.options.model = m;
      r.options.training = recommended_pretraining(m);
      r.options.training.learning_rate = plan.learning_rate;
      r.options.training.batch_size = plan.batch;
      r.options.training.steps = plan.steps;
      r.options.training.seed = uint64_t(s);
      r.options.training.eval_every = 0;        // only the final evaluation
      r.options.training.checkpoint_every = 0;  // only the final checkpoint
      r.options.training.on_nonfinite = StabilityPolicy::Stop;
      r.options.data_dir = data_dir_.toStdString();
      r.options.run_name = QString("lab %1 · %2 · seed %3").arg(lab_counter_).arg(config).arg(s).toStdString();
      r.label = QString::fromStdString(r.options.run_name);
      r.group = lab_group_;
      r.seed_index = s;
      widgets::StabilityCell cell;
      cell.config = config;
      cell.seed = s;
      cell.status = "queued";
      lab_cell_index_.insert(r.label, lab_cells_.size());
      lab_cells_.push_back(cell);
      requests.push_back(std::move(r));
    }
  }
  lab_->setCells(lab_cells_);
  log(tr("stability lab: %1 runs queued").arg(requests.size()));
  launch(requests);
}

void MainWindow::updateLabCell(qint64 runId, const QString& group, const QString& label, const QString& status,
                               const RunOutcome* outcome) {
  if (group != lab_group_ || !lab_cell_index_.contains(label)) return;
  auto& cell = lab_cells_[lab_cell_index_.value(label)];
  cell.run_id = runId;
  cell.status = status;
  if (outcome) {
    cell.steps_done = outcome->steps_done;
    auto* store = runs_->store();
    if (store && runId != 0) {
      for (const auto& e : store->events(runId))
        if ((e.kind == "nonfinite" || e.kind == "loss-spike") && status == "diverged") {
          cell.divergence_step = e.step;
          break;
        }
      const auto loss = store->metric(runId, "loss/total");
      if (!loss.empty()) cell.final_loss = loss.back().value;
    }
  }
  lab_->setCells(lab_cells_);
  if (outcome) refreshLabCurves();
}

void MainWindow::refreshLabCurves() {
  auto* store = runs_->store();
  if (!store) return;
  QVector<widgets::CurveRun> runs;
  for (const auto& cell : lab_cells_) {
    if (cell.run_id == 0) continue;
    runs.push_back(curveRunFromStore(*store, cell.run_id, "loss/total",
                                     QString("%1 · seed %2").arg(cell.config).arg(cell.seed), cell.config));
  }
  lab_->curves()->setMetricName("loss/total");
  lab_->curves()->setRuns(runs);
}

}  // namespace smx::app
