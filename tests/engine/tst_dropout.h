// smx::dropout, the CPU dropout with counter-based random numbers: what it
// drops and keeps, its gradient, that it repeats under a seed whatever the
// thread count, and that models use it only while training.
#pragma once
#include <QObject>

class TestDropout : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void identityOutsideTraining();
  void dropsAtTheRateAndScalesTheRest();
  void masksAreUncorrelated();
  void gradientFollowsTheMask();
  void repeatsUnderASeedWhateverTheThreads();
  void edgeProbabilities();
  void otherTypes();
  void modelsDropOnlyWhileTraining();
};
