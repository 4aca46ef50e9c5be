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
#include <utility>
#include <vector>

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

/// How a whole run fared, for the stability lab (the paper's Table 10 counts stable runs). A run diverged
/// when it went non-finite, or when a loss spike never recovered: after the spike, the median of
/// `recovery_window` consecutive losses never came back to within 5% of the median the spike was measured
/// against. A spike that recovers leaves the run stable (counted, and named, as "recovered").
struct RunStability {
  enum Kind { Stable, Recovered, NonFinite, Unrecovered } kind = Stable;
  int64_t step = -1;       ///< the step of the first non-finite event or of the first unrecovered spike
  double reference = 0;    ///< Unrecovered: the pre-spike median loss
  bool diverged() const { return kind == NonFinite || kind == Unrecovered; }
  /// "stable", "recovered from a spike at step 40", "non-finite at step 85", "spike at step 120, no recovery"
  std::string describe() const;
};

/// Classifies a run from its logged losses ((step, loss) in step order), the steps of its loss-spike events,
/// and the step of its first non-finite event (-1: none). `spike_window` is the monitor's median window
/// (the reference of each spike is recomputed from the losses before it).
RunStability classify_run(const std::vector<std::pair<int64_t, double>>& losses,
                          const std::vector<int64_t>& spike_steps, int64_t nonfinite_step, int64_t spike_window,
                          int64_t recovery_window = 10);

/// When a curve turned: the first step in (from_step, to_step] at which `series` reached `factor` times
/// (rising) or 1/factor times (falling) its baseline, the median of its first five values at or after
/// from_step. -1 if it never did. The lab orders these for a diverged run's lead-up (router logits growing,
/// attention entropy collapsing, the gradient norm exploding) to say what went wrong first.
int64_t first_departure(const std::vector<std::pair<int64_t, double>>& series, int64_t from_step, int64_t to_step,
                        bool rising, double factor);

}  // namespace smx
