#pragma once
#include <QObject>

// The routing view fed synthetic snapshots (an Experts Choose and a Tokens
// Choose layer, 12 tokens x 4 experts): cells and marks drawn, bars, routing
// stability, top tokens, what-if request/result/error, classroom mode, bad
// input, export, and a replot benchmark at 64 tokens x 8 experts.
class TestRoutingView : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void drawsBothLayers();
  void changedSincePrevious();
  void topTokensSummedOverSnapshots();
  void topTokensFallBackToProbe();
  void rerouteButtonEmitsRequest();
  void whatIfDrawnBeside();
  void whatIfErrorShown();
  void classroomModeColoursText();
  void emptyStateShowsHint();
  void mismatchedSizesDoNotCrash();
  void exportsEveryFormat();
  void rendersAtLectureSize();
  void benchReplot();
};
