#include "tst_lab_views.h"

#include <QAbstractSpinBox>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <functional>
#include <limits>

#include "widgets/playground_view.h"
#include "widgets/speed_view.h"
#include "widgets/stability_lab_view.h"
#include "widgets/training_curves_view.h"
#include "export_checks.h"

using namespace smx::widgets;

using smx_test::embeds_raster;
using smx_test::read_bytes;

namespace {

StabilityCell run_cell(const QString& config, int seed, const QString& status, qint64 divergence = -1,
                       double loss = 0) {
  StabilityCell c;
  c.config = config;
  c.seed = seed;
  c.run_id = seed + 1;
  c.status = status;
  c.divergence_step = divergence;
  c.final_loss = loss;
  c.steps_done = status == "queued" ? 0 : 300;
  return c;
}

// bert-base: all stable; sparse-mixer: one of three diverged; sparse-bert-12: two diverged, out of seed order.
QVector<StabilityCell> table10_cells() {
  return {run_cell("bert-base", 0, "finished", -1, 2.0),     run_cell("bert-base", 1, "finished", -1, 2.5),
          run_cell("bert-base", 2, "finished", -1, 2.3),     run_cell("sparse-mixer", 0, "finished", -1, 1.8),
          run_cell("sparse-mixer", 1, "diverged", 412),       run_cell("sparse-mixer", 2, "finished", -1, 2.0),
          run_cell("sparse-bert-12", 2, "diverged", 587),     run_cell("sparse-bert-12", 0, "finished", -1, 2.2),
          run_cell("sparse-bert-12", 1, "diverged", 312)};
}

// qcustomplot.h cannot be included here (QT_NO_KEYWORDS): reach the plot through Qt's meta-object system.
QWidget* plot_of(QWidget* parent, const char* name = nullptr) {
  for (auto* w : parent->findChildren<QWidget*>(name ? QString(name) : QString()))
    if (w->inherits("QCustomPlot")) return w;
  return nullptr;
}
bool replot_now(QWidget* plot) { return QMetaObject::invokeMethod(plot, "replot", Qt::DirectConnection); }
/// Values of a property over the plot's visible layerables of one class (axes, items).
QVariantList plot_properties(QWidget* plot, const char* className, const char* property) {
  QVariantList out;
  for (auto* o : plot->findChildren<QObject*>())
    if (o->inherits(className) && o->property("visible").toBool()) out << o->property(property);
  return out;
}

QString table_text(QWidget& view, const char* table, int row, int column) {
  auto* t = view.findChild<QTableWidget*>(table);
  if (!t || !t->item(row, column)) return {};
  return t->item(row, column)->text();
}

// Exports every format into a temporary dir: non-empty files, vector formats without raster images.
void check_exports(const std::function<bool(const QString&, QString*)>& exportView, const QByteArray& csvHeader) {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  for (const char* name : {"v.png", "v.svg", "v.pdf", "v.csv"}) {
    const QString path = dir.filePath(name);
    QString error;
    QVERIFY2(exportView(path, &error), qPrintable(QString(name) + ": " + error));
    QVERIFY2(QFileInfo(path).size() > 100, name);
  }
  const QByteArray svg_data = read_bytes(dir.filePath("v.svg")), pdf_bytes = read_bytes(dir.filePath("v.pdf"));
  QVERIFY(!svg_data.isEmpty() && !pdf_bytes.isEmpty());
  QVERIFY(!embeds_raster(svg_data) && !embeds_raster(pdf_bytes));
  QVERIFY(svg_data.contains("<path") || svg_data.contains("<rect") || svg_data.contains("<polyline"));
  QFile csv(dir.filePath("v.csv"));
  QVERIFY(csv.open(QIODevice::ReadOnly));
  QCOMPARE(csv.readLine().trimmed(), csvHeader);
  QString error;
  QVERIFY(!exportView(dir.filePath("v.xyz"), &error));
  QVERIFY(!error.isEmpty());
}

CurveRun loss_curve(const QString& label, int steps, qint64 diverge_at = -1) {
  CurveRun r;
  r.label = label;
  for (int i = 1; i <= steps; ++i) {
    r.series.x.push_back(i);
    r.series.y.push_back(i == diverge_at ? std::numeric_limits<double>::quiet_NaN() : 10.0 / std::sqrt(double(i)) + 1.5);
  }
  if (diverge_at > 0) r.events = {{double(diverge_at), "nonfinite", "non-finite loss"}};
  return r;
}

PlaygroundResult sentence(int masks, int top_k, int layers = 2) {
  PlaygroundResult r;
  const QStringList pieces = {"[CLS]", "▁the", "▁cat", "▁sat", "▁on", "▁the", "[MASK]", ".", "[SEP]"};
  for (int i = 0; i < pieces.size(); ++i) {
    PlaygroundToken t;
    t.piece = pieces[i];
    for (int l = 0; l < layers; ++l) t.experts << (i % 3 == 0 ? QVector<int>{} : QVector<int>{(i + l) % 16, (i * 5 + l) % 16});
    r.tokens << t;
  }
  for (int l = 0; l < layers; ++l) r.moe_layers << 2 * l + 5;
  const QStringList guesses = {"▁mat", "▁floor", "▁sofa", "▁bed", "▁chair", "▁table", "▁rug", "▁box", "▁roof", "▁car"};
  for (int m = 0; m < masks; ++m) {
    const int position = m == 0 ? 6 : 2 + m;
    r.tokens[position].masked = true;
    r.tokens[position].piece = "[MASK]";
    MaskPrediction p;
    p.position = position;
    double left = 0.9;
    for (int k = 0; k < top_k; ++k) {
      p.top.append({guesses[k % guesses.size()], left * 0.5});
      left *= 0.5;
    }
    r.predictions << p;
  }
  r.latency_ms = 4.2;
  r.device = "cpu";
  return r;
}

SpeedResult speed_rows() {
  SpeedResult s;
  s.device = "cpu";
  s.batch = 8;
  s.seq_len = 128;
  s.rows = {{"bert-base", 16.5, 5.0, 11.2}, {"sparse-mixer", 10.0, 3.125, 7.1}, {"fast-sparse-mixer", 8.25, 2.5, 6.0}};
  return s;
}

}  // namespace

