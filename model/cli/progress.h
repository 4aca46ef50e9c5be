// Terminal progress for long CLI commands: a live bar on a terminal, plain
// periodic lines when the output is a file or a pipe (logs stay readable).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "model/train/trainer.h"

namespace smx::cli {

class TerminalProgress : public TrainerObserver {
 public:
  /// total_steps: the run's last step; quiet: only events and the summary.
  TerminalProgress(int64_t total_steps, bool quiet);
  ~TerminalProgress() override;
  void set_total(int64_t total_steps) { total_ = total_steps; }
  void on_stage(const std::string& stage, double fraction) override;
  void on_step(const StepMetrics& m) override;
  void on_eval(const StepMetrics& m) override;
  void on_event(const RunEvent& e) override;
  /// Ends the live line (before printing anything else).
  void finish_line();

 private:
  void draw(const std::string& text);
  int64_t total_;
  bool quiet_, tty_;
  bool line_open_ = false;
  std::string last_stage_;
  std::chrono::steady_clock::time_point started_, last_draw_;
  int64_t first_step_ = -1;
  double smoothed_loss_ = -1;
  int64_t last_plain_step_ = 0;
};

/// "1h02m", "4m12s", "38s"
std::string format_duration(double seconds);

}  // namespace smx::cli
