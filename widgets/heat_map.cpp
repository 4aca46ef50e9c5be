#include "widgets/heat_map.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace smx::widgets {

QCPColorGradient viridisGradient() {
  QCPColorGradient g;
  g.setColorInterpolation(QCPColorGradient::ciRGB);
  g.setColorStopAt(0.00, QColor(68, 1, 84));
  g.setColorStopAt(0.13, QColor(71, 44, 122));
  g.setColorStopAt(0.25, QColor(59, 81, 139));
  g.setColorStopAt(0.38, QColor(44, 113, 142));
  g.setColorStopAt(0.50, QColor(33, 144, 141));
  g.setColorStopAt(0.63, QColor(39, 173, 129));
  g.setColorStopAt(0.75, QColor(92, 200, 99));
  g.setColorStopAt(0.88, QColor(170, 220, 50));
  g.setColorStopAt(1.00, QColor(253, 231, 37));
  return g;
}

QCPColorGradient divergingGradient() {
  QCPColorGradient g;
  g.setColorInterpolation(QCPColorGradient::ciRGB);
  g.setColorStopAt(0.0, QColor(33, 102, 172));
  g.setColorStopAt(0.25, QColor(146, 197, 222));
  g.setColorStopAt(0.5, QColor(247, 247, 247));
  g.setColorStopAt(0.75, QColor(244, 165, 130));
  g.setColorStopAt(1.0, QColor(178, 24, 43));
  return g;
}

HeatMap::HeatMap(QCPAxis* keyAxis, QCPAxis* valueAxis) : QCPAbstractPlottable(keyAxis, valueAxis) {
  setAntialiasedFill(false);
  setPen(Qt::NoPen);
}

void HeatMap::setData(int rows, int cols, QVector<double> values) {
  image_stale_ = true;
  if (rows < 0 || cols < 0 || values.size() != rows * cols) {
    rows_ = cols_ = 0;
    values_.clear();
    return;
  }
  rows_ = rows;
  cols_ = cols;
  values_ = std::move(values);
}

void HeatMap::setDataRange(const QCPRange& range) {
  QCPRange r = range;
  if (!(r.upper > r.lower)) r.upper = r.lower + 1e-9;
  if (r == range_) return;
  range_ = r;
  image_stale_ = true;
  Q_EMIT dataRangeChanged(range_);
}