// --- stability lab ---

void TestLabViews::stabilityTableFromCells() {
  StabilityLabView v;
  v.resize(1200, 800);
  QCOMPARE(v.tableRowCount(), 0);
  v.setCells(table10_cells());
  QCOMPARE(v.tableRowCount(), 3);  // one row per config, in order of appearance
  QCOMPARE(v.seedCellCount(), 9);
  QCOMPARE(v.stableSummary("bert-base"), QString("3/3"));
  QCOMPARE(v.stableSummary("sparse-mixer"), QString("2/3"));
  QCOMPARE(v.stableSummary("sparse-bert-12"), QString("1/3"));
  QCOMPARE(v.stableSummary("gpt"), QString());
  QCOMPARE(table_text(v, "results", 0, 0), QString("bert-base"));
  QCOMPARE(table_text(v, "results", 0, 1), QString("—"));  // no paper row set
  QCOMPARE(table_text(v, "results", 0, 3), QString("—"));
  QCOMPARE(table_text(v, "results", 1, 3), QString("412"));
  QCOMPARE(table_text(v, "results", 2, 3), QString("312, 587"));  // sorted
  QCOMPARE(table_text(v, "results", 0, 4), QString("2.267"));     // mean of 2.0, 2.5, 2.3
  QCOMPARE(table_text(v, "results", 1, 4), QString("1.900"));     // the diverged run is left out
  auto* results = v.findChild<QTableWidget*>("results");
  QVERIFY(results->item(2, 5)->toolTip().contains("seed 1: diverged at step 312"));
  QCOMPARE(StabilityLabView::statusColor("diverged"), QColor(214, 39, 40));
  QVERIFY(StabilityLabView::statusColor("finished") != StabilityLabView::statusColor("queued"));

  // A live update: one more config queued, then the batch is cleared.
  auto cells = table10_cells();
  cells << run_cell("fast-sparse-mixer", 0, "running") << run_cell("fast-sparse-mixer", 1, "queued");
  v.setCells(cells);
  QCOMPARE(v.tableRowCount(), 4);
  QCOMPARE(v.stableSummary("fast-sparse-mixer"), QString("0/2"));
  QVERIFY(table_text(v, "results", 3, 2).contains("2 to go"));
  v.setCells({});
  QCOMPARE(v.tableRowCount(), 0);
  QCOMPARE(v.seedCellCount(), 0);
}

void TestLabViews::stabilityPaperColumnAndDiagnosis() {
  StabilityLabView v;
  v.resize(1200, 800);
  v.setPaperReferences({{"bert-base", {"BERT-Base", "3/4 · 4/4"}}, {"sparse-bert-12", {"sparse BERT-12", "1/4 · 0/4"}}});
  auto cells = table10_cells();
  cells[6].verdict = "loss spike at step 587, never back to the median 6.1 before it";
  cells[6].explanation = "first router logits grew 3 → 7 (step 560); the loss spiked at step 587";
  cells[1].verdict = "recovered from a loss spike at step 40";  // finished: stable, named in the tooltip
  v.setCells(cells);
  QCOMPARE(table_text(v, "results", 0, 1), QString("BERT-Base: 3/4 · 4/4"));
  QCOMPARE(table_text(v, "results", 1, 1), QString("—"));
  QCOMPARE(table_text(v, "results", 2, 1), QString("sparse BERT-12: 1/4 · 0/4"));
  QCOMPARE(v.paperText("sparse-bert-12"), QString("sparse BERT-12: 1/4 · 0/4"));
  QVERIFY(v.findChild<QTableWidget*>("results")->item(0, 5)->toolTip().contains("recovered from a loss spike at step 40"));

  // One diagnosis row per diverged run, in the batch's order, with the verdict and what went wrong first.
  v.show();
  QVERIFY(QTest::qWaitForWindowExposed(&v));
  QVERIFY(v.findChild<QWidget*>("whyBox")->isVisible());
  QCOMPARE(v.diagnosisRowCount(), 3);
  QVERIFY(v.diagnosisText(0).contains("sparse-mixer · seed 1"));
  QVERIFY(v.diagnosisText(0).contains("diverged at step 412"));  // no verdict given: the step
  QVERIFY(v.diagnosisText(1).contains("sparse-bert-12 · seed 2"));
  QVERIFY(v.diagnosisText(1).contains("never back to the median"));
  QVERIFY(v.diagnosisText(1).contains("first router logits grew"));
  QCOMPARE(v.diagnosisText(7), QString());

  // The links: routing at the divergence step, and the router curves, of the selected run.
  auto* routing = v.findChild<QPushButton*>("showRouting");
  auto* curves = v.findChild<QPushButton*>("showCurves");
  QVERIFY(!routing->isEnabled() && !curves->isEnabled());  // nothing selected yet
  QSignalSpy to_routing(&v, &StabilityLabView::routingAtStepRequested);
  QSignalSpy to_curves(&v, &StabilityLabView::curvesRequested);
  v.findChild<QTableWidget*>("diagnosis")->selectRow(1);
  QVERIFY(routing->isEnabled() && curves->isEnabled());
  routing->click();
  curves->click();
  QCOMPARE(to_routing.count(), 1);
  QCOMPARE(to_routing.at(0).at(0).toLongLong(), qint64(3));  // sparse-bert-12 seed 2: run id 3
  QCOMPARE(to_routing.at(0).at(1).toLongLong(), qint64(587));
  QCOMPARE(to_curves.count(), 1);
  QCOMPARE(to_curves.at(0).at(0).toLongLong(), qint64(3));
  v.requestRouting(-1);  // out of range: nothing
  QCOMPARE(to_routing.count(), 1);

  // No diverged run: no diagnosis.
  v.setCells({run_cell("bert-base", 0, "finished", -1, 2.0)});
  QCOMPARE(v.diagnosisRowCount(), 0);
  QVERIFY(!v.findChild<QWidget*>("whyBox")->isVisible());
}

