#include "tst_routing_view.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileInfo>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <limits>

#include "widgets/routing_view.h"
#include "export_checks.h"

using smx::telemetry::MoeLayerStats;
using smx::telemetry::ProbeRouting;
using smx::telemetry::Snapshot;
using smx::widgets::RoutingView;
using smx::widgets::SnapshotPtr;

using smx_test::embeds_raster;
using smx_test::read_bytes;

namespace {

constexpr int kT = 12, kE = 4;
constexpr int kEcBlock = 1, kTcBlock = 3;

std::vector<std::string> probe_tokens() {
  return {"▁the", "▁cat", "▁sat", "▁on", "▁the", "▁mat", "▁and", "▁purr", "ed", "▁loud", "ly", "."};
}

std::vector<float> probs(int T, int E, int seed) {
  std::vector<float> p(size_t(T) * E);
  for (int t = 0; t < T; ++t) {
    float sum = 0;
    for (int e = 0; e < E; ++e) sum += p[size_t(t) * E + e] = 1.0f + float((t * 7 + e * 3 + seed) % 5);
    for (int e = 0; e < E; ++e) p[size_t(t) * E + e] /= sum;
  }
  return p;
}

/// Experts Choose layer: token t goes to expert t % 4, token 0 also to expert 1, token 11 to none.
ProbeRouting ec_probe() {
  ProbeRouting p;
  p.layer = kEcBlock;
  p.num_experts = kE;
  p.tokens = probe_tokens();
  p.probs = probs(kT, kE, 0);
  p.assigned.assign(size_t(kT) * kE, 0);
  for (int t = 0; t < kT - 1; ++t) p.assigned[size_t(t) * kE + t % kE] = 1;
  p.assigned[0 * kE + 1] = 1;
  return p;  // 12 assignments: 1 token unrouted, 10 with one expert, 1 with two
}

/// Tokens Choose layer: token t wants experts t % 4 and (t + 1) % 4; expert 2 drops tokens 6 and up.
ProbeRouting tc_probe() {
  ProbeRouting p;
  p.layer = kTcBlock;
  p.num_experts = kE;
  p.tokens = probe_tokens();
  p.probs = probs(kT, kE, 1);
  p.assigned.assign(size_t(kT) * kE, 0);
  p.wanted.assign(size_t(kT) * kE, 0);
  for (int t = 0; t < kT; ++t)
    for (int e : {t % kE, (t + 1) % kE}) {
      p.wanted[size_t(t) * kE + e] = 1;
      if (!(e == 2 && t >= 6)) p.assigned[size_t(t) * kE + e] = 1;
    }
  return p;  // 24 wanted, 21 kept (tokens 6, 9, 10 lose expert 2)
}

MoeLayerStats stats(int block, const char* router, std::vector<std::vector<MoeLayerStats::TokenCount>> top) {
  MoeLayerStats m;
  m.layer = block;
  m.router = router;
  m.num_experts = kE;
  m.capacity = 3;
  m.groups = 2;
  m.experts_per_token = {10, 70, 15, 5};  // 0, 1, 2, 3+ experts
  m.dropped_fraction = 0.125f;
  m.router_entropy = 1.2f;
  m.top_tokens = std::move(top);
  return m;
}

SnapshotPtr snapshot(int64_t step, ProbeRouting ec, ProbeRouting tc,
                     std::vector<std::vector<MoeLayerStats::TokenCount>> ec_top = {}) {
  auto s = std::make_shared<Snapshot>();
  s->step = step;
  s->moe = {stats(kEcBlock, "experts-choose", std::move(ec_top)), stats(kTcBlock, "tokens-choose", {})};
  s->probe = {std::move(ec), std::move(tc)};
  return s;
}

int ones(const std::vector<uint8_t>& v) { return int(std::count(v.begin(), v.end(), uint8_t(1))); }

/// 64 tokens x 8 experts, as a real probe batch would be.
QVector<SnapshotPtr> big_run(int snapshots) {
  QVector<SnapshotPtr> out;
  const int T = 64, E = 8;
  for (int i = 0; i < snapshots; ++i) {
    ProbeRouting p;
    p.layer = 2;
    p.num_experts = E;
    for (int t = 0; t < T; ++t) p.tokens.push_back((t % 3 ? "▁word" : "piece") + std::to_string(t));
    // Peaked like a trained router: the favourite expert well ahead, a second choice behind.
    p.probs.assign(size_t(T) * E, 0);
    for (int t = 0; t < T; ++t) {
      double sum = 0;
      for (int e = 0; e < E; ++e) {
        const double logit = (e == (t + i) % E ? 2.5 : e == (t * 3) % E ? 1.5 : 0.0) + 0.3 * ((t * 5 + e * 7 + i) % 4);
        sum += p.probs[size_t(t) * E + e] = float(std::exp(logit));
      }
      for (int e = 0; e < E; ++e) p.probs[size_t(t) * E + e] = float(p.probs[size_t(t) * E + e] / sum);
    }
    p.assigned.assign(size_t(T) * E, 0);
    p.wanted.assign(size_t(T) * E, 0);
    for (int t = 0; t < T; ++t) {
      p.wanted[size_t(t) * E + (t + i) % E] = 1;
      p.wanted[size_t(t) * E + (t * 3) % E] = 1;
      if (t % 5) p.assigned[size_t(t) * E + (t + i) % E] = 1;
    }
    auto s = std::make_shared<Snapshot>();
    s->step = 100 * (i + 1);
    MoeLayerStats m;
    m.layer = 2;
    m.router = "tokens-choose";
    m.num_experts = E;
    m.capacity = 80;
    m.groups = 4;
    m.dropped_fraction = 0.08f;
    m.top_tokens.resize(E);
    for (int e = 0; e < E; ++e)
      for (int k = 0; k < 8; ++k) m.top_tokens[size_t(e)].push_back({"▁tok" + std::to_string((e * 5 + k * 3 + i) % 40), 20 - k});
    s->moe = {m};
    s->probe = {p};
    out.append(s);
  }
  return out;
}

}  // namespace

