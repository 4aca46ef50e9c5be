// The main window's stability lab: turns a plan (configs x seeds at one
// learning rate and batch) into queued runs, follows them into the lab's
// Table-10 cells (stable, recovered, or diverged and why), overlays their
// loss curves, and opens a diverged run's routing and router curves.
#include <QFileInfo>
#include <QMessageBox>
#include <QStatusBar>
#include <QTableView>

#include <algorithm>

#include "app/main_window.h"
#include "app/run_list_model.h"
#include "model/config/train_config.h"
#include "model/store/run_store.h"
#include "model/train/stability.h"
#include "widgets/stability_lab_view.h"
#include "widgets/training_curves_view.h"

namespace smx::app {

namespace {

std::vector<std::pair<int64_t, double>> series(const store::RunStore& store, qint64 run, const std::string& name) {
  std::vector<std::pair<int64_t, double>> out;
  for (const auto& p : store.metric(run, name)) out.emplace_back(p.step, p.value);
  return out;
}

double value_at(const std::vector<std::pair<int64_t, double>>& s, int64_t step) {
  for (const auto& [k, v] : s)
    if (k >= step) return v;
  return s.empty() ? 0 : s.back().second;
}

// What moved first in the lead-up to a divergence: the router's logits and entropy, the attention's scores
// and entropy, the gradient norm; each is checked for its first departure from where it stood 60 steps
// before (x1.5, the gradient norm x3), and the departures are told in order.
QString explain_divergence(const store::RunStore& store, qint64 run, const RunStability& verdict) {
  struct Signal {
    const char* metric;
    bool rising;
    double factor;
    const char* words;
  };
  static const Signal kSignals[] = {
      {"router/logit_max", true, 1.5, "router logits grew"},
      {"router/entropy", false, 1.5, "router entropy fell"},
      {"attention/logit_max", true, 1.5, "attention scores grew"},
      {"attention/entropy", false, 1.5, "attention entropy collapsed"},
      {"optim/grad_norm", true, 3.0, "gradient norm jumped"},
  };
  const int64_t to = verdict.step, from = std::max<int64_t>(0, to - 60);
  struct Found {
    int64_t step;
    QString text;
  };
  std::vector<Found> found;
  for (const auto& sig : kSignals) {
    const auto s = series(store, run, sig.metric);
    const int64_t at = first_departure(s, from, to, sig.rising, sig.factor);
    if (at < 0) continue;
    found.push_back({at, QStringLiteral("%1 %2 → %3 (step %4)")
                             .arg(QString::fromLatin1(sig.words))
                             .arg(value_at(s, from), 0, 'g', 3)
                             .arg(value_at(s, at), 0, 'g', 3)
                             .arg(at)});
  }
  std::stable_sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.step < b.step; });
  const QString end = verdict.kind == RunStability::NonFinite
                          ? MainWindow::tr("the loss went non-finite at step %1").arg(to)
                          : MainWindow::tr("the loss spiked at step %1").arg(to);
  if (found.empty())
    return MainWindow::tr("no router or attention curve moved in steps %1–%2 before %3").arg(from).arg(to).arg(end);
  QStringList parts;
  for (size_t i = 0; i < found.size(); ++i) parts << (i == 0 ? MainWindow::tr("first ") : QString()) + found[i].text;
  return parts.join("; then ") + "; " + end;
}

}  // namespace

QHash<QString, widgets::StabilityReference> MainWindow::labPaperReferences(const QStringList& configs) {
  // The paper's Table 10: stable runs out of 4 seeds at batch 64 · batch 256 (BERT-Base size).
  QHash<QString, widgets::StabilityReference> out;
  for (const QString& name : configs) {
    ModelConfig m;
    try {
      m = QFileInfo(name).suffix() == "json" ? config_from_file(name.toStdString()) : preset(name.toStdString());
    } catch (const std::exception&) {
      continue;
    }
    if (m.is_decoder()) continue;
    const bool all_attention = m.attention_layers == m.num_layers;
    if (all_attention && m.moe_layers == 0) out.insert(name, {"BERT-Base", "3/4 · 4/4"});
    else if (!all_attention && m.moe_layers > 0) out.insert(name, {"Sparse Mixer", "4/4 · 4/4"});
    else if (all_attention && m.moe_layers == m.num_layers) out.insert(name, {"sparse BERT-12", "1/4 · 0/4"});
    else if (all_attention && m.moe_layers > 0) out.insert(name, {"sparse BERT-4", "0/4 · 0/4"});
  }
  return out;
}

