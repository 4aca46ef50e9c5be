// The numerics behind the training-curve views, kept apart from drawing so
// they can be tested: smoothing that keeps the raw curve honest, min/max
// decimation that keeps spikes (a 1M-point run draws as fast as a short one),
// and mean +- band across seeds. Plain C++: no Qt, no LibTorch.
#pragma once

#include <vector>

namespace smx::curves {

struct Series {
  std::vector<double> x, y;  ///< x ascending (step or wall time)
};

/// Exponential moving average as TensorBoard draws it, debiased so the start
/// is not pulled towards zero. weight in [0, 1): 0 returns y, 0.99 is very
/// smooth. Non-finite points are passed through and skipped by the average.
std::vector<double> smooth(const std::vector<double>& y, double weight);

/// Decimation for a plot `buckets` pixels wide: x's range is cut into equal
/// bins and each non-empty bin keeps its first, lowest, highest and last
/// points, in x order, so every spike and dip survives. A series of at most
/// 4 * buckets points is returned unchanged. Non-finite y (divergence) is kept.
Series decimate_min_max(const Series& s, int buckets);
/// The same on separate x and y (no copy of the input).
Series decimate_min_max(const std::vector<double>& x, const std::vector<double>& y, int buckets);

/// Runs that differ only in their seed, summarised at the x values all of
/// them have: the mean and mean +- one standard deviation.
struct Band {
  std::vector<double> x, mean, low, high;
};
Band mean_band(const std::vector<Series>& runs);

}  // namespace smx::curves
