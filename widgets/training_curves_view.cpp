#include "widgets/training_curves_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QHash>
#include <QLabel>
#include <QRegularExpression>
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

namespace smx::widgets {

namespace {
// Colours that stay apart for several overlaid runs (Tableau 10).
const QColor kPalette[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44),  QColor(214, 39, 40),
                           QColor(148, 103, 189), QColor(140, 86, 75), QColor(227, 119, 194), QColor(127, 127, 127)};
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kMaxSmoothing = 0.99;
constexpr double kMinutesAfter = 600;  // wall times longer than this are shown in minutes
constexpr size_t kRangeSample = 200000;  // "ignore outliers" looks at most at this many values
constexpr const char* kEmptyHint = "Start a run or select runs in the list to see their curves";

bool is_stability_event(const QString& kind) { return kind == "nonfinite" || kind == "loss-spike" || kind == "diverged"; }

// "bert seed 3" -> "bert": a group's label should not name one of its seeds.
QString without_seed(const QString& label) {
  static const QRegularExpression seed(QStringLiteral("[\\s,;(\\[]*\\bseed\\s*[=:#]?\\s*\\d+[)\\]]?"),
                                       QRegularExpression::CaseInsensitiveOption);
  QString out = label;
  out.remove(seed);
  out = out.trimmed();
  return out.isEmpty() ? label : out;
}

// Sorts x ascending and permutes the other columns alike (stable: equal
// steps keep their order).
void sort_by_x(std::vector<double>& x, std::initializer_list<std::vector<double>*> columns) {
  if (std::is_sorted(x.begin(), x.end())) return;
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  auto permute = [&](std::vector<double>& v) {
    if (v.size() != order.size()) return;
    std::vector<double> out(v.size());
    for (size_t i = 0; i < order.size(); ++i) out[i] = v[order[i]];
    v.swap(out);
  };
  for (auto* c : columns) permute(*c);
  permute(x);
}

QPen markerPen(const QString& kind, bool classroom) {
  return QPen(kind == "loss-spike" ? QColor(230, 140, 0) : QColor(200, 0, 0), classroom ? 2.5 : 1.5, Qt::DashLine);
}

// One label + widget pair in the control row.
QLabel* label_for(const QString& text, QWidget* buddy, QWidget* parent) {
  auto* l = new QLabel(text, parent);
  l->setBuddy(buddy);
  l->setToolTip(buddy->toolTip());
  return l;
}
}  // namespace

// One legend entry: a run, or a group of seeds drawn as mean +- sd. Keeps
// the curve as drawn before decimation (x sorted, raw, smoothed, band
// edges) so that live points and zooming only redo what changed. A run
// whose x is already sorted and finite is read in place (`direct`): a 1M
// point run is not copied.
struct TrainingCurvesView::Entry {
  enum Stale { Fresh, Decimate, Tail, Full };
  QVector<int> runs;
  QString label;
  QColor colour;
  bool band = false;
  Stale stale = Full;
  bool direct = false;  ///< x and raw are the run's own vectors (see xs(), ys())
  size_t consumed = 0;  ///< points of the run already in smooth (single runs)
  std::vector<double> x, raw, smooth, low, high;  ///< x and raw only when not direct
  curves::Smoother smoother;
  curves::Range range, positive;  ///< of raw and the band edges; positive: values > 0 (log axis)
  QCPGraph *g_raw = nullptr, *g_smooth = nullptr, *g_high = nullptr, *g_low = nullptr;
  QVector<Marker> markers;
  int drawn = 0;

  void mark(Stale s) { stale = std::max(stale, s); }
};

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

