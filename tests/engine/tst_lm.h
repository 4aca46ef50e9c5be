// The sMLP family's decoder LMs (SMLP.md checks 1-4, 8, 9; issue 15's checks): layout, config,
// cost model against Table 3 and the modules, causality, teacher-forced vs token-by-token NLL,
// deterministic and partial-prediction sMoE, untrained perplexity.
#pragma once
#include <QObject>

class TestLm : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void fairseqInsertLayout();
  void configFamilyAndValidation();
  void moduleCostsMatchTable3();
  void parameterCountsMatchModules_data();
  void parameterCountsMatchModules();
  void sguSlicesForShortInputs();
  void deterministicChannelsToExperts();
  void deterministicOneExpertEqualsDenseSgu();
  void causality_data();
  void causality();
  void teacherForcedEqualsTokenByToken_data();
  void teacherForcedEqualsTokenByToken();
  void partialPrediction();
  void untrainedPerplexity_data();
  void untrainedPerplexity();
  void trainingStepsLowerTheLoss();
  void routerDemosMatchSmlpFlops();
  void hashLmRoutesByTokenId();
};