void TestLabViews::stabilityButtonsFollowTheBatch() {
  StabilityLabView v;
  auto* run = v.findChild<QPushButton*>("run");
  auto* cancel = v.findChild<QPushButton*>("cancel");
  QVERIFY(run && cancel);
  QVERIFY(run->isEnabled());
  QVERIFY(!cancel->isEnabled());
  v.setCells({run_cell("bert-base", 0, "finished", -1, 2.0), run_cell("bert-base", 1, "running")});
  QVERIFY(!run->isEnabled());
  QVERIFY(cancel->isEnabled());
  QSignalSpy cancelled(&v, &StabilityLabView::cancelRequested);
  cancel->click();
  QCOMPARE(cancelled.count(), 1);
  v.setCells({run_cell("bert-base", 0, "finished", -1, 2.0), run_cell("bert-base", 1, "stopped")});
  QVERIFY(run->isEnabled());
  QVERIFY(!cancel->isEnabled());
}

void TestLabViews::stabilityRunRequestedWithFormValues() {
  StabilityLabView v;
  v.setAvailableConfigs({"bert-base", "sparse-mixer", "fast-sparse-mixer"});
  StabilityPlan plan;
  plan.configs = {"sparse-mixer", "bert-base", "/tmp/configs/my-moe.json"};
  plan.seeds = 5;
  plan.learning_rate = 3e-4;
  plan.batch = 16;
  plan.steps = 500;
  plan.warmup = 0;
  plan.clip = 0;
  v.setPlan(plan);
  auto* list = v.findChild<QListWidget*>("configs");
  QCOMPARE(list->count(), 4);  // the config file was added
  QCOMPARE(list->item(3)->text(), QString("my-moe.json"));
  QCOMPARE(v.findChild<QDoubleSpinBox*>("learningRate")->text(), QString("3e-4"));

  QSignalSpy spy(&v, &StabilityLabView::runRequested);
  QVERIFY(spy.isValid());
  v.findChild<QPushButton*>("run")->click();
  QCOMPARE(spy.count(), 1);
  const auto got = spy.at(0).at(0).value<StabilityPlan>();
  QCOMPARE(got.configs, QStringList({"bert-base", "sparse-mixer", "/tmp/configs/my-moe.json"}));  // list order
  QCOMPARE(got.seeds, 5);
  QVERIFY(std::abs(got.learning_rate - 3e-4) < 1e-12);
  QCOMPARE(got.batch, 16);
  QCOMPARE(got.steps, 500);
  QCOMPARE(got.warmup, 0);
  QCOMPARE(got.clip, 0.0);
  QCOMPARE(v.findChild<QDoubleSpinBox*>("clip")->text(), QString("off"));
  QVERIFY(v.findChild<QLabel*>("formError")->isHidden());

  // Out-of-range values are clamped to the form's limits.
  plan.seeds = 50;
  plan.learning_rate = 5.0;
  v.setPlan(plan);
  QCOMPARE(v.plan().seeds, 20);
  QCOMPARE(v.plan().learning_rate, 1.0);

  // New presets keep what was checked.
  v.setAvailableConfigs({"bert-base", "sparse-mixer"});
  QCOMPARE(v.plan().configs, QStringList({"bert-base", "sparse-mixer"}));
}