void TrainingCurvesView::buildEntries() {
  structure_dirty_ = false;
  for (auto& e : entries_) clearMarkers(e);
  plot_->clearGraphs();
  entries_.clear();
  entry_of_run_.assign(runs_.size(), -1);

  QHash<QString, int> group_size;
  if (group_on_)
    for (const auto& r : runs_)
      if (!r.group.isEmpty()) ++group_size[r.group];
  QHash<QString, int> group_entry;
  for (int r = 0; r < int(runs_.size()); ++r) {
    const auto& run = runs_[r];
    const bool grouped = group_on_ && group_size.value(run.group) > 1;
    if (grouped && group_entry.contains(run.group)) {
      const int i = group_entry[run.group];
      entries_[i].runs.append(r);
      entry_of_run_[r] = i;
      continue;
    }
    Entry e;
    e.runs = {r};
    e.band = grouped;
    e.label = grouped ? tr("%1 (%2 seeds)").arg(without_seed(run.label)).arg(group_size.value(run.group))
                      : run.label;
    e.colour = kPalette[entries_.size() % std::size(kPalette)];
    if (grouped) group_entry[run.group] = int(entries_.size());
    entry_of_run_[r] = int(entries_.size());
    entries_.push_back(std::move(e));
  }
  // Bands first so that every curve is drawn over every band.
  for (auto& e : entries_) {
    if (!e.band) continue;
    e.g_low = plot_->addGraph();
    e.g_high = plot_->addGraph();
    e.g_high->setChannelFillGraph(e.g_low);
    for (auto* g : {e.g_low, e.g_high}) g->removeFromLegend();
  }
  for (auto& e : entries_) {
    e.g_raw = plot_->addGraph();
    e.g_raw->removeFromLegend();
    e.g_raw->setAntialiased(false);  // dense and faint: crisp and cheap
  }
  for (auto& e : entries_) {
    e.g_smooth = plot_->addGraph();
    e.g_smooth->setName(e.label);
  }
  applyStyle();
}

double TrainingCurvesView::wallScale() const { return wall_max_ > kMinutesAfter ? 1.0 / 60.0 : 1.0; }

QString TrainingCurvesView::xLabel() const {
  if (x_mode_ == XAxis::Step) return tr("step");
  return wallScale() == 1.0 ? tr("wall time (s)") : tr("wall time (min)");
}

const std::vector<double>& TrainingCurvesView::xs(const Entry& e) const {
  if (!e.direct) return e.x;
  const auto& run = runs_[e.runs[0]];
  return x_mode_ == XAxis::WallTime ? run.wall : run.series.x;
}

const std::vector<double>& TrainingCurvesView::ys(const Entry& e) const {
  return e.direct ? runs_[e.runs[0]].series.y : e.raw;
}

int TrainingCurvesView::buckets() const { return std::max(200, plot_->width()); }

