#include "widgets/speed_view.h"

#include <QApplication>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QToolButton>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <qcustomplot.h>

#include "widgets/plot_export.h"
#include "widgets/view_style.h"

namespace smx::widgets {

namespace {

constexpr double kClassroomScale = 1.5;
constexpr double kBarWidth = 0.36, kBarGap = 0.04;  // key units; two bars per preset
const QColor kTrain(31, 119, 180), kInfer(255, 127, 14);

double nan() { return std::numeric_limits<double>::quiet_NaN(); }
bool usable(double ms) { return std::isfinite(ms) && ms > 0; }

QString ratio_text(double r) { return QStringLiteral("%1x").arg(r, 0, 'f', 2); }
/// A ratio for the table: "1.65x", or a dash when there is none.
QString cell_text(double r) { return std::isfinite(r) && r > 0 ? ratio_text(r) : QStringLiteral("\u2014"); }

// The Sparse Mixer paper's Table 8 (TPU, per example; BERT-Base is the baseline):
//   BERT               102 GFLOPs/ex, 112M, inference 1.34 ms/ex,         training 4.75 ms/ex
//   Sparse Mixer        73 GFLOPs/ex, 180M, inference 0.84 ms/ex (1.61x), training 2.87 ms/ex (1.65x)
//   Fast Sparse Mixer   60 GFLOPs/ex, 180M, inference 0.68 ms/ex (1.98x), training 2.51 ms/ex (1.89x)
struct PaperRow {
  const char* preset;
  double train, inference;  // speed-ups over BERT-Base, as printed
};
constexpr PaperRow kTable8[] = {{"bert-base", 1.0, 1.0}, {"sparse-mixer", 1.65, 1.61}, {"fast-sparse-mixer", 1.89, 1.98}};

enum Column { kPreset, kMeasuredTrain, kMeasuredInfer, kPaperTrain, kPaperInfer, kFlopRatio, kColumns };

// One chart of grouped training/inference bars in `rect`, with each value
// written over its bar. Returns the number of bars drawn.
int grouped_bars(QCustomPlot* plot, QCPAxisRect* rect, QCPBarsGroup* group, const QStringList& names,
                 const QVector<double>& train, const QVector<double>& infer, QCPLegend* legend,
                 const std::function<QString(double)>& label, const QFont& label_font) {
  QCPAxis* key = rect->axis(QCPAxis::atBottom);
  QCPAxis* value = rect->axis(QCPAxis::atLeft);
  QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
  for (int i = 0; i < names.size(); ++i) ticker->addTick(i, names[i]);
  key->setTicker(ticker);
  key->setSubTicks(false);
  key->setTickLength(0, 4);
  key->grid()->setVisible(false);
  key->setRange(-0.6, names.size() - 0.4);

  int drawn = 0;
  double top = 0;
  const QVector<double>* series[] = {&train, &infer};
  for (int s = 0; s < 2; ++s) {
    auto* bars = new QCPBars(key, value);
    bars->setName(s == 0 ? QObject::tr("training") : QObject::tr("inference"));
    bars->setWidth(kBarWidth);
    bars->setPen(Qt::NoPen);
    bars->setBrush(s == 0 ? kTrain : kInfer);
    bars->setBarsGroup(group);
    if (legend) bars->addToLegend(legend);
    QVector<double> keys, values;
    for (int i = 0; i < series[s]->size(); ++i) {
      const double v = (*series[s])[i];
      if (!std::isfinite(v)) continue;  // a missing number leaves a gap
      keys << i;
      values << v;
      top = std::max(top, v);
      // The group puts the two bars side by side, centres half a bar plus gap off the key.
      auto* text = new QCPItemText(plot);
      text->setClipAxisRect(rect);
      text->position->setAxes(key, value);
      text->position->setCoords(i + (s == 0 ? -1 : 1) * (kBarWidth + kBarGap) / 2, v);
      text->setPositionAlignment(Qt::AlignHCenter | Qt::AlignBottom);
      text->setPadding(QMargins(0, 0, 0, 2));
      text->setFont(label_font);
      text->setText(label(v));
    }
    bars->setData(keys, values, true);
    drawn += static_cast<int>(keys.size());
  }
  value->setRange(0, top > 0 ? top * 1.18 : 1.0);  // room for the labels over the tallest bar
  return drawn;
}

}  // namespace

SpeedView::SpeedView(QWidget* parent) : QWidget(parent) {
  batch_ = new QSpinBox(this);
  batch_->setObjectName("batch");
  batch_->setRange(1, 512);
  batch_->setValue(8);
  batch_->setToolTip(tr("Examples per timed step. Larger batches use the hardware better, so each example gets cheaper."));
  seq_len_ = new QSpinBox(this);
  seq_len_->setObjectName("seqLen");
  seq_len_->setRange(16, 512);
  seq_len_->setValue(128);
  seq_len_->setToolTip(tr("Tokens per example. Attention costs grow with the square of this length; "
                          "linear mixing grows more slowly."));
  batch_label_ = new QLabel(tr("Batch"), this);
  seq_len_label_ = new QLabel(tr("Sequence length"), this);
  run_ = new QPushButton(tr("Run benchmark"), this);
  run_->setObjectName("run");
  run_->setToolTip(tr("Time a few training and inference steps of every model on this machine."));
  export_ = new QToolButton(this);
  export_->setText(tr("Export…"));
  export_->setToolTip(tr("Save the charts as an image (PNG, SVG, PDF) or the timings as CSV."));
  status_ = new QLabel(this);
  status_->setObjectName("status");
  styleAsStatus(status_);
  error_ = new QLabel(this);
  error_->setObjectName("error");
  styleAsError(error_);
  plot_ = new QCustomPlot(this);
  plot_->setObjectName("speedPlot");
  plot_->setMinimumHeight(220);
  // A new legend makes itself the plot's legend; every bar added would land in it, the ratio bars too.
  plot_->setAutoAddPlottableToLegend(false);
  plot_->setToolTip(tr("Left: milliseconds per example (shorter is faster). Right: how many times faster each "
                       "model is than the first one."));
  summary_ = new QLabel(this);
  summary_->setObjectName("summary");
  summary_->setWordWrap(true);
  summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  table_caption_ = new QLabel(this);
  table_caption_->setWordWrap(true);
  table_ = new QTableWidget(0, kColumns, this);
  table_->setObjectName("comparison");
  table_->setHorizontalHeaderLabels({tr("Model"), tr("Measured training"), tr("Measured inference"),
                                     tr("Paper training (Table 8)"), tr("Paper inference (Table 8)"),
                                     tr("FLOP ratio (cost model)")});
  table_->horizontalHeaderItem(kMeasuredTrain)->setToolTip(tr("Times faster than the first model, on this machine."));
  table_->horizontalHeaderItem(kMeasuredInfer)->setToolTip(tr("Times faster than the first model, on this machine."));
  table_->horizontalHeaderItem(kPaperTrain)
      ->setToolTip(tr("The Sparse Mixer paper's Table 8: times faster than BERT-Base on TPU. A dash: not in the table."));
  table_->horizontalHeaderItem(kPaperInfer)
      ->setToolTip(tr("The Sparse Mixer paper's Table 8: times faster than BERT-Base on TPU. A dash: not in the table."));
  table_->horizontalHeaderItem(kFlopRatio)
      ->setToolTip(tr("Forward FLOPs per example of the first model over this one's, from the cost model: the "
                      "speed-up if time followed arithmetic alone."));
  table_->verticalHeader()->hide();
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSelectionMode(QAbstractItemView::NoSelection);
  table_->setFocusPolicy(Qt::NoFocus);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  table_->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);

