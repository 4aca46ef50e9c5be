#include "tst_mixing_view.h"

#include <QCheckBox>
#include <QFileInfo>
#include <QLabel>
#include <QSlider>
#include <QStackedWidget>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <random>

#include "widgets/mixing_view.h"
#include "export_checks.h"

using smx::telemetry::Matrix;
using smx::telemetry::MixingSnapshot;
using smx::telemetry::ProbeRouting;
using smx::telemetry::Snapshot;
using smx::widgets::MixingView;
using smx::widgets::SnapshotPtr;

using smx_test::embeds_raster;
using smx_test::read_bytes;

namespace {

constexpr int kS = 8, kD = 6, kT = 5;
constexpr double kPi = 3.14159265358979323846;

// What each snapshot adds to the linear layer's sequence matrix.
float delta(int r, int c) { return 0.01f * float((r * kS + c) % 7 - 3); }

Matrix matrix(const std::string& name, int rows, int cols, const std::function<float(int, int)>& f) {
  Matrix m;
  m.name = name;
  m.rows = rows;
  m.cols = cols;
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) m.values.push_back(f(r, c));
  return m;
}

// Block 0 linear (sequence = diag(8..1) + k * delta, hidden), block 1
// Fourier, block 2 Toeplitz with a wide matrix, block 3 attention (2 heads).
SnapshotPtr snapshot(int k) {
  auto s = std::make_shared<Snapshot>();
  s->step = 50 * k;
  MixingSnapshot linear;
  linear.layer = 0;
  linear.kind = "linear";
  linear.matrices.push_back(matrix("sequence", kS, kS, [k](int r, int c) {
    return (r == c ? float(kS - r) : 0.0f) + float(k) * delta(r, c);
  }));
  linear.matrices.push_back(matrix("hidden", kD, kD, [k](int r, int c) { return 0.1f * float(r - c) + 0.01f * k; }));
  MixingSnapshot fourier;
  fourier.layer = 1;
  fourier.kind = "fourier";
  fourier.matrices.push_back(matrix("sequence", kS, kS, [](int r, int c) {
    return float(std::cos(2 * kPi * r * c / kS));
  }));
  MixingSnapshot toeplitz;
  toeplitz.layer = 2;
  toeplitz.kind = "toeplitz";
  toeplitz.matrices.push_back(matrix("sequence", 5, 7, [k](int r, int c) { return 0.1f * float(c - r) + 0.001f * k; }));
  MixingSnapshot attention;
  attention.layer = 3;
  attention.kind = "attention";
  for (int h = 0; h < 2; ++h)
    attention.matrices.push_back(matrix("attention head " + std::to_string(h), kT, kT, [h](int r, int c) {
      return r == (h ? kT - 1 - c : c) ? 0.6f : 0.1f;
    }));
  s->mixing = {linear, fourier, toeplitz, attention};
  ProbeRouting probe;
  probe.tokens = {"[CLS]", "the", "cat", "sat", "[SEP]"};
  s->probe = {probe};
  return s;
}

QVector<SnapshotPtr> run(int n) {
  QVector<SnapshotPtr> all;
  for (int k = 0; k < n; ++k) all << snapshot(k);
  return all;
}

bool showing_hint(const MixingView& v) {
  auto* stack = v.findChild<QStackedWidget*>();
  return stack && qobject_cast<QLabel*>(stack->currentWidget());
}

int index_of(const QStringList& names, const QString& name) { return names.indexOf(name); }

}  // namespace

void TestMixingView::layersMatricesAndCells() {
  MixingView v;
  v.resize(1200, 800);
  v.setSnapshots(run(3));
  QVERIFY(!showing_hint(v));
  QCOMPARE(v.mixingLayerCount(), 3);  // linear, fourier, toeplitz; attention has its own panel
  QCOMPARE(v.attentionLayerCount(), 1);
  QCOMPARE(v.matrixNames(), QStringList({"sequence", "hidden"}));
  QCOMPARE(v.cellCount(), kS * kS);
  QVERIFY2(v.caption().startsWith("Block 0: linear"), qPrintable(v.caption()));
  v.setCurrentMatrix(index_of(v.matrixNames(), "hidden"));
  QCOMPARE(v.cellCount(), kD * kD);
  QCOMPARE(v.cellValue(3, 1), double(0.1f * 2 + 0.01f * 2));
  QVERIFY(std::isnan(v.cellValue(kD, 0)));
  v.setCurrentMixingLayer(2);  // toeplitz, 5 x 7
  QCOMPARE(v.cellCount(), 5 * 7);
}

