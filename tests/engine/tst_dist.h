#pragma once
#include <QObject>

// Distributed training on c10d/Gloo over loopback, 2 ranks: the collectives
// the engine uses (in threads of this process), and real `smx pretrain --nproc 2`
// runs against one process with the same global batch (data parallel, and
// with experts spread over the ranks): losses and gradient norms, resuming
// across rank counts, Ctrl-C, pause, and a rank that dies or hangs.
class TestDist : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase();
  void collectivesAreExact();
  void optionsAreChecked();
  void dataParallelEqualsOneProcess_data();
  void dataParallelEqualsOneProcess();
  void checkpointsDoNotDependOnRanks();
  void expertParallelEqualsOneProcess_data();
  void expertParallelEqualsOneProcess();
  void ranksStartedByHandJoin();
  void ctrlCStopsEveryRank();
  void pauseAndStopReachEveryRank();
  void anotherMachineKeepsItsOwnTokenizer();
  void killedRankEndsTheRun();
  void hungRankEndsTheRunAtTheTimeout();
};