void TestRoutingView::drawsBothLayers() {
  RoutingView v;
  v.resize(1100, 700);
  const auto s = snapshot(200, ec_probe(), tc_probe());
  v.setSnapshots({s});
  QVERIFY(!v.showsHint());
  QCOMPARE(v.layerCount(), 2);
  QCOMPARE(v.currentLayer(), 0);
  QCOMPARE(v.currentBlock(), kEcBlock);
  auto* combo = v.findChild<QComboBox*>("layerCombo");
  QVERIFY(combo);
  QCOMPARE(combo->itemText(0), QString("Layer 1 (experts-choose)"));
  QCOMPARE(combo->itemText(1), QString("Layer 3 (tokens-choose)"));

  // Experts Choose: one mark per 1 in assigned, no wanted rings; bars for 0/1/2+ experts, probe and batch.
  QCOMPARE(v.cellCount(), kT * kE);
  QCOMPARE(v.assignmentMarkCount(), ones(s->probe[0].assigned));
  QCOMPARE(v.assignmentMarkCount(), 12);
  QCOMPARE(v.wantedMarkCount(), 0);
  QCOMPARE(v.barSeriesCount(), 2);
  QCOMPARE(v.barCount(), 6);

  // Tokens Choose: wanted rings too, and wanted/kept bars per expert.
  v.setCurrentLayer(1);
  QCOMPARE(v.currentLayer(), 1);
  QCOMPARE(v.currentBlock(), kTcBlock);
  QCOMPARE(combo->currentIndex(), 1);
  QCOMPARE(v.cellCount(), kT * kE);
  QCOMPARE(v.assignmentMarkCount(), ones(s->probe[1].assigned));
  QCOMPARE(v.assignmentMarkCount(), 21);
  QCOMPARE(v.wantedMarkCount(), ones(s->probe[1].wanted));
  QCOMPARE(v.wantedMarkCount(), 24);
  QCOMPARE(v.barCount(), 2 * kE);

  // A live update keeps the chosen layer; the combo switches back.
  v.setSnapshots({s, snapshot(300, ec_probe(), tc_probe())});
  QCOMPARE(v.currentBlock(), kTcBlock);
  combo->setCurrentIndex(0);
  QCOMPARE(v.currentBlock(), kEcBlock);
  QCOMPARE(v.assignmentMarkCount(), 12);
  v.setCurrentLayer(7);  // out of range: ignored
  QCOMPARE(v.currentLayer(), 0);
}

