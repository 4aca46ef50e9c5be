#pragma once
#include <QObject>

// Distributed training on c10d/Gloo over loopback, 2 ranks: the collectives
// the engine uses (in threads of this process), and real `smx pretrain --nproc 2`
// runs against one process with the same global batch: losses and gradient
// norms, resuming across rank counts, Ctrl-C, and a rank that dies or hangs.
class TestDist : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase();
  void collectivesAreExact();
  void optionsAreChecked();
  void dataParallelEqualsOneProcess_data();
  void dataParallelEqualsOneProcess();
  void checkpointsDoNotDependOnRanks();
  void ctrlCStopsEveryRank();
  void pauseAndStopReachEveryRank();
  void killedRankEndsTheRun();
  void hungRankEndsTheRunAtTheTimeout();
};
