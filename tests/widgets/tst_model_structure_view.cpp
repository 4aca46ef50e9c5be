#include "tst_model_structure_view.h"

#include <QComboBox>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QtTest>

#include "app/model_page.h"
#include "app/structure_rows.h"
#include "widgets/model_structure_view.h"

using smx::widgets::LayerRow;
using smx::widgets::ModelStructureView;

void TestModelStructureView::rendersOneRowAndBarPerLayer() {
  ModelStructureView view;
  QVector<LayerRow> rows;
  for (int i = 0; i < 5; ++i) rows.push_back({QString::number(i), "linear", i == 2 ? "MoE" : "dense", 1e6, 5e5, 0.5, ""});
  view.setModel("synthetic", rows);
  QCOMPARE(view.rowCount(), 5);
  QCOMPARE(view.barCount(), 5);
  // From the engine's cost model: embeddings + 14 layers + heads.
  const auto c = smx::preset("sparse-mixer");
  view.setModel(smx::app::structure_summary(c, 64), smx::app::structure_rows(c, 64));
  QCOMPARE(view.rowCount(), 16);
  QCOMPARE(view.barCount(), 16);
}

void TestModelStructureView::exportsFiles_data() {
  QTest::addColumn<QString>("suffix");
  QTest::addRow("png") << "png";
  QTest::addRow("pdf") << "pdf";
  QTest::addRow("csv") << "csv";
}

void TestModelStructureView::exportsFiles() {
  QFETCH(QString, suffix);
  ModelStructureView view;
  const auto c = smx::preset("demo");
  view.setModel("demo", smx::app::structure_rows(c, 8));
  view.resize(800, 600);
  QTemporaryDir dir;
  const QString path = dir.filePath("chart." + suffix);
  QVERIFY(view.exportChart(path));
  QVERIFY(QFileInfo(path).size() > 100);
  QVERIFY(!view.exportChart(dir.filePath("chart.bmpx")));
}

void TestModelStructureView::modelPageRejectsBadConfig() {
  smx::app::ModelPage window;
  QVERIFY(window.showPreset("bert-base"));
  QCOMPARE(window.structureView()->rowCount(), 14);
  QTemporaryDir dir;
  QFile bad(dir.filePath("bad.json"));
  QVERIFY(bad.open(QIODevice::WriteOnly));
  bad.write(R"({"preset": "sparse-mixer", "num_experts": 0})");
  bad.close();
  QVERIFY(!window.openConfig(bad.fileName(), /*quiet=*/true));
  QCOMPARE(window.structureView()->rowCount(), 14);  // the shown model is kept
  QVERIFY(!window.showPreset("nope"));
  // A good config file is shown, and named in the model box (not the last preset).
  QFile good(dir.filePath("mine.json"));
  QVERIFY(good.open(QIODevice::WriteOnly));
  good.write(R"({"preset": "demo", "num_layers": 6, "moe_layers": 3})");
  good.close();
  QVERIFY(window.openConfig(good.fileName(), true));
  QCOMPARE(window.structureView()->rowCount(), 8);  // embeddings + 6 layers + heads
  auto* box = window.findChild<QComboBox*>();
  QVERIFY(box);
  QCOMPARE(box->currentText(), QString("file: mine.json"));
  QCOMPARE(window.shownName(), QString("mine.json"));
  QVERIFY(window.showPreset("demo"));  // and back to a preset
  QCOMPARE(window.structureView()->rowCount(), 6);
}

QTEST_MAIN(TestModelStructureView)