void TestMixingView::spectrumOfShownMatrix() {
  MixingView v;
  v.resize(1200, 800);
  v.setSnapshots(run(1));
  // Snapshot 0: the sequence matrix is diag(8, 7, ..., 1).
  QCOMPARE(v.singularValueCount(), kS);
  const auto sigma = v.singularValues();
  for (int i = 0; i < kS; ++i) QVERIFY(std::abs(sigma[i] - (kS - i)) < 1e-12);
  v.setCurrentMixingLayer(2);
  QCOMPARE(v.singularValueCount(), 5);  // min(rows, cols) of a 5 x 7
  v.setCurrentMixingLayer(0);
  v.setCurrentMatrix(1);
  QCOMPARE(v.singularValueCount(), kD);
}

void TestMixingView::differenceFromInitialisation() {
  MixingView v;
  v.resize(1200, 800);
  v.setSnapshots(run(3));
  QVERIFY(v.differenceAvailable());
  v.setCurrentSnapshot(0);
  v.setShowDifference(true);
  QVERIFY(v.showingDifference());
  QCOMPARE(v.cellCount(), kS * kS);
  for (int r = 0; r < kS; ++r)
    for (int c = 0; c < kS; ++c) QCOMPARE(v.cellValue(r, c), 0.0);
  QCOMPARE(v.singularValueCount(), kS);
  for (double s : v.singularValues()) QCOMPARE(s, 0.0);
  v.setCurrentSnapshot(1);
  for (int r = 0; r < kS; ++r)
    for (int c = 0; c < kS; ++c) {
      const float base = r == c ? float(kS - r) : 0.0f;
      const double expected = double((base + delta(r, c)) - base);  // as the float matrices hold it
      QCOMPARE(v.cellValue(r, c), expected);
      QVERIFY(std::abs(v.cellValue(r, c) - delta(r, c)) < 1e-6);
    }
  QVERIFY2(v.caption().contains("change since step 0"), qPrintable(v.caption()));
  auto* toggle = v.findChild<QCheckBox*>("differenceToggle");
  QVERIFY(toggle && toggle->isChecked());
  toggle->setChecked(false);
  QVERIFY(!v.showingDifference());
  QCOMPARE(v.cellValue(0, 0), double(float(kS) + delta(0, 0)));
}

void TestMixingView::scrubbingAndFollowing() {
  MixingView v;
  v.resize(1200, 800);
  auto all = run(5);
  v.setSnapshots(all.mid(0, 3));
  QCOMPARE(v.currentSnapshot(), 2);  // follows the newest
  QCOMPARE(v.stepLabel(), QString("step 100 (3 of 3)"));
  const double newest = v.cellValue(0, 1);
  v.setCurrentSnapshot(0);
  QCOMPARE(v.currentSnapshot(), 0);
  QCOMPARE(v.stepLabel(), QString("step 0 (1 of 3)"));
  QCOMPARE(v.cellValue(0, 1), 0.0);
  QVERIFY(v.cellValue(0, 1) != newest);
  v.setSnapshots(all.mid(0, 4));  // moved back: stays there
  QCOMPARE(v.currentSnapshot(), 0);
  QCOMPARE(v.stepLabel(), QString("step 0 (1 of 4)"));
  auto* slider = v.findChild<QSlider*>("snapshotSlider");
  QVERIFY(slider);
  QCOMPARE(slider->maximum(), 3);
  slider->setValue(3);  // back at the end: follows again
  QCOMPARE(v.currentSnapshot(), 3);
  QCOMPARE(v.cellValue(0, 1), double(3 * delta(0, 1)));
  v.setSnapshots(all);
  QCOMPARE(v.currentSnapshot(), 4);
  QCOMPARE(slider->value(), 4);
  v.setCurrentSnapshot(99);  // clamped
  QCOMPARE(v.currentSnapshot(), 4);
}

