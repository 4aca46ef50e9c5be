#include "widgets/capacity_view.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QStackedWidget>
#include <QToolButton>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <limits>
#include <qcustomplot.h>

#include "widgets/heat_map.h"
#include "widgets/plot_export.h"
#include "widgets/view_style.h"

namespace smx::widgets {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const QColor kDropped(214, 39, 40), kUnrouted(127, 127, 127), kTrain(160, 160, 160), kEval(31, 119, 180),
    kBars(255, 127, 14);

double finite_or_nan(double v) { return std::isfinite(v) ? v : kNaN; }

// Routers that never drop a choice (experts-choose, base, hash): their panels show tokens per number of experts.
bool experts_choose(const telemetry::MoeLayerStats& s) { return !router_drops_choices(QString::fromStdString(s.router)); }

QString router_name(const telemetry::MoeLayerStats& s) {
  return QString::fromStdString(s.router).replace('-', ' ');
}

QString percent(double fraction) {
  return std::isfinite(fraction) ? QString::number(100.0 * fraction, 'f', 1) + "%" : QStringLiteral("?");
}

// One row of entries in a corner, so it hides little of a short plot.
QCPLegend* add_legend(QCPAxisRect* rect, Qt::Alignment where) {
  auto* legend = new QCPLegend;
  rect->insetLayout()->addElement(legend, where);
  legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
  legend->setWrap(0);
  legend->setLayer("legend");
  legend->setBrush(QColor(255, 255, 255, 210));
  legend->setBorderPen(QPen(QColor(190, 190, 190)));
  return legend;
}

QCPItemText* add_note(QCustomPlot* plot, QCPAxisRect* rect, double y) {
  auto* note = new QCPItemText(plot);
  note->setClipAxisRect(rect);
  note->setClipToAxisRect(true);
  note->position->setAxisRect(rect);
  note->position->setType(QCPItemPosition::ptAxisRectRatio);
  note->position->setCoords(0.5, y);
  note->setPositionAlignment(Qt::AlignHCenter | Qt::AlignTop);
  note->setColor(QColor(80, 80, 80));
  note->setBrush(QColor(255, 255, 255, 220));
  note->setPadding(QMargins(4, 2, 4, 2));
  return note;
}

// At most `max_ticks` labelled snapshots, evenly spread, labelled with their step.
void set_step_ticks(QCPAxisTickerText* ticker, const QVector<qint64>& steps, int max_ticks = 8) {
  ticker->clear();
  const int n = steps.size();
  if (n == 0) return;
  const int ticks = std::min(n, max_ticks);
  for (int k = 0; k < ticks; ++k) {
    const int i = ticks == 1 ? 0 : static_cast<int>(std::lround(double(k) * (n - 1) / (ticks - 1)));
    ticker->addTick(i, steps[i] >= 0 ? QString::number(steps[i]) : QString());
  }
}

}  // namespace

