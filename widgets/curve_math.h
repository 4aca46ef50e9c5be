// The numerics behind the training-curve views, kept apart from drawing so
// they can be tested: smoothing that keeps the raw curve honest, min/max
// decimation that keeps spikes (a 1M-point run draws as fast as a short one),
// mean +- band across seeds, and axis ranges that one spike cannot squash.
// Plain C++: no Qt, no LibTorch.
#pragma once

#include <cstddef>
#include <limits>
#include <vector>

namespace smx::curves {

struct Series {
  std::vector<double> x, y;  ///< x ascending (step or wall time)
};

/// Exponential moving average as TensorBoard draws it, debiased so the start
/// is not pulled towards zero. weight in [0, 1): 0 returns y, 0.99 is very
/// smooth. Non-finite points are passed through and skipped by the average.
std::vector<double> smooth(const std::vector<double>& y, double weight);

/// smooth() one point at a time, for live curves: pushing y[0], y[1], ...
/// returns exactly what smooth(y, weight) returns, without redoing the past.
class Smoother {
 public:
  explicit Smoother(double weight = 0.6);
  double push(double y);
  double weight() const { return weight_; }

 private:
  double weight_;
  double last_ = 0, norm_ = 0;
};

/// Decimation for a plot `buckets` pixels wide: x's range is cut into equal
/// bins and each non-empty bin keeps its first, lowest, highest and last
/// points, in x order, so every spike and dip survives. A series of at most
/// 4 * buckets points is returned unchanged. Non-finite y (divergence) is kept.
Series decimate_min_max(const Series& s, int buckets);
/// The same on separate x and y (no copy of the input).
Series decimate_min_max(const std::vector<double>& x, const std::vector<double>& y, int buckets);
/// The same on the points [begin, end) only: what a zoomed-in plot shows.
Series decimate_min_max(const std::vector<double>& x, const std::vector<double>& y, int buckets, size_t begin,
                        size_t end);

/// Runs that differ only in their seed, summarised at the x values all of
/// them have: the mean and mean +- one standard deviation (sample, n - 1).
/// Points with a non-finite x are ignored.
struct Band {
  std::vector<double> x, mean, low, high;
};
Band mean_band(const std::vector<Series>& runs);

/// A closed interval; empty (lo > hi) until something is added.
struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  bool valid() const { return lo <= hi; }
  void add(double v) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  void add(const Range& r) {
    if (r.valid()) add(r.lo), add(r.hi);
  }
};

/// The smallest and largest finite value of y; only y > 0 if positive_only (log axes).
Range finite_range(const std::vector<double>& y, bool positive_only = false);

/// An axis range that ignores outliers: the q_lo and q_hi quantiles (say
/// 0.01 and 0.99) of the finite values, taken as the order statistics just
/// inside those fractions (never interpolated towards the extremes), so a
/// lone spike is left out even of a short run. Only values > 0 if
/// positive_only. Invalid if no value qualifies.
Range quantile_range(std::vector<double> values, double q_lo, double q_hi, bool positive_only = false);

/// y at `at` on the curve (x ascending), linearly interpolated and held
/// constant beyond the ends; NaN for an empty curve. Maps a step to its
/// wall time, for instance.
double interpolate(const std::vector<double>& x, const std::vector<double>& y, double at);

}  // namespace smx::curves
