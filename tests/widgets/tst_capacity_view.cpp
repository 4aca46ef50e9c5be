#include "tst_capacity_view.h"

#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QLabel>
#include <QPushButton>
#include <QSignalSpy>
#include <QStackedWidget>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <limits>
#include <memory>

#include "widgets/capacity_view.h"
#include "export_checks.h"

using smx::telemetry::MoeLayerStats;
using smx::telemetry::Snapshot;
using smx::widgets::CapacityProbe;
using smx::widgets::CapacityView;
using smx::widgets::SnapshotPtr;

using smx_test::embeds_raster;
using smx_test::read_bytes;

namespace {

constexpr int kTcBlock = 4, kEcBlock = 6;

float fill_at(int expert, int snapshot) { return float((expert * 3 + snapshot) % 11) / 10.0f; }

MoeLayerStats tokens_choose(int experts, int s) {
  MoeLayerStats st;
  st.layer = kTcBlock;
  st.router = "tokens-choose";
  st.num_experts = experts;
  st.capacity = 20;
  st.groups = 4;
  st.tokens_per_group = 64;
  for (int e = 0; e < experts; ++e) {
    st.fill.push_back(fill_at(e, s));
    st.tokens_per_expert.push_back(fill_at(e, s) * st.groups * st.capacity);
  }
  st.dropped_fraction = 0.01f * float(s % 7);
  st.unrouted_fraction = 0.002f * float(s % 5);
  for (int p = 0; p < 16; ++p) st.dropped_by_position.push_back(0.01f * float(p));
  return st;
}

MoeLayerStats experts_choose(int experts, int s) {
  MoeLayerStats st;
  st.layer = kEcBlock;
  st.router = "experts-choose";
  st.num_experts = experts;
  st.capacity = 16;
  st.groups = 2;
  st.tokens_per_group = 128;
  for (int e = 0; e < experts; ++e) st.fill.push_back(1.0f);
  st.experts_per_token = {12, 50, 28, 10};  // tokens taken by 0, 1, 2, 3+ experts
  st.unrouted_fraction = 0.12f;
  (void)s;
  return st;
}

SnapshotPtr snapshot(int s, int experts = 8) {
  auto snap = std::make_shared<Snapshot>();
  snap->step = 100 * s;
  snap->moe = {tokens_choose(experts, s), experts_choose(experts, s)};
  return snap;
}

QVector<SnapshotPtr> run(int n, int experts = 8) {
  QVector<SnapshotPtr> all;
  for (int s = 0; s < n; ++s) all << snapshot(s, experts);
  return all;
}

bool showing_hint(const CapacityView& v) {
  auto* stack = v.findChild<QStackedWidget*>();
  return stack && qobject_cast<QLabel*>(stack->currentWidget());
}

CapacityProbe probe_at(double factor) {
  CapacityProbe p;
  p.capacity_factor = factor;
  MoeLayerStats st = tokens_choose(8, 0);
  st.capacity = 40;
  for (int e = 0; e < 8; ++e) st.fill[e] = 0.1f * float(e);
  st.dropped_fraction = 0.031f;
  st.unrouted_fraction = 0.004f;
  p.layers = {st};
  return p;
}

}  // namespace

void TestCapacityView::fillOverTime() {
  CapacityView v;
  v.resize(1000, 760);
  v.setSnapshots(run(10));
  QVERIFY(!showing_hint(v));
  QCOMPARE(v.layerCount(), 2);
  QCOMPARE(v.currentLayer(), 0);  // block 4, tokens choose
  QCOMPARE(v.fillCellCount(), 8 * 10);
  for (int s = 0; s < 10; ++s)
    for (int e = 0; e < 8; ++e) QCOMPARE(v.fillValue(e, s), double(fill_at(e, s)));
  QVERIFY(std::isnan(v.fillValue(8, 0)));
  QVERIFY2(v.caption().contains("capacity 20 tokens per expert per group of 64"), qPrintable(v.caption()));
  QVERIFY(v.caption().contains("Block 4"));
  v.setCurrentLayer(1);
  QVERIFY2(v.caption().contains("capacity 16 tokens per expert per group of 128"), qPrintable(v.caption()));
  QCOMPARE(v.fillValue(3, 9), 1.0);
}

void TestCapacityView::appendReadsOnlyNewSnapshots() {
  CapacityView v;
  v.resize(900, 700);
  auto all = run(12);
  v.setSnapshots(all.mid(0, 5));
  QCOMPARE(v.fillCellCount(), 8 * 5);
  v.setSnapshots(all);  // starts with what was shown: only 7 are read
  QCOMPARE(v.fillCellCount(), 8 * 12);
  QCOMPARE(v.fillValue(2, 11), double(fill_at(2, 11)));
  QCOMPARE(v.fillValue(2, 4), double(fill_at(2, 4)));
  // A different run replaces everything; a layer that shows up late is padded.
  QVector<SnapshotPtr> other;
  for (int s = 0; s < 3; ++s) {
    auto snap = std::make_shared<Snapshot>();
    snap->step = s;
    if (s > 0) snap->moe = {tokens_choose(4, s)};
    other << snap;
  }
  v.setSnapshots(other);
  QCOMPARE(v.layerCount(), 1);
  QCOMPARE(v.fillCellCount(), 4 * 3);
  QVERIFY(std::isnan(v.fillValue(0, 0)));
  QCOMPARE(v.fillValue(1, 2), double(fill_at(1, 2)));
}