void TrainingCurvesView::recompute(Entry& e) {
  clearMarkers(e);
  e.x = {};  // released: a direct entry needs no copy
  e.raw = {};
  for (auto* v : {&e.smooth, &e.low, &e.high}) v->clear();
  e.smoother = curves::Smoother(smoothing_);
  e.consumed = 0;
  e.direct = false;
  const bool wall_x = x_mode_ == XAxis::WallTime;
  const double scale = wallScale();
  if (!e.band) {
    const auto& run = runs_[e.runs[0]];
    const size_t n = std::min(run.series.x.size(), run.series.y.size());
    const bool usable = !wall_x || run.wall.size() == n;
    const auto& src = wall_x ? run.wall : run.series.x;
    bool in_order = usable && (!wall_x || scale == 1.0) && n == run.series.y.size();
    for (size_t i = 0; in_order && i < n; ++i) in_order = std::isfinite(src[i]) && (i == 0 || src[i - 1] <= src[i]);
    if (in_order) {
      e.direct = true;
      e.smooth.reserve(n);
      for (size_t i = 0; i < n; ++i) e.smooth.push_back(e.smoother.push(run.series.y[i]));
    } else if (usable) {
      e.x.reserve(n);
      e.raw.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        const double x = wall_x ? run.wall[i] * scale : run.series.x[i];
        if (!std::isfinite(x)) continue;  // no time (or no step) for it: not drawable here
        e.x.push_back(x);
        e.raw.push_back(run.series.y[i]);
      }
      sort_by_x(e.x, {&e.raw});
      e.smooth.reserve(e.raw.size());
      for (double y : e.raw) e.smooth.push_back(e.smoother.push(y));
    }
    e.consumed = n;
  } else {
    // Smooth each seed, then average: the band shows how seeds differ, not step-to-step noise.
    std::vector<curves::Series> raw, smoothed, walls;
    for (int r : e.runs) {
      const auto& run = runs_[r];
      const size_t n = std::min(run.series.x.size(), run.series.y.size());
      std::vector<double> x(run.series.x.begin(), run.series.x.begin() + n);
      std::vector<double> y(run.series.y.begin(), run.series.y.begin() + n);
      smoothed.push_back({x, curves::smooth(y, smoothing_)});
      if (wall_x) walls.push_back({x, run.wall.size() == n ? run.wall : std::vector<double>(n, kNaN)});
      raw.push_back({std::move(x), std::move(y)});
    }
    const auto mean_raw = curves::mean_band(raw);
    const auto band = curves::mean_band(smoothed);
    // All three share the steps every seed has; on a wall-time axis a step sits at the seeds' mean time.
    const auto at = wall_x ? curves::mean_band(walls).mean : mean_raw.x;
    for (size_t i = 0; i < at.size() && i < band.x.size(); ++i) {
      const double x = wall_x ? at[i] * scale : at[i];
      if (!std::isfinite(x)) continue;
      e.x.push_back(x);
      e.raw.push_back(mean_raw.mean[i]);
      e.smooth.push_back(band.mean[i]);
      e.low.push_back(band.low[i]);
      e.high.push_back(band.high[i]);
    }
    sort_by_x(e.x, {&e.raw, &e.smooth, &e.low, &e.high});
  }
  e.range = curves::finite_range(ys(e));
  e.positive = curves::finite_range(ys(e), true);
  for (const auto* v : {&e.low, &e.high}) {
    e.range.add(curves::finite_range(*v));
    e.positive.add(curves::finite_range(*v, true));
  }
  for (int r : e.runs) addMarkers(e, r, runs_[r].events);
  e.mark(Entry::Decimate);
}

bool TrainingCurvesView::extend(Entry& e) {
  if (e.band) return false;  // a band's mean depends on every seed: recompute it
  const auto& run = runs_[e.runs[0]];
  const size_t n = std::min(run.series.x.size(), run.series.y.size());
  const bool wall_x = x_mode_ == XAxis::WallTime;
  if (wall_x && run.wall.size() != n) return false;
  const double scale = wallScale();
  for (size_t i = e.consumed; i < n; ++i) {
    const double x = wall_x ? run.wall[i] * scale : run.series.x[i];
    const double y = run.series.y[i];
    if (e.direct) {
      // Read in place: fine while the new points keep x finite and in order.
      if (!std::isfinite(x) || (i > 0 && x < (wall_x ? run.wall[i - 1] * scale : run.series.x[i - 1]))) return false;
    } else {
      if (!std::isfinite(x)) continue;
      if (!e.x.empty() && x < e.x.back()) return false;  // out of order: sort it all again
      e.x.push_back(x);
      e.raw.push_back(y);
    }
    e.smooth.push_back(e.smoother.push(y));
    if (std::isfinite(y)) {
      e.range.add(y);
      if (y > 0) e.positive.add(y);
    }
  }
  e.consumed = n;
  return true;
}

