// A heat map plottable for QCustomPlot and its colour bar. Exports to PDF and
// SVG draw every cell as a filled rectangle, so they stay vector (QCPColorMap
// and QCPColorScale paint images, which a vector export would rasterise); on
// screen and in PNGs the cells go through one cached image instead, which is
// much faster for big maps. Cell (row r, column c) covers key [c - 0.5, c + 0.5]
// and value [r - 0.5, r + 0.5]; the key axis is horizontal. Reverse the value
// axis to put row 0 on top. NaN cells are left empty.
#pragma once

#include <QImage>
#include <QPointer>
#include <QVector>
#include <qcustomplot.h>

namespace smx::widgets {

/// Perceptually uniform, colour-blind safe (matplotlib's viridis), for magnitudes.
QCPColorGradient viridisGradient();
/// Blue - white - red, for signed values (use a symmetric range).
QCPColorGradient divergingGradient();

class HeatMap : public QCPAbstractPlottable {
  Q_OBJECT
 public:
  HeatMap(QCPAxis* keyAxis, QCPAxis* valueAxis);

  /// Row-major values, rows * cols of them (otherwise the map is cleared).
  void setData(int rows, int cols, QVector<double> values);
  int rows() const { return rows_; }
  int cols() const { return cols_; }
  int cellCount() const { return rows_ * cols_; }
  double value(int row, int col) const { return values_[row * cols_ + col]; }

  /// Colours span this range; values outside are clamped.
  void setDataRange(const QCPRange& range);
  QCPRange dataRange() const { return range_; }
  /// Fits the range to the finite values; `symmetric` centres it on zero
  /// (for differences and signed weights).
  void rescaleDataRange(bool symmetric = false);
  void setGradient(const QCPColorGradient& gradient);
  QCPColorGradient gradient() const { return gradient_; }
  /// Thin lines between cells (off by default; useful for small maps).
  void setCellBorders(bool on) { borders_ = on; }

  /// The cell under a pixel position, if any.
  bool cellAt(const QPointF& pixel, int* row, int* col) const;

  double selectTest(const QPointF& pos, bool onlySelectable, QVariant* details = nullptr) const override;
  QCPRange getKeyRange(bool& foundRange, QCP::SignDomain inSignDomain = QCP::sdBoth) const override;
  QCPRange getValueRange(bool& foundRange, QCP::SignDomain inSignDomain = QCP::sdBoth,
                         const QCPRange& inKeyRange = QCPRange()) const override;

 Q_SIGNALS:
  void dataRangeChanged(const QCPRange& range);
  void gradientChanged(const QCPColorGradient& gradient);

 protected:
  void draw(QCPPainter* painter) override;
  void drawLegendIcon(QCPPainter* painter, const QRectF& rect) const override;

 private:
  void drawCells(QCPPainter* painter, const QVector<double>& xs, const QVector<double>& ys);
  void drawImage(QCPPainter* painter, const QVector<double>& xs, const QVector<double>& ys);
  int rows_ = 0, cols_ = 0;
  QVector<double> values_;
  QCPRange range_{0, 1};
  QCPColorGradient gradient_ = viridisGradient();
  bool borders_ = false;
  // One pixel per cell in screen order (mirrored as the axes are), rebuilt
  // only when the data, range, gradient or an axis direction changes.
  QImage image_;
  bool image_stale_ = true, image_flip_x_ = false, image_flip_y_ = false;
};

/// A vertical colour bar for a HeatMap: a narrow axis rect with a one-column
/// HeatMap of the gradient and a labelled axis on its right that shows the
/// map's data range. It is cells, so exports stay vector like the map.
class ColorBar : public QCPAxisRect {
  Q_OBJECT
 public:
  /// Puts the bar into `grid` at (row, col) (the grid must already be in the
  /// plot's layout), follows `map`'s gradient and data range from now on, and
  /// lines its top and bottom up with the map's axis rect.
  ColorBar(QCPLayoutGrid* grid, int row, int col, HeatMap* map, const QString& label = QString());

  void setLabel(const QString& label);
  QString label() const;
  /// The labelled axis (for fonts; its range is the map's data range).
  QCPAxis* scaleAxis() const { return axis(QCPAxis::atRight); }
  const HeatMap* map() const { return map_; }

 private:
  QPointer<HeatMap> map_;
  HeatMap* cells_;
};

}  // namespace smx::widgets
