#include "tst_heat_map.h"

#include <QFile>
#include <QFileInfo>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include "qcustomplot_shim.h"

#include <cmath>
#include <functional>
#include <limits>
#include <memory>

#include "widgets/heat_map.h"
#include "widgets/mixing_view.h"
#include "widgets/plot_export.h"
#include "export_checks.h"

using smx::telemetry::Matrix;
using smx::telemetry::MixingSnapshot;
using smx::telemetry::ProbeRouting;
using smx::telemetry::Snapshot;
using smx::widgets::ColorBar;
using smx::widgets::divergingGradient;
using smx::widgets::exportPlot;
using smx::widgets::HeatMap;
using smx::widgets::MixingView;
using smx::widgets::viridisGradient;

using smx_test::embeds_raster;
using smx_test::read_bytes;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kW = 520, kH = 400;
constexpr int kRows = 6, kCols = 8;
constexpr int kNanRow = 1, kNanCol = 2;

// Distinct values over 0..1, one NaN cell.
QVector<double> ramp(int rows, int cols, double scale = 1.0) {
  QVector<double> v(rows * cols);
  for (int i = 0; i < v.size(); ++i) v[i] = scale * i / (v.size() - 1);
  if (rows > kNanRow && cols > kNanCol) v[kNanRow * cols + kNanCol] = kNaN;
  return v;
}

// A plot with one heat map filling its axis rect and no grid lines (they
// would show through the empty NaN cell).
struct MapPlot {
  QCustomPlot plot;
  HeatMap* map;
  MapPlot(int rows = kRows, int cols = kCols) {
    plot.resize(kW, kH);
    map = new HeatMap(plot.xAxis, plot.yAxis);
    map->setData(rows, cols, ramp(rows, cols));
    for (auto* axis : {plot.xAxis, plot.yAxis}) {
      axis->grid()->setVisible(false);
      axis->grid()->setZeroLinePen(Qt::NoPen);
    }
    plot.xAxis->setRange(-0.5, cols - 0.5);
    plot.yAxis->setRange(-0.5, rows - 0.5);
  }
};

// The plot drawn by a QCPPainter on an image: the screen's raster path, or
// with pmVectorized the rectangles PDF and SVG get.
QImage render(QCustomPlot& plot, bool vector) {
  QImage image(kW, kH, QImage::Format_ARGB32_Premultiplied);
  image.fill(Qt::white);
  QCPPainter painter(&image);
  if (vector) painter.setMode(QCPPainter::pmVectorized);
  plot.toPainter(&painter, kW, kH);
  painter.end();
  return image;
}

QColor expected(HeatMap* map, double v) {
  if (!std::isfinite(v)) return QColor(Qt::white);  // empty: the plot's background
  QCPColorGradient g = map->gradient();
  return QColor::fromRgba(g.color(v, map->dataRange()));
}

QPoint centre(const HeatMap* map, int row, int col) {
  return QPointF(map->keyAxis()->coordToPixel(col), map->valueAxis()->coordToPixel(row)).toPoint();
}

// Empty when every cell whose centre is visible shows its colour there; else the first mismatch.
QString check_cells(HeatMap* map, const QImage& image, double scale = 1.0) {
  const QRect visible = map->keyAxis()->axisRect()->rect();
  int checked = 0;
  for (int r = 0; r < map->rows(); ++r)
    for (int c = 0; c < map->cols(); ++c) {
      const QPoint p = centre(map, r, c);
      if (!visible.contains(p)) continue;
      const QColor got = image.pixelColor(p * scale), want = expected(map, map->value(r, c));
      if (got.rgb() != want.rgb())
        return QString("cell (%1, %2) at (%3, %4): %5, expected %6")
            .arg(r)
            .arg(c)
            .arg(p.x())
            .arg(p.y())
            .arg(got.name(), want.name());
      ++checked;
    }
  return checked > 0 ? QString() : QString("no cell centre is visible");
}

// Unreadable counts as raster, so that a missing file never passes as vector.
bool contains_raster(const QString& path) {
  const QByteArray bytes = read_bytes(path);
  return bytes.isEmpty() || embeds_raster(bytes);
}

Matrix matrix(const std::string& name, int n, const std::function<float(int, int)>& f) {
  Matrix m;
  m.name = name;
  m.rows = m.cols = n;
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c) m.values.push_back(f(r, c));
  return m;
}

}  // namespace