CapacityView::CapacityView(QWidget* parent)
    : QWidget(parent),
      stack_(new QStackedWidget(this)),
      hint_(new QLabel(this)),
      layer_combo_(new QComboBox(this)),
      eval_factor_(new QDoubleSpinBox(this)),
      apply_(new QPushButton(tr("Apply"), this)),
      eval_label_(new QLabel(tr("Eval capacity factor:"), this)),
      eval_summary_(new QLabel(this)),
      eval_error_(new QLabel(this)),
      export_(new QToolButton(this)),
      plot_(new QCustomPlot(this)),
      base_font_(font()) {
  layer_combo_->setObjectName("layerCombo");
  layer_combo_->setToolTip(tr("The MoE layer to show. Each MoE layer has its own router and its own experts."));
  layer_combo_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  eval_factor_->setObjectName("evalFactor");
  eval_factor_->setRange(0.25, 8.0);
  eval_factor_->setSingleStep(0.25);
  eval_factor_->setDecimals(2);
  eval_factor_->setValue(1.0);
  eval_factor_->setToolTip(tr("Capacity factor for this check only: each expert holds factor x tokens per group / experts "
                              "tokens. Training keeps its own factor."));
  apply_->setObjectName("applyEvalFactor");
  apply_->setToolTip(tr("Route a held-out batch with this capacity factor and compare how full the experts get."));
  eval_summary_->setObjectName("evalSummary");
  eval_error_->setObjectName("evalError");
  styleAsError(eval_error_);
  export_->setObjectName("exportButton");
  export_->setText(tr("Export…"));
  export_->setToolTip(tr("Save the plot as a PNG, SVG or PDF picture, or its numbers as a CSV table."));

  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Layer:"), this));
  controls->addWidget(layer_combo_);
  controls->addSpacing(16);
  controls->addWidget(eval_label_);
  controls->addWidget(eval_factor_);
  controls->addWidget(apply_);
  controls->addWidget(eval_summary_, 1);
  controls->addStretch(1);  // keeps the controls left when the summary is hidden
  controls->addWidget(export_);

  styleAsHint(hint_);
  stack_->addWidget(hint_);
  stack_->addWidget(plot_);
  plot_->setMinimumSize(480, 360);

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(controls);
  layout->addWidget(eval_error_);
  layout->addWidget(stack_, 1);

  buildPlot();
  updateFonts();
  redraw(false);

  connect(layer_combo_, QOverload<int>::of(&QComboBox::currentIndexChanged), this, [this] { redraw(false); });
  connect(apply_, &QPushButton::clicked, this, [this] {
    const double factor = eval_factor_->value();
    eval_summary_->setText(tr("routing a held-out batch at capacity factor %1…").arg(factor));
    Q_EMIT evalCapacityFactorRequested(factor);
  });
  connect(export_, &QToolButton::clicked, this, &CapacityView::exportDialog);
}

CapacityView::~CapacityView() {
  // Put the eval panel back into the layout so the plot deletes it.
  if (classroom_) setClassroomMode(false);
}