void TrainingCurvesView::setGraphData(Entry& e) {
  const int b = used_buckets_ > 0 ? used_buckets_ : buckets();
  const auto& x = xs(e);
  size_t begin = 0, end = x.size();
  if (user_range_ && end > size_t(4) * size_t(b)) {
    // Zoomed in: decimate what is visible (and one point either side so lines reach the edges).
    const QCPRange r = plot_->xAxis->range();
    begin = std::lower_bound(x.begin(), x.end(), r.lower) - x.begin();
    end = std::upper_bound(x.begin(), x.end(), r.upper) - x.begin();
    if (begin > 0) --begin;
    if (end < x.size()) ++end;
  }
  e.drawn = 0;
  auto fill = [&](QCPGraph* g, const std::vector<double>& y) {
    if (!g) return;
    const auto d = curves::decimate_min_max(x, y, b, begin, end);
    QVector<QCPGraphData> points;
    points.reserve(int(d.x.size()));
    for (size_t i = 0; i < d.x.size(); ++i) {
      if (log_x_on_ && !(d.x[i] > 0)) continue;
      double v = d.y[i];
      // QCustomPlot draws a gap at NaN; an infinity (or <= 0 on a log axis) would wreck the axis.
      if (!std::isfinite(v) || (log_y_on_ && v <= 0)) v = kNaN;
      points.append(QCPGraphData(d.x[i], v));
    }
    g->data()->set(points, true);
    e.drawn += points.size();
  };
  fill(e.g_raw, ys(e));
  fill(e.g_smooth, e.smooth);
  fill(e.g_low, e.low);
  fill(e.g_high, e.high);
}

void TrainingCurvesView::addMarkers(Entry& e, int run, const QVector<CurveEvent>& events) {
  const auto& r = runs_[run];
  const bool wall_x = x_mode_ == XAxis::WallTime;
  for (const auto& ev : events) {
    if (!is_stability_event(ev.kind) || !std::isfinite(ev.step)) continue;
    // interpolate() reads only the points x and wall both have.
    const double x = wall_x ? curves::interpolate(r.series.x, r.wall, ev.step) * wallScale() : ev.step;
    if (!std::isfinite(x)) continue;  // no wall time to place it at
    auto* line = new QCPItemStraightLine(plot_);
    line->point1->setTypeY(QCPItemPosition::ptAxisRectRatio);
    line->point2->setTypeY(QCPItemPosition::ptAxisRectRatio);
    line->point1->setCoords(x, 0);
    line->point2->setCoords(x, 1);
    line->setSelectable(false);  // clicks are ours: a few pixels either side count
    line->setPen(markerPen(ev.kind, classroom_));
    const QString what = ev.kind == "loss-spike" ? tr("loss spike") : ev.kind == "nonfinite" ? tr("non-finite loss")
                                                                                              : tr("diverged");
    Marker m{line, ev.step, x, ev.kind,
             tr("%1 at step %2 (%3)%4\nClick to look at this step.")
                 .arg(what, QString::number(ev.step, 'g', 10), r.label,
                      ev.message.isEmpty() ? QString() : QStringLiteral(": ") + ev.message)};
    e.markers.append(m);
  }
}

void TrainingCurvesView::clearMarkers(Entry& e) {
  for (const auto& m : e.markers) plot_->removeItem(m.line);
  e.markers.clear();
}

const TrainingCurvesView::Marker* TrainingCurvesView::markerAt(const QPoint& pos) const {
  if (!plot_->axisRect()->rect().adjusted(-2, 0, 2, 0).contains(pos)) return nullptr;
  const double tolerance = classroom_ ? 7 : 4;  // pixels either side of a 1-2 px line
  const Marker* best = nullptr;
  double best_d = tolerance;
  for (const auto& e : entries_)
    for (const auto& m : e.markers) {
      const double d = std::abs(plot_->xAxis->coordToPixel(m.x) - pos.x());
      if (d <= best_d) best = &m, best_d = d;
    }
  return best;
}

