#include "widgets/curve_math.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace smx::curves {

Smoother::Smoother(double weight) : weight_(std::clamp(weight, 0.0, 0.999999)) {}

double Smoother::push(double y) {
  if (!std::isfinite(y)) return y;
  last_ = last_ * weight_ + (1 - weight_) * y;
  norm_ = norm_ * weight_ + (1 - weight_);  // debiasing: the weight the average has seen so far
  return last_ / norm_;
}

std::vector<double> smooth(const std::vector<double>& y, double weight) {
  std::vector<double> out(y.size());
  Smoother s(weight);
  for (size_t i = 0; i < y.size(); ++i) out[i] = s.push(y[i]);
  return out;
}

Series decimate_min_max(const Series& s, int buckets) { return decimate_min_max(s.x, s.y, buckets); }

Series decimate_min_max(const std::vector<double>& xs, const std::vector<double>& ys, int buckets) {
  return decimate_min_max(xs, ys, buckets, 0, std::min(xs.size(), ys.size()));
}

Series decimate_min_max(const std::vector<double>& xs, const std::vector<double>& ys, int buckets, size_t begin,
                        size_t end) {
  end = std::min({end, xs.size(), ys.size()});
  begin = std::min(begin, end);
  const size_t n = end - begin;
  if (buckets < 1 || n <= static_cast<size_t>(4) * static_cast<size_t>(buckets))
    return Series{std::vector<double>(xs.begin() + begin, xs.begin() + end),
                  std::vector<double>(ys.begin() + begin, ys.begin() + end)};
  const double* x = xs.data();
  const double* y = ys.data();
  const double x0 = x[begin], x1 = x[end - 1];
  const double width = (x1 - x0) / buckets;
  auto bin_of = [&](size_t i) {
    return width > 0 ? std::min<long>(buckets - 1, static_cast<long>((x[i] - x0) / width)) : 0L;
  };
  Series out;
  out.x.reserve(4 * static_cast<size_t>(buckets));
  out.y.reserve(4 * static_cast<size_t>(buckets));
  auto keep = [&](size_t i) {
    out.x.push_back(x[i]);
    out.y.push_back(y[i]);
  };
  size_t i = begin;
  while (i < end) {
    if (!std::isfinite(y[i])) {  // a NaN/Inf (divergence) always shows, on its own
      keep(i++);
      continue;
    }
    const long bin = bin_of(i);
    size_t first = i, lowest = i, highest = i, last = i;
    for (++i; i < end && std::isfinite(y[i]) && bin_of(i) == bin; ++i) {
      last = i;
      if (y[i] < y[lowest]) lowest = i;
      if (y[i] > y[highest]) highest = i;
    }
    size_t picks[4] = {first, lowest, highest, last};
    std::sort(picks, picks + 4);
    for (int k = 0; k < 4; ++k)
      if (k == 0 || picks[k] != picks[k - 1]) keep(picks[k]);
  }
  return out;
}

namespace {

void add_band_point(Band& b, double x, const std::vector<double>& v) {
  double mean = 0;
  for (double y : v) mean += y;
  mean /= double(v.size());
  double var = 0;
  for (double y : v) var += (y - mean) * (y - mean);
  const double sd = v.size() > 1 ? std::sqrt(var / double(v.size() - 1)) : 0.0;
  b.x.push_back(x);
  b.mean.push_back(mean);
  b.low.push_back(mean - sd);
  b.high.push_back(mean + sd);
}

bool strictly_ascending(const Series& s) {
  const size_t n = std::min(s.x.size(), s.y.size());
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(s.x[i])) return false;
    if (i > 0 && !(s.x[i - 1] < s.x[i])) return false;
  }
  return true;
}

}  // namespace

Band mean_band(const std::vector<Series>& runs) {
  Band b;
  if (runs.empty()) return b;
  std::vector<double> v(runs.size());
  if (std::all_of(runs.begin(), runs.end(), strictly_ascending)) {
    // The usual case (steps): walk all runs at once, O(total points).
    std::vector<size_t> at(runs.size(), 0);
    auto size = [&](size_t r) { return std::min(runs[r].x.size(), runs[r].y.size()); };
    for (;;) {
      double target = -std::numeric_limits<double>::infinity();
      for (size_t r = 0; r < runs.size(); ++r) {
        if (at[r] >= size(r)) return b;
        target = std::max(target, runs[r].x[at[r]]);
      }
      bool all = true;
      for (size_t r = 0; r < runs.size(); ++r) {
        while (at[r] < size(r) && runs[r].x[at[r]] < target) ++at[r];
        if (at[r] >= size(r)) return b;
        all = all && runs[r].x[at[r]] == target;
      }
      if (!all) continue;
      for (size_t r = 0; r < runs.size(); ++r) v[r] = runs[r].y[at[r]++];
      add_band_point(b, target, v);
    }
  }
  std::map<double, std::vector<double>> at;  // x -> values, in run order
  for (const auto& r : runs)
    for (size_t i = 0; i < std::min(r.x.size(), r.y.size()); ++i)
      if (std::isfinite(r.x[i])) at[r.x[i]].push_back(r.y[i]);
  for (const auto& [x, values] : at)
    if (values.size() == runs.size()) add_band_point(b, x, values);  // only where every run has a value
  return b;
}

Range finite_range(const std::vector<double>& y, bool positive_only) {
  Range r;
  for (double v : y)
    if (std::isfinite(v) && (!positive_only || v > 0)) r.add(v);
  return r;
}

Range quantile_range(std::vector<double> values, double q_lo, double q_hi, bool positive_only) {
  values.erase(std::remove_if(values.begin(), values.end(),
                              [&](double v) { return !std::isfinite(v) || (positive_only && v <= 0); }),
               values.end());
  Range r;
  if (values.empty()) return r;
  const size_t last = values.size() - 1;
  q_lo = std::clamp(q_lo, 0.0, 1.0);
  q_hi = std::clamp(q_hi, q_lo, 1.0);
  size_t lo = static_cast<size_t>(std::ceil(q_lo * double(last)));
  size_t hi = static_cast<size_t>(std::floor(q_hi * double(last)));
  if (lo > hi) lo = hi = static_cast<size_t>(std::llround(0.5 * (q_lo + q_hi) * double(last)));
  std::nth_element(values.begin(), values.begin() + hi, values.end());
  r.hi = values[hi];
  std::nth_element(values.begin(), values.begin() + lo, values.begin() + hi + 1);  // lo <= hi: left part suffices
  r.lo = values[lo];
  return r;
}

double interpolate(const std::vector<double>& x, const std::vector<double>& y, double at) {
  const size_t n = std::min(x.size(), y.size());
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  const auto end = x.begin() + n;
  const auto it = std::lower_bound(x.begin(), end, at);
  if (it == x.begin()) return y[0];
  if (it == end) return y[n - 1];
  const size_t i = it - x.begin();
  const double x0 = x[i - 1], x1 = x[i];
  if (!(x1 > x0)) return y[i];
  const double t = (at - x0) / (x1 - x0);
  return y[i - 1] + t * (y[i] - y[i - 1]);
}

}  // namespace smx::curves
