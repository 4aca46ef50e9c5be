#pragma once
#include <QObject>

// The shared heat map and colour bar: values, ranges and cell lookup, the
// cached image on screen against the rectangles of vector exports (same
// colours, every axis direction, zoomed in, after changes), NaN cells, the
// colour bar following its map, exports without raster images, the
// attention map's colour range, and a replot benchmark.
class TestHeatMap : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void valuesAndRanges();
  void signalsOnlyOnChange();
  void cellAtFollowsAxes();
  void imageMatchesRectangles_data();
  void imageMatchesRectangles();
  void imageFollowsChanges();
  void zoomedInDrawsTheVisibleCells();
  void colorBarFollowsItsMap();
  void exportsStayVector();
  void attentionColouredToTheHeadsMaximum();
  void benchReplot();
};