void TrainingCurvesView::applyRanges() {
  ranges_dirty_ = false;
  if (user_range_) return;
  curves::Range xr;
  for (const auto& e : entries_) {
    const auto& x = xs(e);
    if (x.empty()) continue;
    // x is sorted; on a log axis only x > 0 shows.
    const auto first = log_x_on_ ? std::upper_bound(x.begin(), x.end(), 0.0) : x.begin();
    if (first == x.end()) continue;
    xr.add(*first);
    xr.add(x.back());
  }
  if (!xr.valid()) xr = log_x_on_ ? curves::Range{1, 10} : curves::Range{0, 1};
  if (xr.lo == xr.hi) {
    if (log_x_on_) xr.lo /= 2, xr.hi *= 2;
    else xr.lo -= 0.5, xr.hi += 0.5;
  }

  curves::Range yr;
  if (y_mode_ == YRange::IgnoreOutliers) {
    size_t total = 0;
    for (const auto& e : entries_) total += ys(e).size() + e.low.size() + e.high.size();
    const size_t stride = std::max<size_t>(1, total / kRangeSample);  // a sample is plenty for percentiles
    std::vector<double> pool;
    pool.reserve(total / stride + 3 * entries_.size());
    for (const auto& e : entries_)
      for (const auto* v : {&ys(e), &e.low, &e.high})
        for (size_t i = 0; i < v->size(); i += stride) pool.push_back((*v)[i]);
    if (pool.size() >= 20) yr = curves::quantile_range(std::move(pool), 0.01, 0.99, log_y_on_);
    // Fewer points than that: none can be called an outlier, fit them all.
  }
  if (!yr.valid())
    for (const auto& e : entries_) yr.add(log_y_on_ ? e.positive : e.range);
  const bool from_zero = y_mode_ == YRange::FromZero && !log_y_on_;
  if (!yr.valid()) yr = log_y_on_ ? curves::Range{0.1, 10} : curves::Range{0, 1};
  if (from_zero) yr.add(0.0);
  if (log_y_on_) {
    const double f = yr.hi > yr.lo ? std::pow(yr.hi / yr.lo, 0.04) : 1.5;
    yr.lo /= f, yr.hi *= f;
  } else {
    const double span = yr.hi > yr.lo ? yr.hi - yr.lo : std::max(std::abs(yr.hi) * 0.1, 1e-9);
    // A little air above and below; "from zero" starts exactly at zero.
    if (!(from_zero && yr.lo == 0)) yr.lo -= 0.04 * span;
    if (!(from_zero && yr.hi == 0)) yr.hi += 0.04 * span;
  }
  setting_range_ = true;
  plot_->xAxis->setRange(xr.lo, xr.hi);
  plot_->yAxis->setRange(yr.lo, yr.hi);
  setting_range_ = false;
}

void TrainingCurvesView::userChangedRange() {
  if (setting_range_) return;
  user_range_ = true;
  // Long curves were decimated for the whole run: decimate the new window instead.
  bool any = false;
  for (auto& e : entries_)
    if (xs(e).size() > size_t(4) * size_t(used_buckets_)) {
      e.mark(Entry::Decimate);
      any = true;
    }
  if (any) schedule();
}

void TrainingCurvesView::applyStyle() {
  const double f = classroom_ ? 1.5 : 1.0;
  const double base = font().pointSizeF() > 0 ? font().pointSizeF() : 9.0;
  auto sized = [&](double pt, bool bold = false) {
    QFont fnt = font();
    fnt.setPointSizeF(pt * f);
    fnt.setBold(bold);
    return fnt;
  };
  for (auto* axis : {plot_->xAxis, plot_->yAxis}) {
    axis->setLabelFont(sized(base + 1));
    axis->setTickLabelFont(sized(base));
  }
  plot_->legend->setFont(sized(base));
  hint_->setFont(sized(base + 2));
  for (auto& e : entries_) {
    QColor faint = e.colour;
    faint.setAlpha(e.band ? 90 : 60);
    if (e.g_raw) e.g_raw->setPen(QPen(faint, 1.0 * f));
    if (e.g_smooth) e.g_smooth->setPen(QPen(e.colour, 2.0 * f));
    if (e.g_high) {
      QColor fill = e.colour, edge = e.colour;
      fill.setAlpha(45);
      edge.setAlpha(110);
      e.g_high->setBrush(fill);
      e.g_high->setPen(QPen(edge, 1.0));
      e.g_low->setPen(QPen(edge, 1.0));
    }
    for (const auto& m : e.markers) m.line->setPen(markerPen(m.kind, classroom_));
  }
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
