// Mixing sublayers against independent computations: explicit DFT matrices,
// the structure of circulant and Toeplitz matrices, an FFT path, masking.
#pragma once
#include <QObject>

class TestMixing : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void fourierEqualsRealPartOfDft();
  void hartleyEqualsRealMinusImaginary();
  void linearIsWseqXWhidden();
  void circulantStructure();
  void toeplitzStructure();
  void circulantAgreesWithFftPath();
  void attentionIgnoresPadding();
  void attentionPathsAgree();
  void layerPlacementFollowsConfig();
};
