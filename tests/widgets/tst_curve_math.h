#pragma once
#include <QObject>

// Smoothing, spike-keeping decimation and seed bands of the curve views.
class TestCurveMath : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void smoothingIsDebiasedAndSkipsNonFinite();
  void decimationKeepsSpikesAndDips();
  void decimationKeepsNonFinitePoints();
  void shortSeriesAreUnchanged();
  void bandAcrossSeeds();
  void decimateOneMillionPoints();
};