  auto* row = new QHBoxLayout;
  row->addWidget(batch_label_);
  row->addWidget(batch_);
  row->addSpacing(8);
  row->addWidget(seq_len_label_);
  row->addWidget(seq_len_);
  row->addSpacing(8);
  row->addWidget(run_);
  row->addStretch(1);
  row->addWidget(export_);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(row);
  layout->addWidget(status_);
  layout->addWidget(error_);
  layout->addWidget(plot_, 1);
  layout->addWidget(table_caption_);
  layout->addWidget(table_);
  layout->addWidget(summary_);

  connect(run_, &QPushButton::clicked, this, [this] { Q_EMIT runRequested(batch_->value(), seq_len_->value()); });
  connect(export_, &QToolButton::clicked, this, [this] {
    exportWithDialog(this, tr("Export speed"), QString(), [this](const QString& path, QString* error) { return exportView(path, error); });
  });

  updateStatus();
  rebuildPlot();
  updateSummary();
  rebuildTable();
}

void SpeedView::setResult(const SpeedResult& result) {
  if (!result.error.isEmpty()) {
    error_->setText(result.error);
    error_->show();
    return;  // the previous bars stay
  }
  error_->clear();
  error_->hide();
  result_ = result;
  has_result_ = true;
  rebuildPlot();
  updateStatus();
  updateSummary();
  rebuildTable();
}

