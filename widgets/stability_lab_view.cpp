#include "widgets/stability_lab_view.h"

#include <QApplication>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QListWidget>
#include <QLocale>
#include <QPainter>
#include <QPushButton>
#include <QRegularExpression>
#include <QSpinBox>
#include <QSplitter>
#include <QStackedWidget>
#include <QStyledItemDelegate>
#include <QTableWidget>
#include <QToolButton>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "widgets/plot_export.h"
#include "widgets/training_curves_view.h"
#include "widgets/view_style.h"

namespace smx::widgets {

namespace {

enum Column { kConfig, kPaper, kStable, kDivergence, kLoss, kSeeds, kColumns };
enum DiagnosisColumn { kRun, kVerdict, kFirst, kDiagnosisColumns };
// The seed grid column keeps the runs' statuses here, in seed order.
constexpr int kStatusesRole = Qt::UserRole + 1;
constexpr double kClassroomScale = 1.5;

bool is_pending(const QString& status) { return status == "queued" || status == "running"; }

// Learning rates span six decades: "3e-4" reads better than "0.000300", and
// the arrows step 1-2-5 per decade instead of by a fixed amount.
class LearningRateBox : public QDoubleSpinBox {
 public:
  explicit LearningRateBox(QWidget* parent) : QDoubleSpinBox(parent) {
    setDecimals(12);  // QDoubleSpinBox rounds to this many places; 1e-6 needs at least 6
    setRange(1e-6, 1.0);
    setValue(1e-3);
  }
  QString textFromValue(double v) const override {
    if (!(v > 0)) return QStringLiteral("0");
    if (v >= 0.01) return QLocale::c().toString(v, 'g', 3);
    int exponent = static_cast<int>(std::floor(std::log10(v)));
    double mantissa = std::round(v / std::pow(10.0, exponent) * 100.0) / 100.0;
    if (mantissa >= 10.0) {
      mantissa /= 10.0;
      ++exponent;
    }
    return QLocale::c().toString(mantissa, 'g', 3) + "e" + QString::number(exponent);
  }
  double valueFromText(const QString& text) const override {
    bool ok = false;
    const double v = QLocale::c().toDouble(text.trimmed(), &ok);
    return ok ? v : value();
  }
  QValidator::State validate(QString& text, int&) const override {
    const QString t = text.trimmed();
    if (t.isEmpty()) return QValidator::Intermediate;
    bool ok = false;
    const double v = QLocale::c().toDouble(t, &ok);
    if (ok && v >= minimum() && v <= maximum()) return QValidator::Acceptable;
    // Half-typed numbers ("1e", "2.5e-") are on their way to a valid one.
    static const QRegularExpression partial(QStringLiteral("^[0-9]*\\.?[0-9]*([eE][-+]?[0-9]*)?$"));
    return partial.match(t).hasMatch() ? QValidator::Intermediate : QValidator::Invalid;
  }
  void stepBy(int steps) override {
    // 1e-6, 2e-6, 5e-6, 1e-5, ... 1.
    QVector<double> ladder;
    for (int e = -6; e <= 0; ++e)
      for (double m : {1.0, 2.0, 5.0})
        if (m * std::pow(10.0, e) <= 1.0 + 1e-12) ladder << m * std::pow(10.0, e);
    double v = value();
    for (; steps > 0; --steps) {
      auto it = std::find_if(ladder.begin(), ladder.end(), [&](double x) { return x > v * (1 + 1e-9); });
      v = it == ladder.end() ? ladder.back() : *it;
    }
    for (; steps < 0; ++steps) {
      auto it = std::find_if(ladder.rbegin(), ladder.rend(), [&](double x) { return x < v * (1 - 1e-9); });
      v = it == ladder.rend() ? ladder.front() : *it;
    }
    setValue(v);
  }
};

// Paints one small square per seed, coloured by the run's status.
class SeedCellsDelegate : public QStyledItemDelegate {
 public:
  using QStyledItemDelegate::QStyledItemDelegate;
  void paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const override {
    const QStringList statuses = index.data(kStatusesRole).toStringList();
    QStyleOptionViewItem opt = option;
    initStyleOption(&opt, index);
    opt.text.clear();  // the display text is for copying and CSV; the squares say it here
    opt.widget->style()->drawControl(QStyle::CE_ItemViewItem, &opt, painter, opt.widget);
    const int side = std::max(8, option.rect.height() - 10), gap = 3;
    painter->save();
    painter->setRenderHint(QPainter::Antialiasing);
    int x = option.rect.left() + 4;
    const int y = option.rect.top() + (option.rect.height() - side) / 2;
    for (const auto& status : statuses) {
      painter->setPen(StabilityLabView::statusColor(status).darker(130));
      painter->setBrush(StabilityLabView::statusColor(status));
      painter->drawRoundedRect(QRectF(x, y, side, side), 2, 2);
      x += side + gap;
    }
    painter->restore();
  }
  QSize sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const override {
    const int n = static_cast<int>(index.data(kStatusesRole).toStringList().size());
    const int h = QStyledItemDelegate::sizeHint(option, index).height();
    return {8 + n * (std::max(8, h - 10) + 3), h};
  }
};

QTableWidgetItem* cell(QTableWidget* table, int row, int column) {
  auto* item = table->item(row, column);
  if (!item) {
    item = new QTableWidgetItem;
    item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable);
    if (column == kLoss) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    table->setItem(row, column, item);
  }
  return item;
}

QString legend_html() {
  QStringList parts;
  for (const char* s : {"finished", "diverged", "running", "queued", "stopped", "failed"})
    parts << QStringLiteral("<span style=\"color:%1\">&#9632;</span> %2")
                 .arg(StabilityLabView::statusColor(s).name(), QString::fromLatin1(s));
  return parts.join("&nbsp;&nbsp; ");
}

}  // namespace