void TestLabViews::stabilityNeedsAConfig() {
  StabilityLabView v;
  v.setAvailableConfigs({"bert-base", "sparse-mixer"});
  v.show();
  QVERIFY(QTest::qWaitForWindowExposed(&v));
  QSignalSpy spy(&v, &StabilityLabView::runRequested);
  auto* error = v.findChild<QLabel*>("formError");
  QVERIFY(error->isHidden());
  QTest::mouseClick(v.findChild<QPushButton*>("run"), Qt::LeftButton);
  QCOMPARE(spy.count(), 0);
  QVERIFY(error->isVisible());
  QVERIFY(error->text().contains("at least one"));
  v.findChild<QListWidget*>("configs")->item(1)->setCheckState(Qt::Checked);
  QVERIFY(error->isHidden());  // fixed: the message goes away
  QTest::mouseClick(v.findChild<QPushButton*>("run"), Qt::LeftButton);
  QCOMPARE(spy.count(), 1);
  QCOMPARE(spy.at(0).at(0).value<StabilityPlan>().configs, QStringList({"sparse-mixer"}));
}

void TestLabViews::stabilityLearningRateBox() {
  StabilityLabView v;
  auto* lr = v.findChild<QDoubleSpinBox*>("learningRate");
  QCOMPARE(lr->value(), 1e-3);
  QCOMPARE(lr->text(), QString("1e-3"));
  lr->stepBy(1);  // 1-2-5 per decade
  QCOMPARE(lr->value(), 2e-3);
  lr->stepBy(2);
  QCOMPARE(lr->text(), QString("0.01"));
  lr->stepBy(-4);
  QVERIFY(std::abs(lr->value() - 5e-4) < 1e-15);
  lr->selectAll();
  QTest::keyClicks(lr, "2.5e-5");
  lr->interpretText();
  QVERIFY(std::abs(lr->value() - 2.5e-5) < 1e-15);
  QCOMPARE(lr->text(), QString("2.5e-5"));
  // Not a positive number in range: rejected, the value stays.
  for (const char* bad : {"abc", "3", "0"}) {
    lr->selectAll();
    QTest::keyClicks(lr, bad);
    lr->interpretText();
    QVERIFY2(std::abs(lr->value() - 2.5e-5) < 1e-15, bad);
  }
  lr->setValue(1e-9);
  QCOMPARE(lr->value(), 1e-6);
}

void TestLabViews::stabilityClassroomAndExports() {
  StabilityLabView v;
  v.resize(1200, 800);
  QString error;
  QVERIFY(!v.exportView(QDir::temp().filePath("nothing.png"), &error));  // nothing ran yet
  QVERIFY(!error.isEmpty());
  v.setCells(table10_cells());
  v.curves()->setRuns({loss_curve("sparse-mixer seed 0", 300), loss_curve("sparse-mixer seed 1", 412, 412)});
  QCOMPARE(v.curves()->graphCount(), 4);
  check_exports([&](const QString& p, QString* e) { return v.exportView(p, e); },
                "config,paper_table10,seed,run_id,status,verdict,what_went_wrong_first,divergence_step,final_loss,"
                "steps_done");

  v.show();
  QVERIFY(QTest::qWaitForWindowExposed(&v));
  const qreal before = v.findChild<QTableWidget*>("results")->font().pointSizeF();
  QVERIFY(v.findChild<QSpinBox*>("batch")->isVisible());
  v.setClassroomMode(true);
  QVERIFY(!v.findChild<QSpinBox*>("batch")->isVisible());
  QVERIFY(!v.findChild<QSpinBox*>("steps")->isVisible());
  QVERIFY(v.findChild<QDoubleSpinBox*>("learningRate")->isVisible());
  QVERIFY(v.findChild<QTableWidget*>("results")->font().pointSizeF() >= 1.4 * before);
  const QVariantList fonts = plot_properties(plot_of(v.curves()), "QCPAxis", "tickLabelFont");
  QVERIFY(!fonts.isEmpty());
  for (const auto& f : fonts) {
    QVERIFY(f.value<QFont>().pointSizeF() >= 1.4 * before);
    QVERIFY(f.value<QFont>().pointSizeF() <= 1.6 * before);  // scaled once, not twice
  }
  v.setClassroomMode(false);
  QVERIFY(v.findChild<QSpinBox*>("batch")->isVisible());
}

void TestLabViews::benchStabilityReplot() {
  // A Table 10 batch: 4 configs x 5 seeds, 1000 steps each; one live update redrawn.
  StabilityLabView v;
  v.resize(1400, 900);
  QVector<StabilityCell> cells;
  QVector<CurveRun> runs;
  const QStringList configs = {"bert-base", "sparse-mixer", "fast-sparse-mixer", "sparse-bert-12"};
  for (const auto& c : configs)
    for (int s = 0; s < 5; ++s) {
      const bool diverged = (s + c.size()) % 4 == 0;
      cells << run_cell(c, s, diverged ? "diverged" : "finished", diverged ? 300 + 40 * s : -1, 2.0 + 0.1 * s);
      runs << loss_curve(QString("%1 seed %2").arg(c).arg(s), 1000, diverged ? 300 + 40 * s : -1);
    }
  v.curves()->setRuns(runs);
  auto* plot = plot_of(v.curves());
  QVERIFY(plot && replot_now(plot));
  QBENCHMARK {
    v.setCells(cells);
    replot_now(plot);
  }
  QCOMPARE(v.tableRowCount(), 4);
}

// --- playground ---