void TestMixingView::fixedBasisHasNoDifference() {
  MixingView v;
  v.resize(1200, 800);
  v.setSnapshots(run(2));
  v.setShowDifference(true);
  v.setCurrentMixingLayer(1);  // fourier
  QVERIFY(!v.differenceAvailable());
  QVERIFY(!v.showingDifference());
  QVERIFY2(v.caption().contains("fixed basis, not trained"), qPrintable(v.caption()));
  QVERIFY(!v.findChild<QCheckBox*>("differenceToggle")->isEnabled());
  QCOMPARE(v.cellValue(0, 0), 1.0);  // the basis itself, not a zero difference
  QCOMPARE(v.cellValue(2, 2), double(float(std::cos(2 * kPi * 4 / kS))));
  // Back on a trained layer the wish to see the difference still holds.
  v.setCurrentMixingLayer(0);
  QVERIFY(v.showingDifference());
}

void TestMixingView::attentionHeads() {
  MixingView v;
  v.resize(1400, 800);
  v.setSnapshots(run(2));
  QCOMPARE(v.attentionLayerCount(), 1);
  QCOMPARE(v.attentionHeadCount(), 2);
  QCOMPARE(v.attentionCellCount(), kT * kT);
  QCOMPARE(v.attentionValue(1, 1), double(0.6f));  // head 0 looks at itself
  QCOMPARE(v.attentionValue(1, 3), double(0.1f));
  v.setCurrentAttentionHead(1);  // head 1 looks at the mirrored position
  QCOMPARE(v.attentionValue(1, 3), double(0.6f));
  QCOMPARE(v.attentionValue(1, 1), double(0.1f));
  // Attention only: the matrix panel leaves, the attention map stays.
  auto only = std::make_shared<Snapshot>(*snapshot(0));
  only->mixing = {only->mixing[3]};
  v.setSnapshots({only});
  QVERIFY(!showing_hint(v));
  QCOMPARE(v.mixingLayerCount(), 0);
  QCOMPARE(v.cellCount(), 0);
  QCOMPARE(v.attentionCellCount(), kT * kT);
  QTemporaryDir dir;
  QVERIFY(v.exportView(dir.filePath("attention.svg")));
}

void TestMixingView::classroomHidesExpertControls() {
  MixingView v;
  v.resize(1200, 800);
  v.setSnapshots(run(2));
  auto* toggle = v.findChild<QCheckBox*>("differenceToggle");
  const double size = v.font().pointSizeF();
  QCOMPARE(v.singularValueCount(), kS);
  v.setShowDifference(true);
  QVERIFY(v.showingDifference());
  v.setClassroomMode(true);
  QVERIFY(!toggle->isVisibleTo(&v));
  QVERIFY(!v.showingDifference());  // its toggle is hidden: the weights themselves
  QCOMPARE(v.cellValue(0, 0), double(float(kS) + delta(0, 0)));
  QCOMPARE(v.singularValueCount(), 0);  // no spectrum in classroom mode
  QVERIFY(v.font().pointSizeF() >= 1.4 * size);
  QCOMPARE(v.cellCount(), kS * kS);
  QTemporaryDir dir;
  QVERIFY(v.exportView(dir.filePath("classroom.png")));
  v.setClassroomMode(false);
  QVERIFY(toggle->isVisibleTo(&v));
  QVERIFY(v.showingDifference());
  QCOMPARE(v.cellValue(0, 0), double((float(kS) + delta(0, 0)) - float(kS)));
  QCOMPARE(v.singularValueCount(), kS);
  QCOMPARE(v.font().pointSizeF(), size);
}

void TestMixingView::exportsAllFormats() {
  MixingView v;
  v.resize(1400, 800);
  v.setSnapshots(run(3));
  v.setShowDifference(true);
  QTemporaryDir dir;
  for (const char* name : {"m.png", "m.svg", "m.pdf", "m.csv"}) {
    const QString path = dir.filePath(name);
    QString error;
    QVERIFY2(v.exportView(path, &error), qPrintable(name + QString(": ") + error));
    QVERIFY2(QFileInfo(path).size() > 200, name);
  }
  const QByteArray svg_bytes = read_bytes(dir.filePath("m.svg")), pdf_bytes = read_bytes(dir.filePath("m.pdf"));
  QVERIFY(!svg_bytes.isEmpty() && !pdf_bytes.isEmpty());
  QVERIFY(!embeds_raster(svg_bytes) && !embeds_raster(pdf_bytes));
  QFile csv(dir.filePath("m.csv"));
  QVERIFY(csv.open(QIODevice::ReadOnly | QIODevice::Text));
  QCOMPARE(csv.readLine().trimmed(), QByteArray("panel,name,row,col,value"));
  const QByteArray rest = csv.readAll();
  QCOMPARE(rest.count("matrix,"), kS * kS);
  QCOMPARE(rest.count("singular_values,"), kS);
  QCOMPARE(rest.count("attention,"), kT * kT);
  QVERIFY(rest.contains("minus initial"));
}