QColor StabilityLabView::statusColor(const QString& status) {
  if (status == "finished") return {44, 160, 44};
  if (status == "diverged") return {214, 39, 40};
  if (status == "running") return {31, 119, 180};
  if (status == "stopped") return {240, 170, 50};
  if (status == "failed") return {110, 60, 130};
  return {190, 190, 190};  // queued or unknown
}

StabilityLabView::StabilityLabView(QWidget* parent) : QWidget(parent) {
  qRegisterMetaType<StabilityPlan>();

  // --- the form ---
  configs_ = new QListWidget(this);
  configs_->setObjectName("configs");
  configs_->setToolTip(tr("Check the models to compare. Each one is trained once per seed with the same settings."));
  configs_->setMinimumHeight(90);
  seeds_ = new QSpinBox(this);
  seeds_->setObjectName("seeds");
  seeds_->setRange(1, 20);
  seeds_->setValue(3);
  seeds_->setToolTip(tr("How many times each model is trained, each time from a different random start. "
                        "More seeds show more reliably how often a model diverges."));
  learning_rate_ = new LearningRateBox(this);
  learning_rate_->setObjectName("learningRate");
  learning_rate_->setToolTip(tr("Step size of the optimizer (1e-6 to 1). Too large a learning rate makes some "
                                "models diverge: their loss becomes infinite or NaN."));
  batch_ = new QSpinBox(this);
  batch_->setObjectName("batch");
  batch_->setRange(1, 4096);
  batch_->setValue(32);
  batch_->setToolTip(tr("Sequences per training step."));
  steps_ = new QSpinBox(this);
  steps_->setObjectName("steps");
  steps_->setRange(1, 1'000'000);
  steps_->setSingleStep(100);
  steps_->setValue(300);
  steps_->setToolTip(tr("Training steps per run. A run that survives all of them counts as stable."));
  warmup_ = new QSpinBox(this);
  warmup_->setObjectName("warmup");
  warmup_->setRange(-1, 1'000'000);
  warmup_->setSpecialValueText(tr("10% of steps"));
  warmup_->setValue(-1);
  warmup_->setToolTip(tr("Steps over which the learning rate rises from 0 to its peak. A short warm-up "
                         "is a classic way to make a fragile model diverge."));
  clip_ = new QDoubleSpinBox(this);
  clip_->setObjectName("clip");
  clip_->setRange(0, 1000);
  clip_->setDecimals(2);
  clip_->setSpecialValueText(tr("off"));
  clip_->setValue(1.0);
  clip_->setToolTip(tr("Largest gradient norm of a step (larger gradients are scaled down); 0 turns clipping off."));
  run_ = new QPushButton(tr("Run batch"), this);
  run_->setObjectName("run");
  run_->setDefault(true);
  run_->setToolTip(tr("Train every checked model with every seed, one run after the other."));
  cancel_ = new QPushButton(tr("Cancel"), this);
  cancel_->setObjectName("cancel");
  cancel_->setEnabled(false);
  cancel_->setToolTip(tr("Stop the running run and drop the queued ones."));
  export_ = new QToolButton(this);
  export_->setText(tr("Export…"));
  export_->setToolTip(tr("Save the loss curves as an image (PNG, SVG, PDF) or every run's result as CSV."));
  form_error_ = new QLabel(this);
  form_error_->setObjectName("formError");
  styleAsError(form_error_);

  configs_->setMaximumHeight(180);
  auto* box = new QGroupBox(tr("Batch"), this);
  auto* box_layout = new QVBoxLayout(box);
  box_layout->addWidget(new QLabel(tr("Models"), box));
  box_layout->addWidget(configs_);
  form_ = new QFormLayout;
  form_->addRow(tr("Seeds"), seeds_);
  form_->addRow(tr("Learning rate"), learning_rate_);
  form_->addRow(tr("Batch size"), batch_);
  form_->addRow(tr("Steps"), steps_);
  form_->addRow(tr("Warm-up"), warmup_);
  form_->addRow(tr("Gradient clip"), clip_);
  box_layout->addLayout(form_);
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(run_);
  buttons->addWidget(cancel_);
  buttons->addWidget(export_);
  box_layout->addLayout(buttons);
  box_layout->addWidget(form_error_);
  box_layout->addStretch(1);
  box->setMaximumWidth(320);

  // --- the results ---
  table_ = new QTableWidget(0, kColumns, this);
  table_->setObjectName("results");
  table_->setHorizontalHeaderLabels({tr("config"), tr("paper (Table 10)"), tr("stable"), tr("divergence steps"),
                                     tr("mean final loss"), tr("runs by seed")});
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->verticalHeader()->hide();
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setItemDelegateForColumn(kSeeds, new SeedCellsDelegate(table_));
  table_->horizontalHeaderItem(kPaper)->setToolTip(
      tr("The model of the Sparse Mixer paper's Table 10 this config stands for, and its stable runs out of 4 "
         "seeds at batch 64 · batch 256 (BERT-Base size, 1M steps)."));
  table_->horizontalHeaderItem(kStable)->setToolTip(
      tr("Runs that trained to the end without diverging, out of all runs of this model. A loss spike the run "
         "recovered from does not count as divergence."));
  table_->horizontalHeaderItem(kDivergence)
      ->setToolTip(tr("The step at which each diverged run's loss became infinite or NaN, or spiked and never "
                      "came back."));
  table_->horizontalHeaderItem(kLoss)->setToolTip(tr("Average loss at the last step over the stable runs."));
  legend_ = new QLabel(legend_html(), this);
  legend_->setTextFormat(Qt::RichText);
  context_note_ = new QLabel(this);
  context_note_->setObjectName("contextNote");
  context_note_->setWordWrap(true);
  styleAsHint(context_note_);
  context_note_->hide();
  curves_ = new TrainingCurvesView(this);
  curves_->setMetricName(tr("total loss"));
  curves_->setToolTip(tr("Loss of every run of the batch. A curve that stops early or shoots up diverged."));

  diagnosis_ = new QTableWidget(0, kDiagnosisColumns, this);
  diagnosis_->setObjectName("diagnosis");
  diagnosis_->setHorizontalHeaderLabels({tr("diverged run"), tr("what happened"), tr("what went wrong first")});
  diagnosis_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  diagnosis_->horizontalHeader()->setStretchLastSection(true);
  diagnosis_->verticalHeader()->hide();
  diagnosis_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  diagnosis_->setSelectionBehavior(QAbstractItemView::SelectRows);
  diagnosis_->setSelectionMode(QAbstractItemView::SingleSelection);
  diagnosis_->setWordWrap(true);
  diagnosis_->setToolTip(tr("Why each diverged run failed. Double-click a row to see its routing at the step it "
                            "diverged."));
  show_routing_ = new QPushButton(tr("Routing at that step"), this);
  show_routing_->setObjectName("showRouting");
  show_routing_->setToolTip(tr("Open the selected run's routing snapshot nearest the step it diverged."));
  show_curves_ = new QPushButton(tr("Router curves"), this);
  show_curves_->setObjectName("showCurves");
  show_curves_->setToolTip(tr("Show the selected run's router logit and entropy curves (Curves tab)."));
  auto* why_box = new QWidget(this);
  auto* why_layout = new QVBoxLayout(why_box);
  why_layout->setContentsMargins(0, 0, 0, 0);
  auto* why_title = new QLabel(tr("<b>Why they diverged</b>"), this);
  why_layout->addWidget(why_title);
  why_layout->addWidget(diagnosis_, 1);
  auto* why_buttons = new QHBoxLayout;
  why_buttons->addWidget(show_routing_);
  why_buttons->addWidget(show_curves_);
  why_buttons->addStretch(1);
  why_layout->addLayout(why_buttons);
  why_box->setObjectName("whyBox");
  why_box->hide();

  auto* table_box = new QWidget(this);
  auto* table_layout = new QVBoxLayout(table_box);
  table_layout->setContentsMargins(0, 0, 0, 0);
  table_layout->addWidget(table_, 1);
  table_layout->addWidget(legend_);
  table_layout->addWidget(context_note_);
  table_layout->addWidget(why_box, 1);
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(table_box);
  split->addWidget(curves_);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 2);
  auto* hint = new QLabel(tr("Check one or more models and a number of seeds, then press Run batch.\n"
                             "Every model is trained once per seed; the table shows how many runs\n"
                             "stayed stable and where the others diverged (the paper's Table 10)."),
                          this);
  styleAsHint(hint);
  results_ = new QStackedWidget(this);
  results_->addWidget(hint);
  results_->addWidget(split);

  auto* layout = new QHBoxLayout(this);
  layout->addWidget(box);
  layout->addWidget(results_, 1);

  connect(run_, &QPushButton::clicked, this, &StabilityLabView::requestRun);
  connect(cancel_, &QPushButton::clicked, this, [this] { Q_EMIT cancelRequested(); });
  connect(configs_, &QListWidget::itemChanged, this, [this] { form_error_->hide(); });
  auto selected_row = [this] { return diagnosis_->currentRow(); };
  connect(show_routing_, &QPushButton::clicked, this, [this, selected_row] { requestRouting(selected_row()); });
  connect(diagnosis_, &QTableWidget::cellDoubleClicked, this, [this](int row, int) { requestRouting(row); });
  connect(show_curves_, &QPushButton::clicked, this, [this, selected_row] {
    const auto cells = divergedCells();
    const int row = selected_row();
    if (row >= 0 && row < cells.size()) Q_EMIT curvesRequested(cells[row].run_id, cells[row].divergence_step);
  });
  connect(diagnosis_, &QTableWidget::itemSelectionChanged, this, [this] { updateButtons(); });
  connect(export_, &QToolButton::clicked, this, [this] {
    exportWithDialog(this, tr("Export stability lab"), QString(), [this](const QString& path, QString* error) { return exportView(path, error); });
  });
}

