#include "widgets/heat_map.h"

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
  range_ = range;
  if (range_.upper <= range_.lower) range_.upper = range_.lower + 1e-9;
  syncScale();
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
  gradient_ = gradient;
  syncScale();
}

void HeatMap::setColorScale(QCPColorScale* scale) {
  scale_ = scale;
  syncScale();
}

void HeatMap::syncScale() {
  if (!scale_) return;
  scale_->setGradient(gradient_);
  scale_->setDataRange(range_);
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
  const QRectF clip = clipRect();
  painter->setAntialiasing(false);
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

void HeatMap::drawLegendIcon(QCPPainter* painter, const QRectF& rect) const {
  QLinearGradient lg(rect.topLeft(), rect.topRight());
  for (int i = 0; i <= 4; ++i)
    lg.setColorAt(i / 4.0, QColor::fromRgba(const_cast<QCPColorGradient&>(gradient_).color(i / 4.0, QCPRange(0, 1))));
  painter->setBrush(lg);
  painter->setPen(Qt::NoPen);
  painter->drawRect(rect);
}

}  // namespace smx::widgets
