#include "tst_training_curves_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFileInfo>
#include <QSlider>
#include <QTemporaryDir>
#include <QToolButton>
#include <QtTest>

#include "qcustomplot_shim.h"

#include <cmath>
#include <limits>

#include "widgets/training_curves_view.h"
#include "export_checks.h"

using smx::widgets::CurveEvent;
using smx::widgets::CurveRun;
using smx::widgets::TrainingCurvesView;

using smx_test::embeds_raster;
using smx_test::read_bytes;

namespace {
CurveRun run(const QString& label, int n, double scale) {
  CurveRun r;
  r.label = label;
  for (int i = 1; i <= n; ++i) {
    r.series.x.push_back(i);
    r.series.y.push_back(scale * (8.0 / std::sqrt(double(i)) + 0.05 * std::sin(i)));
  }
  return r;
}

QCustomPlot* plotOf(const TrainingCurvesView& v) { return v.findChild<QCustomPlot*>(); }

QCPGraph* graphNamed(const TrainingCurvesView& v, const QString& name) {
  auto* plot = plotOf(v);
  for (int i = 0; i < plot->graphCount(); ++i)
    if (plot->graph(i)->name() == name) return plot->graph(i);
  return nullptr;
}

// The value a graph draws at exactly `key` (NaN if it has no point there).
double valueAt(const QCPGraph* g, double key) {
  auto it = g->data()->findBegin(key, false);
  if (it == g->data()->constEnd() || it->key != key) return std::numeric_limits<double>::quiet_NaN();
  return it->value;
}

QList<QCPItemStraightLine*> markerLines(const TrainingCurvesView& v) {
  QList<QCPItemStraightLine*> out;
  auto* plot = plotOf(v);
  for (int i = 0; i < plot->itemCount(); ++i)
    if (auto* l = qobject_cast<QCPItemStraightLine*>(plot->item(i))) out << l;
  return out;
}

void showAndSettle(TrainingCurvesView& v) {
  v.show();
  QVERIFY(QTest::qWaitForWindowExposed(&v));
  QCoreApplication::processEvents();
  plotOf(v)->replot();  // lays out the axis rect so pixels are known
}
}  // namespace

void TestTrainingCurvesView::emptyShowsHint() {
  TrainingCurvesView v;
  auto* plot = plotOf(v);
  QCPItemText* hint = nullptr;
  for (int i = 0; i < plot->itemCount(); ++i)
    if (auto* t = qobject_cast<QCPItemText*>(plot->item(i))) hint = t;
  QVERIFY(hint);
  QVERIFY(hint->visible());
  QVERIFY(hint->text().contains("Start a run"));
  QVERIFY(!plot->legend->visible());
  QCOMPARE(v.graphCount(), 0);
  v.setRuns({run("a", 20, 1.0)});
  QVERIFY(!hint->visible());
  QVERIFY(plot->legend->visible());
  v.setRuns({});
  QVERIFY(hint->visible());
}

void TestTrainingCurvesView::twoRunsWithEvents() {
  TrainingCurvesView v;
  v.resize(800, 500);
  v.setMetricName("loss/total");
  auto a = run("sparse-mixer seed 0", 500, 1.0), b = run("bert seed 0", 300, 1.1);
  b.series.y[250] = std::numeric_limits<double>::quiet_NaN();
  b.events = {{251, "nonfinite", "non-finite loss"}, {100, "checkpoint", "step-100.ckpt"}, {60, "loss-spike", "2.3x"}};
  v.setRuns({a, b});
  QCOMPARE(v.graphCount(), 4);        // raw + smoothed per run
  QCOMPARE(v.eventMarkerCount(), 2);  // checkpoints are not stability events
  QCOMPARE(v.bandCount(), 0);
  // One legend entry per run, not per raw/smoothed graph, inside the top right of the plot.
  auto* plot = plotOf(v);
  QCOMPARE(plot->legend->itemCount(), 2);
  QCOMPARE(plot->legend->itemWithPlottable(graphNamed(v, "bert seed 0")) != nullptr, true);
  QCOMPARE(plot->axisRect()->insetLayout()->insetAlignment(0), Qt::AlignTop | Qt::AlignRight);
  QCOMPARE(plot->yAxis->label(), QString("loss/total"));
  // The NaN is a gap in the drawn data, not a point that would wreck the axis.
  QVERIFY(std::isnan(valueAt(graphNamed(v, "bert seed 0"), 251)));
  QCOMPARE(v.xRange().lower, 1.0);
  QCOMPARE(v.xRange().upper, 500.0);
}

