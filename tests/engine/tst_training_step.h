// One training step end to end: every parameter gets a gradient, the loss
// falls on a fixed batch, and a seed reproduces a run exactly.
#pragma once
#include <QObject>

class TestTrainingStep : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void everyParameterGetsGradient_data();
  void everyParameterGetsGradient();
  void lossDecreasesOnFixedBatch();
  void sameSeedSameResult();
  void cudaMatchesCpu();
};