void HeatMap::rescaleDataRange(bool symmetric) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : values_) {
    if (!std::isfinite(v)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (!std::isfinite(lo)) {
    lo = 0;
    hi = 1;
  }
  if (symmetric) {
    const double m = std::max({std::abs(lo), std::abs(hi), 1e-9});
    lo = -m;
    hi = m;
  }
  setDataRange(QCPRange(lo, hi));
}

void HeatMap::setGradient(const QCPColorGradient& gradient) {
  if (gradient == gradient_) return;
  gradient_ = gradient;
  image_stale_ = true;
  Q_EMIT gradientChanged(gradient_);
}

bool HeatMap::cellAt(const QPointF& pixel, int* row, int* col) const {
  if (!mKeyAxis || !mValueAxis || cellCount() == 0) return false;
  double key = 0, value = 0;
  pixelsToCoords(pixel, key, value);
  const int c = static_cast<int>(std::floor(key + 0.5)), r = static_cast<int>(std::floor(value + 0.5));
  if (r < 0 || r >= rows_ || c < 0 || c >= cols_) return false;
  if (row) *row = r;
  if (col) *col = c;
  return true;
}

double HeatMap::selectTest(const QPointF& pos, bool onlySelectable, QVariant* details) const {
  if (onlySelectable && !mSelectable) return -1;
  int r = 0, c = 0;
  if (!cellAt(pos, &r, &c)) return -1;
  if (details) details->setValue(r * cols_ + c);
  return 0;
}

QCPRange HeatMap::getKeyRange(bool& foundRange, QCP::SignDomain) const {
  foundRange = cellCount() > 0;
  return QCPRange(-0.5, cols_ - 0.5);
}

QCPRange HeatMap::getValueRange(bool& foundRange, QCP::SignDomain, const QCPRange&) const {
  foundRange = cellCount() > 0;
  return QCPRange(-0.5, rows_ - 0.5);
}

void HeatMap::draw(QCPPainter* painter) {
  if (cellCount() == 0 || !mKeyAxis || !mValueAxis) return;
  // Cell edges in pixels, computed once per row and column so neighbours share
  // edges exactly (no hairline gaps, no overlaps).
  QVector<double> xs(cols_ + 1), ys(rows_ + 1);
  for (int c = 0; c <= cols_; ++c) xs[c] = mKeyAxis->coordToPixel(c - 0.5);
  for (int r = 0; r <= rows_; ++r) ys[r] = mValueAxis->coordToPixel(r - 0.5);
  painter->setAntialiasing(false);
  // PDF and SVG get rectangles so they stay vector; the screen and PNGs get one
  // scaled image, which costs the same for 16 cells or 16k. Borders are only
  // asked for on small maps, where rectangles are cheap anyway.
  if (painter->modes().testFlag(QCPPainter::pmVectorized) || borders_) drawCells(painter, xs, ys);
  else drawImage(painter, xs, ys);
}

void HeatMap::drawCells(QCPPainter* painter, const QVector<double>& xs, const QVector<double>& ys) {
  const QRectF clip = clipRect();
  painter->setPen(borders_ ? QPen(QColor(255, 255, 255, 160), 0.5) : Qt::NoPen);
  for (int r = 0; r < rows_; ++r) {
    const double y0 = std::min(ys[r], ys[r + 1]), y1 = std::max(ys[r], ys[r + 1]);
    if (y1 < clip.top() || y0 > clip.bottom()) continue;
    for (int c = 0; c < cols_; ++c) {
      const double v = values_[r * cols_ + c];
      if (!std::isfinite(v)) continue;
      const double x0 = std::min(xs[c], xs[c + 1]), x1 = std::max(xs[c], xs[c + 1]);
      if (x1 < clip.left() || x0 > clip.right()) continue;
      painter->setBrush(QColor::fromRgba(gradient_.color(v, range_)));
      painter->drawRect(QRectF(QPointF(x0, y0), QPointF(x1, y1)));
    }
  }
}

void HeatMap::drawImage(QCPPainter* painter, const QVector<double>& xs, const QVector<double>& ys) {
  // The image holds the cells in screen order: mirrored where an axis runs
  // against the pixels (a reversed key axis, or an upright value axis, whose
  // row 0 is at the bottom).
  const bool flip_x = xs.front() > xs.back(), flip_y = ys.front() > ys.back();
  if (image_stale_ || flip_x != image_flip_x_ || flip_y != image_flip_y_ || image_.isNull()) {
    image_ = QImage(cols_, rows_, QImage::Format_ARGB32_Premultiplied);
    for (int r = 0; r < rows_; ++r) {
      auto* line = reinterpret_cast<QRgb*>(image_.scanLine(flip_y ? rows_ - 1 - r : r));
      for (int c = 0; c < cols_; ++c) {
        const double v = values_[r * cols_ + c];
        line[flip_x ? cols_ - 1 - c : c] = std::isfinite(v) ? gradient_.color(v, range_) : qRgba(0, 0, 0, 0);
      }
    }
    image_stale_ = false;
    image_flip_x_ = flip_x;
    image_flip_y_ = flip_y;
  }
  // Only the visible cells: a map zoomed far in would otherwise be scaled to
  // a target many times the screen.
  QVector<double> sx = xs, sy = ys;  // edges, ascending
  if (flip_x) std::reverse(sx.begin(), sx.end());
  if (flip_y) std::reverse(sy.begin(), sy.end());
  const QRectF clip = clipRect();
  auto visible = [](const QVector<double>& edges, double lo, double hi, int* first, int* last) {
    *first = std::max(0, int(std::upper_bound(edges.begin(), edges.end(), lo) - edges.begin()) - 1);
    *last = std::min(int(edges.size()) - 2, int(std::lower_bound(edges.begin(), edges.end(), hi) - edges.begin()) - 1);
    return *first <= *last;
  };
  int c0 = 0, c1 = 0, r0 = 0, r1 = 0;
  if (!visible(sx, clip.left(), clip.right(), &c0, &c1) || !visible(sy, clip.top(), clip.bottom(), &r0, &r1)) return;
  const QRectF target(QPointF(sx[c0], sy[r0]), QPointF(sx[c1 + 1], sy[r1 + 1]));
  const QRectF source(c0, r0, c1 - c0 + 1, r1 - r0 + 1);
  // Nearest neighbour: every cell stays one flat colour with sharp edges.
  painter->setRenderHint(QPainter::SmoothPixmapTransform, false);
  painter->drawImage(target, image_, source);
}

void HeatMap::drawLegendIcon(QCPPainter* painter, const QRectF& rect) const {
  QLinearGradient lg(rect.topLeft(), rect.topRight());
  for (int i = 0; i <= 4; ++i)
    lg.setColorAt(i / 4.0, QColor::fromRgba(const_cast<QCPColorGradient&>(gradient_).color(i / 4.0, QCPRange(0, 1))));
  painter->setBrush(lg);
  painter->setPen(Qt::NoPen);
  painter->drawRect(rect);
}

namespace {
constexpr int kBarSteps = 64;
}

ColorBar::ColorBar(QCPLayoutGrid* grid, int row, int col, HeatMap* map, const QString& label)
    : QCPAxisRect(map->parentPlot(), false), map_(map) {
  grid->addElement(row, col, this);
  setMinimumSize(14, 40);
  setMaximumSize(14, QWIDGETSIZE_MAX);
  setRangeDrag(Qt::Orientations());
  setRangeZoom(Qt::Orientations());
  auto* cell_x = addAxis(QCPAxis::atBottom);
  auto* cell_y = addAxis(QCPAxis::atLeft);
  for (auto* hidden : {cell_x, cell_y}) hidden->setVisible(false);
  cell_x->setRange(-0.5, 0.5);
  cell_y->setRange(-0.5, kBarSteps - 0.5);
  auto* scale = addAxis(QCPAxis::atRight);
  scale->setSubTicks(false);
  scale->setBasePen(Qt::NoPen);
  scale->setLabel(label);
  for (auto* axis : axes()) axis->grid()->setVisible(false);
  // The steps stay fixed over 0..1; only the labelled axis follows the map's range.
  QVector<double> steps(kBarSteps);
  for (int i = 0; i < kBarSteps; ++i) steps[i] = (i + 0.5) / kBarSteps;
  cells_ = new HeatMap(cell_x, cell_y);
  cells_->setDataRange(QCPRange(0, 1));
  cells_->setData(kBarSteps, 1, steps);
  cells_->setGradient(map->gradient());
  scale->setRange(map->dataRange());
  connect(map, &HeatMap::gradientChanged, this, [this](const QCPColorGradient& g) { cells_->setGradient(g); });
  connect(map, &HeatMap::dataRangeChanged, this, [this](const QCPRange& r) { scaleAxis()->setRange(r); });

  // Bar and map share their top and bottom margins, so the bar spans the map exactly.
  auto* map_rect = map->keyAxis()->axisRect();
  auto* group = map_rect->marginGroup(QCP::msTop);
  if (!group) {
    group = new QCPMarginGroup(parentPlot());
    map_rect->setMarginGroup(QCP::msTop | QCP::msBottom, group);
  }
  setMarginGroup(QCP::msTop | QCP::msBottom, group);
}

void ColorBar::setLabel(const QString& label) { scaleAxis()->setLabel(label); }
QString ColorBar::label() const { return scaleAxis()->label(); }

}  // namespace smx::widgets
