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

}  // namespace smx