void TestCapacityView::droppedByPositionAndExpertsChoose() {
  CapacityView v;
  v.resize(900, 700);
  v.setSnapshots(run(3));
  QCOMPARE(v.positionBarCount(), 16);  // one per sequence position
  v.setCurrentLayer(1);                // experts choose: bars of experts per token instead
  QCOMPARE(v.positionBarCount(), 4);
  v.setCurrentLayer(0);
  QCOMPARE(v.positionBarCount(), 16);
}

void TestCapacityView::evalProbeBars() {
  CapacityView v;
  v.resize(1000, 760);
  v.setSnapshots(run(4));
  QCOMPARE(v.evalBarCount(), 0);
  v.setEvalProbe(probe_at(2.0));
  QCOMPARE(v.evalBarCount(), 8);
  QVERIFY2(v.evalSummary().contains("3.1% of choices dropped"), qPrintable(v.evalSummary()));
  QVERIFY(v.evalSummary().contains("0.4% of tokens unrouted"));
  QVERIFY(v.evalSummary().contains("capacity factor 2"));
  QVERIFY(v.evalError().isEmpty());
  // The probe has no result for the experts-choose layer.
  v.setCurrentLayer(1);
  QCOMPARE(v.evalBarCount(), 0);
  v.setCurrentLayer(0);
  QCOMPARE(v.evalBarCount(), 8);
  // An error clears the bars and shows the message.
  CapacityProbe failed;
  failed.capacity_factor = 4.0;
  failed.error = "no held-out batch: the run has no eval data";
  v.setEvalProbe(failed);
  QCOMPARE(v.evalBarCount(), 0);
  QCOMPARE(v.evalError(), failed.error);
  auto* error_label = v.findChild<QLabel*>("evalError");
  QVERIFY(error_label && error_label->isVisibleTo(&v));
  QVERIFY(error_label->styleSheet().contains("color"));
}

void TestCapacityView::applyEmitsFactor() {
  CapacityView v;
  auto* spin = v.findChild<QDoubleSpinBox*>("evalFactor");
  auto* apply = v.findChild<QPushButton*>("applyEvalFactor");
  QVERIFY(spin && apply);
  QCOMPARE(spin->minimum(), 0.25);
  QCOMPARE(spin->maximum(), 8.0);
  QCOMPARE(spin->singleStep(), 0.25);
  QSignalSpy spy(&v, &CapacityView::evalCapacityFactorRequested);
  spin->setValue(2.5);
  QCOMPARE(spy.count(), 0);  // only Apply asks for a probe
  QTest::mouseClick(apply, Qt::LeftButton);
  QCOMPARE(spy.count(), 1);
  QCOMPARE(spy.at(0).at(0).toDouble(), 2.5);
}

void TestCapacityView::classroomHidesEvalControls() {
  CapacityView v;
  v.resize(1000, 760);
  v.setSnapshots(run(5));
  v.setEvalProbe(probe_at(2.0));
  auto* spin = v.findChild<QDoubleSpinBox*>("evalFactor");
  auto* apply = v.findChild<QPushButton*>("applyEvalFactor");
  const double size = v.font().pointSizeF();
  v.setClassroomMode(true);
  QVERIFY(!spin->isVisibleTo(&v));
  QVERIFY(!apply->isVisibleTo(&v));
  QVERIFY(v.font().pointSizeF() >= 1.4 * size);
  QCOMPARE(v.fillCellCount(), 8 * 5);  // the rest stays
  QTemporaryDir dir;
  QVERIFY(v.exportView(dir.filePath("classroom.png")));
  v.setClassroomMode(false);
  QVERIFY(spin->isVisibleTo(&v));
  QCOMPARE(v.font().pointSizeF(), size);
  QCOMPARE(v.evalBarCount(), 8);
  QVERIFY(v.exportView(dir.filePath("expert.png")));
}

