// Routing: capacity, Batch Prioritized Routing, pass-through of dropped
// tokens, auxiliary losses, train vs eval capacity.
#pragma once
#include <QObject>

class TestRouting : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void groupsAndCapacity();
  void expertsChooseFillsCapacityWithTopTokens();
  void tokensChooseNeverExceedsCapacity();
  void batchPrioritizedRoutingKeepsMostConfident();
  void topOneChoicesPlacedBeforeTopTwo();
  void droppedTokensPassThroughResidual();
  void auxLossesMatchFormulas();
  void trainAndEvalCapacityFactors();
  void summaryCountsExpertsPerToken();
  void moeForwardSpeed_data();
  void moeForwardSpeed();
};