void TestHeatMap::valuesAndRanges() {
  QCustomPlot plot;
  auto& map = *new HeatMap(plot.xAxis, plot.yAxis);  // the plot owns it
  QCOMPARE(map.cellCount(), 0);
  map.setData(2, 3, {1, -4, 2, kNaN, 3, 0.5});
  QCOMPARE(map.rows(), 2);
  QCOMPARE(map.cols(), 3);
  QCOMPARE(map.cellCount(), 6);
  QCOMPARE(map.value(1, 1), 3.0);
  QVERIFY(std::isnan(map.value(1, 0)));
  bool found = false;
  QCOMPARE(map.getKeyRange(found).upper, 2.5);
  QVERIFY(found);
  QCOMPARE(map.getValueRange(found).lower, -0.5);
  QCOMPARE(map.getValueRange(found).upper, 1.5);
  // The range fits the finite values; symmetric centres it on zero.
  map.rescaleDataRange();
  QCOMPARE(map.dataRange().lower, -4.0);
  QCOMPARE(map.dataRange().upper, 3.0);
  map.rescaleDataRange(true);
  QCOMPARE(map.dataRange().lower, -4.0);
  QCOMPARE(map.dataRange().upper, 4.0);
  // An empty range is widened, not left to divide by zero.
  map.setDataRange(QCPRange(2, 2));
  QVERIFY(map.dataRange().upper > 2.0);
  // Nothing finite: 0..1.
  map.setData(1, 2, {kNaN, std::numeric_limits<double>::infinity()});
  map.rescaleDataRange();
  QCOMPARE(map.dataRange().lower, 0.0);
  QCOMPARE(map.dataRange().upper, 1.0);
  // A size that does not match the values clears the map.
  map.setData(3, 3, {1, 2});
  QCOMPARE(map.cellCount(), 0);
  map.getKeyRange(found);
  QVERIFY(!found);
  map.setData(-1, -1, {});
  QCOMPARE(map.cellCount(), 0);
}

void TestHeatMap::signalsOnlyOnChange() {
  QCustomPlot plot;
  auto& map = *new HeatMap(plot.xAxis, plot.yAxis);  // the plot owns it
  QSignalSpy ranges(&map, &HeatMap::dataRangeChanged);
  QSignalSpy gradients(&map, &HeatMap::gradientChanged);
  map.setDataRange(QCPRange(0, 1));  // already so
  QCOMPARE(ranges.count(), 0);
  map.setDataRange(QCPRange(-1, 2));
  QCOMPARE(ranges.count(), 1);
  QCOMPARE(ranges.last().first().value<QCPRange>().lower, -1.0);
  map.setData(1, 2, {-3, 5});
  map.rescaleDataRange(true);
  QCOMPARE(ranges.count(), 2);
  QCOMPARE(map.dataRange().upper, 5.0);
  map.setGradient(viridisGradient());  // the default
  QCOMPARE(gradients.count(), 0);
  map.setGradient(divergingGradient());
  QCOMPARE(gradients.count(), 1);
}

void TestHeatMap::cellAtFollowsAxes() {
  MapPlot p;
  p.plot.replot();
  int row = -1, col = -1;
  QVERIFY(p.map->cellAt(centre(p.map, 4, 6), &row, &col));
  QCOMPARE(row, 4);
  QCOMPARE(col, 6);
  p.plot.yAxis->setRangeReversed(true);
  p.plot.xAxis->setRangeReversed(true);
  p.plot.replot();
  // Row 0 is now on top, column 0 on the right.
  const QRect rect = p.plot.axisRect()->rect();
  QVERIFY(p.map->cellAt(rect.topRight() + QPoint(-2, 2), &row, &col));
  QCOMPARE(row, 0);
  QCOMPARE(col, 0);
  QVERIFY(p.map->cellAt(rect.bottomLeft() + QPoint(2, -2), &row, &col));
  QCOMPARE(row, kRows - 1);
  QCOMPARE(col, kCols - 1);
  QVERIFY(!p.map->cellAt(rect.topLeft() - QPoint(30, 30), &row, &col));
  QVariant details;
  QCOMPARE(p.map->selectTest(centre(p.map, 2, 3), false, &details), 0.0);
  QCOMPARE(details.toInt(), 2 * kCols + 3);
}

void TestHeatMap::imageMatchesRectangles_data() {
  QTest::addColumn<bool>("reverseKey");
  QTest::addColumn<bool>("reverseValue");
  QTest::newRow("row 0 at the bottom") << false << false;
  QTest::newRow("row 0 on top") << false << true;
  QTest::newRow("column 0 on the right") << true << false;
  QTest::newRow("both reversed") << true << true;
}