void StabilityLabView::setAvailableConfigs(const QStringList& presets) {
  const StabilityPlan before = plan();
  QSignalBlocker block(configs_);
  configs_->clear();
  for (const auto& name : presets) {
    auto* item = new QListWidgetItem(name, configs_);
    item->setData(Qt::UserRole, name);
    item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsUserCheckable | Qt::ItemIsSelectable);
    item->setCheckState(before.configs.contains(name) ? Qt::Checked : Qt::Unchecked);
  }
}

void StabilityLabView::setPlan(const StabilityPlan& plan) {
  QSignalBlocker block(configs_);
  for (const auto& config : plan.configs) {
    bool known = false;
    for (int i = 0; i < configs_->count() && !known; ++i) known = configs_->item(i)->data(Qt::UserRole) == config;
    if (known) continue;
    // A config file: show its name, keep the path.
    auto* item = new QListWidgetItem(QFileInfo(config).fileName(), configs_);
    item->setData(Qt::UserRole, config);
    item->setToolTip(config);
    item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsUserCheckable | Qt::ItemIsSelectable);
  }
  for (int i = 0; i < configs_->count(); ++i) {
    auto* item = configs_->item(i);
    item->setCheckState(plan.configs.contains(item->data(Qt::UserRole).toString()) ? Qt::Checked : Qt::Unchecked);
  }
  seeds_->setValue(plan.seeds);
  learning_rate_->setValue(plan.learning_rate);
  batch_->setValue(plan.batch);
  steps_->setValue(plan.steps);
  warmup_->setValue(plan.warmup);
  clip_->setValue(plan.clip);
}

