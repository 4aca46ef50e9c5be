#include "model/train/stability.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace smx {

std::string StabilityVerdict::describe(double loss, double grad_norm) const {
  char buf[160];
  switch (kind) {
    case NonFinite:
      std::snprintf(buf, sizeof buf, "non-finite %s (loss %g, gradient norm %g)",
                    std::isfinite(loss) ? "gradient" : "loss", loss, grad_norm);
      return buf;
    case Spike:
      std::snprintf(buf, sizeof buf, "loss spike: %.4g is %.1fx the recent median %.4g", loss, loss / reference,
                    reference);
      return buf;
    default:
      return "healthy";
  }
}

StabilityVerdict StabilityMonitor::check(double loss, double grad_norm) {
  StabilityVerdict v;
  if (!std::isfinite(loss) || !std::isfinite(grad_norm)) {
    v.kind = StabilityVerdict::NonFinite;
    return v;
  }
  if (history_.size() >= 10) {
    std::vector<double> sorted(history_.begin(), history_.end());
    std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
    v.reference = sorted[sorted.size() / 2];
    if (loss > factor_ * v.reference) v.kind = StabilityVerdict::Spike;
  }
  return v;
}

void StabilityMonitor::accept(double loss) {
  if (!std::isfinite(loss)) return;
  history_.push_back(loss);
  while (static_cast<int64_t>(history_.size()) > window_) history_.pop_front();
}

namespace {
double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}
}  // namespace

std::string RunStability::describe() const {
  char buf[160];
  switch (kind) {
    case Recovered:
      std::snprintf(buf, sizeof buf, "recovered from a loss spike at step %lld", static_cast<long long>(step));
      return buf;
    case NonFinite:
      std::snprintf(buf, sizeof buf, "non-finite loss or gradient at step %lld", static_cast<long long>(step));
      return buf;
    case Unrecovered:
      std::snprintf(buf, sizeof buf, "loss spike at step %lld, never back to the median %.3g before it",
                    static_cast<long long>(step), reference);
      return buf;
    default:
      return "stable";
  }
}

RunStability classify_run(const std::vector<std::pair<int64_t, double>>& losses,
                          const std::vector<int64_t>& spike_steps, int64_t nonfinite_step, int64_t spike_window,
                          int64_t recovery_window) {
  RunStability out;
  if (nonfinite_step >= 0) {
    out.kind = RunStability::NonFinite;
    out.step = nonfinite_step;
    return out;
  }
  const int64_t window = std::max<int64_t>(recovery_window, 1);
  for (int64_t spike : spike_steps) {
    // The losses the monitor compared the spike with: up to `spike_window` finite losses before it.
    std::vector<double> before;
    size_t at = 0;
    while (at < losses.size() && losses[at].first < spike) {
      if (std::isfinite(losses[at].second)) before.push_back(losses[at].second);
      ++at;
    }
    if (before.empty()) continue;
    if (static_cast<int64_t>(before.size()) > spike_window) before.erase(before.begin(), before.end() - spike_window);
    const double reference = median(before);
    bool recovered = false;
    for (size_t i = at; i + window <= losses.size() && !recovered; ++i) {
      std::vector<double> run;
      for (size_t j = i; j < i + window; ++j) run.push_back(losses[j].second);
      recovered = std::isfinite(median(run)) && median(run) <= 1.05 * reference;
    }
    if (!recovered) {
      out.kind = RunStability::Unrecovered;
      out.step = spike;
      out.reference = reference;
      return out;
    }
    if (out.kind == RunStability::Stable) {
      out.kind = RunStability::Recovered;
      out.step = spike;
    }
  }
  return out;
}

int64_t first_departure(const std::vector<std::pair<int64_t, double>>& series, int64_t from_step, int64_t to_step,
                        bool rising, double factor) {
  std::vector<double> head;
  size_t i = 0;
  while (i < series.size() && series[i].first < from_step) ++i;
  for (size_t j = i; j < series.size() && head.size() < 5 && series[j].first <= to_step; ++j)
    if (std::isfinite(series[j].second)) head.push_back(series[j].second);
  if (head.empty() || !(factor > 0)) return -1;
  const double base = median(head);
  for (; i < series.size() && series[i].first <= to_step; ++i) {
    const double v = series[i].second;
    if (series[i].first == from_step) continue;
    if (!std::isfinite(v)) return series[i].first;
    if (rising ? v >= base * factor && v > base : v <= base / factor && v < base) return series[i].first;
  }
  return -1;
}

}  // namespace smx