widgets::StabilityPlan MainWindow::defaultLabPlan() {
  // The paper's Table 10 set at the demo's size (BERT, Sparse Mixer, sparse BERT with MoE in half and in all
  // layers), 4 seeds, at the demo's own training setting: 16 runs fit in about 15 minutes on a 2-core CPU.
  // No setting searched at that budget made any of them diverge (README, "Stability at classroom scale"):
  // in 200 steps every model is still on the unigram plateau, so the lab shows the paper's counts beside
  // measured ones that do not reproduce them, and says why.
  widgets::StabilityPlan plan;
  plan.configs = {"demo-bert", "demo", "demo-sparse-bert-2", "demo-sparse-bert-4"};
  plan.seeds = 4;
  plan.learning_rate = 1e-3;
  plan.batch = 32;
  plan.steps = 200;
  plan.warmup = -1;
  plan.clip = 1.0;
  return plan;
}

void MainWindow::selectRunInList(qint64 runId) {
  for (int row = 0; row < runs_->rowCount(); ++row) {
    const QModelIndex index = runs_->index(row, 0);
    if (runs_->data(index, Qt::UserRole).toLongLong() != runId) continue;
    run_table_->selectRow(row);  // focuses the run through the selection
    break;
  }
  if (focus_run_ != runId) focusRun(runId);
}

void MainWindow::showLabRouting(qint64 runId, qint64 step) {
  selectRunInList(runId);
  jumpToStep(double(step));
}

void MainWindow::showLabCurves(qint64 runId, qint64 step) {
  selectRunInList(runId);
  metric_ = "router/logit_max";
  rebuildCurves();
  showTab("Curves");
  statusBar()->showMessage(tr("run %1 diverged at step %2: its router logit curve (pick router/entropy, "
                              "attention/entropy or loss/total above the plot to compare)")
                               .arg(runId)
                               .arg(step),
                           10000);
}

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
      r.options.training.warmup_steps = plan.warmup;
      r.options.training.clip_norm = plan.clip;
      r.options.training.seed = uint64_t(s);
      r.options.training.eval_every = 0;        // only the final evaluation
      r.options.training.checkpoint_every = 0;  // only the final checkpoint
      r.options.training.snapshot_every = std::max(10, plan.steps / 10);  // routing near any divergence step
      r.options.training.on_nonfinite = StabilityPolicy::Stop;
      r.options.training.on_spike = StabilityPolicy::Continue;  // a spike may recover: judged at the end
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
  lab_->setPaperReferences(labPaperReferences(plan.configs));
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
    if (store && runId != 0 && (status == "finished" || status == "diverged")) {
      // Judge the whole run: non-finite, or a spike it never came back from, is divergence; a spike it
      // recovered from is not (the stability monitor only flags; the lab runs continue past spikes).
      std::vector<int64_t> spikes;
      int64_t nonfinite = -1;
      for (const auto& e : store->events(runId)) {
        if (e.kind == "loss-spike") spikes.push_back(e.step);
        if (e.kind == "nonfinite" && nonfinite < 0) nonfinite = e.step;
      }
      const auto losses = series(*store, runId, "loss/total");
      const auto verdict = classify_run(losses, spikes, nonfinite, TrainConfig{}.spike_window);
      cell.verdict = QString::fromStdString(verdict.describe());
      if (verdict.diverged()) {
        cell.status = "diverged";
        cell.divergence_step = verdict.step;
        cell.explanation = explain_divergence(*store, runId, verdict);
      }
      if (!losses.empty()) cell.final_loss = losses.back().second;
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