void TestHeatMap::imageMatchesRectangles() {
  QFETCH(bool, reverseKey);
  QFETCH(bool, reverseValue);
  MapPlot p;
  p.plot.xAxis->setRangeReversed(reverseKey);
  p.plot.yAxis->setRangeReversed(reverseValue);
  const QImage raster = render(p.plot, false), vector = render(p.plot, true);
  QString mismatch = check_cells(p.map, raster);
  QVERIFY2(mismatch.isEmpty(), qPrintable("raster: " + mismatch));
  mismatch = check_cells(p.map, vector);
  QVERIFY2(mismatch.isEmpty(), qPrintable("vector: " + mismatch));
  // The NaN cell is empty both ways, and the corner cells sit where the axes put them.
  QCOMPARE(raster.pixelColor(centre(p.map, kNanRow, kNanCol)), QColor(Qt::white));
  const QRect rect = p.plot.axisRect()->rect();
  const QPoint top_left = rect.topLeft() + QPoint(3, 3);
  const int top_row = reverseValue ? 0 : kRows - 1, left_col = reverseKey ? kCols - 1 : 0;
  QCOMPARE(raster.pixelColor(top_left).rgb(), expected(p.map, p.map->value(top_row, left_col)).rgb());
  QCOMPARE(vector.pixelColor(top_left).rgb(), raster.pixelColor(top_left).rgb());
}

void TestHeatMap::imageFollowsChanges() {
  MapPlot p;
  QVERIFY(check_cells(p.map, render(p.plot, false)).isEmpty());
  // Each change must rebuild the cached image: a stale one would show the old colours.
  p.map->setDataRange(QCPRange(0, 3));
  QString mismatch = check_cells(p.map, render(p.plot, false));
  QVERIFY2(mismatch.isEmpty(), qPrintable("range: " + mismatch));
  p.map->setGradient(divergingGradient());
  mismatch = check_cells(p.map, render(p.plot, false));
  QVERIFY2(mismatch.isEmpty(), qPrintable("gradient: " + mismatch));
  p.map->setData(kRows, kCols, ramp(kRows, kCols, 3.0));
  mismatch = check_cells(p.map, render(p.plot, false));
  QVERIFY2(mismatch.isEmpty(), qPrintable("data: " + mismatch));
  p.plot.yAxis->setRangeReversed(true);
  mismatch = check_cells(p.map, render(p.plot, false));
  QVERIFY2(mismatch.isEmpty(), qPrintable("reversed: " + mismatch));
  // A new shape, with no NaN cell this time.
  p.map->setData(3, 2, {0.1, 0.2, 0.3, 0.4, 0.5, 0.6});
  p.map->rescaleDataRange();
  p.plot.xAxis->setRange(-0.5, 1.5);
  p.plot.yAxis->setRange(-0.5, 2.5);
  mismatch = check_cells(p.map, render(p.plot, false));
  QVERIFY2(mismatch.isEmpty(), qPrintable("reshaped: " + mismatch));
  // Cleared: nothing drawn.
  p.map->setData(0, 0, {});
  const QImage empty = render(p.plot, false);
  QCOMPARE(empty.pixelColor(p.plot.axisRect()->rect().center()), QColor(Qt::white));
}

void TestHeatMap::zoomedInDrawsTheVisibleCells() {
  MapPlot p;
  p.plot.xAxis->setRange(1.7, 5.2);
  p.plot.yAxis->setRange(0.6, 3.3);
  const QImage raster = render(p.plot, false);
  QString mismatch = check_cells(p.map, raster);
  QVERIFY2(mismatch.isEmpty(), qPrintable(mismatch));
  // Cut cells at the edges too: key 1.7 lies in column 2, value 0.6 in row 1.
  const QRect rect = p.plot.axisRect()->rect();
  QCOMPARE(raster.pixelColor(rect.bottomLeft() + QPoint(1, -1)).rgb(), expected(p.map, p.map->value(1, 2)).rgb());
  QCOMPARE(raster.pixelColor(rect.topRight() + QPoint(-1, 1)).rgb(), expected(p.map, p.map->value(3, 5)).rgb());
  // Far in: one cell fills the rect.
  p.plot.xAxis->setRange(3.9, 4.1);
  p.plot.yAxis->setRange(2.95, 3.05);
  const QImage one = render(p.plot, false);
  const QRect inner = p.plot.axisRect()->rect();  // the tick labels changed its size
  const QColor want = expected(p.map, p.map->value(3, 4));
  for (const QPoint& at : {inner.center(), inner.topLeft() + QPoint(1, 1), inner.bottomRight() - QPoint(1, 1)})
    QCOMPARE(one.pixelColor(at).rgb(), want.rgb());
  // Panned off the map: nothing.
  p.plot.xAxis->setRange(20, 30);
  const QImage off = render(p.plot, false);
  QCOMPARE(off.pixelColor(p.plot.axisRect()->rect().center()), QColor(Qt::white));
}