void TestRoutingView::changedSincePrevious() {
  RoutingView v;
  v.resize(900, 600);
  auto later = ec_probe();
  // Token 3 moves from expert 3 to expert 0, token 11 gets expert 2, token 0 loses its second expert.
  later.assigned[3 * kE + 3] = 0;
  later.assigned[3 * kE + 0] = 1;
  later.assigned[11 * kE + 2] = 1;
  later.assigned[0 * kE + 1] = 0;
  const auto a = snapshot(100, ec_probe(), tc_probe());
  const auto b = snapshot(150, later, tc_probe());
  v.setSnapshots({a});
  QCOMPARE(v.changedSincePrevious(), -1);
  v.setSnapshots({a, b});
  QCOMPARE(v.changedSincePrevious(), 3);
  QVERIFY2(v.stabilityText().contains("3 of 12 probe tokens changed expert since step 100"), qPrintable(v.stabilityText()));
  v.setCurrentLayer(1);  // Tokens Choose layer is identical in both
  QCOMPARE(v.changedSincePrevious(), 0);

  // Other tokens in the previous snapshot: not comparable.
  auto other = ec_probe();
  other.tokens[5] = "▁hat";
  v.setCurrentLayer(0);
  v.setSnapshots({snapshot(100, other, tc_probe()), b});
  QCOMPARE(v.changedSincePrevious(), -1);
  QVERIFY(v.stabilityText().contains("not comparable"));
}

void TestRoutingView::topTokensSummedOverSnapshots() {
  RoutingView v;
  using TC = MoeLayerStats::TokenCount;
  const auto a = snapshot(100, ec_probe(), tc_probe(), {{TC{"▁the", 5}, TC{"▁cat", 2}}, {TC{"▁sat", 3}}, {}, {}});
  const auto b = snapshot(200, ec_probe(), tc_probe(), {{TC{"▁cat", 4}, TC{"▁mat", 1}}, {TC{"▁on", 3}, TC{"▁sat", 1}}, {}, {}});
  v.setSnapshots({a, b});
  QCOMPARE(v.topTokens(0), QStringList({"▁cat", "▁the", "▁mat"}));  // 6, 5, 1
  QCOMPARE(v.topTokens(1), QStringList({"▁sat", "▁on"}));           // 4, 3
  QVERIFY(v.topTokens(2).isEmpty());
  QVERIFY(v.topTokens(-1).isEmpty());
  QVERIFY(v.topTokens(99).isEmpty());
  QCOMPARE(v.topTokenRowCount(), kE);
}

void TestRoutingView::topTokensFallBackToProbe() {
  // No batch counts: the probe tokens each expert took, over the snapshots.
  RoutingView v;
  v.setSnapshots({snapshot(100, ec_probe(), tc_probe()), snapshot(200, ec_probe(), tc_probe())});
  // Expert 0 took tokens 0 (the), 4 (the), 8 (ed) in each snapshot.
  QCOMPARE(v.topTokens(0), QStringList({"▁the", "ed"}));
  // Expert 1 took 0 (the), 1 (cat), 5 (mat), 9 (loud): one each per snapshot, ties by name.
  QCOMPARE(v.topTokens(1), QStringList({"▁cat", "▁loud", "▁mat", "▁the"}));
}

