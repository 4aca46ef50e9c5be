// The stability monitor: decides, step by step, whether training is still
// healthy. Two rules, both recorded as events with their step:
//  - non-finite: the loss or the gradient norm is NaN or infinite;
//  - loss spike: the total loss exceeds `spike_factor` times the median of
//    the previous `spike_window` finite losses (checked once that window holds
//    at least 10 steps). The median, not the mean, so that one spike does not
//    hide the next, and a slowly falling loss never counts.
// The run's policy for each (stop, skip the update, continue) lives in TrainConfig.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

namespace smx {

struct StabilityVerdict {
  enum Kind { Healthy, NonFinite, Spike } kind = Healthy;
  double reference = 0;  ///< the median the loss was compared with (spikes)
  std::string describe(double loss, double grad_norm) const;
};

class StabilityMonitor {
 public:
  StabilityMonitor(double spike_factor, int64_t window) : factor_(spike_factor), window_(window) {}
  /// Looks at one step's loss and gradient norm (use 0 for the norm when it is unknown).
  StabilityVerdict check(double loss, double grad_norm);
  /// Adds a loss to the history without a verdict (for steps the run chose to keep).
  void accept(double loss);

 private:
  double factor_;
  int64_t window_;
  std::deque<double> history_;
};

}  // namespace smx