void TestTrainingCurvesView::millionPointRunIsDecimated() {
  TrainingCurvesView v;
  v.resize(1000, 500);
  auto r = run("long", 1'000'000, 1.0);
  r.series.y[777'777] = 1e3;  // one spike among a million steps
  v.setRuns({r});
  QVERIFY2(v.drawnPointCount() <= 2 * 4 * 1000, qPrintable(QString::number(v.drawnPointCount())));
  QVERIFY(v.drawnPointCount() > 1000);
  // The spike survives decimation, at its step, and the auto y range reaches it.
  auto* raw = plotOf(v)->graph(0);  // raw, drawn under the smoothed curve
  QCOMPARE(valueAt(raw, 777'778), 1e3);  // steps start at 1
  QVERIFY(v.yRange().upper >= 1e3);
}

void TestTrainingCurvesView::zoomingInRedecimatesTheWindow() {
  TrainingCurvesView v;
  v.resize(1000, 500);
  showAndSettle(v);
  v.setRuns({run("long", 1'000'000, 1.0)});
  QCoreApplication::processEvents();
  auto* raw = plotOf(v)->graph(0);
  QVERIFY(std::isnan(valueAt(raw, 1500)));  // a 1M-step run keeps ~4 points per pixel: step 1500 is not one
  // The user zooms in to 1000 steps: every step there is drawn, nothing far outside.
  plotOf(v)->xAxis->setRange(1000, 2000);
  QTRY_VERIFY(!std::isnan(valueAt(raw, 1500)));
  QCOMPARE(valueAt(raw, 1500), 8.0 / std::sqrt(1500.0) + 0.05 * std::sin(1500.0));
  QVERIFY(raw->dataCount() <= 1003);
  // Appending does not throw the user's zoom away.
  v.appendPoints(0, {1'000'001}, {0.5});
  QCoreApplication::processEvents();
  QCOMPARE(v.xRange().lower, 1000.0);
  QCOMPARE(v.xRange().upper, 2000.0);
  // A double-click fits the whole run again.
  QTest::mouseDClick(plotOf(v), Qt::LeftButton, {}, plotOf(v)->axisRect()->center());
  QTRY_COMPARE(v.xRange().upper, 1'000'001.0);
  QCOMPARE(v.xRange().lower, 1.0);
  QVERIFY(raw->dataCount() < 5000);
}

void TestTrainingCurvesView::liveAppendAndLogScale() {
  TrainingCurvesView v;
  v.resize(600, 400);
  v.setRuns({run("live", 10, 1.0)});
  const int before = v.drawnPointCount();
  QCOMPARE(before, 20);
  QCOMPARE(v.xRange().upper, 10.0);
  v.appendPoints(0, {11, 12, 13}, {1.0, 0.9, 0.8});
  QTRY_COMPARE(v.drawnPointCount(), before + 6);  // 3 raw + 3 smoothed
  QCOMPARE(v.xRange().upper, 13.0);
  QCOMPARE(valueAt(plotOf(v)->graph(0), 13), 0.8);
  v.setLogY(true);
  v.setLogX(true);
  QCOMPARE(v.graphCount(), 2);
  QVERIFY(v.yRange().lower > 0);
  QCOMPARE(v.xRange().lower, 1.0);  // steps, no padding
  QCOMPARE(v.xRange().upper, 13.0);
  v.appendPoints(5, {1}, {1});  // an unknown run is ignored
  v.appendPoints(-1, {1}, {1});
  QCoreApplication::processEvents();
  QCOMPARE(v.graphCount(), 2);
  QCOMPARE(v.drawnPointCount(), before + 6);
}

void TestTrainingCurvesView::liveAppendIsCoalesced() {
  TrainingCurvesView v;
  v.resize(600, 400);
  v.setRuns({run("a", 100, 1.0), run("b", 100, 2.0)});
  QCoreApplication::processEvents();
  QSignalSpy replots(plotOf(v), &QCustomPlot::afterReplot);
  const int before = v.drawnPointCount();
  // Run b's curves are not redone when points arrive for run a.
  auto* b_raw = plotOf(v)->graph(1);
  QCOMPARE(b_raw->dataCount(), 100);
  const QCPGraphData* b_data = &*b_raw->data()->constBegin();
  for (int i = 0; i < 10; ++i) v.appendPoints(0, {101.0 + i}, {0.5});
  QCOMPARE(v.drawnPointCount(), before);  // nothing redrawn yet: once per event-loop turn
  QCoreApplication::processEvents();
  QCOMPARE(replots.count(), 1);
  QCOMPARE(&*b_raw->data()->constBegin(), b_data);
  QCOMPARE(v.drawnPointCount(), before + 20);
  QCOMPARE(v.xRange().upper, 110.0);
}

void TestTrainingCurvesView::liveEvents() {
  TrainingCurvesView v;
  v.setRuns({run("a", 100, 1.0)});
  QCOMPARE(v.eventMarkerCount(), 0);
  v.appendEvents(0, {{40, "loss-spike", "3x"}, {50, "checkpoint", ""}});
  QCOMPARE(v.eventMarkerCount(), 1);
  QCOMPARE(markerLines(v).size(), 1);
  QCOMPARE(markerLines(v).front()->point1->coords().x(), 40.0);
  v.appendEvents(3, {{40, "loss-spike", ""}});  // unknown run: ignored
  QCOMPARE(v.eventMarkerCount(), 1);
  // A rebuild (new smoothing) keeps the live events.
  v.setSmoothing(0.2);
  QCOMPARE(v.eventMarkerCount(), 1);
}

void TestTrainingCurvesView::eventClickNearMarker() {
  TrainingCurvesView v;
  v.resize(900, 500);
  showAndSettle(v);
  auto r = run("a", 1000, 1.0);
  r.events = {{300, "loss-spike", "4x"}, {700, "nonfinite", ""}};
  v.setRuns({r});
  QCoreApplication::processEvents();
  auto* plot = plotOf(v);
  plot->replot();
  QSignalSpy clicked(&v, &TrainingCurvesView::eventClicked);
  const int y = plot->axisRect()->center().y();
  const int px = int(std::lround(plot->xAxis->coordToPixel(700)));
  // A few pixels beside the line still count.
  QTest::mouseClick(plot, Qt::LeftButton, {}, QPoint(px + 3, y));
  QCOMPARE(clicked.count(), 1);
  QCOMPARE(clicked.at(0).at(0).toDouble(), 700.0);
  // Far from any marker: nothing.
  QTest::mouseClick(plot, Qt::LeftButton, {}, QPoint(px - 40, y));
  QCOMPARE(clicked.count(), 1);
  const int px300 = int(std::lround(plot->xAxis->coordToPixel(300)));
  QTest::mouseClick(plot, Qt::LeftButton, {}, QPoint(px300 - 2, y));
  QCOMPARE(clicked.count(), 2);
  QCOMPARE(clicked.at(1).at(0).toDouble(), 300.0);
}

void TestTrainingCurvesView::yRangeModes() {
  TrainingCurvesView v;
  v.resize(800, 500);
  CurveRun r;
  r.label = "spiky";
  for (int i = 0; i < 1000; ++i) {
    r.series.x.push_back(i);
    r.series.y.push_back(2.0 + 0.5 * std::sin(0.05 * i));  // 1.5 .. 2.5
  }
  r.series.y[600] = 100;  // one loss spike
  v.setSmoothing(0);
  v.setRuns({r});
  // Auto: the spike is in range, and squashes the curve into the bottom 2%.
  QVERIFY(v.yRange().upper >= 100);
  QVERIFY(v.yRange().lower <= 1.5);
  // Ignore outliers: the curve fills the plot, the spike is out.
  v.setYRangeMode(TrainingCurvesView::YRange::IgnoreOutliers);
  QVERIFY2(v.yRange().upper < 3.0, qPrintable(QString::number(v.yRange().upper)));
  QVERIFY(v.yRange().upper > 2.4);
  QVERIFY(v.yRange().lower < 1.6 && v.yRange().lower > 1.3);
  QCOMPARE(v.findChild<QComboBox*>("yRange")->currentIndex(), 2);
  // From zero: starts exactly at zero.
  v.setYRangeMode(TrainingCurvesView::YRange::FromZero);
  QCOMPARE(v.yRange().lower, 0.0);
  QVERIFY(v.yRange().upper >= 100);
  // The combo box drives the same setting.
  v.findChild<QComboBox*>("yRange")->setCurrentIndex(2);
  QVERIFY(v.yRange().upper < 3.0);
  // Live points with a new spike do not move an outlier-free range much.
  v.appendPoints(0, {1000, 1001}, {1e4, 2.0});
  QCoreApplication::processEvents();
  QVERIFY(v.yRange().upper < 3.0);
}

void TestTrainingCurvesView::wallTimeAxis() {
  TrainingCurvesView v;
  v.resize(800, 500);
  auto a = run("timed", 200, 1.0), b = run("untimed", 200, 1.0);
  for (double s : a.series.x) a.wall.push_back(2.5 + 0.5 * s);  // 3 .. 102.5 s
  a.events = {{100, "nonfinite", ""}};
  v.setRuns({a, b});
  QCOMPARE(v.xRange().upper, 200.0);
  v.setXAxis(TrainingCurvesView::XAxis::WallTime);
  auto* plot = plotOf(v);
  QCOMPARE(plot->xAxis->label(), QString("wall time (s)"));
  QCOMPARE(v.xRange().lower, 3.0);
  QCOMPARE(v.xRange().upper, 102.5);
  QCOMPARE(v.drawnPointCount(), 400);  // the run without wall times cannot be placed
  QCOMPARE(valueAt(plot->graph(0), 52.5), a.series.y[99]);  // step 100 sits at its wall time
  QCOMPARE(markerLines(v).front()->point1->coords().x(), 52.5);
  // Live points carry their wall time.
  v.appendPoints(0, {201}, {0.4}, {103});
  QTRY_COMPARE(v.xRange().upper, 103.0);
  // Long runs are shown in minutes.
  a.wall.clear();
  for (double s : a.series.x) a.wall.push_back(30 * s);  // up to 6000 s
  v.setRuns({a});
  QCOMPARE(plot->xAxis->label(), QString("wall time (min)"));
  QCOMPARE(v.xRange().upper, 100.0);
  QCOMPARE(markerLines(v).front()->point1->coords().x(), 50.0);
  // Back to steps.
  v.findChild<QComboBox*>("xAxis")->setCurrentIndex(0);
  QCOMPARE(plot->xAxis->label(), QString("step"));
  QCOMPARE(v.xRange().upper, 200.0);
}

void TestTrainingCurvesView::seedGroupsDrawBands() {
  TrainingCurvesView v;
  v.resize(800, 500);
  QVector<CurveRun> runs;
  for (int seed = 0; seed < 3; ++seed) {
    auto r = run(QString("mixer seed %1").arg(seed), 100, 1.0 + 0.1 * seed);
    r.group = "cfg-a";
    runs << r;
  }
  auto other = run("bert seed 0", 100, 1.3);
  other.group = "cfg-b";  // alone in its group: drawn as a plain run
  runs << other;
  v.setSmoothing(0);
  v.setRuns(runs);
  QCOMPARE(v.bandCount(), 0);  // grouping is off by default
  QCOMPARE(v.graphCount(), 8);
  QCOMPARE(plotOf(v)->legend->itemCount(), 4);

  v.findChild<QCheckBox*>("groupSeeds")->setChecked(true);
  QCOMPARE(v.bandCount(), 1);
  QCOMPARE(v.graphCount(), 6);  // band: low, high, raw mean, mean; bert: raw, smoothed
  QCOMPARE(plotOf(v)->legend->itemCount(), 2);
  auto* mean = graphNamed(v, "mixer (3 seeds)");
  QVERIFY(mean);
  QVERIFY(graphNamed(v, "bert seed 0"));
  // The mean at step 50, by hand.
  const double y0 = runs[0].series.y[49], y1 = runs[1].series.y[49], y2 = runs[2].series.y[49];
  const double m = (y0 + y1 + y2) / 3;
  const double sd = std::sqrt(((y0 - m) * (y0 - m) + (y1 - m) * (y1 - m) + (y2 - m) * (y2 - m)) / 2);
  QCOMPARE(valueAt(mean, 50), m);
  // The band: one graph filled down to another, at mean +- sd.
  QCPGraph* high = nullptr;
  auto* plot = plotOf(v);
  for (int i = 0; i < plot->graphCount(); ++i)
    if (plot->graph(i)->channelFillGraph()) high = plot->graph(i);
  QVERIFY(high);
  QVERIFY(high->brush().style() != Qt::NoBrush);
  QCOMPARE(valueAt(high, 50), m + sd);
  QCOMPARE(valueAt(high->channelFillGraph(), 50), m - sd);
  // A seed that runs ahead: the band ends where the slowest seed is.
  v.appendPoints(0, {101, 102}, {0.5, 0.5});
  QCoreApplication::processEvents();
  QVERIFY(std::isnan(valueAt(mean, 101)));
  v.appendPoints(1, {101}, {0.7});
  v.appendPoints(2, {101}, {0.9});
  QCoreApplication::processEvents();
  QCOMPARE(valueAt(mean, 101), 0.7);
  // Off again: every run on its own.
  v.setGroupSeeds(false);
  QCOMPARE(v.bandCount(), 0);
  QCOMPARE(v.graphCount(), 8);
}

void TestTrainingCurvesView::metricPicker() {
  TrainingCurvesView v;
  QSignalSpy changed(&v, &TrainingCurvesView::metricChanged);
  // The app lists and selects metrics: the first is taken, the axis labelled, nothing emitted back.
  v.setMetricNames({"loss/total", "loss/mlm", "accuracy"});
  QCOMPARE(v.metricName(), QString("loss/total"));
  QCOMPARE(plotOf(v)->yAxis->label(), QString("loss/total"));
  v.setMetricName("loss/mlm");
  QCOMPARE(plotOf(v)->yAxis->label(), QString("loss/mlm"));
  // A new list that still has the current metric keeps it.
  v.setMetricNames({"accuracy", "loss/mlm"});
  QCOMPARE(v.metricName(), QString("loss/mlm"));
  v.setMetricName("eval/f1");  // not listed yet: added
  QCOMPARE(v.metricName(), QString("eval/f1"));
  QCOMPARE(changed.count(), 0);
  // The user picks one: the app hears of it.
  auto* combo = v.findChild<QComboBox*>("metric");
  QVERIFY(combo);
  QVERIFY(!combo->toolTip().isEmpty());
  QCOMPARE(combo->count(), 3);
  combo->setCurrentIndex(0);
  QCOMPARE(changed.count(), 1);
  QCOMPARE(changed.at(0).at(0).toString(), QString("accuracy"));
  QCOMPARE(plotOf(v)->yAxis->label(), QString("accuracy"));
}

void TestTrainingCurvesView::smoothingSlider() {
  TrainingCurvesView v;
  v.setRuns({run("noisy", 200, 1.0)});
  auto* slider = v.findChild<QSlider*>("smoothing");
  QVERIFY(slider);
  auto* smoothed = graphNamed(v, "noisy");
  const double raw50 = run("noisy", 200, 1.0).series.y[49];
  QVERIFY(valueAt(smoothed, 50) != raw50);  // 0.6 by default
  slider->setValue(0);
  QCoreApplication::processEvents();
  QCOMPARE(v.smoothing(), 0.0);
  QCOMPARE(valueAt(smoothed, 50), raw50);
  slider->setValue(slider->maximum());
  QCoreApplication::processEvents();
  QCOMPARE(v.smoothing(), 0.99);
  QVERIFY(std::abs(valueAt(smoothed, 50) - raw50) > 0.1);
  v.setSmoothing(5);  // clamped
  QCOMPARE(v.smoothing(), 0.99);
}

void TestTrainingCurvesView::classroomHidesExpertControls() {
  TrainingCurvesView v;
  v.setRuns({run("a", 50, 1.0)});
  const QStringList expert = {"smoothing", "logX", "logY", "yRange", "xAxis"};
  const QStringList always = {"metric", "groupSeeds", "export"};
  for (const auto& name : expert + always) {
    auto* w = v.findChild<QWidget*>(name);
    QVERIFY2(w, qPrintable(name));
    QVERIFY2(!w->isHidden(), qPrintable(name));
    QVERIFY2(!w->toolTip().isEmpty(), qPrintable(name));
  }
  auto* plot = plotOf(v);
  const double tick = plot->xAxis->tickLabelFont().pointSizeF();
  const double pen = graphNamed(v, "a")->pen().widthF();
  v.setClassroomMode(true);
  for (const auto& name : expert) QVERIFY2(v.findChild<QWidget*>(name)->isHidden(), qPrintable(name));
  for (const auto& name : always) QVERIFY2(!v.findChild<QWidget*>(name)->isHidden(), qPrintable(name));
  QCOMPARE(plot->xAxis->tickLabelFont().pointSizeF(), 1.5 * tick);
  QVERIFY(plot->legend->font().pointSizeF() >= 1.5 * tick);
  QVERIFY(graphNamed(v, "a")->pen().widthF() > pen);
  v.setClassroomMode(false);
  for (const auto& name : expert) QVERIFY2(!v.findChild<QWidget*>(name)->isHidden(), qPrintable(name));
  QCOMPARE(plot->xAxis->tickLabelFont().pointSizeF(), tick);
}

void TestTrainingCurvesView::narrowViewWrapsControls() {
  TrainingCurvesView v;
  v.setRuns({run("a", 50, 1.0)});
  QVERIFY(v.minimumSizeHint().width() < 500);  // fits a narrow dock
  v.resize(1400, 500);
  showAndSettle(v);
  auto* metric = v.findChild<QWidget*>("metric");
  auto* slider = v.findChild<QWidget*>("smoothing");
  auto row_of = [&](QWidget* w) { return w->mapTo(&v, QPoint(0, w->height() / 2)).y(); };
  auto same_row = [&] { return std::abs(row_of(slider) - row_of(metric)) < metric->height() / 2; };
  QVERIFY(same_row());  // wide: one row
  v.resize(600, 500);
  QCoreApplication::processEvents();
  QCoreApplication::processEvents();
  QVERIFY(row_of(slider) > row_of(metric) + metric->height() / 2);  // narrow: the expert controls wrap
  QVERIFY(slider->mapTo(&v, QPoint(slider->width(), 0)).x() <= v.width());
  v.resize(1400, 500);
  QCoreApplication::processEvents();
  QCoreApplication::processEvents();
  QVERIFY(same_row());
}

void TestTrainingCurvesView::badInputDoesNotCrash() {
  TrainingCurvesView v;
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  CurveRun mismatched{"mismatched", "", {{1, 2, 3, 4}, {1, 2}}, {5, 6, 7}, {{nan, "nonfinite", ""}}};
  CurveRun shuffled{"shuffled", "", {{3, 1, 2}, {30, 10, 20}}, {}, {}};
  CurveRun empty{"empty", "", {}, {}, {}};
  CurveRun broken{"broken", "", {{1, 2, 3}, {inf, nan, -inf}}, {}, {}};
  v.setSmoothing(0);
  v.setRuns({mismatched, shuffled, empty, broken});
  QCOMPARE(v.eventMarkerCount(), 0);  // an event without a step is not drawn
  QCOMPARE(valueAt(graphNamed(v, "mismatched"), 2), 2.0);
  QVERIFY(std::isnan(valueAt(graphNamed(v, "mismatched"), 3)));  // y ended at 2 points
  QCOMPARE(graphNamed(v, "empty")->dataCount(), 0);
  QCOMPARE(graphNamed(v, "broken")->dataCount(), 3);  // drawn as gaps
  // Out-of-order steps are sorted.
  QCOMPARE(valueAt(graphNamed(v, "shuffled"), 1), 10.0);
  QCOMPARE(valueAt(graphNamed(v, "shuffled"), 3), 30.0);
  // Non-finite values are gaps, not an infinite axis.
  QVERIFY(std::isfinite(v.yRange().upper));
  QVERIFY(std::isfinite(v.yRange().lower));
  // Live points out of order, mismatched, or with wall times for a run that had none.
  v.appendPoints(1, {0.5, 4}, {5, 40, 99});
  v.appendPoints(2, {1}, {}, {1});
  v.appendPoints(0, {5}, {3}, {1, 2, 3});
  QCoreApplication::processEvents();
  QCOMPARE(valueAt(graphNamed(v, "shuffled"), 0.5), 5.0);
  QCOMPARE(valueAt(graphNamed(v, "shuffled"), 4), 40.0);
  v.setXAxis(TrainingCurvesView::XAxis::WallTime);
  v.setLogY(true);
  v.setLogX(true);
  v.setYRangeMode(TrainingCurvesView::YRange::IgnoreOutliers);
  QVERIFY(v.xRange().lower > 0);
  QVERIFY(v.yRange().lower > 0);
  v.setSmoothing(nan);
  QCOMPARE(v.smoothing(), 0.0);
}

void TestTrainingCurvesView::exportsFiles() {
  TrainingCurvesView v;
  v.resize(600, 400);
  v.setMetricName("loss/mlm");
  auto a = run("a", 50, 1.0);
  for (double s : a.series.x) a.wall.push_back(0.25 * s);
  a.group = "g1";
  a.events = {{20, "loss-spike", ""}};
  v.setRuns({a, run("b, with a comma", 30, 2.0)});
  QTemporaryDir dir;
  for (const char* name : {"c.png", "c.svg", "c.pdf", "c.csv"}) {
    const QString path = dir.filePath(name);
    QString error;
    QVERIFY2(v.exportView(path, &error), qPrintable(QString(name) + ": " + error));
    QVERIFY(QFileInfo(path).size() > 100);
  }
  QString error;
  QVERIFY(!v.exportView(dir.filePath("c.xyz"), &error));
  QVERIFY(!error.isEmpty());
  // Vector formats stay vector: no embedded raster image.
  const QByteArray svg_text = read_bytes(dir.filePath("c.svg")), pdf_bytes = read_bytes(dir.filePath("c.pdf"));
  QVERIFY(!svg_text.isEmpty() && !pdf_bytes.isEmpty());
  QVERIFY(!embeds_raster(svg_text) && !embeds_raster(pdf_bytes));
  QVERIFY(svg_text.contains("<path") || svg_text.contains("<polyline"));
  // CSV: every raw point of every run, with its wall time where known.
  QFile csv(dir.filePath("c.csv"));
  QVERIFY(csv.open(QIODevice::ReadOnly | QIODevice::Text));
  const QList<QByteArray> lines = csv.readAll().trimmed().split('\n');
  QCOMPARE(lines.size(), 1 + 50 + 30);
  QCOMPARE(lines[0], QByteArray("run,group,step,wall_seconds,loss/mlm"));
  QVERIFY(lines[2].startsWith("a,g1,2,0.5,"));
  QVERIFY(lines[51].startsWith("\"b, with a comma\",,1,,"));
}

void TestTrainingCurvesView::benchRebuildMillionPoints() {
  TrainingCurvesView v;
  v.resize(1200, 600);
  showAndSettle(v);
  auto r = run("long", 1'000'000, 1.0);
  r.events = {{500'000, "loss-spike", ""}};
  auto* plot = plotOf(v);
  v.setRuns({r});
  QCoreApplication::processEvents();
  // A new smoothing weight redoes all the view does after taking new series (smoothing, decimation,
  // ranges, markers) and the replot; it leaves out the caller's copy of 16 MB of input.
  double weight = 0.6;
  QBENCHMARK {
    weight = weight == 0.6 ? 0.61 : 0.6;
    v.setSmoothing(weight);
    plot->replot();
  }
  QVERIFY(v.drawnPointCount() <= 2 * 4 * 1200);
  QVERIFY(v.drawnPointCount() > 1200);
  QCOMPARE(v.eventMarkerCount(), 1);
}

void TestTrainingCurvesView::benchAppendFiftyPoints() {
  TrainingCurvesView v;
  v.resize(1200, 600);
  showAndSettle(v);
  auto a = run("live", 100'000, 1.0), b = run("other", 100'000, 1.2);
  v.setRuns({a, b});
  QCoreApplication::processEvents();
  std::vector<double> steps(50), values(50);
  double next = 100'001;
  // One live update as the app delivers it: 50 new points, then the event loop draws.
  QBENCHMARK {
    for (size_t i = 0; i < steps.size(); ++i) {
      steps[i] = next++;
      values[i] = 0.02 + 0.001 * std::sin(next);
    }
    v.appendPoints(0, steps, values);
    QCoreApplication::processEvents();
  }
  QCOMPARE(v.xRange().upper, next - 1);
}

QTEST_MAIN(TestTrainingCurvesView)