void TestRoutingView::rerouteButtonEmitsRequest() {
  RoutingView v;
  v.setSnapshots({snapshot(100, ec_probe(), tc_probe())});
  QSignalSpy spy(&v, &RoutingView::whatIfRequested);
  auto* button = v.findChild<QPushButton*>("rerouteButton");
  auto* edit = v.findChild<QLineEdit*>("probeEdit");
  auto* spin = v.findChild<QDoubleSpinBox*>("capacitySpin");
  auto* router = v.findChild<QComboBox*>("routerCombo");
  QVERIFY(button && edit && spin && router);
  QCOMPARE(edit->placeholderText(), QString("the run's probe sentence"));

  // Defaults: the run's probe, the model's capacity factor and router.
  QTest::mouseClick(button, Qt::LeftButton);
  QCOMPARE(spy.count(), 1);
  QCOMPARE(spy.at(0).at(0).toString(), QString());
  QVERIFY(spy.at(0).at(1).toDouble() <= 0);
  QCOMPARE(spy.at(0).at(2).toString(), QString());

  edit->setText("  the dog barked  ");
  spin->setValue(0.5);
  router->setCurrentIndex(router->findData("experts-choose"));
  QTest::mouseClick(button, Qt::LeftButton);
  QCOMPARE(spy.count(), 2);
  QCOMPARE(spy.at(1).at(0).toString(), QString("the dog barked"));
  QCOMPARE(spy.at(1).at(1).toDouble(), 0.5);
  QCOMPARE(spy.at(1).at(2).toString(), QString("experts-choose"));
  QCOMPARE(spin->minimum(), 0.0);
  QCOMPARE(spin->maximum(), 8.0);
  QCOMPARE(spin->singleStep(), 0.25);
}

void TestRoutingView::whatIfDrawnBeside() {
  RoutingView v;
  v.resize(1100, 700);
  v.setSnapshots({snapshot(100, ec_probe(), tc_probe())});
  QCOMPARE(v.whatIfCellCount(), 0);
  QCOMPARE(v.whatIfChangedAssignments(), -1);

  auto ec = ec_probe();
  ec.assigned[11 * kE + 0] = 1;  // token 11 now taken
  ec.assigned[2 * kE + 2] = 0;   // token 2 moved from expert 2 ...
  ec.assigned[2 * kE + 3] = 1;   // ... to expert 3
  auto tc = tc_probe();
  v.setWhatIf({ec, tc}, "capacity factor 2.0");
  QCOMPARE(v.mapCount(), 2);
  QCOMPARE(v.whatIfCellCount(), kT * kE);
  QCOMPARE(v.whatIfChangedAssignments(), 3);
  QCOMPARE(v.whatIfAssignmentMarkCount(), ones(ec.assigned));
  QCOMPARE(v.cellCount(), kT * kE);  // the snapshot's map stays
  QCOMPARE(v.assignmentMarkCount(), 12);
  v.setCurrentLayer(1);
  QCOMPARE(v.whatIfChangedAssignments(), 0);

  // A what-if of other text is drawn but not compared.
  auto other = tc_probe();
  other.tokens = {"▁a", "▁b"};
  other.probs.resize(2 * kE);
  other.assigned.resize(2 * kE);
  other.wanted.resize(2 * kE);
  v.setWhatIf({ec_probe(), other}, "my text");
  QCOMPARE(v.whatIfCellCount(), 2 * kE);
  QCOMPARE(v.whatIfChangedAssignments(), -1);

  v.setWhatIf({}, QString());
  QCOMPARE(v.whatIfCellCount(), 0);
  QCOMPARE(v.whatIfChangedAssignments(), -1);
  QCOMPARE(v.cellCount(), kT * kE);
  // Added and removed again: the plot still renders.
  v.replotNow();
  QCOMPARE(v.mapCount(), 1);
}