void TestCapacityView::exportsAllFormats() {
  CapacityView v;
  v.resize(1000, 760);
  v.setSnapshots(run(20));
  v.setEvalProbe(probe_at(1.5));
  QTemporaryDir dir;
  for (const char* name : {"c.png", "c.svg", "c.pdf", "c.csv"}) {
    const QString path = dir.filePath(name);
    QString error;
    QVERIFY2(v.exportView(path, &error), qPrintable(name + QString(": ") + error));
    QVERIFY2(QFileInfo(path).size() > 200, name);
  }
  const QByteArray svg_text = read_bytes(dir.filePath("c.svg")), pdf_bytes = read_bytes(dir.filePath("c.pdf"));
  QVERIFY(!svg_text.isEmpty() && !pdf_bytes.isEmpty());
  QVERIFY(!embeds_raster(svg_text) && !embeds_raster(pdf_bytes));  // vector all through, colour bar included
  QVERIFY(svg_text.contains("<path") || svg_text.contains("<rect"));
  QFile csv(dir.filePath("c.csv"));
  QVERIFY(csv.open(QIODevice::ReadOnly | QIODevice::Text));
  QCOMPARE(csv.readLine().trimmed(), QByteArray("panel,block,x,series,value"));
  const QByteArray rest = csv.readAll();
  QCOMPARE(rest.count("\nfill,") + (rest.startsWith("fill,") ? 1 : 0), 8 * 20);
  QCOMPARE(rest.count("\ndropped_by_position_percent,"), 16);
  QCOMPARE(rest.count("\neval_fill,"), 8);
  QString error;
  QVERIFY(!v.exportView(dir.filePath("c.bmp"), &error));
  QVERIFY(!error.isEmpty());
}

void TestCapacityView::emptyStates() {
  CapacityView v;
  v.resize(800, 600);
  QVERIFY(showing_hint(v));
  QCOMPARE(v.layerCount(), 0);
  QCOMPARE(v.fillCellCount(), 0);
  QCOMPARE(v.positionBarCount(), 0);
  QString error;
  QTemporaryDir dir;
  QVERIFY(!v.exportView(dir.filePath("e.png"), &error));
  QVERIFY(!error.isEmpty());
  v.setEvalProbe(probe_at(2.0));  // a probe before any snapshot
  QCOMPARE(v.evalBarCount(), 0);
  // Snapshots of a model without MoE layers.
  auto dense = std::make_shared<Snapshot>();
  dense->step = 10;
  v.setSnapshots({dense});
  QVERIFY(showing_hint(v));
  QCOMPARE(v.layerCount(), 0);
  v.setSnapshots(run(2));
  QVERIFY(!showing_hint(v));
  v.setSnapshots({});
  QVERIFY(showing_hint(v));
  QCOMPARE(v.fillCellCount(), 0);
}

void TestCapacityView::badInputDoesNotCrash() {
  CapacityView v;
  v.resize(800, 600);
  auto all = run(4);
  auto odd = std::make_shared<Snapshot>(*all[2]);
  odd->moe[0].fill = {0.5f, std::numeric_limits<float>::quiet_NaN(), 0.2f};  // 3 of 8 experts, one NaN
  odd->moe[0].dropped_by_position.clear();
  odd->moe[0].dropped_fraction = std::numeric_limits<float>::infinity();
  odd->moe[1].experts_per_token.clear();
  all[2] = odd;
  all.insert(1, SnapshotPtr());  // a missing snapshot
  v.setSnapshots(all);
  QCOMPARE(v.fillCellCount(), 8 * 5);
  QVERIFY(std::isnan(v.fillValue(0, 1)));  // the missing one draws nothing
  QCOMPARE(v.fillValue(0, 3), 0.5);
  QVERIFY(std::isnan(v.fillValue(1, 3)));
  QVERIFY(std::isnan(v.fillValue(5, 3)));
  // Latest snapshot still complete; make the last one the odd one.
  all.append(odd);
  v.setSnapshots(all);
  QCOMPARE(v.positionBarCount(), 0);
  v.setCurrentLayer(1);
  QCOMPARE(v.positionBarCount(), 0);
  CapacityProbe p = probe_at(2.0);
  p.layers[0].fill.assign(3, std::numeric_limits<float>::quiet_NaN());
  v.setCurrentLayer(0);
  v.setEvalProbe(p);
  QCOMPARE(v.evalBarCount(), 0);
  QTemporaryDir dir;
  QVERIFY(v.exportView(dir.filePath("odd.svg")));
  v.setCurrentLayer(7);  // out of range: ignored
  QCOMPARE(v.currentLayer(), 0);
}

void TestCapacityView::benchReplot() {
  // 8 experts x 200 snapshots, rebuilt from scratch and drawn each time.
  // Inside a plain window, as in the app (a top-level view would resize its
  // window whenever a label changes, which the offscreen platform warns about).
  QWidget window;
  window.resize(1200, 800);
  CapacityView v(&window);
  v.resize(1200, 800);
  window.show();
  QVERIFY(QTest::qWaitForWindowExposed(&window));
  const auto a = run(200), b = run(200);
  v.setEvalProbe(probe_at(2.0));
  bool flip = false;
  QBENCHMARK {
    v.setSnapshots((flip = !flip) ? a : b);
    QCoreApplication::processEvents();  // runs the queued replot
  }
  QCOMPARE(v.fillCellCount(), 8 * 200);
}

QTEST_MAIN(TestCapacityView)