void TestLabViews::playgroundDrawsPredictionsAndRouting() {
  PlaygroundView v;
  v.resize(1000, 700);
  QCOMPARE(v.predictionBarCount(), 0);
  QCOMPARE(v.tokenRowCount(), 0);
  v.setResult(sentence(1, 5));
  QCOMPARE(v.predictionChartCount(), 1);
  QCOMPARE(v.predictionBarCount(), 5);
  QCOMPARE(v.tokenRowCount(), 9);
  auto* table = v.findChild<QTableWidget*>("routing");
  QCOMPARE(table->columnCount(), 3);  // token + 2 MoE layers
  QCOMPARE(table->horizontalHeaderItem(1)->text(), QString("MoE layer 5"));
  QCOMPARE(table_text(v, "routing", 1, 1), QString("E1, E5"));
  QCOMPARE(table_text(v, "routing", 3, 2), QString("—"));  // no expert took it
  QCOMPARE(table_text(v, "routing", 6, 0), QString("[MASK] → ▁mat"));
  QVERIFY(v.statusText().contains("forward 4.2 ms on cpu"));

  v.setResult(sentence(3, 4, 4));
  QCOMPARE(v.predictionChartCount(), 3);
  QCOMPARE(v.predictionBarCount(), 12);
  QCOMPARE(table->columnCount(), 5);
  QCOMPARE(PlaygroundView::expertColor(3), PlaygroundView::expertColor(23));
  QVERIFY(PlaygroundView::expertColor(3) != PlaygroundView::expertColor(4));

  v.setModelDescription({});
  QCOMPARE(v.findChild<QLabel*>("model")->text(), QString("no model"));
  v.setModelDescription("run 3 · demo · step 1000 · cpu");
  QVERIFY(v.findChild<QLabel*>("model")->text().contains("run 3 · demo"));

  v.setClassroomMode(true);
  QVERIFY(!v.statusText().contains("ms"));  // latency is for experts
  QCOMPARE(v.predictionBarCount(), 12);
  v.setClassroomMode(false);
  QVERIFY(v.statusText().contains("4.2 ms"));
}

void TestLabViews::playgroundWithoutMaskShowsRoutingOnly() {
  PlaygroundView v;
  v.resize(1000, 700);
  v.setResult(sentence(0, 0));
  QCOMPARE(v.predictionBarCount(), 0);
  QCOMPARE(v.predictionChartCount(), 0);
  QCOMPARE(v.tokenRowCount(), 9);
  QVERIFY(v.statusText().contains("No [MASK]"));
}

void TestLabViews::playgroundErrorKeepsPreviousResult() {
  PlaygroundView v;
  v.resize(1000, 700);
  v.setResult(sentence(2, 5));
  QCOMPARE(v.predictionBarCount(), 10);
  PlaygroundResult failed;
  failed.error = "the tokenizer does not know [MASK]";
  v.setResult(failed);
  QCOMPARE(v.predictionBarCount(), 10);
  QCOMPARE(v.tokenRowCount(), 9);
  QCOMPARE(v.errorText(), failed.error);
  v.setResult(sentence(1, 3));
  QCOMPARE(v.predictionBarCount(), 3);
  QVERIFY(v.errorText().isEmpty());
}

void TestLabViews::playgroundPredictOnEnterAndClick() {
  PlaygroundView v;
  v.show();
  QVERIFY(QTest::qWaitForWindowExposed(&v));
  QSignalSpy spy(&v, &PlaygroundView::predictRequested);
  auto* input = v.findChild<QLineEdit*>("sentence");
  auto* predict = v.findChild<QPushButton*>("predict");
  QCOMPARE(input->placeholderText(), QString("The cat sat on the [MASK]."));
  QVERIFY(!predict->isEnabled());
  QTest::keyClick(input, Qt::Key_Return);
  QCOMPARE(spy.count(), 0);  // nothing typed
  QTest::keyClicks(input, "   ");
  QVERIFY(!predict->isEnabled());
  input->clear();
  QTest::keyClicks(input, "The cat sat on the [MASK].");
  QVERIFY(predict->isEnabled());
  QTest::keyClick(input, Qt::Key_Return);
  QCOMPARE(spy.count(), 1);
  QCOMPARE(spy.at(0).at(0).toString(), QString("The cat sat on the [MASK]."));
  v.setText("A dog ran.");
  QCOMPARE(v.text(), QString("A dog ran."));
  QTest::mouseClick(predict, Qt::LeftButton);
  QCOMPARE(spy.count(), 2);
  QCOMPARE(spy.at(1).at(0).toString(), QString("A dog ran."));
  v.setBusy(true);
  QVERIFY(!predict->isEnabled());
  QTest::keyClick(input, Qt::Key_Return);
  QTest::mouseClick(predict, Qt::LeftButton);
  QCOMPARE(spy.count(), 2);
  v.setBusy(false);
  QVERIFY(predict->isEnabled());
}

void TestLabViews::playgroundBadInput() {
  PlaygroundView v;
  v.resize(800, 600);
  auto r = sentence(2, 4);
  r.predictions[0].top[1].second = std::numeric_limits<double>::quiet_NaN();  // not drawn
  r.predictions[1].position = 99;                                             // out of range: still a chart
  r.tokens[2].experts.resize(1);                                              // fewer layers than the others
  r.moe_layers.resize(1);                                                     // fewer block ids than layers
  r.latency_ms = std::numeric_limits<double>::quiet_NaN();
  v.setResult(r);
  QCOMPARE(v.predictionBarCount(), 7);
  QCOMPARE(v.tokenRowCount(), 9);
  QCOMPARE(table_text(v, "routing", 2, 2), QString("—"));
  QVERIFY(!v.statusText().contains("nan"));
  PlaygroundResult empty;
  v.setResult(empty);
  QCOMPARE(v.predictionBarCount(), 0);
  QCOMPARE(v.tokenRowCount(), 0);
}

