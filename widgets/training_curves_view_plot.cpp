// The training curves view's drawing: legend entries from the runs (groups of
// seeds as mean +- sd), smoothing and per-pixel decimation, event markers,
// axis ranges and styles. Controls and export are in training_curves_view.cpp.
#include "widgets/training_curves_view.h"

#include <QHash>
#include <QRegularExpression>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <qcustomplot.h>

#include "widgets/training_curves_view_entry.h"

namespace smx::widgets {

namespace {
// Colours that stay apart for several overlaid runs (Tableau 10).
const QColor kPalette[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44),  QColor(214, 39, 40),
                           QColor(148, 103, 189), QColor(140, 86, 75), QColor(227, 119, 194), QColor(127, 127, 127)};
constexpr double kMinutesAfter = 600;  // wall times longer than this are shown in minutes
constexpr size_t kRangeSample = 200000;  // "ignore outliers" looks at most at this many values

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
}  // namespace

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


}  // namespace smx::widgets
