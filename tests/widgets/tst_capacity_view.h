#pragma once
#include <QObject>

// The capacity view fed synthetic snapshots: fill heat map cells and values,
// cheap appends, dropped-by-position and experts-per-token bars, the eval
// capacity probe and its signal, classroom mode, exports, empty and bad input.
class TestCapacityView : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void fillOverTime();
  void appendReadsOnlyNewSnapshots();
  void droppedByPositionAndExpertsChoose();
  void evalProbeBars();
  void applyEmitsFactor();
  void classroomHidesEvalControls();
  void exportsAllFormats();
  void emptyStates();
  void badInputDoesNotCrash();
  void benchReplot();
};