StabilityPlan StabilityLabView::plan() const {
  StabilityPlan p;
  for (int i = 0; i < configs_->count(); ++i)
    if (configs_->item(i)->checkState() == Qt::Checked) p.configs << configs_->item(i)->data(Qt::UserRole).toString();
  p.seeds = seeds_->value();
  p.learning_rate = learning_rate_->value();
  p.batch = batch_->value();
  p.steps = steps_->value();
  p.warmup = warmup_->value();
  p.clip = clip_->value();
  return p;
}

void StabilityLabView::requestRun() {
  const StabilityPlan p = plan();
  if (p.configs.isEmpty()) {
    form_error_->setText(tr("Check at least one model to run."));
    form_error_->show();
    return;
  }
  form_error_->hide();
  Q_EMIT runRequested(p);
}

void StabilityLabView::setCells(const QVector<StabilityCell>& cells) {
  cells_ = cells;
  rebuildTable();
  rebuildDiagnosis();
  updateButtons();
}

void StabilityLabView::setPaperReferences(const QHash<QString, StabilityReference>& byConfig) {
  paper_ = byConfig;
  rebuildTable();
}

void StabilityLabView::setContextNote(const QString& text) {
  context_note_->setText(text);
  context_note_->setVisible(!text.isEmpty());
}