void TestMixingView::emptyStates() {
  MixingView v;
  v.resize(800, 600);
  QVERIFY(showing_hint(v));
  QCOMPARE(v.cellCount(), 0);
  QCOMPARE(v.singularValueCount(), 0);
  QCOMPARE(v.currentSnapshot(), -1);
  QVERIFY(v.stepLabel().isEmpty());
  QString error;
  QTemporaryDir dir;
  QVERIFY(!v.exportView(dir.filePath("e.png"), &error));
  QVERIFY(!error.isEmpty());
  v.setCurrentSnapshot(3);  // nothing to scrub
  QCOMPARE(v.currentSnapshot(), -1);
  auto bare = std::make_shared<Snapshot>();
  bare->step = 7;
  v.setSnapshots({bare, SnapshotPtr()});
  QVERIFY(showing_hint(v));
  QCOMPARE(v.currentSnapshot(), 1);
  QCOMPARE(v.stepLabel(), QString("step ? (2 of 2)"));
  v.setSnapshots(run(1));
  QVERIFY(!showing_hint(v));
  v.setSnapshots({});
  QVERIFY(showing_hint(v));
  QCOMPARE(v.cellCount(), 0);
}

void TestMixingView::inconsistentMatricesDoNotCrash() {
  MixingView v;
  v.resize(1200, 800);
  auto first = std::make_shared<Snapshot>(*snapshot(0));
  auto second = std::make_shared<Snapshot>(*snapshot(1));
  auto third = std::make_shared<Snapshot>(*snapshot(2));
  first->mixing[0].matrices[0] = matrix("sequence", 4, 4, [](int, int) { return 1.0f; });  // other size at init
  second->mixing[0].matrices[0].values.resize(10);                                         // 10 values for 8 x 8
  third->mixing[0].matrices[0].values[5] = std::numeric_limits<float>::quiet_NaN();
  third->mixing[3].matrices[1].values.pop_back();
  v.setSnapshots({first, second, third});
  QCOMPARE(v.cellCount(), kS * kS);  // NaN is one empty cell
  QVERIFY(std::isnan(v.cellValue(0, 5)));
  QCOMPARE(v.singularValueCount(), 0);  // no spectrum of a matrix with NaN
  v.setCurrentSnapshot(1);
  QCOMPARE(v.cellCount(), 0);
  QCOMPARE(v.singularValueCount(), 0);
  v.setCurrentSnapshot(2);
  v.setShowDifference(true);  // the initial matrix is 4 x 4: nothing to subtract from
  QCOMPARE(v.cellCount(), 0);
  v.setCurrentAttentionHead(1);  // one value short
  QCOMPARE(v.attentionCellCount(), 0);
  QTemporaryDir dir;
  QString error;
  QVERIFY(!v.exportView(dir.filePath("odd.pdf"), &error));  // nothing drawn at all
  v.setCurrentAttentionHead(0);
  QCOMPARE(v.attentionCellCount(), kT * kT);
  QVERIFY2(v.exportView(dir.filePath("odd.pdf"), &error), qPrintable(error));
  v.setCurrentMixingLayer(9);
  v.setCurrentMatrix(-1);
  QCOMPARE(v.currentMixingLayer(), 0);
}

void TestMixingView::benchReplot() {
  // A 128 x 128 sequence matrix with its spectrum, scrubbed between two snapshots.
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  QVector<SnapshotPtr> all;
  for (int k = 0; k < 2; ++k) {
    auto s = std::make_shared<Snapshot>();
    s->step = k * 1000;
    MixingSnapshot linear;
    linear.layer = 0;
    linear.kind = "linear";
    linear.matrices.push_back(matrix("sequence", 128, 128, [&](int, int) { return normal(gen); }));
    s->mixing = {linear};
    all << s;
  }
  // Inside a plain window, as in the app (a top-level view would resize its
  // window whenever a label changes, which the offscreen platform warns about).
  QWidget window;
  window.resize(1200, 800);
  MixingView v(&window);
  v.resize(1200, 800);
  window.show();
  QVERIFY(QTest::qWaitForWindowExposed(&window));
  v.setSnapshots(all);
  QCOMPARE(v.cellCount(), 128 * 128);
  QCOMPARE(v.singularValueCount(), 128);
  int k = 0;
  QBENCHMARK {
    v.setCurrentSnapshot(k ^= 1);
    QCoreApplication::processEvents();  // runs the queued replot
  }
}


