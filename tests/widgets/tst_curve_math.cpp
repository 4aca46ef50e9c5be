#include "tst_curve_math.h"

#include <QtTest>

#include <cmath>
#include <limits>

#include "widgets/curve_math.h"

using namespace smx::curves;

void TestCurveMath::smoothingIsDebiasedAndSkipsNonFinite() {
  // A constant stays constant from the first point (no pull towards zero).
  for (double v : smooth({5, 5, 5, 5}, 0.9)) QCOMPARE(v, 5.0);
  // Hand-computed, weight 0.5: 0, then (0.5*0 + 0.5*4)/(0.75) = 8/3.
  const auto s = smooth({0, 4}, 0.5);
  QCOMPARE(s[0], 0.0);
  QVERIFY(std::abs(s[1] - 8.0 / 3.0) < 1e-12);
  // Weight 0 is the raw curve.
  QCOMPARE(smooth({1, 7, 3}, 0.0), (std::vector<double>{1, 7, 3}));
  // A NaN shows where it is and does not poison what follows.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto t = smooth({2, nan, 2}, 0.9);
  QVERIFY(std::isnan(t[1]));
  QCOMPARE(t[2], 2.0);
}

void TestCurveMath::decimationKeepsSpikesAndDips() {
  Series s;
  for (int i = 0; i < 10000; ++i) {
    s.x.push_back(i);
    s.y.push_back(1.0 + 0.001 * std::sin(i));
  }
  s.y[4321] = 50;   // a loss spike
  s.y[7777] = -3;   // a dip
  const auto d = decimate_min_max(s, 100);
  QVERIFY(d.x.size() <= 400);
  QVERIFY(std::is_sorted(d.x.begin(), d.x.end()));
  QCOMPARE(*std::max_element(d.y.begin(), d.y.end()), 50.0);
  QCOMPARE(*std::min_element(d.y.begin(), d.y.end()), -3.0);
  // The spike keeps its x.
  const auto at = std::find(d.y.begin(), d.y.end(), 50.0) - d.y.begin();
  QCOMPARE(d.x[at], 4321.0);
  // Both ends survive.
  QCOMPARE(d.x.front(), 0.0);
  QCOMPARE(d.x.back(), 9999.0);
}

void TestCurveMath::decimationKeepsNonFinitePoints() {
  Series s;
  for (int i = 0; i < 5000; ++i) {
    s.x.push_back(i);
    s.y.push_back(i < 3000 ? 2.0 : std::numeric_limits<double>::quiet_NaN());
  }
  s.y[1234] = std::numeric_limits<double>::infinity();
  const auto d = decimate_min_max(s, 50);
  QVERIFY(std::find(d.x.begin(), d.x.end(), 1234.0) != d.x.end());
  QVERIFY(std::find(d.x.begin(), d.x.end(), 3000.0) != d.x.end());  // where the run diverged
  QVERIFY(std::is_sorted(d.x.begin(), d.x.end()));
}

void TestCurveMath::shortSeriesAreUnchanged() {
  Series s{{1, 2, 3}, {3, 1, 2}};
  const auto d = decimate_min_max(s, 10);
  QCOMPARE(d.x, s.x);
  QCOMPARE(d.y, s.y);
}

void TestCurveMath::bandAcrossSeeds() {
  // Three seeds; step 3 is missing from one run and is left out.
  std::vector<Series> runs = {{{1, 2, 3}, {1, 4, 9}}, {{1, 2}, {3, 6}}, {{1, 2, 3}, {5, 8, 9}}};
  const auto b = mean_band(runs);
  QCOMPARE(b.x, (std::vector<double>{1, 2}));
  QCOMPARE(b.mean, (std::vector<double>{3, 6}));
  // Sample standard deviation of {1,3,5} and {4,6,8} is 2.
  QCOMPARE(b.low, (std::vector<double>{1, 4}));
  QCOMPARE(b.high, (std::vector<double>{5, 8}));
  QVERIFY(mean_band({}).x.empty());
}

void TestCurveMath::decimateOneMillionPoints() {
  Series s;
  s.x.resize(1'000'000);
  s.y.resize(1'000'000);
  for (int i = 0; i < 1'000'000; ++i) {
    s.x[i] = i;
    s.y[i] = 1.0 / (1 + i) + 0.01 * std::sin(0.1 * i);
  }
  Series d;
  QBENCHMARK { d = decimate_min_max(s, 1920); }
  QVERIFY(d.x.size() <= 4 * 1920);
}

QTEST_APPLESS_MAIN(TestCurveMath)
