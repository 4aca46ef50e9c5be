#pragma once
#include <QObject>

// The trainer end to end on a tiny model and corpus: the run store, resume,
// stability events, checkpoint files (including a process killed while
// writing them), telemetry snapshots, fine-tuning from a checkpoint and the
// live copies of a running run's weights.
class TestTrainer : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase();
  void pretrainRecordsEverything();
  void resumeEqualsUninterrupted();
  void nanIsDetectedAtItsStep();
  void nanSkipPolicyKeepsWeightsFinite();
  void outOfMemoryEndsTheRunAndKeepsItsCheckpoints();
  void checkpointRefusesDamagedFiles();
  void killDuringCheckpointWriteLeavesLoadableCheckpoint();
  void finetuneFromCheckpoint();
  void pauseAndStopFromAnotherThread();
  void runStabilityIsClassifiedFromLossesAndEvents();
  void firstDepartureFindsWhereACurveTurned();
  void liveWeightsBetweenSteps();
  void cleanupTestCase();
};
