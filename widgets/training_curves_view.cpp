#include "widgets/training_curves_view.h"

#include <QFile>
#include <QTextStream>
#include <QVBoxLayout>
#include <cmath>
#include <limits>
#include <qcustomplot.h>

namespace smx::widgets {

namespace {
// Colours that stay apart for several overlaid runs (Tableau 10).
const QColor kPalette[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44),  QColor(214, 39, 40),
                           QColor(148, 103, 189), QColor(140, 86, 75), QColor(227, 119, 194), QColor(127, 127, 127)};

// QCustomPlot draws a gap at NaN, but an infinity would wreck the axis range.
QVector<double> finite_or_gap(const std::vector<double>& v) {
  QVector<double> out(v.begin(), v.end());
  for (auto& x : out)
    if (!std::isfinite(x)) x = std::numeric_limits<double>::quiet_NaN();
  return out;
}

bool is_stability_event(const QString& kind) { return kind == "nonfinite" || kind == "loss-spike" || kind == "diverged"; }
}  // namespace

TrainingCurvesView::TrainingCurvesView(QWidget* parent) : QWidget(parent), plot_(new QCustomPlot(this)) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(plot_);
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom | QCP::iSelectItems);
  plot_->xAxis->setLabel("step");
  plot_->legend->setVisible(true);
  plot_->setMinimumSize(320, 200);
  connect(plot_, &QCustomPlot::itemClick, this, [this](QCPAbstractItem* item, QMouseEvent*) {
    for (const auto& [marker, step] : markers_)
      if (marker == item) Q_EMIT eventClicked(step);
  });
}

void TrainingCurvesView::setMetricName(const QString& name) {
  metric_ = name;
  plot_->yAxis->setLabel(name);
  plot_->replot();
}

void TrainingCurvesView::setRuns(QVector<CurveRun> runs) {
  runs_ = std::move(runs);
  rebuild();
}

void TrainingCurvesView::appendPoints(int index, const std::vector<double>& steps, const std::vector<double>& values) {
  if (index < 0 || index >= runs_.size()) return;
  auto& s = runs_[index].series;
  s.x.insert(s.x.end(), steps.begin(), steps.end());
  s.y.insert(s.y.end(), values.begin(), values.end());
  rebuild();
}

void TrainingCurvesView::setSmoothing(double weight) {
  smoothing_ = std::clamp(weight, 0.0, 0.999);
  rebuild();
}

void TrainingCurvesView::setLogY(bool on) {
  plot_->yAxis->setScaleType(on ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
  if (on) plot_->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  else plot_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
  rebuild();
}

void TrainingCurvesView::setLogX(bool on) {
  plot_->xAxis->setScaleType(on ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
  if (on) plot_->xAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  else plot_->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
  rebuild();
}

void TrainingCurvesView::rebuild() {
  plot_->clearGraphs();
  plot_->clearItems();
  markers_.clear();
  drawn_points_ = 0;
  // One bucket per horizontal pixel of the plot (at least a sensible minimum offscreen).
  const int buckets = std::max(200, plot_->width());
  for (int r = 0; r < runs_.size(); ++r) {
    const auto& run = runs_[r];
    const QColor colour = kPalette[r % 8];
    const auto raw = curves::decimate_min_max(run.series, buckets);
    const auto smooth = curves::decimate_min_max(run.series.x, curves::smooth(run.series.y, smoothing_), buckets);
    auto* g_raw = plot_->addGraph();
    QColor faint = colour;
    faint.setAlpha(60);
    g_raw->setPen(QPen(faint, 1));
    g_raw->setData(QVector<double>(raw.x.begin(), raw.x.end()), finite_or_gap(raw.y), true);
    g_raw->removeFromLegend();
    auto* g = plot_->addGraph();
    g->setPen(QPen(colour, 2));
    g->setName(run.label);
    g->setData(QVector<double>(smooth.x.begin(), smooth.x.end()), finite_or_gap(smooth.y), true);
    drawn_points_ += static_cast<int>(raw.x.size() + smooth.x.size());
    for (const auto& e : run.events) {
      if (!is_stability_event(e.kind)) continue;
      auto* line = new QCPItemStraightLine(plot_);
      line->point1->setCoords(e.step, 0);
      line->point2->setCoords(e.step, 1);
      QPen pen(e.kind == "loss-spike" ? QColor(230, 140, 0) : QColor(200, 0, 0), 1.5, Qt::DashLine);
      line->setPen(pen);
      line->setSelectable(true);
      markers_.append({line, e.step});
    }
  }
  plot_->rescaleAxes();
  plot_->replot();
}

int TrainingCurvesView::graphCount() const { return plot_->graphCount(); }
int TrainingCurvesView::eventMarkerCount() const { return markers_.size(); }
int TrainingCurvesView::drawnPointCount() const { return drawn_points_; }

bool TrainingCurvesView::exportPlot(const QString& path) const {
  const QString lower = path.toLower();
  if (lower.endsWith(".png")) return plot_->savePng(path, 1600, 1000, 1.0);
  if (lower.endsWith(".pdf")) return plot_->savePdf(path, 800, 500);
  if (lower.endsWith(".csv")) {
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Text)) return false;
    QTextStream out(&f);
    out << "run,step," << (metric_.isEmpty() ? "value" : metric_) << "\n";
    for (const auto& run : runs_)
      for (size_t i = 0; i < run.series.x.size(); ++i) out << run.label << "," << run.series.x[i] << "," << run.series.y[i] << "\n";
    return out.status() == QTextStream::Ok;
  }
  return false;
}

}  // namespace smx::widgets