void SpeedView::setBusy(bool busy, const QString& message) {
  busy_ = busy;
  busy_message_ = message;
  run_->setEnabled(!busy);
  batch_->setEnabled(!busy);
  seq_len_->setEnabled(!busy);
  updateStatus();
}

void SpeedView::setExpectedPresets(const QStringList& presets) {
  expected_ = presets;
  updateSummary();
  rebuildTable();
}

void SpeedView::setEstimates(const QVector<SpeedEstimate>& estimates) {
  estimates_ = estimates;
  rebuildTable();
}

bool SpeedView::paperSpeedup(const QString& preset, double* train, double* inference) {
  for (const auto& row : kTable8)
    if (preset == QLatin1String(row.preset)) {
      if (train) *train = row.train;
      if (inference) *inference = row.inference;
      return true;
    }
  return false;
}

QStringList SpeedView::comparisonPresets() const {
  if (!has_result_ || result_.rows.isEmpty()) return expected_;
  QStringList out;
  for (const auto& r : result_.rows) out << r.preset;
  return out;
}

double SpeedView::gflopsOf(const QString& preset) const {
  for (const auto& e : estimates_)
    if (e.preset == preset && e.forward_gflops_per_example > 0) return e.forward_gflops_per_example;
  if (has_result_)
    for (const auto& r : result_.rows)
      if (r.preset == preset && r.gflops_per_example > 0) return r.gflops_per_example;
  return 0;
}

double SpeedView::flopRatio(int row) const {
  const QStringList presets = comparisonPresets();
  if (row < 0 || row >= presets.size()) return nan();
  const double base = gflopsOf(presets.front()), mine = gflopsOf(presets[row]);
  return base > 0 && mine > 0 ? base / mine : nan();
}

int SpeedView::comparisonRowCount() const { return table_->rowCount(); }

QString SpeedView::comparisonText(int row, int column) const {
  const auto* item = table_->item(row, column);
  return item ? item->text() : QString();
}

void SpeedView::rebuildTable() {
  const QStringList presets = comparisonPresets();
  table_->setRowCount(int(presets.size()));
  for (int i = 0; i < presets.size(); ++i) {
    double paper_train = nan(), paper_infer = nan();
    paperSpeedup(presets[i], &paper_train, &paper_infer);
    // Measured speed-ups exist for the result's rows only (the table lists the expected presets before one).
    const bool measured = has_result_ && !result_.rows.isEmpty();
    const QString cells[kColumns] = {presets[i],
                                     cell_text(measured ? speedup(i, false) : nan()),
                                     cell_text(measured ? speedup(i, true) : nan()),
                                     cell_text(paper_train),
                                     cell_text(paper_infer),
                                     cell_text(flopRatio(i))};
    for (int c = 0; c < kColumns; ++c) {
      auto* item = new QTableWidgetItem(cells[c]);
      item->setTextAlignment(c == kPreset ? Qt::AlignLeft | Qt::AlignVCenter : Qt::AlignCenter);
      table_->setItem(i, c, item);
    }
  }
  const QString base = presets.isEmpty() ? QString() : presets.front();
  table_caption_->setText(
      tr("Times faster than %1: measured here, the paper's Table 8 (TPU, over BERT-Base), and what the "
         "arithmetic predicts (forward FLOPs per example, cost model).")
          .arg(base.isEmpty() ? tr("the first model") : base));
  table_->resizeRowsToContents();
  int height = table_->horizontalHeader()->sizeHint().height() + 2 * table_->frameWidth();
  for (int i = 0; i < table_->rowCount(); ++i) height += table_->rowHeight(i);
  table_->setFixedHeight(height);
}

