// The main window's router comparison (the sMLP paper's Table 4): turns a
// plan (LM presets, steps, one seed) into queued runs on the same data,
// follows them into the comparison table and overlays their held-out
// perplexity.
#include <QFileInfo>
#include <QMessageBox>
#include <algorithm>
#include <cmath>

#include "app/main_window.h"
#include "app/run_list_model.h"
#include "model/config/cost.h"
#include "model/config/train_config.h"
#include "model/store/run_store.h"
#include "widgets/router_comparison_view.h"
#include "widgets/training_curves_view.h"

namespace smx::app {

namespace {

// "sMLP (det. sMoE + BASE)", "Switch", "gMLP (dense)", ...: the first word names the paper's row.
QString router_label(const ModelConfig& m) {
  auto router = [&] {
    switch (m.router.kind) {
      case RouterKind::Switch: return QString("Switch");
      case RouterKind::GShard: return QString("GShard");
      case RouterKind::Base: return QString("BASE");
      case RouterKind::Hash: return QString("HASH");
      case RouterKind::TokensChoose: return QString("Tokens-Choose");
      case RouterKind::ExpertsChoose: return QString("Experts-Choose");
    }
    return QString();
  };
  if (m.smoe_routing == SmoeRouting::Deterministic) return QString("sMLP (det. sMoE + %1)").arg(router());
  if (m.smoe_routing == SmoeRouting::Partial) return QString("sMLP-partial (sMoE + %1)").arg(router());
  if (m.smoe_routing == SmoeRouting::Learned) return QString("sMLP-learned (leaks; sMoE + %1)").arg(router());
  if (m.moe_layer_count() == 0) return m.lm_mixing == LmMixing::Sgu ? QString("gMLP (dense)") : QString("Transformer (dense)");
  return m.lm_mixing == LmMixing::Sgu ? QString("%1 (gMLP-MoE)").arg(router()) : router();
}

double median(std::vector<double> v) {
  if (v.empty()) return qQNaN();
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return qQNaN();
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

std::vector<double> values(const store::RunStore& store, qint64 run, const char* metric) {
  std::vector<double> out;
  for (const auto& p : store.metric(run, metric))
    if (std::isfinite(p.value)) out.push_back(p.value);
  return out;
}

}  // namespace

void MainWindow::runComparison(const widgets::RouterComparisonPlan& plan) {
  QVector<RunRequest> requests;
  QVector<widgets::RouterComparisonRow> rows;
  QHash<QString, int> index;
  const int number = compare_counter_ + 1;
  const QString group = QString("compare-%1").arg(number);
  for (const QString& name : plan.presets) {
    ModelConfig m;
    try {
      m = QFileInfo(name).suffix() == "json" ? config_from_file(name.toStdString()) : preset(name.toStdString());
    } catch (const std::exception& e) {
      QMessageBox::warning(this, tr("Router comparison"), QString::fromUtf8(e.what()));
      return;
    }
    if (!m.is_decoder()) {
      QMessageBox::warning(this, tr("Router comparison"),
                           tr("%1 is an encoder; the comparison trains language models (perplexity).").arg(name));
      return;
    }
    RunRequest r;
    r.options.model = m;
    r.options.training = recommended_pretraining(m);
    r.options.training.steps = plan.steps;
    r.options.training.seed = uint64_t(plan.seed);  // the same windows and initial randomness for all
    r.options.training.warmup_steps = std::min<int64_t>(r.options.training.warmup_steps, plan.steps / 4);
    r.options.training.eval_every = std::max(plan.steps / 8, 1);
    r.options.training.checkpoint_every = 0;  // only the final checkpoint
    r.options.data_dir = data_dir_.toStdString();
    r.options.run_name = QString("compare %1 · %2").arg(number).arg(name).toStdString();
    r.label = QString::fromStdString(r.options.run_name);
    r.group = group;
    widgets::RouterComparisonRow row;
    row.preset = name;
    row.router = router_label(m);
    row.status = "queued";
    row.forward_mflops = model_cost(m).forward_flops / double(m.max_seq_len) / 1e6;
    index.insert(r.label, rows.size());
    rows.push_back(row);
    requests.push_back(std::move(r));
  }
  compare_counter_ = number;
  compare_group_ = group;
  compare_rows_ = rows;
  compare_row_index_ = index;
  compare_->setRows(compare_rows_);
  compare_->curves()->setRuns({});
  log(tr("router comparison: %1 runs queued").arg(requests.size()));
  launch(requests);
}

void MainWindow::updateComparisonRow(qint64 runId, const QString& group, const QString& label, const QString& status,
                                     const RunOutcome* outcome) {
  if (group != compare_group_ || !compare_row_index_.contains(label)) return;
  auto& row = compare_rows_[compare_row_index_.value(label)];
  row.run_id = runId;
  row.status = status;
  if (outcome) {
    row.perplexity = outcome->last_eval.get("eval/perplexity", qQNaN());
    if (auto* store = runs_->store(); store && runId != 0) {
      row.tokens_per_s = median(values(*store, runId, "speed/tokens_per_s"));
      row.load_spread = mean(values(*store, runId, "moe/load_spread"));
      row.dropped = mean(values(*store, runId, "moe/dropped_fraction"));
    }
  }
  compare_->setRows(compare_rows_);
  if (outcome) refreshComparisonCurves();
}

void MainWindow::cancelComparison() {
  if (compare_group_.isEmpty()) return;
  controller_->cancelGroup(compare_group_);
  for (auto& r : compare_rows_)
    if (r.status == "queued") r.status = "cancelled";
  compare_->setRows(compare_rows_);
}

void MainWindow::refreshComparisonCurves() {
  auto* store = runs_->store();
  if (!store) return;
  QVector<widgets::CurveRun> runs;
  for (const auto& row : compare_rows_)
    if (row.run_id != 0)
      runs.push_back(curveRunFromStore(*store, row.run_id, "eval/perplexity", row.preset, QString()));
  compare_->curves()->setMetricName("eval/perplexity");
  compare_->curves()->setRuns(runs);
}

}  // namespace smx::app