void TestHeatMap::colorBarFollowsItsMap() {
  QCustomPlot plot;
  plot.resize(kW, kH);
  plot.plotLayout()->clear();
  auto* grid = new QCPLayoutGrid;
  plot.plotLayout()->addElement(0, 0, grid);
  auto* rect = new QCPAxisRect(&plot);
  grid->addElement(0, 0, rect);
  auto* map = new HeatMap(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
  map->setData(kRows, kCols, ramp(kRows, kCols, 4.0));
  auto* bar = new ColorBar(grid, 0, 1, map, QStringLiteral("weight"));
  QCOMPARE(grid->elementAt(1), bar);  // row 0, column 1
  QCOMPARE(bar->map(), map);
  QCOMPARE(bar->label(), QStringLiteral("weight"));
  QCOMPARE(bar->scaleAxis()->range().lower, 0.0);
  QCOMPARE(bar->scaleAxis()->range().upper, 1.0);
  map->rescaleDataRange();
  QCOMPARE(bar->scaleAxis()->range().upper, 4.0);
  map->setData(1, 2, {-3, 1});
  map->rescaleDataRange(true);
  QCOMPARE(bar->scaleAxis()->range().lower, -3.0);
  QCOMPARE(bar->scaleAxis()->range().upper, 3.0);
  bar->setLabel(QStringLiteral("change"));
  QCOMPARE(bar->scaleAxis()->label(), QStringLiteral("change"));

  // The bar spans the map's height and shows its gradient, lowest at the bottom.
  map->setGradient(divergingGradient());
  const QImage image = render(plot, false);
  QCOMPARE(bar->rect().top(), rect->rect().top());
  QCOMPARE(bar->rect().bottom(), rect->rect().bottom());
  QVERIFY(bar->rect().width() < 30);
  QCPColorGradient g = divergingGradient();
  const int x = bar->rect().center().x();
  QCOMPARE(image.pixelColor(x, bar->rect().top() + 1).rgb(), QColor::fromRgba(g.color(63.5 / 64, QCPRange(0, 1))).rgb());
  QCOMPARE(image.pixelColor(x, bar->rect().bottom() - 1).rgb(), QColor::fromRgba(g.color(0.5 / 64, QCPRange(0, 1))).rgb());
  // The bar is not dragged or zoomed with the plot.
  QCOMPARE(bar->rangeDrag(), Qt::Orientations());
  QCOMPARE(bar->rangeZoom(), Qt::Orientations());
}

void TestHeatMap::exportsStayVector() {
  QCustomPlot plot;
  plot.resize(kW, kH);
  plot.plotLayout()->clear();
  auto* grid = new QCPLayoutGrid;
  plot.plotLayout()->addElement(0, 0, grid);
  auto* rect = new QCPAxisRect(&plot);
  grid->addElement(0, 0, rect);
  auto* map = new HeatMap(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
  map->setData(32, 32, ramp(32, 32));
  map->rescaleDataRange();
  rect->axis(QCPAxis::atBottom)->setRange(-0.5, 31.5);
  rect->axis(QCPAxis::atLeft)->setRange(-0.5, 31.5);
  new ColorBar(grid, 0, 1, map, QStringLiteral("value"));
  QTemporaryDir dir;
  for (const char* name : {"map.svg", "map.pdf", "map.png"}) {
    QString error;
    QVERIFY2(exportPlot(&plot, dir.filePath(name), {}, &error, kW, kH), qPrintable(error));
    QVERIFY(QFileInfo(dir.filePath(name)).size() > 0);
  }
  QVERIFY(!contains_raster(dir.filePath("map.svg")));
  QVERIFY(!contains_raster(dir.filePath("map.pdf")));
  // Every cell is a shape of its own in the SVG (the bar adds its 64).
  const QByteArray text = read_bytes(dir.filePath("map.svg"));
  QVERIFY(!text.isEmpty());
  QVERIFY(text.count("<path") + text.count("<rect") + text.count("<polygon") >= 32 * 32 + 64);
  // The PNG (2x, raster path) shows each cell's colour.
  const QImage png(dir.filePath("map.png"));
  QCOMPARE(png.size(), QSize(2 * kW, 2 * kH));
  const QString mismatch = check_cells(map, png, 2.0);
  QVERIFY2(mismatch.isEmpty(), qPrintable(mismatch));

  // The check can fail: QCustomPlot's own colour map is an image in both.
  QCustomPlot raster;
  raster.resize(kW, kH);
  auto* color_map = new QCPColorMap(raster.xAxis, raster.yAxis);
  color_map->data()->setSize(8, 8);
  color_map->data()->fill(0.5);
  QVERIFY(exportPlot(&raster, dir.filePath("raster.svg"), {}, nullptr, kW, kH));
  QVERIFY(exportPlot(&raster, dir.filePath("raster.pdf"), {}, nullptr, kW, kH));
  QVERIFY(contains_raster(dir.filePath("raster.svg")));
  QVERIFY(contains_raster(dir.filePath("raster.pdf")));
}

void TestHeatMap::attentionColouredToTheHeadsMaximum() {
  // Attention over 16 padded positions, 5 real tokens: row r spreads over the
  // keys, the real part peaks on the diagonal (0.2 for head 0, 0.3 for head
  // 1), the padding holds larger values that must not set the scale.
  constexpr int S = 16, T = 5;
  auto s = std::make_shared<Snapshot>();
  s->step = 100;
  MixingSnapshot attention;
  attention.layer = 1;
  attention.kind = "attention";
  for (int h = 0; h < 2; ++h)
    attention.matrices.push_back(matrix("attention head " + std::to_string(h), S, [h](int r, int c) {
      if (r >= T || c >= T) return 0.5f;
      return r == c ? (h ? 0.3f : 0.2f) : 0.05f;
    }));
  s->mixing = {attention};
  ProbeRouting probe;
  probe.tokens = {"[CLS]", "a", "cat", "sat", "[SEP]"};
  s->probe = {probe};

  MixingView v;
  v.resize(1000, 700);
  v.setSnapshots({s});
  QCOMPARE(v.attentionCellCount(), T * T);
  QCOMPARE(v.attentionValue(4, 4), double(0.2f));
  QVERIFY(std::isnan(v.attentionValue(5, 5)));  // padding cropped
  ColorBar* bar = nullptr;
  for (auto* b : v.findChildren<ColorBar*>())
    if (b->label().startsWith("attention probability")) bar = b;
  QVERIFY(bar);
  QCOMPARE(bar->label(), QStringLiteral("attention probability (max 0.2)"));
  QCOMPARE(bar->map()->dataRange().lower, 0.0);
  QCOMPARE(bar->map()->dataRange().upper, double(0.2f));
  QCOMPARE(bar->scaleAxis()->range().upper, double(0.2f));
  v.setCurrentAttentionHead(1);
  QCOMPARE(bar->label(), QStringLiteral("attention probability (max 0.3)"));
  QCOMPARE(bar->map()->dataRange().upper, double(0.3f));

  // Without the probe's tokens the whole map is shown, scaled to its own maximum.
  auto bare = std::make_shared<Snapshot>(*s);
  bare->probe.clear();
  v.setSnapshots({bare});
  QCOMPARE(v.attentionCellCount(), S * S);
  QCOMPARE(bar->map()->dataRange().upper, 0.5);
  QCOMPARE(bar->label(), QStringLiteral("attention probability (max 0.5)"));
}

void TestHeatMap::benchReplot() {
  // A 128 x 128 map (the largest mixing matrix) with its colour bar, new data every replot.
  QCustomPlot plot;
  plot.resize(900, 800);
  plot.plotLayout()->clear();
  auto* grid = new QCPLayoutGrid;
  plot.plotLayout()->addElement(0, 0, grid);
  auto* rect = new QCPAxisRect(&plot);
  grid->addElement(0, 0, rect);
  auto* map = new HeatMap(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
  new ColorBar(grid, 0, 1, map, QStringLiteral("weight"));
  rect->axis(QCPAxis::atLeft)->setRangeReversed(true);
  rect->axis(QCPAxis::atBottom)->setRange(-0.5, 127.5);
  rect->axis(QCPAxis::atLeft)->setRange(-0.5, 127.5);
  QVector<double> a(128 * 128), b(128 * 128);
  for (int i = 0; i < a.size(); ++i) {
    a[i] = std::sin(0.37 * i);
    b[i] = std::cos(0.21 * i);
  }
  plot.show();
  QVERIFY(QTest::qWaitForWindowExposed(&plot));
  int k = 0;
  QBENCHMARK {
    map->setData(128, 128, (k ^= 1) ? a : b);
    map->rescaleDataRange(true);
    plot.replot(QCustomPlot::rpImmediateRefresh);
  }
  QCOMPARE(map->cellCount(), 128 * 128);
}

QTEST_MAIN(TestHeatMap)
