#include "tst_linalg.h"

#include <QtTest>

#include <cmath>
#include <limits>
#include <random>

#include "widgets/linalg.h"

using smx::widgets::linalg::singular_values;

namespace {

std::vector<float> random_matrix(int rows, int cols, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);  // the scale mixing weights start at
  std::vector<float> m(static_cast<size_t>(rows) * cols);
  for (auto& x : m) x = normal(gen);
  return m;
}

// Sylvester's Hadamard matrix divided by sqrt(n): orthogonal, and for n = 16
// every entry is +-0.25, exact in float.
std::vector<float> scaled_hadamard(int n) {
  auto odd_bits = [](int x) {
    bool odd = false;
    for (; x; x &= x - 1) odd = !odd;
    return odd;
  };
  std::vector<float> h(static_cast<size_t>(n) * n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) h[i * n + j] = (odd_bits(i & j) ? -1.0f : 1.0f) / std::sqrt(float(n));
  return h;
}

void compare_close(const std::vector<double>& got, const std::vector<double>& want, double rel) {
  QCOMPARE(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    QVERIFY2(std::abs(got[i] - want[i]) <= rel * std::abs(want[i]),
             qPrintable(QString("sigma[%1] = %2, expected %3").arg(i).arg(got[i], 0, 'g', 17).arg(want[i], 0, 'g', 17)));
}

}  // namespace

void TestLinalg::diagonal() {
  // diag(3, -1, 0.5, 2): singular values are the absolute values, sorted.
  std::vector<float> d(16, 0.0f);
  d[0] = 3;
  d[5] = -1;
  d[10] = 0.5f;
  d[15] = 2;
  compare_close(singular_values(4, 4, d), {3, 2, 1, 0.5}, 1e-15);
  // A 3x5 with a diagonal: three values, the wide shape handled by transposing.
  std::vector<float> w(15, 0.0f);
  w[0] = 7;
  w[6] = 4;
  w[12] = 9;
  compare_close(singular_values(3, 5, w), {9, 7, 4}, 1e-15);
}

void TestLinalg::permutedDiagonalKeepsTinyValues() {
  // Rows of a diagonal shuffled: same values; a tiny one keeps full relative
  // accuracy (a method through A^T A would square it into nothing).
  const std::vector<float> m = {0, 2, 0,  //
                                0, 0, 1e-20f,
                                5, 0, 0};
  compare_close(singular_values(3, 3, m), {5, 2, double(1e-20f)}, 1e-14);
}

void TestLinalg::rankOneOuterProduct() {
  // u v^T has one singular value |u| |v|; the rest vanish (up to the float
  // rounding of the entries).
  const std::vector<double> u = {1, -2, 3, 0.5, 4}, v = {2, 1, -1, 3, 0.25, -0.5};
  std::vector<float> m;
  double nu = 0, nv = 0;
  for (double a : u) nu += a * a;
  for (double b : v) nv += b * b;
  for (double a : u)
    for (double b : v) m.push_back(float(a * b));
  const auto s = singular_values(5, 6, m);
  QCOMPARE(s.size(), size_t(5));
  QVERIFY(std::abs(s[0] - std::sqrt(nu * nv)) < 1e-6 * s[0]);
  for (size_t i = 1; i < s.size(); ++i) QVERIFY2(s[i] < 1e-6 * s[0], qPrintable(QString::number(s[i])));
}

void TestLinalg::orthogonalGivesOnes() {
  const auto s = singular_values(16, 16, scaled_hadamard(16));
  QCOMPARE(s.size(), size_t(16));
  for (double x : s) QVERIFY2(std::abs(x - 1.0) < 1e-13, qPrintable(QString::number(x, 'g', 17)));
}

void TestLinalg::twoByTwoByHand() {
  // A = [[3, 0], [4, 5]]: A^T A = [[25, 20], [20, 25]], eigenvalues 45 and 5.
  compare_close(singular_values(2, 2, {3, 0, 4, 5}), {std::sqrt(45.0), std::sqrt(5.0)}, 1e-15);
  // A = [[1, 2], [3, 4]]: eigenvalues of A^T A are 15 +- sqrt(221).
  compare_close(singular_values(2, 2, {1, 2, 3, 4}), {std::sqrt(15 + std::sqrt(221.0)), std::sqrt(15 - std::sqrt(221.0))},
                1e-14);
}

void TestLinalg::randomFrobenius() {
  // The squares of the singular values sum to the squared Frobenius norm.
  const auto m = random_matrix(64, 64, 7);
  double frobenius2 = 0;
  for (float x : m) frobenius2 += double(x) * x;
  const auto s = singular_values(64, 64, m);
  QCOMPARE(s.size(), size_t(64));
  double sum = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    sum += s[i] * s[i];
    QVERIFY(s[i] > 0);
    if (i) QVERIFY(s[i] <= s[i - 1]);  // descending
  }
  QVERIFY2(std::abs(sum - frobenius2) <= 1e-12 * frobenius2, qPrintable(QString("%1 vs %2").arg(sum).arg(frobenius2)));
  // A Gaussian square matrix spreads from ~2 sqrt(n) sigma down to near zero.
  QVERIFY(s.front() > 1.5 * std::sqrt(64.0) * 0.02 && s.front() < 2.5 * std::sqrt(64.0) * 0.02);
}

void TestLinalg::rectangularEqualsTranspose() {
  const int rows = 20, cols = 50;
  const auto m = random_matrix(rows, cols, 11);
  std::vector<float> t(m.size());
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) t[c * rows + r] = m[r * cols + c];
  const auto a = singular_values(rows, cols, m), b = singular_values(cols, rows, t);
  QCOMPARE(a.size(), size_t(20));
  compare_close(a, b, 1e-12);
}

void TestLinalg::badInput() {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  QVERIFY(singular_values(2, 2, {1, nan, 0, 1}).empty());
  QVERIFY(singular_values(2, 2, {1, 0, -inf, 1}).empty());
  QVERIFY(singular_values(2, 3, {1, 2, 3, 4}).empty());  // size mismatch
  QVERIFY(singular_values(0, 0, {}).empty());
  QVERIFY(singular_values(-1, 2, {1, 2}).empty());
  const auto zeros = singular_values(3, 4, std::vector<float>(12, 0.0f));
  QCOMPARE(zeros, std::vector<double>(3, 0.0));
}

void TestLinalg::benchSingularValues128() {
  const auto m = random_matrix(128, 128, 3);
  std::vector<double> s;
  QBENCHMARK { s = singular_values(128, 128, m); }
  QCOMPARE(s.size(), size_t(128));
}

QTEST_MAIN(TestLinalg)