void TestLabViews::playgroundExports() {
  PlaygroundView v;
  v.resize(1000, 700);
  QString error;
  QVERIFY(!v.exportView(QDir::temp().filePath("nothing.svg"), &error));
  QVERIFY(!error.isEmpty());
  v.setResult(sentence(2, 5));
  check_exports([&](const QString& p, QString* e) { return v.exportView(p, e); },
                "kind,position,token,layer,experts,rank,prediction,probability");
  QTemporaryDir dir;
  QVERIFY(v.exportView(dir.filePath("p.csv")));
  QFile csv(dir.filePath("p.csv"));
  QVERIFY(csv.open(QIODevice::ReadOnly | QIODevice::Text));
  const QStringList lines = QString::fromUtf8(csv.readAll()).split('\n', Qt::SkipEmptyParts);
  QCOMPARE(lines.size(), 1 + 9 * 2 + 2 * 5);  // header, routing per token and layer, predictions
  QVERIFY(lines.contains("prediction,6,[MASK],,,1,▁mat,0.45"));
}

void TestLabViews::benchPlaygroundReplot() {
  // A long sentence: 40 tokens, 4 MoE layers, 3 masks with their top 10.
  PlaygroundView v;
  v.resize(1200, 800);
  auto r = sentence(3, 10, 4);
  while (r.tokens.size() < 40) r.tokens << r.tokens[1 + r.tokens.size() % 7];
  auto* plot = plot_of(&v, "predictions");
  QVERIFY(plot && replot_now(plot));
  QBENCHMARK {
    v.setResult(r);
    replot_now(plot);
  }
  QCOMPARE(v.predictionBarCount(), 30);
  QCOMPARE(v.tokenRowCount(), 40);
}

// --- speed ---

void TestLabViews::speedBarsAndRatios() {
  SpeedView v;
  v.resize(1000, 600);
  QCOMPARE(v.barCount(), 0);
  v.setResult(speed_rows());
  QCOMPARE(v.barCount(), 6);  // training + inference for three presets
  QCOMPARE(v.speedup(0, false), 1.0);
  QVERIFY(std::abs(v.speedup(1, false) - 1.65) < 1e-12);
  QVERIFY(std::abs(v.speedup(1, true) - 1.6) < 1e-12);
  QVERIFY(std::abs(v.speedup(2, false) - 2.0) < 1e-12);
  QVERIFY(std::isnan(v.speedup(3, false)));
  QVERIFY2(v.summaryText().contains("sparse-mixer vs bert-base: training 1.65x, inference 1.60x"),
           qPrintable(v.summaryText()));
  QVERIFY(v.summaryText().contains("fast-sparse-mixer vs bert-base: training 2.00x, inference 2.00x"));
  QVERIFY(!v.summaryText().contains("not measured"));
  QVERIFY(v.findChild<QLabel*>("status")->text().contains("on cpu · batch 8 · sequence length 128"));
  // The ratio chart writes "1.65x" over the bar.
  const QVariantList labels = plot_properties(plot_of(&v, "speedPlot"), "QCPItemText", "text");
  QVERIFY2(labels.contains("1.65x"), qPrintable(QVariant(labels).toStringList().join(' ')));
  QVERIFY(labels.contains("1.60x"));
  QVERIFY(labels.contains("16.5"));  // ms over the bert-base training bar
}

void TestLabViews::speedMissingRowsAreNoted() {
  SpeedView v;
  v.resize(1000, 600);
  auto s = speed_rows();
  s.rows.removeLast();
  s.rows[1].infer_ms_per_example = std::numeric_limits<double>::quiet_NaN();
  v.setResult(s);
  QCOMPARE(v.barCount(), 3);
  QVERIFY(std::isnan(v.speedup(1, true)));
  QVERIFY(v.summaryText().contains("not measured: fast-sparse-mixer"));
  QVERIFY(v.summaryText().contains("sparse-mixer: incomplete timing"));
  QVERIFY(v.summaryText().contains("inference n/a"));
  v.setExpectedPresets({"bert-base", "sparse-mixer"});
  QVERIFY(!v.summaryText().contains("not measured"));
  s.rows[0].train_ms_per_example = 0;  // no baseline: no ratios, no crash
  v.setResult(s);
  QVERIFY(std::isnan(v.speedup(1, false)));
  QCOMPARE(v.barCount(), 2);
}