void SpeedView::updateStatus() {
  QString text;
  if (busy_) {
    text = busy_message_.isEmpty() ? tr("benchmarking…") : busy_message_;
  } else if (has_result_) {
    text = tr("on %1 · batch %2 · sequence length %3")
               .arg(result_.device.isEmpty() ? tr("unknown device") : result_.device)
               .arg(result_.batch)
               .arg(result_.seq_len);
  }
  status_->setText(text);
  status_->setVisible(!text.isEmpty());
}

double SpeedView::speedup(int row, bool inference) const {
  if (row < 0 || row >= result_.rows.size() || result_.rows.isEmpty()) return nan();
  auto ms = [inference](const SpeedRow& r) { return inference ? r.infer_ms_per_example : r.train_ms_per_example; };
  const double base = ms(result_.rows.front()), mine = ms(result_.rows[row]);
  return usable(base) && usable(mine) ? base / mine : nan();
}

void SpeedView::updateSummary() {
  QStringList lines;
  const auto& rows = result_.rows;
  if (has_result_ && !rows.isEmpty()) {
    const QString base = rows.front().preset;
    for (int i = 1; i < rows.size(); ++i) {
      const double t = speedup(i, false), f = speedup(i, true);
      auto word = [](double r) { return std::isfinite(r) ? ratio_text(r) : QObject::tr("n/a"); };
      lines << tr("%1 vs %2: training %3, inference %4").arg(rows[i].preset, base, word(t), word(f));
    }
    for (const auto& r : rows)
      if (!usable(r.train_ms_per_example) || !usable(r.infer_ms_per_example))
        lines << tr("%1: incomplete timing (a missing bar)").arg(r.preset);
    QStringList missing;
    for (const auto& preset : expected_)
      if (std::none_of(rows.begin(), rows.end(), [&](const SpeedRow& r) { return r.preset == preset; }))
        missing << preset;
    if (!missing.isEmpty()) lines << tr("not measured: %1").arg(missing.join(", "));
  }
  summary_->setText(lines.join('\n'));
  summary_->setVisible(!lines.isEmpty());
}

QFont SpeedView::scaledFont(double factor, bool bold) const {
  QFont f = font();  // the widget font already carries the classroom scale
  if (f.pointSizeF() > 0) f.setPointSizeF(f.pointSizeF() * factor);
  else f.setPixelSize(static_cast<int>(f.pixelSize() * factor));
  f.setBold(bold);
  return f;
}

