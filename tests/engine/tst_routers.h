// The router zoo of the sMLP paper's baselines, checked against their
// definitions: Switch and GShard (fairseq's top-1/top-2 gates: capacity,
// claim order, renormalised gates, balancing loss on top-1 choices), BASE
// layers (an exact balanced assignment, compared with brute force; greedy in
// evaluation) and Hash layers (a fixed id -> expert table, kept in
// checkpoints; frequency-balanced tables).
#pragma once
#include <QObject>

class TestRouters : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void capacityRules();
  void switchAndGShardBalancingLoss();
  void switchIsFirstComeFirstServed();
  void gshardKeptGatesSumToOne();
  void gshardSecondChoiceSampledWhileTraining();
  void baseGivesEveryExpertItsShare();
  void baseMatchesBruteForce();
  void baseIsGreedyInEvaluation();
  void baseRefusesIndivisibleGroups();
  void hashIsAFixedTable();
  void hashTableSurvivesSaveAndLoad();
  void balancedHashTableSpreadsFrequency();
  void everyRouterTrainsAnEncoder_data();
  void everyRouterTrainsAnEncoder();
};