QString StabilityLabView::contextNote() const { return context_note_->text(); }

QString StabilityLabView::paperText(const QString& config) const {
  const auto it = paper_.constFind(config);
  return it == paper_.constEnd() ? QString() : it->model + ": " + it->stable;
}

QVector<StabilityCell> StabilityLabView::divergedCells() const {
  QVector<StabilityCell> out;
  for (const auto& c : cells_)
    if (c.status == "diverged") out << c;
  return out;
}

void StabilityLabView::rebuildDiagnosis() {
  const auto diverged = divergedCells();
  diagnosis_->setRowCount(diverged.size());
  for (int r = 0; r < diverged.size(); ++r) {
    const auto& c = diverged[r];
    const QString name = QFileInfo(c.config).fileName().isEmpty() ? c.config : QFileInfo(c.config).fileName();
    const QString texts[kDiagnosisColumns] = {
        tr("%1 · seed %2 (run %3)").arg(name).arg(c.seed).arg(c.run_id),
        c.verdict.isEmpty() ? tr("diverged at step %1").arg(c.divergence_step) : c.verdict,
        c.explanation.isEmpty() ? QStringLiteral("—") : c.explanation};
    for (int col = 0; col < kDiagnosisColumns; ++col) {
      auto* item = diagnosis_->item(r, col);
      if (!item) {
        item = new QTableWidgetItem;
        item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable);
        diagnosis_->setItem(r, col, item);
      }
      item->setText(texts[col]);
      item->setToolTip(texts[col]);
    }
  }
  diagnosis_->resizeRowsToContents();
  if (auto* box = findChild<QWidget*>("whyBox")) box->setVisible(!diverged.isEmpty());
}

