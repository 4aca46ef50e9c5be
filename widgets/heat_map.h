// A heat map plottable for QCustomPlot that draws every cell as a filled
// rectangle, so PDF and SVG exports stay vector (QCPColorMap draws an image,
// which a vector export would rasterise). Cell (row r, column c) covers key
// [c - 0.5, c + 0.5] and value [r - 0.5, r + 0.5]; reverse the value axis to
// put row 0 on top. NaN cells are left empty.
#pragma once

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
  /// A colour scale that shows this map's gradient and range (kept in sync).
  void setColorScale(QCPColorScale* scale);
  /// Thin lines between cells (off by default; useful for small maps).
  void setCellBorders(bool on) { borders_ = on; }

  /// The cell under a pixel position, if any.
  bool cellAt(const QPointF& pixel, int* row, int* col) const;

  double selectTest(const QPointF& pos, bool onlySelectable, QVariant* details = nullptr) const override;
  QCPRange getKeyRange(bool& foundRange, QCP::SignDomain inSignDomain = QCP::sdBoth) const override;
  QCPRange getValueRange(bool& foundRange, QCP::SignDomain inSignDomain = QCP::sdBoth,
                         const QCPRange& inKeyRange = QCPRange()) const override;

 protected:
  void draw(QCPPainter* painter) override;
  void drawLegendIcon(QCPPainter* painter, const QRectF& rect) const override;

 private:
  void syncScale();
  int rows_ = 0, cols_ = 0;
  QVector<double> values_;
  QCPRange range_{0, 1};
  QCPColorGradient gradient_ = viridisGradient();
  QPointer<QCPColorScale> scale_;
  bool borders_ = false;
};

}  // namespace smx::widgets