void TestLabViews::speedErrorBusyAndSignal() {
  SpeedView v;
  v.setResult(speed_rows());
  SpeedResult failed;
  failed.error = "out of memory at batch 512";
  v.setResult(failed);
  QCOMPARE(v.errorText(), failed.error);
  QVERIFY(v.findChild<QLabel*>("error")->styleSheet().contains("#c62828"));
  QCOMPARE(v.barCount(), 6);  // the previous bars stay

  auto* run = v.findChild<QPushButton*>("run");
  auto* batch = v.findChild<QSpinBox*>("batch");
  auto* seq = v.findChild<QSpinBox*>("seqLen");
  QCOMPARE(batch->value(), 8);
  QCOMPARE(seq->value(), 128);
  QCOMPARE(batch->maximum(), 512);
  QCOMPARE(seq->minimum(), 16);
  QSignalSpy spy(&v, &SpeedView::runRequested);
  batch->setValue(32);
  seq->setValue(256);
  run->click();
  QCOMPARE(spy.count(), 1);
  QCOMPARE(spy.at(0).at(0).toInt(), 32);
  QCOMPARE(spy.at(0).at(1).toInt(), 256);
  v.setBusy(true, "timing sparse-mixer…");
  QVERIFY(!run->isEnabled());
  QVERIFY(!batch->isEnabled());
  QCOMPARE(v.findChild<QLabel*>("status")->text(), QString("timing sparse-mixer…"));
  run->click();
  QCOMPARE(spy.count(), 1);
  v.setBusy(false);
  QVERIFY(run->isEnabled());
  v.setResult(speed_rows());
  QVERIFY(v.errorText().isEmpty());

  v.show();
  QVERIFY(QTest::qWaitForWindowExposed(&v));
  v.setClassroomMode(true);
  QVERIFY(!batch->isVisible());
  QVERIFY(run->isVisible());
  QCOMPARE(v.barCount(), 6);
}

void TestLabViews::speedExports() {
  SpeedView v;
  v.resize(1000, 600);
  QString error;
  QVERIFY(!v.exportView(QDir::temp().filePath("nothing.pdf"), &error));
  v.setResult(speed_rows());
  check_exports([&](const QString& p, QString* e) { return v.exportView(p, e); },
                "preset,train_ms_per_example,infer_ms_per_example,gflops_per_example,train_speedup,infer_speedup,"
                "device,batch,seq_len,paper_train_speedup,paper_infer_speedup,flop_ratio");
  // The rows carry the paper's Table 8 and the FLOP ratio (from the rows' own FLOPs here).
  QTemporaryDir dir;
  QVERIFY(v.exportView(dir.filePath("rows.csv")));
  const QList<QByteArray> lines = read_bytes(dir.filePath("rows.csv")).trimmed().split('\n');
  QCOMPARE(lines.size(), 4);
  QVERIFY2(lines[2].startsWith("sparse-mixer,") && lines[2].trimmed().endsWith(",1.65,1.61,1.57746"), lines[2].constData());
  QVERIFY2(lines[3].trimmed().endsWith(",1.89,1.98,1.86667"), lines[3].constData());
}

void TestLabViews::speedTableBesideThePaper() {
  SpeedView v;
  v.resize(1000, 700);
  enum { Preset, MeasuredTrain, MeasuredInfer, PaperTrain, PaperInfer, Flops };
  // Before a benchmark: the default presets with the paper's Table 8; nothing measured yet.
  QCOMPARE(v.comparisonRowCount(), 3);
  QCOMPARE(v.comparisonText(0, Preset), QString("bert-base"));
  QCOMPARE(v.comparisonText(0, PaperTrain), QString("1.00x"));
  QCOMPARE(v.comparisonText(1, PaperTrain), QString("1.65x"));  // Sparse Mixer: 2.87 ms/ex (1.65x)
  QCOMPARE(v.comparisonText(1, PaperInfer), QString("1.61x"));  // 0.84 ms/ex (1.61x)
  QCOMPARE(v.comparisonText(2, PaperTrain), QString("1.89x"));  // Fast Sparse Mixer: 2.51 ms/ex (1.89x)
  QCOMPARE(v.comparisonText(2, PaperInfer), QString("1.98x"));  // 0.68 ms/ex (1.98x)
  QCOMPARE(v.comparisonText(1, MeasuredTrain), QString("\u2014"));
  QCOMPARE(v.comparisonText(1, Flops), QString("\u2014"));  // no FLOPs known yet
  // The app's cost-model estimates give the FLOP ratio over the first preset.
  v.setEstimates({{"bert-base", 22.0}, {"sparse-mixer", 11.0}, {"fast-sparse-mixer", 8.8}});
  QCOMPARE(v.comparisonText(0, Flops), QString("1.00x"));
  QCOMPARE(v.comparisonText(1, Flops), QString("2.00x"));
  QCOMPARE(v.comparisonText(2, Flops), QString("2.50x"));
  QVERIFY(std::abs(v.flopRatio(2) - 2.5) < 1e-12);
  // A benchmark: measured speed-ups beside the paper's; a preset Table 8 lacks shows dashes there.
  auto s = speed_rows();
  s.rows << SpeedRow{"sparse-bert-4", 14.0, 4.4, 10.0};
  v.setResult(s);
  QCOMPARE(v.comparisonRowCount(), 4);
  QCOMPARE(v.comparisonText(1, MeasuredTrain), QString("1.65x"));
  QCOMPARE(v.comparisonText(1, MeasuredInfer), QString("1.60x"));
  QCOMPARE(v.comparisonText(1, PaperInfer), QString("1.61x"));
  QCOMPARE(v.comparisonText(3, Preset), QString("sparse-bert-4"));
  QCOMPARE(v.comparisonText(3, PaperTrain), QString("\u2014"));
  QCOMPARE(v.comparisonText(3, PaperInfer), QString("\u2014"));
  QCOMPARE(v.comparisonText(3, Flops), QString("2.20x"));  // no estimate for it: bert-base 22 over its own 10 GFLOPs
  QCOMPARE(v.comparisonText(1, Flops), QString("2.00x"));  // the estimate wins over the row's
  double train = 0, inference = 0;
  QVERIFY(!SpeedView::paperSpeedup("sparse-bert-12", &train, &inference));
}

