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

void TestCurveMath::bandOfUnsortedRunsMatchesSorted() {
  // Out-of-order x takes the general path; the answer is the same as for sorted runs.
  std::vector<Series> sorted = {{{1, 2, 3}, {1, 4, 9}}, {{1, 2, 3}, {3, 6, 7}}};
  std::vector<Series> shuffled = {{{3, 1, 2}, {9, 1, 4}}, {{2, 3, 1}, {6, 7, 3}}};
  const auto a = mean_band(sorted), b = mean_band(shuffled);
  QCOMPARE(b.x, a.x);
  QCOMPARE(b.mean, (std::vector<double>{2, 5, 8}));
  QCOMPARE(b.high, a.high);
  // A step two of the runs lack in between is skipped, later common steps still count.
  const auto c = mean_band({{{1, 2, 3, 4}, {0, 0, 0, 4}}, {{1, 3, 4}, {2, 2, 6}}});
  QCOMPARE(c.x, (std::vector<double>{1, 3, 4}));
  QCOMPARE(c.mean, (std::vector<double>{1, 1, 5}));
}

void TestCurveMath::liveSmootherMatchesSmooth() {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> y = {3, 1, nan, 4, 1, 5, 9, 2, 6};
  const auto whole = smooth(y, 0.7);
  Smoother s(0.7);
  for (size_t i = 0; i < y.size(); ++i) {
    const double v = s.push(y[i]);
    if (std::isnan(whole[i])) QVERIFY(std::isnan(v));
    else QCOMPARE(v, whole[i]);
  }
}

void TestCurveMath::decimationOfAWindow() {
  Series s;
  for (int i = 0; i < 100000; ++i) {
    s.x.push_back(i);
    s.y.push_back(std::sin(0.01 * i));
  }
  s.y[50500] = 7;
  // A window small enough is returned as is.
  const auto small = decimate_min_max(s.x, s.y, 100, 1000, 1200);
  QCOMPARE(small.x.size(), size_t(200));
  QCOMPARE(small.x.front(), 1000.0);
  QCOMPARE(small.x.back(), 1199.0);
  // A larger window is decimated within itself: its ends and its spike survive, nothing outside shows.
  const auto d = decimate_min_max(s.x, s.y, 100, 50000, 60000);
  QVERIFY(d.x.size() <= 400);
  QCOMPARE(d.x.front(), 50000.0);
  QCOMPARE(d.x.back(), 59999.0);
  QCOMPARE(*std::max_element(d.y.begin(), d.y.end()), 7.0);
  // Bad bounds are clamped, never read past the end.
  QCOMPARE(decimate_min_max(s.x, s.y, 100, 99990, 1'000'000).x.size(), size_t(10));
  QVERIFY(decimate_min_max(s.x, s.y, 100, 500, 100).x.empty());
}

void TestCurveMath::rangesIgnoreOutliers() {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> y;
  for (int i = 0; i < 1000; ++i) y.push_back(1.0 + 0.001 * i);  // 1.000 .. 1.999
  y[500] = 1e6;                                                     // one spike
  y.push_back(nan);
  y.push_back(inf);
  const auto all = finite_range(y);
  QCOMPARE(all.lo, 1.0);
  QCOMPARE(all.hi, 1e6);
  const auto r = quantile_range(y, 0.01, 0.99);
  QVERIFY(r.valid());
  QVERIFY2(r.hi < 2.0, qPrintable(QString::number(r.hi)));  // the spike is out
  // Sorted finite values: 1.000..1.999 without 1.500, then 1e6; index floor(0.99 * 999) = 989 -> 1.990.
  QVERIFY(std::abs(r.hi - 1.990) < 1e-12);
  QVERIFY(std::abs(r.lo - 1.010) < 1e-12);  // index ceil(0.01 * 999) = 10
  // Even a short run loses its lone spike.
  const auto s = quantile_range({1, 2, 3, 4, 5, 6, 7, 8, 9, 500}, 0.01, 0.99);
  QCOMPARE(s.hi, 9.0);
  QCOMPARE(s.lo, 2.0);
  // Positive only, for log axes; nothing qualifying gives an invalid range.
  QCOMPARE(finite_range({-1, 0, 0.5, 2}, true).lo, 0.5);
  QVERIFY(!quantile_range({-1, 0, nan}, 0.01, 0.99, true).valid());
  QVERIFY(!finite_range({}).valid());
  QCOMPARE(quantile_range({4}, 0.01, 0.99).hi, 4.0);
}

void TestCurveMath::interpolation() {
  const std::vector<double> steps = {0, 10, 20}, wall = {0, 5, 25};
  QCOMPARE(interpolate(steps, wall, 10), 5.0);
  QCOMPARE(interpolate(steps, wall, 15), 15.0);
  QCOMPARE(interpolate(steps, wall, -3), 0.0);   // held at the ends
  QCOMPARE(interpolate(steps, wall, 400), 25.0);
  QVERIFY(std::isnan(interpolate({}, {}, 1)));
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