int StabilityLabView::diagnosisRowCount() const { return diagnosis_->rowCount(); }

QString StabilityLabView::diagnosisText(int row) const {
  if (row < 0 || row >= diagnosis_->rowCount()) return {};
  QStringList parts;
  for (int col = 0; col < kDiagnosisColumns; ++col)
    if (auto* item = diagnosis_->item(row, col)) parts << item->text();
  return parts.join(" | ");
}

void StabilityLabView::requestRouting(int row) {
  const auto cells = divergedCells();
  if (row < 0 || row >= cells.size()) return;
  Q_EMIT routingAtStepRequested(cells[row].run_id, cells[row].divergence_step);
}

QStringList StabilityLabView::configOrder() const {
  QStringList order;
  for (const auto& c : cells_)
    if (!order.contains(c.config)) order << c.config;
  return order;
}

void StabilityLabView::rebuildTable() {
  const QStringList order = configOrder();
  results_->setCurrentIndex(order.isEmpty() ? 0 : 1);
  table_->setRowCount(order.size());
  for (int r = 0; r < order.size(); ++r) {
    QVector<StabilityCell> runs;
    for (const auto& c : cells_)
      if (c.config == order[r]) runs << c;
    std::stable_sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) { return a.seed < b.seed; });
    int diverged = 0, pending = 0, finished_finite = 0;
    double loss_sum = 0;
    QVector<qint64> steps;
    bool unknown_step = false;
    QStringList statuses, tips;
    for (const auto& run : runs) {
      statuses << run.status;
      QString tip = tr("seed %1: %2").arg(run.seed).arg(run.status);
      if (run.status == "diverged") {
        ++diverged;
        if (run.divergence_step >= 0) steps << run.divergence_step;
        else unknown_step = true;
        tip += run.verdict.isEmpty() ? (run.divergence_step >= 0 ? tr(" at step %1").arg(run.divergence_step) : QString())
                                     : ": " + run.verdict;
      } else if (run.status == "finished" && std::isfinite(run.final_loss)) {
        ++finished_finite;
        loss_sum += run.final_loss;
        tip += tr(", final loss %1").arg(run.final_loss, 0, 'f', 3);
        if (!run.verdict.isEmpty() && run.verdict != "stable") tip += " (" + run.verdict + ")";
      } else if (is_pending(run.status)) {
        ++pending;
        if (run.status == "running") tip += tr(", step %1").arg(run.steps_done);
      }
      tips << tip;
    }
    std::sort(steps.begin(), steps.end());
    QStringList step_text;
    for (auto s : steps) step_text << QString::number(s);
    if (unknown_step) step_text << "?";

    cell(table_, r, kConfig)->setText(QFileInfo(order[r]).fileName().isEmpty() ? order[r] : QFileInfo(order[r]).fileName());
    cell(table_, r, kConfig)->setToolTip(order[r]);
    const QString paper = paperText(order[r]);
    cell(table_, r, kPaper)->setText(paper.isEmpty() ? QStringLiteral("—") : paper);
    auto* stable = cell(table_, r, kStable);
    QString summary = stableSummary(order[r]);
    if (pending > 0) summary += tr("  (%1 to go)").arg(pending);
    stable->setText(summary);
    stable->setForeground(diverged > 0 ? QColor(183, 28, 28) : QColor(27, 94, 32));
    cell(table_, r, kDivergence)->setText(step_text.isEmpty() ? QStringLiteral("—") : step_text.join(", "));
    cell(table_, r, kLoss)->setText(finished_finite > 0 ? QString::number(loss_sum / finished_finite, 'f', 3)
                                                        : QStringLiteral("—"));
    auto* seeds = cell(table_, r, kSeeds);
    seeds->setData(kStatusesRole, statuses);
    seeds->setText(statuses.join(' '));
    seeds->setToolTip(tips.join('\n'));
  }
}