void TestRoutingView::whatIfErrorShown() {
  RoutingView v;
  v.setSnapshots({snapshot(100, ec_probe(), tc_probe())});
  QVERIFY(v.whatIfErrorText().isEmpty());
  v.setWhatIfError("capacity factor must be > 0, got -1");
  QVERIFY2(v.whatIfErrorText().contains("capacity factor must be > 0, got -1"), qPrintable(v.whatIfErrorText()));
  auto* label = v.findChild<QLabel*>("whatIfError");
  QVERIFY(label && label->isVisibleTo(&v));
  QVERIFY(label->styleSheet().contains("color"));
  // Nothing else changes.
  QCOMPARE(v.cellCount(), kT * kE);
  QCOMPARE(v.assignmentMarkCount(), 12);
  // A result clears the error.
  v.setWhatIf({ec_probe(), tc_probe()}, "same");
  QVERIFY(v.whatIfErrorText().isEmpty());
  QCOMPARE(v.whatIfChangedAssignments(), 0);
}

void TestRoutingView::classroomModeColoursText() {
  RoutingView v;
  v.setSnapshots({snapshot(100, ec_probe(), tc_probe())});
  QCOMPARE(v.colouredTokenCount(), kT);
  QCOMPARE(v.unroutedTokenCount(), 1);  // token 11 (".")
  const QString html = v.colouredTextHtml();
  for (int e = 0; e < kE; ++e) QVERIFY(html.contains(smx::widgets::expertColor(e).name(), Qt::CaseInsensitive));
  QVERIFY(html.contains("purr</span><span"));  // pieces of one word stay together
  QVERIFY(!html.contains(QChar(0x2581)));      // word-start marks become spaces

  auto* edit = v.findChild<QLineEdit*>("probeEdit");
  auto* button = v.findChild<QPushButton*>("rerouteButton");
  QVERIFY(edit->isVisibleTo(&v));
  const double before = v.findChild<QTableWidget*>("topTokensTable")->font().pointSizeF();
  v.setClassroomMode(true);
  QVERIFY(v.classroomMode());
  QVERIFY(!edit->isVisibleTo(&v));
  QVERIFY(!button->isVisibleTo(&v));
  QCOMPARE(v.findChild<QTableWidget*>("topTokensTable")->font().pointSizeF(), before * 1.5);
  QCOMPARE(v.colouredTokenCount(), kT);
  v.setClassroomMode(false);
  QVERIFY(edit->isVisibleTo(&v));

  // The palette: distinct colours for 16 experts, stable.
  QSet<QRgb> colours;
  for (int e = 0; e < 16; ++e) colours.insert(smx::widgets::expertColor(e).rgb());
  QCOMPARE(colours.size(), 16);
  QCOMPARE(smx::widgets::expertColor(3), smx::widgets::expertColor(3));
  QVERIFY(smx::widgets::expertColor(16) != smx::widgets::expertColor(0));
  QCOMPARE(smx::widgets::displayPiece(QString::fromUtf8("▁the")), QString::fromUtf8("␣the"));
}

void TestRoutingView::emptyStateShowsHint() {
  RoutingView v;
  v.resize(600, 400);
  QVERIFY(v.showsHint());
  QCOMPARE(v.layerCount(), 0);
  QCOMPARE(v.currentLayer(), -1);
  QCOMPARE(v.cellCount(), 0);
  QCOMPARE(v.changedSincePrevious(), -1);
  QVERIFY(v.topTokens(0).isEmpty());
  QTemporaryDir dir;
  QString error;
  QVERIFY(!v.exportView(dir.filePath("x.png"), &error));
  QVERIFY(!error.isEmpty());
  v.setWhatIf({ec_probe()}, "early");
  v.setWhatIfError("no model loaded");
  QVERIFY(v.whatIfErrorText().contains("no model loaded"));
  v.setSnapshots({nullptr});
  QVERIFY(v.showsHint());
  v.setSnapshots({std::make_shared<Snapshot>()});  // a dense model: no MoE layers
  QVERIFY(v.showsHint());
  QCOMPARE(v.layerCount(), 0);
  v.setSnapshots({snapshot(100, ec_probe(), tc_probe())});
  QVERIFY(!v.showsHint());
  v.setSnapshots({});
  QVERIFY(v.showsHint());
  QCOMPARE(v.cellCount(), 0);
  QCOMPARE(v.assignmentMarkCount(), 0);
}

