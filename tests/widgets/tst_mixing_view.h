#pragma once
#include <QObject>

// The mixing view fed synthetic snapshots: cells of the chosen matrix, the
// difference from initialisation, the spectrum, scrubbing and following,
// fixed bases, attention heads, classroom mode, exports, empty and bad input.
class TestMixingView : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void layersMatricesAndCells();
  void spectrumOfShownMatrix();
  void differenceFromInitialisation();
  void scrubbingAndFollowing();
  void fixedBasisHasNoDifference();
  void attentionHeads();
  void classroomHidesExpertControls();
  void exportsAllFormats();
  void emptyStates();
  void inconsistentMatricesDoNotCrash();
  void benchReplot();
  void decoderLmKinds();
};