void TestLabViews::benchSpeedReplot() {
  SpeedView v;
  v.resize(1200, 700);
  auto s = speed_rows();
  s.rows << SpeedRow{"sparse-bert-4", 14.0, 4.4, 10.0} << SpeedRow{"sparse-bert-12", 15.0, 4.8, 10.5};
  auto* plot = plot_of(&v, "speedPlot");
  QVERIFY(plot && replot_now(plot));
  QBENCHMARK {
    v.setResult(s);
    replot_now(plot);
  }
  QCOMPARE(v.barCount(), 10);
}

void TestLabViews::playgroundLanguageModelMode() {
  using namespace smx::widgets;
  PlaygroundView view;
  view.setText("a [MASK] barks");
  view.setLanguageModel(true);
  QVERIFY(view.isLanguageModel());
  QCOMPARE(view.text(), QString("a dog is a"));  // each mode keeps its own text
  auto* button = view.findChild<QPushButton*>("predict");
  QCOMPARE(button->text(), QString("Generate"));
  QVERIFY(view.findChild<QWidget*>("lmControls")->isVisibleTo(&view));

  // Generate with the settings of the controls.
  QSignalSpy gen(&view, &PlaygroundView::generateRequested);
  QSignalSpy pred(&view, &PlaygroundView::predictRequested);
  GenerationSettings g;
  g.max_new_tokens = 7;
  g.temperature = 0;
  g.top_k = 3;
  g.seed = 11;
  view.setGenerationSettings(g);
  button->click();
  QCOMPARE(gen.size(), 1);
  QCOMPARE(pred.size(), 0);
  QCOMPARE(gen.at(0).at(0).toString(), QString("a dog is a"));
  const auto got = gen.at(0).at(1).value<GenerationSettings>();
  QCOMPARE(got.max_new_tokens, 7);
  QCOMPARE(got.temperature, 0.0);
  QCOMPARE(got.top_k, 3);
  QCOMPARE(got.seed, quint64(11));

  // A continuation: prompt + new tokens with their routing; the new rows are marked.
  GenerationResult r;
  r.prompt = "a dog is a";
  r.continuation = "domestic animal";
  for (const char* p : {"▁a", "▁dog", "▁is", "▁a", "▁domestic", "▁animal"}) {
    PlaygroundToken t;
    t.piece = p;
    t.experts = {{1}};
    r.tokens.push_back(t);
  }
  r.prompt_tokens = 4;
  r.moe_layers = {2};
  r.latency_ms = 12;
  r.device = "cpu";
  view.setGeneration(r);
  QVERIFY(view.generatedText().contains("a dog is a domestic animal"));
  QCOMPARE(view.tokenRowCount(), 6);
  QVERIFY(view.statusText().contains("2 new tokens"));
  // An error keeps the continuation.
  GenerationResult bad;
  bad.error = "the prompt has no tokens";
  view.setGeneration(bad);
  QCOMPARE(view.errorText(), bad.error);
  QVERIFY(view.generatedText().contains("domestic animal"));

  // The leak check, both numbers side by side with the explanation.
  QSignalSpy leak(&view, &PlaygroundView::leakCheckRequested);
  view.findChild<QPushButton*>("leakCheck")->click();
  QCOMPARE(leak.size(), 1);
  LeakCheckResult lr;
  lr.teacher_forced = 20.0;
  lr.token_by_token = 40.0;
  lr.windows = 4;
  lr.targets = 252;
  lr.smoe_routing = "learned";
  view.setLeakCheck(lr);
  QVERIFY2(view.leakText().contains("20.00") && view.leakText().contains("40.00"), qPrintable(view.leakText()));
  QVERIFY(view.leakText().contains("Not equal"));
  QVERIFY(view.leakText().contains("causal model gives equal numbers"));
  lr.token_by_token = 20.0;
  lr.smoe_routing = "deterministic";
  view.setLeakCheck(lr);
  QVERIFY(view.leakText().contains("Equal"));

  // CSV export of the generation; busy turns both buttons off.
  QTemporaryDir dir;
  QString error;
  QVERIFY2(view.exportView(dir.filePath("gen.csv"), &error), qPrintable(error));
  QVERIFY(!view.exportView(dir.filePath("gen.png"), &error));
  view.setBusy(true);
  QVERIFY(!button->isEnabled());
  QVERIFY(!view.findChild<QPushButton*>("leakCheck")->isEnabled());
  view.setBusy(false);

  // Back to masked prediction: its text returns, the LM controls go.
  view.setLanguageModel(false);
  QCOMPARE(view.text(), QString("a [MASK] barks"));
  QCOMPARE(button->text(), QString("Predict"));
  QVERIFY(!view.findChild<QWidget*>("lmControls")->isVisibleTo(&view));
}

QTEST_MAIN(TestLabViews)