void TestRoutingView::mismatchedSizesDoNotCrash() {
  RoutingView v;
  v.resize(800, 500);
  auto ec = ec_probe();
  ec.probs.resize(20);               // shorter than T*E: missing cells stay empty
  ec.probs[3] = std::nanf("");       // NaN drawn empty
  ec.assigned.resize(10);            // only the first 10 cells know their assignment
  auto tc = tc_probe();
  tc.num_experts = 0;                // inferred from probs
  tc.wanted.resize(200, 1);          // longer than T*E: extra ignored
  auto s = snapshot(100, ec, tc);
  s = [&] {
    auto copy = std::make_shared<Snapshot>(*s);
    ProbeRouting empty;
    empty.layer = 5;
    empty.num_experts = 4;  // no tokens at all
    copy->probe.push_back(empty);
    ProbeRouting huge;
    huge.layer = 6;
    huge.num_experts = 1 << 30;  // corrupt
    huge.tokens = {"a"};
    copy->probe.push_back(huge);
    copy->moe[0].experts_per_token = {std::nanf(""), -1, 3};
    copy->moe[0].top_tokens = {{MoeLayerStats::TokenCount{"x", -4}}};
    return SnapshotPtr(copy);
  }();
  v.setSnapshots({s});
  QCOMPARE(v.layerCount(), 4);
  QCOMPARE(v.cellCount(), kT * kE);
  // ec.assigned[0..9] holds token 0 -> experts 0 and 1, token 1 -> expert 1 (token 2's is cell 10).
  QCOMPARE(v.assignmentMarkCount(), 3);
  v.setCurrentLayer(1);
  QCOMPARE(v.cellCount(), kT * kE);
  QCOMPARE(v.wantedMarkCount(), 24);
  v.setCurrentLayer(2);
  QCOMPARE(v.cellCount(), 0);
  v.setCurrentLayer(3);
  QCOMPARE(v.cellCount(), 0);
  // A second snapshot with the short one: not comparable, no crash.
  v.setCurrentLayer(0);
  v.setSnapshots({s, snapshot(200, ec_probe(), tc_probe())});
  QCOMPARE(v.changedSincePrevious(), -1);
  v.setWhatIf({ec}, "short");
  QCOMPARE(v.whatIfChangedAssignments(), -1);
  v.replotNow();
  QTemporaryDir dir;
  QVERIFY(v.exportView(dir.filePath("m.csv")));
}

