#include "tst_training_curves_view.h"

#include <QFileInfo>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <limits>

#include "widgets/training_curves_view.h"

using smx::widgets::CurveEvent;
using smx::widgets::CurveRun;
using smx::widgets::TrainingCurvesView;

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
}  // namespace

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
  QSignalSpy clicked(&v, &TrainingCurvesView::eventClicked);
  QVERIFY(clicked.isValid());
}

void TestTrainingCurvesView::millionPointRunIsDecimated() {
  TrainingCurvesView v;
  v.resize(1000, 500);
  auto r = run("long", 1'000'000, 1.0);
  r.series.y[777'777] = 1e3;  // one spike among a million steps
  v.setRuns({r});
  QVERIFY2(v.drawnPointCount() <= 2 * 4 * 1000, qPrintable(QString::number(v.drawnPointCount())));
  QVERIFY(v.drawnPointCount() > 1000);
}

void TestTrainingCurvesView::liveAppendAndLogScale() {
  TrainingCurvesView v;
  v.resize(600, 400);
  v.setRuns({run("live", 10, 1.0)});
  const int before = v.drawnPointCount();
  v.appendPoints(0, {11, 12, 13}, {1.0, 0.9, 0.8});
  QCOMPARE(v.drawnPointCount(), before + 6);  // 3 raw + 3 smoothed
  v.setLogY(true);
  v.setLogX(true);
  QCOMPARE(v.graphCount(), 2);
  v.appendPoints(5, {1}, {1});  // an unknown run is ignored
  QCOMPARE(v.graphCount(), 2);
}

void TestTrainingCurvesView::exportsFiles() {
  TrainingCurvesView v;
  v.resize(600, 400);
  v.setMetricName("loss/mlm");
  v.setRuns({run("a", 50, 1.0)});
  QTemporaryDir dir;
  for (const char* name : {"c.png", "c.pdf", "c.csv"}) {
    const QString path = dir.filePath(name);
    QVERIFY2(v.exportPlot(path), name);
    QVERIFY(QFileInfo(path).size() > 100);
  }
  QVERIFY(!v.exportPlot(dir.filePath("c.xyz")));
  QFile csv(dir.filePath("c.csv"));
  QVERIFY(csv.open(QIODevice::ReadOnly));
  QCOMPARE(csv.readLine().trimmed(), QByteArray("run,step,loss/mlm"));
}

void TestTrainingCurvesView::replotMillionPoints() {
  TrainingCurvesView v;
  v.resize(1200, 600);
  const auto r = run("long", 1'000'000, 1.0);
  QBENCHMARK { v.setRuns({r}); }
}

QTEST_MAIN(TestTrainingCurvesView)
