#include "widgets/curve_math.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace smx::curves {

std::vector<double> smooth(const std::vector<double>& y, double weight) {
  std::vector<double> out(y.size());
  weight = std::clamp(weight, 0.0, 0.999999);
  double last = 0, norm = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    if (!std::isfinite(y[i])) {
      out[i] = y[i];
      continue;
    }
    last = last * weight + (1 - weight) * y[i];
    norm = norm * weight + (1 - weight);  // debiasing: the weight the average has seen so far
    out[i] = last / norm;
  }
  return out;
}

Series decimate_min_max(const Series& s, int buckets) { return decimate_min_max(s.x, s.y, buckets); }

Series decimate_min_max(const std::vector<double>& xs, const std::vector<double>& ys, int buckets) {
  const size_t n = std::min(xs.size(), ys.size());
  if (buckets < 1 || n <= static_cast<size_t>(4) * static_cast<size_t>(buckets))
    return Series{std::vector<double>(xs.begin(), xs.begin() + n), std::vector<double>(ys.begin(), ys.begin() + n)};
  struct View {
    const std::vector<double>& x;
    const std::vector<double>& y;
  } s{xs, ys};
  const double x0 = s.x.front(), x1 = s.x[n - 1];
  const double width = (x1 - x0) / buckets;
  auto bin_of = [&](size_t i) {
    return width > 0 ? std::min<long>(buckets - 1, static_cast<long>((s.x[i] - x0) / width)) : 0L;
  };
  Series out;
  out.x.reserve(4 * static_cast<size_t>(buckets));
  out.y.reserve(4 * static_cast<size_t>(buckets));
  auto keep = [&](size_t i) {
    out.x.push_back(s.x[i]);
    out.y.push_back(s.y[i]);
  };
  size_t i = 0;
  while (i < n) {
    if (!std::isfinite(s.y[i])) {  // a NaN/Inf (divergence) always shows, on its own
      keep(i++);
      continue;
    }
    const long bin = bin_of(i);
    size_t first = i, lowest = i, highest = i, last = i;
    for (++i; i < n && std::isfinite(s.y[i]) && bin_of(i) == bin; ++i) {
      last = i;
      if (s.y[i] < s.y[lowest]) lowest = i;
      if (s.y[i] > s.y[highest]) highest = i;
    }
    size_t picks[4] = {first, lowest, highest, last};
    std::sort(picks, picks + 4);
    for (int k = 0; k < 4; ++k)
      if (k == 0 || picks[k] != picks[k - 1]) keep(picks[k]);
  }
  return out;
}

Band mean_band(const std::vector<Series>& runs) {
  Band b;
  if (runs.empty()) return b;
  std::map<double, std::pair<int, std::vector<double>>> at;  // x -> (runs seen, values)
  for (const auto& r : runs)
    for (size_t i = 0; i < std::min(r.x.size(), r.y.size()); ++i) at[r.x[i]].second.push_back(r.y[i]);
  for (const auto& [x, entry] : at) {
    const auto& v = entry.second;
    if (v.size() != runs.size()) continue;  // only where every run has a value
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
  return b;
}

}  // namespace smx::curves