void TestRoutingView::exportsEveryFormat() {
  RoutingView v;
  v.resize(1100, 700);
  v.setSnapshots({snapshot(100, ec_probe(), tc_probe())});
  v.setCurrentLayer(1);
  v.setWhatIf({ec_probe(), tc_probe()}, "capacity factor 1.0");
  QTemporaryDir dir;
  for (const char* name : {"r.png", "r.svg", "r.pdf", "r.csv"}) {
    const QString path = dir.filePath(name);
    QString error;
    QVERIFY2(v.exportView(path, &error), qPrintable(QString("%1: %2").arg(name, error)));
    QVERIFY2(QFileInfo(path).size() > 100, name);
  }
  const QString out = qEnvironmentVariable("SMX_VIEW_PNG_DIR");
  if (!out.isEmpty()) QFile::copy(dir.filePath("r.svg"), out + "/export_test.svg");
  const QByteArray svg_text = read_bytes(dir.filePath("r.svg")), pdf_bytes = read_bytes(dir.filePath("r.pdf"));
  QVERIFY(!svg_text.isEmpty() && !pdf_bytes.isEmpty());
  QVERIFY(!embeds_raster(svg_text) && !embeds_raster(pdf_bytes));
  QVERIFY(svg_text.contains("<path") || svg_text.contains("<rect") || svg_text.contains("<polygon"));
  QFile csv(dir.filePath("r.csv"));
  QVERIFY(csv.open(QIODevice::ReadOnly | QIODevice::Text));
  QCOMPARE(csv.readLine().trimmed(),
           QByteArray("step,layer,token_index,token,expert,probability,assigned,wanted,whatif_probability,whatif_assigned"));
  int rows = 0;
  int assigned = 0;
  while (!csv.atEnd()) {
    const auto cells = QString::fromUtf8(csv.readLine().trimmed()).split(',');
    QCOMPARE(cells.size(), 10);
    assigned += cells[6].toInt();
    ++rows;
  }
  QCOMPARE(rows, kT * kE);
  QCOMPARE(assigned, 21);
  QString error;
  QVERIFY(!v.exportView(dir.filePath("r.xyz"), &error));
  QVERIFY(error.contains("xyz"));
}

void TestRoutingView::rendersAtLectureSize() {
  // 64 tokens x 8 experts at 1100x700: the map fills most of the view, and the grab is not blank.
  RoutingView v;
  v.resize(1100, 700);
  v.show();
  QVERIFY(QTest::qWaitForWindowExposed(&v));
  const auto run = big_run(6);
  v.setSnapshots(run);
  auto what_if = run.back()->probe;
  for (size_t i = 0; i < 40; ++i) what_if[0].assigned[i * 7 % what_if[0].assigned.size()] ^= 1;
  v.setWhatIf(what_if, "capacity factor 0.5");
  v.setWhatIfError(QString());
  QCoreApplication::processEvents();
  v.replotNow();
  auto* map = v.findChild<QWidget*>("routingMap");
  QVERIFY2(map->width() > 500 && map->height() > 400, qPrintable(QString("%1x%2").arg(map->width()).arg(map->height())));
  QCOMPARE(v.cellCount(), 64 * 8);
  QVERIFY(v.whatIfChangedAssignments() > 0);
  const QImage image = v.grab().toImage();
  QSet<QRgb> colours;
  for (int y = 0; y < image.height(); y += 7)
    for (int x = 0; x < image.width(); x += 7) colours.insert(image.pixel(x, y));
  QVERIFY(colours.size() > 50);
  // SMX_VIEW_PNG_DIR=/some/dir saves the view for a look.
  const QString out = qEnvironmentVariable("SMX_VIEW_PNG_DIR");
  if (!out.isEmpty()) {
    image.save(out + "/routing_view.png");
    v.setClassroomMode(true);
    v.setWhatIf({}, QString());
    QCoreApplication::processEvents();
    v.replotNow();
    v.grab().save(out + "/routing_view_classroom.png");
    v.exportView(out + "/routing_map.png");
    v.exportView(out + "/routing_map.svg");
    v.setClassroomMode(false);
    v.setSnapshots({snapshot(100, ec_probe(), tc_probe()), snapshot(200, ec_probe(), tc_probe())});
    QCoreApplication::processEvents();
    v.replotNow();
    v.grab().save(out + "/routing_view_ec.png");
  }
}

void TestRoutingView::benchReplot() {
  // A live update at realistic size: new snapshots in, both plots redrawn.
  RoutingView v;
  v.resize(1100, 700);
  const auto run = big_run(8);
  v.setSnapshots(run);
  QCOMPARE(v.cellCount(), 64 * 8);
  QBENCHMARK {
    v.setSnapshots(run);
    v.replotNow();
  }
}

QTEST_MAIN(TestRoutingView)
