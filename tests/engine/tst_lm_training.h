// Decoder LMs end to end: contiguous-stream LM data with its held-out split, the inverse-sqrt
// schedule, and the trainer's LM objective (run store, held-out perplexity, checkpoint, eval, resume);
// the studio's Inspector on LM checkpoints (generation, the future-token-leak check).
#pragma once
#include <QObject>

class TestLmTraining : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase();
  void cleanupTestCase();
  void lmDataWindowsAndSplit();
  void inverseSqrtSchedule();
  void trainerRunsTheLmObjective();
  void lmSnapshotsFeedTheViews();
  void inspectorGeneratesAndChecksLeaks();
};