void StabilityLabView::updateButtons() {
  const bool running = std::any_of(cells_.begin(), cells_.end(), [](const auto& c) { return is_pending(c.status); });
  run_->setEnabled(!running);
  cancel_->setEnabled(running);
  const int row = diagnosis_->currentRow();
  show_routing_->setEnabled(row >= 0 && row < diagnosis_->rowCount());
  show_curves_->setEnabled(row >= 0 && row < diagnosis_->rowCount());
}

TrainingCurvesView* StabilityLabView::curves() const { return curves_; }

void StabilityLabView::setClassroomMode(bool on) {
  classroom_ = on;
  form_->setRowVisible(batch_, !on);
  form_->setRowVisible(steps_, !on);
  form_->setRowVisible(warmup_, !on);
  form_->setRowVisible(clip_, !on);
  applyFonts();
  curves_->setClassroomMode(on);  // the curves scale their own plot and hide their expert controls
}

void StabilityLabView::applyFonts() {
  QFont f = QApplication::font();
  if (classroom_) {
    if (f.pointSizeF() > 0) f.setPointSizeF(f.pointSizeF() * kClassroomScale);
    else f.setPixelSize(static_cast<int>(f.pixelSize() * kClassroomScale));
  }
  setFont(f);
  curves_->setFont(QApplication::font());  // it scales itself in classroom mode; not twice
  table_->verticalHeader()->setDefaultSectionSize(QFontMetrics(f).height() + 10);
}

bool StabilityLabView::exportView(const QString& path, QString* error) const {
  if (cells_.isEmpty()) {
    if (error) *error = tr("no runs to export yet: run a batch first");
    return false;
  }
  auto csv = [this] {
    CsvTable t;
    t.header = {"config", "paper_table10", "seed", "run_id", "status", "verdict", "what_went_wrong_first",
                "divergence_step", "final_loss", "steps_done"};
    for (const auto& c : cells_)
      t.rows.append({c.config, paperText(c.config), QString::number(c.seed), QString::number(c.run_id), c.status,
                     c.verdict, c.explanation,
                     c.divergence_step >= 0 ? QString::number(c.divergence_step) : QString(),
                     (c.status == "finished" || c.status == "stopped") && std::isfinite(c.final_loss)
                         ? QString::number(c.final_loss, 'g', 6)
                         : QString(),
                     QString::number(c.steps_done)});
    return t;
  };
  if (QFileInfo(path).suffix().compare("csv", Qt::CaseInsensitive) == 0) return writeCsv(csv(), path, error);
  return curves_->exportView(path, error);  // the plot as PNG, SVG or PDF; it names a bad suffix
}

int StabilityLabView::tableRowCount() const { return table_->rowCount(); }

QString StabilityLabView::stableSummary(const QString& config) const {
  int total = 0, stable = 0;
  for (const auto& c : cells_) {
    if (c.config != config) continue;
    ++total;
    if (c.status == "finished") ++stable;
  }
  return total == 0 ? QString() : QStringLiteral("%1/%2").arg(stable).arg(total);
}

int StabilityLabView::seedCellCount() const {
  int n = 0;
  for (int r = 0; r < table_->rowCount(); ++r)
    if (auto* item = table_->item(r, kSeeds)) n += static_cast<int>(item->data(kStatusesRole).toStringList().size());
  return n;
}

}  // namespace smx::widgets
