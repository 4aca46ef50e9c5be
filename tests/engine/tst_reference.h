// Golden tests against the reference code's rules (google-research
// sparse_mixers with flaxformer's MoE routing), each with values computed by
// hand or from an independent formula: tanh GELU, capacity rounded half to
// even, tie-breaking in both routers, the bfloat16 router option, the
// reference's router_confidence, and padding that changes nothing for the
// real tokens in every mixing kind with both routers.
#pragma once
#include <QObject>

class TestReference : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void geluIsTanhApproximation();
  void capacityRoundsHalfToEven_data();
  void capacityRoundsHalfToEven();
  void tokensChooseTiesGoToLowerExpert();
  void batchPrioritizedSortIsStable();
  void expertsChooseTiesGoToEarlierTokens();
  void bfloat16RouterOption();
  void routerConfidenceIsMeanKeptProbability();
  void paddingClaimsNoCapacity();
  void paddingIsInert_data();
  void paddingIsInert();
};
