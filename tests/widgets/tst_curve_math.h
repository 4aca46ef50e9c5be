#pragma once
#include <QObject>

// Smoothing, spike-keeping decimation, seed bands and axis ranges of the curve views.
class TestCurveMath : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void smoothingIsDebiasedAndSkipsNonFinite();
  void decimationKeepsSpikesAndDips();
  void decimationKeepsNonFinitePoints();
  void shortSeriesAreUnchanged();
  void bandAcrossSeeds();
  void bandOfUnsortedRunsMatchesSorted();
  void liveSmootherMatchesSmooth();
  void decimationOfAWindow();
  void rangesIgnoreOutliers();
  void interpolation();
  void decimateOneMillionPoints();
};