void TestMixingView::decoderLmKinds() {
  // A decoder LM's snapshot (sMLP paper): block 0 a causal SGU, block 1 a partial sMoE (2 experts,
  // n = 64, 8 gate channels) and, for the same block, its probe routing; block 2 a deterministic sMoE.
  constexpr int n = 64, C = 8, E = 2;
  auto causal = [](int r, int c) { return c <= r ? 1.0f / float(r + 1) : 0.0f; };
  auto s = std::make_shared<Snapshot>();
  s->step = 50;
  MixingSnapshot sgu;
  sgu.layer = 0;
  sgu.kind = "sgu";
  sgu.matrices.push_back(matrix("sequence", n, n, causal));
  MixingSnapshot partial;
  partial.layer = 1;
  partial.kind = "smoe-partial";
  for (int e = 0; e < E; ++e) partial.matrices.push_back(matrix("expert " + std::to_string(e), n, n, causal));
  partial.matrices.push_back(matrix("channels to experts", C, E, [](int r, int c) { return c == 0 ? 0.25f + 0.05f * r : 0.75f - 0.05f * r; }));
  MixingSnapshot probe;
  probe.layer = 1;
  probe.kind = "smoe-probe";
  probe.matrices.push_back(matrix("probe: channels to experts", C, E, [](int r, int c) { return (r + c) % 2 ? 0.9f : 0.1f; }));
  MixingSnapshot det;
  det.layer = 2;
  det.kind = "smoe-deterministic";
  for (int e = 0; e < E; ++e) det.matrices.push_back(matrix("expert " + std::to_string(e), n, n, causal));
  det.matrices.push_back(matrix("channels to experts", C, E, [](int r, int c) { return r * E / C == c ? 1.0f : 0.0f; }));
  s->mixing = {sgu, partial, probe, det};

  MixingView view;
  view.resize(1000, 700);
  view.setSnapshots({s});
  // Both entries of block 1 are listed (one block, two kinds).
  QCOMPARE(view.mixingLayerCount(), 4);

  view.setCurrentMixingLayer(0);
  QCOMPARE(view.matrixNames(), QStringList{"sequence"});
  QVERIFY2(view.explanation().contains("Causal spatial gating unit"), qPrintable(view.explanation()));
  QCOMPARE(view.cellCount(), n * n);
  QCOMPARE(view.cellValue(3, 10), 0.0);  // above the diagonal: the future

  view.setCurrentMixingLayer(1);
  QCOMPARE(view.matrixNames(), (QStringList{"expert 0", "expert 1", "channels to experts"}));
  QVERIFY(view.caption().contains("smoe-partial"));
  QVERIFY(view.explanation().contains("expert 0"));
  view.setCurrentMatrix(2);
  QCOMPARE(view.cellCount(), C * E);
  QVERIFY(std::abs(view.cellValue(1, 0) - 0.30) < 1e-6);
  QVERIFY2(view.explanation().contains("p = 12 at n = 64") && view.explanation().contains("prefix/target"),
           qPrintable(view.explanation()));

  view.setCurrentMixingLayer(2);  // the probe entry of block 1
  QCOMPARE(view.matrixNames(), QStringList{"probe: channels to experts"});
  QVERIFY(view.caption().contains("smoe-probe"));
  QVERIFY(std::abs(view.cellValue(0, 1) - 0.9) < 1e-6);
  QVERIFY(view.explanation().contains("probe text"));

  view.setCurrentMixingLayer(3);
  view.setCurrentMatrix(2);
  QVERIFY2(view.explanation().contains("fixed contiguous bands"), qPrintable(view.explanation()));
  QCOMPARE(view.cellValue(5, 1), 1.0);  // channel 5 of 8 -> expert floor(5·2/8) = 1

  // An encoder kind has no such sentence.
  view.setSnapshots({snapshot(0)});
  view.setCurrentMixingLayer(0);
  QVERIFY(view.explanation().isEmpty());
}

QTEST_MAIN(TestMixingView)
