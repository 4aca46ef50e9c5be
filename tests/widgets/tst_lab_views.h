#pragma once
#include <QObject>

// The three smaller views fed synthetic results: the stability lab (table
// rows, k/N, divergence steps, the form and its signal), the playground
// (prediction bars, routing rows, Enter/click, errors keep the old result)
// and speed (grouped bars, speed-up ratios, missing rows, busy); exports in
// every format and one replot benchmark per view.
class TestLabViews : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  // stability lab
  void stabilityTableFromCells();
  void stabilityPaperColumnAndDiagnosis();
  void stabilityButtonsFollowTheBatch();
  void stabilityRunRequestedWithFormValues();
  void stabilityNeedsAConfig();
  void stabilityLearningRateBox();
  void stabilityClassroomAndExports();
  void benchStabilityReplot();
  // playground
  void playgroundDrawsPredictionsAndRouting();
  void playgroundWithoutMaskShowsRoutingOnly();
  void playgroundErrorKeepsPreviousResult();
  void playgroundPredictOnEnterAndClick();
  void playgroundBadInput();
  void playgroundExports();
  void benchPlaygroundReplot();
  void playgroundLanguageModelMode();
  // speed
  void speedBarsAndRatios();
  void speedMissingRowsAreNoted();
  void speedErrorBusyAndSignal();
  void speedExports();
  void speedTableBesideThePaper();
  void benchSpeedReplot();
};
