#pragma once
#include <QObject>

// The training-curves view fed synthetic runs: graphs, legend, event markers
// and their clicks, decimation of a long run, live appends, y range modes,
// wall-time x, seed bands, metric picking, classroom mode, export.
class TestTrainingCurvesView : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void emptyShowsHint();
  void twoRunsWithEvents();
  void millionPointRunIsDecimated();
  void zoomingInRedecimatesTheWindow();
  void liveAppendAndLogScale();
  void liveAppendIsCoalesced();
  void liveEvents();
  void eventClickNearMarker();
  void yRangeModes();
  void wallTimeAxis();
  void seedGroupsDrawBands();
  void metricPicker();
  void smoothingSlider();
  void classroomHidesExpertControls();
  void narrowViewWrapsControls();
  void badInputDoesNotCrash();
  void exportsFiles();
  void benchRebuildMillionPoints();
  void benchAppendFiftyPoints();
};