void SpeedView::rebuildPlot() {
  plot_->clearItems();
  plot_->clearPlottables();
  qDeleteAll(groups_);
  groups_.clear();
  plot_->plotLayout()->clear();  // deletes the axis rects and the default legend; built again below
  bar_count_ = 0;

  const auto& rows = result_.rows;
  if (!has_result_ || rows.isEmpty()) {
    auto* hint = new QCPTextElement(
        plot_, tr("Press Run benchmark to time training and inference\nper example for each model on this machine."),
        scaledFont(1.15));
    hint->setTextColor(QColor(110, 110, 110));
    // Empty elements above and below share the height the text does not need: it sits in the middle.
    plot_->plotLayout()->addElement(0, 0, new QCPLayoutElement(plot_));
    plot_->plotLayout()->addElement(1, 0, hint);
    plot_->plotLayout()->addElement(2, 0, new QCPLayoutElement(plot_));
    plot_->replot(QCustomPlot::rpQueuedReplot);
    return;
  }

  const QFont font = scaledFont(), small = scaledFont(0.85), title_font = scaledFont(1.05, true);
  QStringList names;
  QVector<double> train, infer, train_up, infer_up;
  for (int i = 0; i < rows.size(); ++i) {
    names << rows[i].preset;
    train << (usable(rows[i].train_ms_per_example) ? rows[i].train_ms_per_example : nan());
    infer << (usable(rows[i].infer_ms_per_example) ? rows[i].infer_ms_per_example : nan());
    train_up << speedup(i, false);
    infer_up << speedup(i, true);
  }

  auto make_rect = [&](int column, const QString& title, const QString& value_label) {
    plot_->plotLayout()->addElement(0, column, new QCPTextElement(plot_, title, title_font));
    auto* rect = new QCPAxisRect(plot_);
    plot_->plotLayout()->addElement(1, column, rect);
    for (auto* axis : rect->axes()) {
      axis->setTickLabelFont(font);
      axis->setLabelFont(font);
    }
    rect->axis(QCPAxis::atLeft)->setLabel(value_label);
    auto* group = new QCPBarsGroup(plot_);
    group->setSpacingType(QCPBarsGroup::stPlotCoords);
    group->setSpacing(kBarGap);
    groups_ << group;
    return rect;
  };

  auto* times = make_rect(0, tr("Time per example"), tr("ms per example"));
  auto* legend = new QCPLegend;
  times->insetLayout()->addElement(legend, Qt::AlignTop | Qt::AlignRight);
  legend->setLayer(QStringLiteral("legend"));
  legend->setFont(small);
  legend->setBrush(QColor(255, 255, 255, 220));
  bar_count_ = grouped_bars(plot_, times, groups_[0], names, train, infer, legend,
                            [](double v) { return QString::number(v, 'f', v < 10 ? 2 : 1); }, small);
  for (int i = 0; i < legend->itemCount(); ++i) legend->item(i)->setFont(small);

  auto* ratios = make_rect(1, tr("Speed-up vs %1").arg(rows.front().preset), tr("times faster"));
  grouped_bars(plot_, ratios, groups_[1], names, train_up, infer_up, nullptr, ratio_text, small);
  // Parity line: bars above it are faster than the first model.
  auto* parity = new QCPItemStraightLine(plot_);
  parity->setClipAxisRect(ratios);
  parity->point1->setAxes(ratios->axis(QCPAxis::atBottom), ratios->axis(QCPAxis::atLeft));
  parity->point2->setAxes(ratios->axis(QCPAxis::atBottom), ratios->axis(QCPAxis::atLeft));
  parity->point1->setCoords(0, 1);
  parity->point2->setCoords(1, 1);
  parity->setPen(QPen(QColor(90, 90, 90), 1, Qt::DashLine));

  plot_->plotLayout()->setColumnStretchFactors({3, 2});
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void SpeedView::setClassroomMode(bool on) {
  classroom_ = on;
  QFont f = QApplication::font();
  if (on) {
    if (f.pointSizeF() > 0) f.setPointSizeF(f.pointSizeF() * kClassroomScale);
    else f.setPixelSize(static_cast<int>(f.pixelSize() * kClassroomScale));
  }
  setFont(f);
  for (QWidget* w : {static_cast<QWidget*>(batch_), static_cast<QWidget*>(seq_len_),
                     static_cast<QWidget*>(batch_label_), static_cast<QWidget*>(seq_len_label_)})
    w->setVisible(!on);
  rebuildPlot();
  rebuildTable();  // row heights follow the font
}

bool SpeedView::exportView(const QString& path, QString* error) const {
  if (!has_result_ || result_.rows.isEmpty()) {
    if (error) *error = tr("nothing to export yet: run the benchmark first");
    return false;
  }
  auto csv = [this] {
    CsvTable t;
    t.header = {"preset", "train_ms_per_example", "infer_ms_per_example", "gflops_per_example", "train_speedup",
                "infer_speedup", "device", "batch", "seq_len", "paper_train_speedup", "paper_infer_speedup",
                "flop_ratio"};
    auto num = [](double v) { return std::isfinite(v) ? QString::number(v, 'g', 6) : QString(); };
    for (int i = 0; i < result_.rows.size(); ++i) {
      const auto& r = result_.rows[i];
      double paper_train = nan(), paper_infer = nan();  // empty cells: not in the paper's Table 8
      paperSpeedup(r.preset, &paper_train, &paper_infer);
      t.rows.append({r.preset, num(r.train_ms_per_example), num(r.infer_ms_per_example),
                     r.gflops_per_example > 0 ? num(r.gflops_per_example) : QString(), num(speedup(i, false)),
                     num(speedup(i, true)), result_.device, QString::number(result_.batch),
                     QString::number(result_.seq_len), num(paper_train), num(paper_infer), num(flopRatio(i))});
    }
    return t;
  };
  return exportPlot(plot_, path, csv, error);
}

int SpeedView::barCount() const { return bar_count_; }
int SpeedView::batch() const { return batch_->value(); }
int SpeedView::seqLen() const { return seq_len_->value(); }
QString SpeedView::summaryText() const { return summary_->text(); }
QString SpeedView::errorText() const { return error_->isHidden() ? QString() : error_->text(); }

}  // namespace smx::widgets
