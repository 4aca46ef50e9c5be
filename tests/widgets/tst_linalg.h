#pragma once
#include <QObject>

// Singular values by one-sided Jacobi against cases known by hand: diagonal,
// permuted diagonal, rank one, orthogonal, a 2x2, the Frobenius identity on
// random matrices, transposes, bad input.
class TestLinalg : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void diagonal();
  void permutedDiagonalKeepsTinyValues();
  void rankOneOuterProduct();
  void orthogonalGivesOnes();
  void twoByTwoByHand();
  void randomFrobenius();
  void rectangularEqualsTranspose();
  void badInput();
  void benchSingularValues128();
};