void CapacityView::buildPlot() {
  plot_->plotLayout()->clear();
  plot_->setAutoAddPlottableToLegend(false);
  auto* main = plot_->plotLayout();

  fill_title_ = new QCPTextElement(plot_, QString());
  main->addElement(0, 0, fill_title_);
  auto* top = new QCPLayoutGrid;
  main->addElement(1, 0, top);
  bottom_grid_ = new QCPLayoutGrid;
  main->addElement(2, 0, bottom_grid_);
  main->setRowStretchFactor(1, 3);
  main->setRowStretchFactor(2, 2);

  // Fill over time: x = snapshot, y = expert (expert 0 on top).
  fill_rect_ = new QCPAxisRect(plot_);
  top->addElement(0, 0, fill_rect_);
  drop_rect_ = new QCPAxisRect(plot_);
  top->addElement(1, 0, drop_rect_);
  top->setRowStretchFactors({2.6, 1.6});
  auto* columns = new QCPMarginGroup(plot_);
  fill_rect_->setMarginGroup(QCP::msLeft | QCP::msRight, columns);
  drop_rect_->setMarginGroup(QCP::msLeft | QCP::msRight, columns);

  fill_map_ = new HeatMap(fill_rect_->axis(QCPAxis::atBottom), fill_rect_->axis(QCPAxis::atLeft));
  fill_map_->setGradient(viridisGradient());
  fill_map_->setDataRange(QCPRange(0, 1));
  bar_ = new ColorBar(top, 0, 1, fill_map_, tr("fill (share of capacity)"));
  auto step_ticker = QSharedPointer<QCPAxisTickerText>::create();
  for (auto* axis : fill_rect_->axes()) axis->grid()->setVisible(false);
  fill_rect_->axis(QCPAxis::atBottom)->setTicker(step_ticker);
  fill_rect_->axis(QCPAxis::atBottom)->setTickLabels(false);  // the drop plot right under it has them
  auto* experts_axis = fill_rect_->axis(QCPAxis::atLeft);
  experts_axis->setLabel(tr("expert"));
  experts_axis->setRangeReversed(true);
  auto expert_ticker = QSharedPointer<QCPAxisTickerFixed>::create();
  expert_ticker->setTickStep(1);
  expert_ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
  experts_axis->setTicker(expert_ticker);

  // Dropped and unrouted share over the same snapshots.
  drop_rect_->axis(QCPAxis::atBottom)->setTicker(step_ticker);
  drop_rect_->axis(QCPAxis::atBottom)->setLabel(tr("step"));
  drop_rect_->axis(QCPAxis::atLeft)->setLabel(tr("%"));
  dropped_graph_ = plot_->addGraph(drop_rect_->axis(QCPAxis::atBottom), drop_rect_->axis(QCPAxis::atLeft));
  dropped_graph_->setName(tr("choices dropped at capacity"));
  dropped_graph_->setPen(QPen(kDropped, 1.5));
  unrouted_graph_ = plot_->addGraph(drop_rect_->axis(QCPAxis::atBottom), drop_rect_->axis(QCPAxis::atLeft));
  unrouted_graph_->setName(tr("tokens no expert took"));
  unrouted_graph_->setPen(QPen(kUnrouted, 1.5));
  auto* drop_legend = add_legend(drop_rect_, Qt::AlignTop | Qt::AlignRight);
  drop_rect_->axis(QCPAxis::atLeft)->ticker()->setTickCount(3);
  dropped_graph_->addToLegend(drop_legend);
  unrouted_graph_->addToLegend(drop_legend);

  // Latest snapshot: dropped by position (or experts per token).
  pos_title_ = new QCPTextElement(plot_, QString());
  bottom_grid_->addElement(0, 0, pos_title_);
  pos_rect_ = new QCPAxisRect(plot_);
  bottom_grid_->addElement(1, 0, pos_rect_);
  pos_bars_ = new QCPBars(pos_rect_->axis(QCPAxis::atBottom), pos_rect_->axis(QCPAxis::atLeft));
  pos_bars_->setPen(Qt::NoPen);
  pos_bars_->setBrush(kBars);
  pos_bars_->setWidth(0.8);
  pos_note_ = add_note(plot_, pos_rect_, 0.04);
  pos_rect_->axis(QCPAxis::atBottom)->grid()->setVisible(false);

  // Eval capacity factor: fill at that factor next to training's latest fill.
  eval_title_ = new QCPTextElement(plot_, QString());
  bottom_grid_->addElement(0, 1, eval_title_);
  eval_rect_ = new QCPAxisRect(plot_);
  bottom_grid_->addElement(1, 1, eval_rect_);
  auto* group = new QCPBarsGroup(plot_);
  group->setSpacing(0);
  train_bars_ = new QCPBars(eval_rect_->axis(QCPAxis::atBottom), eval_rect_->axis(QCPAxis::atLeft));
  eval_bars_ = new QCPBars(eval_rect_->axis(QCPAxis::atBottom), eval_rect_->axis(QCPAxis::atLeft));
  for (auto* bars : {train_bars_, eval_bars_}) {
    bars->setWidth(0.4);
    bars->setPen(Qt::NoPen);
    bars->setBarsGroup(group);
  }
  train_bars_->setBrush(kTrain);
  eval_bars_->setBrush(kEval);
  train_bars_->setName(tr("training factor (latest)"));
  auto* eval_legend = add_legend(eval_rect_, Qt::AlignTop | Qt::AlignRight);
  train_bars_->addToLegend(eval_legend);
  eval_bars_->addToLegend(eval_legend);
  eval_rect_->axis(QCPAxis::atBottom)->setLabel(tr("expert"));
  eval_rect_->axis(QCPAxis::atBottom)->grid()->setVisible(false);
  auto expert_ticks = QSharedPointer<QCPAxisTickerFixed>::create();
  expert_ticks->setTickStep(1);
  expert_ticks->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
  eval_rect_->axis(QCPAxis::atBottom)->setTicker(expert_ticks);
  eval_rect_->axis(QCPAxis::atLeft)->setLabel(tr("fill (share of capacity)"));
  eval_note_ = add_note(plot_, eval_rect_, 0.4);
}

