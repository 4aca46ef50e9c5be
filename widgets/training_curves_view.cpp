#include "widgets/training_curves_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSlider>
#include <QTimer>
#include <QToolButton>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <qcustomplot.h>

#include "widgets/plot_export.h"
#include "widgets/training_curves_view_entry.h"

namespace smx::widgets {

namespace {
constexpr double kMaxSmoothing = 0.99;
constexpr const char* kEmptyHint = "Start a run or select runs in the list to see their curves";

// One label + widget pair in the control row.
QLabel* label_for(const QString& text, QWidget* buddy, QWidget* parent) {
  auto* l = new QLabel(text, parent);
  l->setBuddy(buddy);
  l->setToolTip(buddy->toolTip());
  return l;
}
}  // namespace

TrainingCurvesView::TrainingCurvesView(QWidget* parent) : QWidget(parent), plot_(new QCustomPlot(this)) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->setSpacing(0);
  layout->addWidget(buildControls());
  layout->addWidget(plot_, 1);

  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  // One polyline per graph instead of a line per segment: a 2 px curve of a
  // few thousand points replots in ~1 ms instead of ~60 ms.
  plot_->setPlottingHint(QCP::phFastPolylines, true);
  plot_->setMouseTracking(true);  // marker tooltips
  plot_->setMinimumSize(320, 200);
  plot_->xAxis->setLabel(xLabel());
  plot_->legend->setVisible(false);
  plot_->legend->setBrush(QColor(255, 255, 255, 210));
  plot_->legend->setBorderPen(QPen(QColor(200, 200, 200)));
  plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);

  hint_ = new QCPItemText(plot_);
  hint_->position->setType(QCPItemPosition::ptAxisRectRatio);
  hint_->position->setCoords(0.5, 0.5);
  hint_->setPositionAlignment(Qt::AlignCenter);
  hint_->setColor(QColor(110, 110, 110));
  hint_->setText(tr(kEmptyHint));
  hint_->setSelectable(false);

  connect(plot_->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this] { userChangedRange(); });
  connect(plot_->yAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this] { userChangedRange(); });
  connect(plot_, &QCustomPlot::mousePress, this, [this](QMouseEvent* ev) {
    if (ev->button() != Qt::LeftButton) return;
    if (const Marker* m = markerAt(ev->pos())) Q_EMIT eventClicked(m->step);
  });
  connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* ev) {
    if (ev->buttons() != Qt::NoButton) return;
    if (const Marker* m = markerAt(ev->pos())) {
      plot_->setCursor(Qt::PointingHandCursor);
      QToolTip::showText(ev->globalPosition().toPoint(), m->text, plot_);
    } else {
      plot_->unsetCursor();
    }
  });
  // Double-click: fit everything again after a drag or zoom.
  connect(plot_, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) {
    fitAgain();
    schedule();
  });
  applyStyle();
  refresh(false);
}

TrainingCurvesView::~TrainingCurvesView() = default;

