#pragma once
#include <QObject>

// The training-curves view fed synthetic runs: graphs, event markers,
// decimation of a long run, log axes, export.
class TestTrainingCurvesView : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void twoRunsWithEvents();
  void millionPointRunIsDecimated();
  void liveAppendAndLogScale();
  void exportsFiles();
  void replotMillionPoints();
};