void CapacityView::setSnapshots(const QVector<SnapshotPtr>& all) {
  // Live runs only append: keep what was read and read the new ones.
  const bool append = !snapshots_.isEmpty() && all.size() >= snapshots_.size() &&
                      std::equal(snapshots_.begin(), snapshots_.end(), all.begin());
  if (!append) {
    snapshots_.clear();
    steps_.clear();
    layers_.clear();
    drawn_points_ = 0;
  }
  for (int i = snapshots_.size(); i < all.size(); ++i) {
    snapshots_.append(all[i]);
    ingest(all[i]);
  }
  updateLayerCombo();
  redraw(append);
}

void CapacityView::ingest(const SnapshotPtr& s) {
  const int index = steps_.size();
  steps_.append(s ? s->step : -1);
  if (s)
    for (const auto& st : s->moe) layers_[st.layer];  // a layer seen for the first time
  for (auto& [block, series] : layers_) {
    // Pad layers that started late, then leave this snapshot empty until filled below.
    series.fill.resize(index + 1);
    series.dropped.resize(index + 1, kNaN);
    series.unrouted.resize(index + 1, kNaN);
    series.fill[index].clear();
    series.dropped[index] = series.unrouted[index] = kNaN;
  }
  if (!s) return;
  for (const auto& st : s->moe) {
    auto& series = layers_[st.layer];
    series.fill[index] = QVector<float>(st.fill.begin(), st.fill.end());
    series.experts = std::max(series.experts, static_cast<int>(st.fill.size()));
    series.dropped[index] = finite_or_nan(100.0 * st.dropped_fraction);
    series.unrouted[index] = finite_or_nan(100.0 * st.unrouted_fraction);
  }
}

void CapacityView::updateLayerCombo() {
  QStringList labels;
  QList<int> blocks;
  for (const auto& [block, series] : layers_) {
    const auto* st = latestStats(block);
    QString label = tr("Block %1").arg(block);
    if (st) label += tr(": %1, %2 experts").arg(router_name(*st)).arg(st->num_experts);
    labels << label;
    blocks << block;
  }
  QStringList current;
  for (int i = 0; i < layer_combo_->count(); ++i) current << layer_combo_->itemText(i);
  if (current == labels) return;
  const int keep = currentBlock();
  const QSignalBlocker block_signals(layer_combo_);
  layer_combo_->clear();
  for (int i = 0; i < blocks.size(); ++i) layer_combo_->addItem(labels[i], blocks[i]);
  const int index = layer_combo_->findData(keep);
  layer_combo_->setCurrentIndex(index >= 0 ? index : 0);
  drawn_points_ = 0;  // the combo may now point at another layer
}

int CapacityView::currentBlock() const {
  return layer_combo_->currentIndex() >= 0 ? layer_combo_->currentData().toInt() : -1;
}

const telemetry::MoeLayerStats* CapacityView::latestStats(int block, int* snapshotIndex) const {
  for (int i = snapshots_.size() - 1; i >= 0; --i) {
    if (!snapshots_[i]) continue;
    for (const auto& st : snapshots_[i]->moe)
      if (st.layer == block) {
        if (snapshotIndex) *snapshotIndex = i;
        return &st;
      }
  }
  return nullptr;
}