QWidget* TrainingCurvesView::buildControls() {
  auto* row = new QWidget(this);
  controls_ = new QVBoxLayout(row);
  controls_->setContentsMargins(6, 3, 6, 3);
  controls_->setSpacing(2);
  top_row_ = new QHBoxLayout;
  top_row_->setContentsMargins(0, 0, 0, 0);
  controls_->addLayout(top_row_);
  expert_box_ = new QWidget(row);
  expert_box_->setSizePolicy(QSizePolicy::Maximum, QSizePolicy::Fixed);
  expert_box_->setMinimumWidth(1);  // it wraps to its own row instead of widening the view (placeExpertControls)
  auto* h = new QHBoxLayout(expert_box_);
  h->setContentsMargins(0, 0, 0, 0);

  metric_ = new QComboBox(row);
  metric_->setObjectName("metric");
  metric_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  metric_->setMinimumContentsLength(10);
  metric_->setToolTip(tr("Which number to plot for the selected runs, for example the training loss."));
  connect(metric_, &QComboBox::currentTextChanged, this, &TrainingCurvesView::metricPicked);

  smoothing_slider_ = new QSlider(Qt::Horizontal, row);
  smoothing_slider_->setObjectName("smoothing");
  smoothing_slider_->setRange(0, int(std::lround(kMaxSmoothing * 100)));
  smoothing_slider_->setValue(int(std::lround(smoothing_ * 100)));
  smoothing_slider_->setFixedWidth(110);
  smoothing_slider_->setToolTip(tr("Averages each point with the ones before it so the trend shows through the noise. "
                                   "The raw curve stays faint underneath."));
  smoothing_value_ = new QLabel(QString::number(smoothing_, 'f', 2), row);
  smoothing_value_->setMinimumWidth(smoothing_value_->fontMetrics().horizontalAdvance("0.000"));
  connect(smoothing_slider_, &QSlider::valueChanged, this, [this](int v) {
    // Dragging the slider can fire dozens of times a second: coalesce.
    smoothing_ = v / 100.0;
    smoothing_value_->setText(QString::number(smoothing_, 'f', 2));
    for (auto& e : entries_) e.mark(Entry::Full);
    ranges_dirty_ = true;
    schedule();
  });

  log_x_ = new QCheckBox(tr("log x"), row);
  log_x_->setObjectName("logX");
  log_x_->setToolTip(tr("Logarithmic x axis: the early steps, where most of the change happens, get more room."));
  connect(log_x_, &QCheckBox::toggled, this, &TrainingCurvesView::setLogX);
  log_y_ = new QCheckBox(tr("log y"), row);
  log_y_->setObjectName("logY");
  log_y_->setToolTip(tr("Logarithmic y axis: useful for a loss that falls by orders of magnitude."));
  connect(log_y_, &QCheckBox::toggled, this, &TrainingCurvesView::setLogY);

  y_range_ = new QComboBox(row);
  y_range_->setObjectName("yRange");
  y_range_->addItems({tr("auto"), tr("from zero"), tr("ignore outliers")});
  y_range_->setToolTip(tr("How the y axis is fitted: to every point, from zero up, or leaving out the highest and "
                          "lowest 1% so that one spike does not squash the curve."));
  connect(y_range_, qOverload<int>(&QComboBox::currentIndexChanged), this,
          [this](int i) { setYRangeMode(static_cast<YRange>(i)); });

  x_axis_ = new QComboBox(row);
  x_axis_->setObjectName("xAxis");
  x_axis_->addItems({tr("step"), tr("wall time")});
  x_axis_->setToolTip(tr("Plot against training steps, or against the time since each run started to compare how "
                         "fast runs learn."));
  connect(x_axis_, qOverload<int>(&QComboBox::currentIndexChanged), this,
          [this](int i) { setXAxis(static_cast<XAxis>(i)); });

  group_seeds_ = new QCheckBox(tr("group seeds"), row);
  group_seeds_->setObjectName("groupSeeds");
  group_seeds_->setChecked(group_on_);
  group_seeds_->setToolTip(tr("Draw runs that differ only in their random seed as one mean curve with a band of one "
                              "standard deviation around it."));
  connect(group_seeds_, &QCheckBox::toggled, this, &TrainingCurvesView::setGroupSeeds);

  export_ = new QToolButton(row);
  export_->setObjectName("export");
  export_->setText(tr("Export…"));
  export_->setToolTip(tr("Save the plot as a PNG, SVG or PDF image, or its raw points as a CSV table."));
  connect(export_, &QToolButton::clicked, this, &TrainingCurvesView::chooseExportFile);

  auto* smoothing_label = label_for(tr("Smoothing"), smoothing_slider_, row);
  auto* y_label = label_for(tr("y range"), y_range_, row);
  auto* x_label = label_for(tr("x"), x_axis_, row);
  for (QWidget* w : std::initializer_list<QWidget*>{smoothing_label, smoothing_slider_, smoothing_value_, log_x_, log_y_,
                                                    y_label, y_range_, x_label, x_axis_}) {
    h->addWidget(w);
    expert_.append(w);
  }
  h->addSpacing(8);
  top_row_->addWidget(label_for(tr("Metric"), metric_, row));
  top_row_->addWidget(metric_);
  top_row_->addSpacing(8);
  top_row_->addWidget(expert_box_);
  top_row_->addWidget(group_seeds_);
  top_row_->addStretch(1);
  top_row_->addWidget(export_);
  return row;
}