void CapacityView::redraw(bool incremental) {
  const int block = currentBlock();
  const auto it = layers_.find(block);
  if (it == layers_.end()) {
    hint_->setText(snapshots_.isEmpty() ? tr("Start a run to see how full each expert's capacity gets.")
                                        : tr("This model has no MoE layers, so there is no expert capacity to show."));
    stack_->setCurrentWidget(hint_);
    export_->setEnabled(false);
    fill_map_->setData(0, 0, {});
    pos_bars_->data()->clear();
    eval_bars_->data()->clear();
    train_bars_->data()->clear();
    dropped_graph_->data()->clear();
    unrouted_graph_->data()->clear();
    drawn_points_ = 0;
    fill_title_->setText(QString());
    return;
  }
  stack_->setCurrentWidget(plot_);
  export_->setEnabled(true);
  if (!incremental || drawn_block_ != block) drawn_points_ = 0;
  drawFill(it->second);
  drawn_block_ = block;
  drawLatest(block);
  drawEval(block);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void CapacityView::drawFill(const LayerSeries& series) {
  const int n = series.fill.size(), experts = series.experts;
  QVector<double> values(experts * n, kNaN);
  for (int s = 0; s < n; ++s) {
    const auto& f = series.fill[s];
    for (int e = 0; e < f.size(); ++e) values[e * n + s] = finite_or_nan(f[e]);
  }
  fill_map_->setData(experts, n, std::move(values));
  fill_rect_->axis(QCPAxis::atBottom)->setRange(-0.5, n - 0.5);
  fill_rect_->axis(QCPAxis::atLeft)->setRange(-0.5, std::max(experts, 1) - 0.5);
  set_step_ticks(static_cast<QCPAxisTickerText*>(fill_rect_->axis(QCPAxis::atBottom)->ticker().data()), steps_);

  // The line graphs only grow during a live run: hand them the new points.
  const int from = std::min(drawn_points_, n);
  if (from == 0) {
    dropped_graph_->data()->clear();
    unrouted_graph_->data()->clear();
  }
  QVector<double> keys, dropped, unrouted;
  for (int s = from; s < n; ++s) {
    keys << s;
    dropped << series.dropped[s];
    unrouted << series.unrouted[s];
  }
  dropped_graph_->addData(keys, dropped, true);
  unrouted_graph_->addData(keys, unrouted, true);
  drawn_points_ = n;
  // Few points: markers on a smooth line. Many: thin, aliased lines (a
  // dashed or wide antialiased pen on a jagged curve costs many ms per replot).
  const bool dense = n > 100;
  const auto style = n <= 40 ? QCPScatterStyle(QCPScatterStyle::ssCircle, 4) : QCPScatterStyle();
  for (auto* g : {dropped_graph_, unrouted_graph_}) {
    g->setScatterStyle(style);
    g->setAntialiased(!dense);
    QPen pen = g->pen();
    pen.setWidthF(dense ? 1.0 : 1.5);
    g->setPen(pen);
  }
  double top = 0;
  for (double v : series.dropped)
    if (std::isfinite(v)) top = std::max(top, v);
  for (double v : series.unrouted)
    if (std::isfinite(v)) top = std::max(top, v);
  drop_rect_->axis(QCPAxis::atBottom)->setRange(-0.5, n - 0.5);
  // The legend is a row across the top of this short plot: leave it the top
  // third, so the newest point (at the right, under it) is not hidden.
  drop_rect_->axis(QCPAxis::atLeft)->setRange(0, std::max(5.0, top * 1.5));
}

void CapacityView::drawLatest(int block) {
  int index = -1;
  const auto* st = latestStats(block, &index);
  pos_bars_->data()->clear();
  pos_note_->setVisible(false);
  auto* x = pos_rect_->axis(QCPAxis::atBottom);
  auto* y = pos_rect_->axis(QCPAxis::atLeft);
  if (!st) {
    fill_title_->setText(tr("Block %1").arg(block));
    pos_title_->setText(QString());
    return;
  }
  QString caption = tr("Block %1 (%2): capacity %3 tokens per expert per group of %4")
                        .arg(block)
                        .arg(router_name(*st))
                        .arg(st->capacity)
                        .arg(st->tokens_per_group);
  if (st->groups > 1) caption += tr(", %1 groups").arg(st->groups);
  fill_title_->setText(caption);
  const QString step = QString::number(steps_.value(index));

  QVector<double> keys, values;
  latest_experts_choose_ = experts_choose(*st);
  if (latest_experts_choose_) {
    // Experts Choose never drops a choice; what can go wrong is a token no expert took.
    pos_title_->setText(tr("Experts per token (step %1)").arg(step));
    double total = 0;
    for (float c : st->experts_per_token)
      if (std::isfinite(c)) total += c;
    auto ticker = QSharedPointer<QCPAxisTickerText>::create();
    const int bins = static_cast<int>(st->experts_per_token.size());
    for (int i = 0; i < bins; ++i) {
      const double c = st->experts_per_token[i];
      keys << i;
      values << (total > 0 && std::isfinite(c) ? 100.0 * c / total : kNaN);
      ticker->addTick(i, i == bins - 1 && bins > 1 ? QString("%1+").arg(i) : QString::number(i));
    }
    x->setTicker(ticker);
    x->setLabel(tr("experts that took the token"));
    y->setLabel(tr("% of tokens"));
    pos_note_->setText(tr("experts choose never drop; unrouted tokens: %1").arg(percent(st->unrouted_fraction)));
    pos_note_->setVisible(true);
    x->setRange(-0.6, std::max(bins, 1) - 0.4);
  } else {
    pos_title_->setText(tr("Tokens that lost a choice to capacity, by position (step %1)").arg(step));
    for (size_t i = 0; i < st->dropped_by_position.size(); ++i) {
      keys << double(i);
      values << finite_or_nan(100.0 * st->dropped_by_position[i]);
    }
    if (!qSharedPointerDynamicCast<QCPAxisTickerFixed>(x->ticker())) {
      auto ticker = QSharedPointer<QCPAxisTickerFixed>::create();
      ticker->setTickStep(1);
      ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
      x->setTicker(ticker);
    }
    x->setLabel(tr("position in the sequence"));
    y->setLabel(tr("% of tokens there"));
    if (keys.isEmpty()) {
      pos_note_->setText(tr("no per-position numbers in this snapshot"));
      pos_note_->setVisible(true);
    }
    x->setRange(-0.6, std::max<int>(keys.size(), 1) - 0.4);
  }
  // QCPBars has no gap for NaN: leave those positions out.
  QVector<double> k2, v2;
  double top = 0;
  for (int i = 0; i < keys.size(); ++i)
    if (std::isfinite(values[i])) {
      k2 << keys[i];
      v2 << values[i];
      top = std::max(top, values[i]);
    }
  pos_bars_->setData(k2, v2, true);
  y->setRange(0, std::max(5.0, top * 1.25));
}

void CapacityView::drawEval(int block) {
  train_bars_->data()->clear();
  eval_bars_->data()->clear();
  const auto* st = latestStats(block);
  const telemetry::MoeLayerStats* at_eval = nullptr;
  if (has_probe_ && probe_.error.isEmpty())
    for (const auto& l : probe_.layers)
      if (l.layer == block) at_eval = &l;
  const QString factor = QString::number(probe_.capacity_factor, 'g', 3);
  eval_bars_->setName(tr("eval factor %1").arg(factor));
  eval_error_->setText(has_probe_ ? probe_.error : QString());
  eval_error_->setVisible(has_probe_ && !probe_.error.isEmpty() && !classroom_);
  if (!at_eval) {
    eval_title_->setText(tr("Fill at an eval capacity factor"));
    eval_note_->setText(!has_probe_               ? tr("Choose an eval capacity factor and press Apply")
                        : !probe_.error.isEmpty() ? tr("The held-out batch could not be routed")
                                                  : tr("No result for this layer at factor %1").arg(factor));
    eval_note_->setVisible(!classroom_);
    if (has_probe_ && probe_.error.isEmpty()) eval_summary_->setText(eval_note_->text());
    return;
  }
  eval_note_->setVisible(false);
  eval_title_->setText(tr("Fill at eval capacity factor %1 vs training (held-out batch)").arg(factor));
  QVector<double> keys, values;
  double top = 1.0;
  auto add = [&](QCPBars* bars, const std::vector<float>& fill) {
    keys.clear();
    values.clear();
    for (size_t e = 0; e < fill.size(); ++e)
      if (std::isfinite(fill[e])) {
        keys << double(e);
        values << fill[e];
        top = std::max(top, double(fill[e]));
      }
    bars->setData(keys, values, true);
  };
  add(eval_bars_, at_eval->fill);
  if (st) add(train_bars_, st->fill);
  const int experts = std::max<int>(at_eval->fill.size(), st ? st->fill.size() : 0);
  eval_rect_->axis(QCPAxis::atBottom)->setRange(-0.6, std::max(experts, 1) - 0.4);
  eval_rect_->axis(QCPAxis::atLeft)->setRange(0, top * 1.15);
  QString summary = tr("At capacity factor %1 (capacity %2): %3 of choices dropped, %4 of tokens unrouted")
                        .arg(factor)
                        .arg(at_eval->capacity)
                        .arg(percent(at_eval->dropped_fraction), percent(at_eval->unrouted_fraction));
  if (experts_choose(*at_eval)) summary += tr(" (this router never drops a choice)");
  if (!probe_.weights.isEmpty()) summary += tr("; %1").arg(probe_.weights);  // which step's weights routed it
  eval_summary_->setText(summary);
}

void CapacityView::setEvalProbe(const CapacityProbe& probe) {
  probe_ = probe;
  has_probe_ = true;
  if (probe_.error.isEmpty()) eval_summary_->clear();
  else eval_summary_->setText(tr("no result at capacity factor %1").arg(probe_.capacity_factor));
  if (std::isfinite(probe_.capacity_factor)) eval_factor_->setValue(probe_.capacity_factor);
  if (layers_.count(currentBlock())) {
    drawEval(currentBlock());
    plot_->replot(QCustomPlot::rpQueuedReplot);
  } else {
    eval_error_->setText(probe_.error);
    eval_error_->setVisible(!probe_.error.isEmpty() && !classroom_);
  }
}

void CapacityView::setClassroomMode(bool on) {
  if (on == classroom_) return;
  classroom_ = on;
  for (QWidget* w : {static_cast<QWidget*>(eval_label_), static_cast<QWidget*>(eval_factor_),
                     static_cast<QWidget*>(apply_), static_cast<QWidget*>(eval_summary_)})
    w->setVisible(!on);
  eval_error_->setVisible(!on && !eval_error_->text().isEmpty());
  // The eval panel leaves the plot altogether, so the rest gets its room.
  if (on) {
    bottom_grid_->take(eval_title_);
    bottom_grid_->take(eval_rect_);
    bottom_grid_->simplify();
  } else {
    bottom_grid_->addElement(0, 1, eval_title_);
    bottom_grid_->addElement(1, 1, eval_rect_);
  }
  eval_title_->setVisible(!on);
  eval_rect_->setVisible(!on);
  eval_note_->setVisible(!on && eval_bars_->data()->isEmpty() && !eval_note_->text().isEmpty());
  updateFonts();
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void CapacityView::updateFonts() {
  const double k = classroom_ ? 1.5 : 1.0;
  QFont f = base_font_;
  if (base_font_.pointSizeF() > 0) f.setPointSizeF(base_font_.pointSizeF() * k);
  else f.setPixelSize(static_cast<int>(std::lround(base_font_.pixelSize() * k)));
  setFont(f);
  QFont title = f;
  title.setBold(true);
  for (QCPAxisRect* rect : std::initializer_list<QCPAxisRect*>{fill_rect_, bar_, drop_rect_, pos_rect_, eval_rect_}) {
    for (auto* axis : rect->axes()) {
      axis->setTickLabelFont(f);
      axis->setLabelFont(f);
    }
    for (auto* el : rect->insetLayout()->elements(false))
      if (auto* legend = qobject_cast<QCPLegend*>(el)) legend->setFont(f);
  }
  for (auto* t : {fill_title_, pos_title_, eval_title_}) t->setFont(title);
  for (auto* note : {pos_note_, eval_note_}) note->setFont(f);
}

bool CapacityView::exportView(const QString& path, QString* error) const {
  const int block = currentBlock();
  if (!layers_.count(block)) {
    if (error) *error = tr("nothing to export yet: no MoE layer has reported");
    return false;
  }
  auto csv = [this, block] {
    CsvTable t;
    t.header = QStringList{"panel", "block", "x", "series", "value"};
    const auto& series = layers_.at(block);
    const QString b = QString::number(block);
    for (int s = 0; s < series.fill.size(); ++s) {
      const QString step = QString::number(steps_.value(s));
      for (int e = 0; e < series.fill[s].size(); ++e)
        t.rows.append({"fill", b, step, QString("expert %1").arg(e), QString::number(series.fill[s][e])});
      t.rows.append({"dropped_percent", b, step, "choices dropped", QString::number(series.dropped[s])});
      t.rows.append({"unrouted_percent", b, step, "tokens unrouted", QString::number(series.unrouted[s])});
    }
    const QString panel = latest_experts_choose_ ? "experts_per_token_percent" : "dropped_by_position_percent";
    for (auto it = pos_bars_->data()->constBegin(); it != pos_bars_->data()->constEnd(); ++it)
      t.rows.append({panel, b, QString::number(it->key), pos_title_->text(), QString::number(it->value)});
    for (auto it = eval_bars_->data()->constBegin(); it != eval_bars_->data()->constEnd(); ++it)
      t.rows.append({"eval_fill", b, QString::number(it->key), QString("capacity factor %1").arg(probe_.capacity_factor),
                     QString::number(it->value)});
    for (auto it = train_bars_->data()->constBegin(); it != train_bars_->data()->constEnd(); ++it)
      t.rows.append({"train_fill_latest", b, QString::number(it->key), "training factor", QString::number(it->value)});
    return t;
  };
  // The queued replot may not have run yet; exports must show the current data.
  plot_->replot(QCustomPlot::rpImmediateRefresh);
  return exportPlot(plot_, path, csv, error, std::max(1000, plot_->width()), std::max(760, plot_->height()));
}

void CapacityView::exportDialog() {
  exportWithDialog(this, tr("Export capacity view"), "capacity.png", [this](const QString& path, QString* error) { return exportView(path, error); });
}

int CapacityView::layerCount() const { return layer_combo_->count(); }
void CapacityView::setCurrentLayer(int index) {
  if (index >= 0 && index < layer_combo_->count()) layer_combo_->setCurrentIndex(index);
}
int CapacityView::currentLayer() const { return layer_combo_->currentIndex(); }
int CapacityView::fillCellCount() const { return fill_map_->cellCount(); }
double CapacityView::fillValue(int expert, int snapshot) const {
  if (expert < 0 || expert >= fill_map_->rows() || snapshot < 0 || snapshot >= fill_map_->cols()) return kNaN;
  return fill_map_->value(expert, snapshot);
}
int CapacityView::positionBarCount() const { return pos_bars_->data()->size(); }
int CapacityView::evalBarCount() const { return eval_bars_->data()->size(); }
QString CapacityView::caption() const { return fill_title_->text(); }
QString CapacityView::evalSummary() const { return eval_summary_->text(); }
QString CapacityView::evalError() const { return eval_error_->text(); }

}  // namespace smx::widgets