// --- metric ---

QStringList TrainingCurvesView::metricNames() const {
  QStringList names;
  for (int i = 0; i < metric_->count(); ++i) names << metric_->itemText(i);
  return names;
}

void TrainingCurvesView::setMetricNames(const QStringList& names) {
  const QString before = metric_->currentText();
  setting_metric_ = true;  // the app chose: no metricChanged back to it
  metric_->clear();
  metric_->addItems(names);
  const int keep = names.indexOf(before);
  metric_->setCurrentIndex(keep >= 0 ? keep : (names.isEmpty() ? -1 : 0));
  setting_metric_ = false;
}

void TrainingCurvesView::setMetricName(const QString& name) {
  if (name.isEmpty()) return;
  setting_metric_ = true;
  if (metric_->findText(name) < 0) metric_->addItem(name);
  metric_->setCurrentText(name);
  setting_metric_ = false;
}

QString TrainingCurvesView::metricName() const { return metric_->currentText(); }

void TrainingCurvesView::metricPicked(const QString& metric) {
  plot_->yAxis->setLabel(metric);
  plot_->replot(QCustomPlot::rpQueuedReplot);
  if (!setting_metric_) Q_EMIT metricChanged(metric);
}

// --- data ---

void TrainingCurvesView::setRuns(QVector<CurveRun> runs) {
  runs_.assign(std::make_move_iterator(runs.begin()), std::make_move_iterator(runs.end()));
  wall_max_ = 0;
  for (auto& r : runs_) {
    // Mismatched sizes: keep what pairs up; wall is either empty or parallel.
    const size_t n = std::min(r.series.x.size(), r.series.y.size());
    r.series.x.resize(n);
    r.series.y.resize(n);
    if (!r.wall.empty()) r.wall.resize(n, kNaN);
    for (double w : r.wall)
      if (std::isfinite(w)) wall_max_ = std::max(wall_max_, w);
  }
  structure_dirty_ = true;
  fitAgain();
  refresh(false);
}

void TrainingCurvesView::appendPoints(int index, const std::vector<double>& steps, const std::vector<double>& values,
                                      const std::vector<double>& wall) {
  if (index < 0 || index >= int(runs_.size())) return;
  const size_t k = std::min(steps.size(), values.size());
  if (k == 0) return;
  auto& run = runs_[index];
  auto& s = run.series;
  const size_t n = std::min(s.x.size(), s.y.size());
  s.x.resize(n);
  s.y.resize(n);
  const bool wall_given = wall.size() >= k;
  if (wall_given || !run.wall.empty()) {
    run.wall.resize(n, kNaN);  // earlier points without wall time stay off a wall-time plot
    for (size_t i = 0; i < k; ++i) {
      run.wall.push_back(wall_given ? wall[i] : kNaN);
      if (wall_given && std::isfinite(wall[i])) wall_max_ = std::max(wall_max_, wall[i]);
    }
  }
  s.x.insert(s.x.end(), steps.begin(), steps.begin() + k);
  s.y.insert(s.y.end(), values.begin(), values.begin() + k);
  if (!structure_dirty_ && index < int(entry_of_run_.size()) && entry_of_run_[index] >= 0)
    entries_[entry_of_run_[index]].mark(Entry::Tail);
  ranges_dirty_ = true;
  schedule();
}

void TrainingCurvesView::appendEvents(int index, QVector<CurveEvent> events) {
  if (index < 0 || index >= int(runs_.size()) || events.isEmpty()) return;
  runs_[index].events += events;
  if (structure_dirty_ || index >= int(entry_of_run_.size()) || entry_of_run_[index] < 0) return;
  auto& e = entries_[entry_of_run_[index]];
  if (e.stale == Entry::Full) return;  // the rebuild will draw them
  addMarkers(e, index, events);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

// --- options ---

void TrainingCurvesView::setSmoothing(double weight) {
  if (!std::isfinite(weight)) return;
  weight = std::clamp(weight, 0.0, kMaxSmoothing);
  {
    QSignalBlocker block(smoothing_slider_);
    smoothing_slider_->setValue(int(std::lround(weight * 100)));
  }
  smoothing_value_->setText(QString::number(weight, 'f', 2));
  smoothing_ = weight;
  for (auto& e : entries_) e.mark(Entry::Full);
  ranges_dirty_ = true;
  refresh(false);
}

void TrainingCurvesView::setLogX(bool on) {
  {
    QSignalBlocker block(log_x_);
    log_x_->setChecked(on);
  }
  if (on == log_x_on_) return;
  log_x_on_ = on;
  setting_range_ = true;
  plot_->xAxis->setScaleType(on ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
  if (on) plot_->xAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  else plot_->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
  setting_range_ = false;
  for (auto& e : entries_) e.mark(Entry::Decimate);  // x <= 0 is left out on a log axis
  fitAgain();
  refresh(false);
}

void TrainingCurvesView::setLogY(bool on) {
  {
    QSignalBlocker block(log_y_);
    log_y_->setChecked(on);
  }
  if (on == log_y_on_) return;
  log_y_on_ = on;
  setting_range_ = true;
  plot_->yAxis->setScaleType(on ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
  if (on) plot_->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  else plot_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
  setting_range_ = false;
  for (auto& e : entries_) e.mark(Entry::Decimate);  // y <= 0 becomes a gap on a log axis
  fitAgain();
  refresh(false);
}

void TrainingCurvesView::setYRangeMode(YRange mode) {
  {
    QSignalBlocker block(y_range_);
    y_range_->setCurrentIndex(static_cast<int>(mode));
  }
  y_mode_ = mode;
  fitAgain();
  refresh(false);
}

void TrainingCurvesView::setXAxis(XAxis axis) {
  {
    QSignalBlocker block(x_axis_);
    x_axis_->setCurrentIndex(static_cast<int>(axis));
  }
  if (axis == x_mode_) return;
  x_mode_ = axis;
  for (auto& e : entries_) e.mark(Entry::Full);
  fitAgain();
  refresh(false);
}

void TrainingCurvesView::setGroupSeeds(bool on) {
  {
    QSignalBlocker block(group_seeds_);
    group_seeds_->setChecked(on);
  }
  if (on == group_on_) return;
  group_on_ = on;
  structure_dirty_ = true;
  fitAgain();
  refresh(false);
}

void TrainingCurvesView::setClassroomMode(bool on) {
  classroom_ = on;
  for (auto* w : expert_) w->setHidden(on);
  expert_box_->setHidden(on);
  placeExpertControls();
  applyStyle();
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

// --- drawing ---

void TrainingCurvesView::schedule() {
  if (update_queued_) return;
  update_queued_ = true;
  QTimer::singleShot(0, this, [this] {
    if (update_queued_) refresh(true);
  });
}

void TrainingCurvesView::fitAgain() {
  if (user_range_) {
    // Entries drawn for a zoomed-in window need their whole length again.
    for (auto& e : entries_)
      if (xs(e).size() > size_t(4) * size_t(used_buckets_)) e.mark(Entry::Decimate);
  }
  user_range_ = false;
  ranges_dirty_ = true;
}

void TrainingCurvesView::refresh(bool replot_now) {
  update_queued_ = false;
  if (structure_dirty_) buildEntries();
  if (const double scale = wallScale(); x_mode_ == XAxis::WallTime && scale != applied_wall_scale_) {
    for (auto& e : entries_) e.mark(Entry::Full);
    applied_wall_scale_ = scale;
    ranges_dirty_ = true;
  }
  plot_->xAxis->setLabel(xLabel());
  if (const int b = buckets(); b != used_buckets_) {
    // Only decimated curves depend on the width.
    for (auto& e : entries_)
      if (xs(e).size() > size_t(4) * size_t(std::min(b, used_buckets_))) e.mark(Entry::Decimate);
    used_buckets_ = b;
  }
  bool any_points = false;
  for (auto& e : entries_) {
    if (e.stale == Entry::Full || (e.stale == Entry::Tail && !extend(e))) recompute(e);
    if (e.stale != Entry::Fresh) {
      setGraphData(e);
      ranges_dirty_ = true;
    }
    e.stale = Entry::Fresh;
    any_points = any_points || e.drawn > 0;
  }
  if (ranges_dirty_) applyRanges();

  if (!any_points)
    hint_->setText(!runs_.empty() && x_mode_ == XAxis::WallTime
                       ? tr("These runs have no wall times: pick \"step\" for the x axis")
                       : tr(kEmptyHint));
  hint_->setVisible(!any_points);
  plot_->legend->setVisible(any_points);
  plot_->replot(replot_now ? QCustomPlot::rpRefreshHint : QCustomPlot::rpQueuedReplot);
}


void TrainingCurvesView::placeExpertControls() {
  // One row when it fits, else the expert controls wrap to a second row,
  // so that the view also fits a narrow dock.
  const bool inline_now = top_row_->indexOf(expert_box_) >= 0;
  const int box = expert_box_->isHidden() ? 0 : expert_box_->sizeHint().width() + top_row_->spacing();
  const int rest = top_row_->sizeHint().width() - (inline_now ? box : 0);
  const QMargins m = controls_->contentsMargins();
  const bool fits = width() >= rest + box + m.left() + m.right();
  if (fits == inline_now) return;
  if (fits) {
    controls_->removeWidget(expert_box_);
    top_row_->insertWidget(3, expert_box_);  // after the metric label, combo box and spacing
  } else {
    top_row_->removeWidget(expert_box_);
    controls_->addWidget(expert_box_, 0, Qt::AlignLeft);
  }
}

void TrainingCurvesView::resizeEvent(QResizeEvent* event) {
  QWidget::resizeEvent(event);
  placeExpertControls();
  if (buckets() != used_buckets_) schedule();
}

// --- accessors ---

int TrainingCurvesView::graphCount() const { return plot_->graphCount(); }

int TrainingCurvesView::bandCount() const {
  return int(std::count_if(entries_.begin(), entries_.end(), [](const Entry& e) { return e.band; }));
}

int TrainingCurvesView::eventMarkerCount() const {
  int n = 0;
  for (const auto& e : entries_) n += e.markers.size();
  return n;
}

int TrainingCurvesView::drawnPointCount() const {
  int n = 0;
  for (const auto& e : entries_) n += e.drawn;
  return n;
}

QCPRange TrainingCurvesView::xRange() const { return plot_->xAxis->range(); }
QCPRange TrainingCurvesView::yRange() const { return plot_->yAxis->range(); }

// --- export ---

bool TrainingCurvesView::exportView(const QString& path, QString* error) const {
  const auto csv = [this] {
    CsvTable t;
    const QString metric = metric_->currentText();
    t.header = {"run", "group", "step", "wall_seconds", metric.isEmpty() ? QStringLiteral("value") : metric};
    for (const auto& run : runs_) {
      const auto& s = run.series;
      for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
        t.rows.append({run.label, run.group, QString::number(s.x[i], 'g', 12),
                       i < run.wall.size() && std::isfinite(run.wall[i]) ? QString::number(run.wall[i], 'g', 10)
                                                                         : QString(),
                       QString::number(s.y[i], 'g', 10)});
    }
    return t;
  };
  return exportPlot(plot_, path, csv, error);
}

void TrainingCurvesView::chooseExportFile() {
  const QString base = metric_->currentText().isEmpty() ? QStringLiteral("training-curves")
                                                        : metric_->currentText().replace('/', '-');
  exportWithDialog(this, tr("Export training curves"), base + ".png",
                   [this](const QString& path, QString* error) { return exportView(path, error); });
}

double TrainingCurvesView::replotMs() const { return plot_->replotTime(/*average=*/true); }

}  // namespace smx::widgets
