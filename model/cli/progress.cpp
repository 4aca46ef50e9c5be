#include "model/cli/progress.h"

#include <unistd.h>

#include <cmath>

#include <fmt/core.h>

namespace smx::cli {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

TerminalProgress::TerminalProgress(int64_t total_steps, bool quiet)
    : total_(total_steps), quiet_(quiet), tty_(isatty(STDERR_FILENO) == 1), started_(std::chrono::steady_clock::now()) {}

TerminalProgress::~TerminalProgress() { finish_line(); }

void TerminalProgress::finish_line() {
  if (line_open_) {
    fmt::print(stderr, "\n");
    line_open_ = false;
  }
}

void TerminalProgress::draw(const std::string& text) {
  if (tty_) {
    fmt::print(stderr, "\r\033[K{}", text);  // return, clear the line, redraw
    line_open_ = true;
  } else {
    fmt::print(stderr, "{}\n", text);
  }
  std::fflush(stderr);
}

void TerminalProgress::on_stage(const std::string& stage, double fraction) {
  if (quiet_) return;
  const auto now = std::chrono::steady_clock::now();
  const bool changed = stage != last_stage_;
  if (!tty_ && !changed) return;  // a log gets one line per stage
  if (tty_ && !changed && now - last_draw_ < std::chrono::milliseconds(100) && fraction < 1) return;
  last_draw_ = now;
  if (changed && line_open_ && tty_) finish_line();
  last_stage_ = stage;
  if (fraction < 0) draw(fmt::format("{} ...", stage));
  else draw(fmt::format("{} {:3.0f}%", stage, 100 * fraction));
}

void TerminalProgress::on_step(const StepMetrics& m) {
  const auto now = std::chrono::steady_clock::now();
  if (first_step_ < 0) {
    first_step_ = m.step - 1;
    started_ = now;
    if (line_open_) finish_line();
  }
  const double loss = m.get("loss/total");
  smoothed_loss_ = smoothed_loss_ < 0 || !std::isfinite(smoothed_loss_) ? loss : 0.9 * smoothed_loss_ + 0.1 * loss;
  if (quiet_) return;
  const bool last = m.step >= total_;
  if (tty_ && !last && now - last_draw_ < std::chrono::milliseconds(100)) return;
  if (!tty_ && !last && m.step - last_plain_step_ < std::max<int64_t>(1, total_ / 20)) return;
  last_draw_ = now;
  last_plain_step_ = m.step;
  const double elapsed = std::chrono::duration<double>(now - started_).count();
  const double rate = elapsed > 0 ? double(m.step - first_step_) / elapsed : 0;
  const double eta = rate > 0 ? double(total_ - m.step) / rate : -1;
  const double frac = total_ > 0 ? std::min(1.0, double(m.step) / double(total_)) : 0;
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(filled, '#');
  bar += std::string(kWidth - filled, '.');
  std::string acc;
  if (const double a = m.get("accuracy/mlm", -1); a >= 0) acc = fmt::format(" mlm {:.3f} nsp {:.2f}", a, m.get("accuracy/nsp"));
  else if (const double t = m.get("accuracy/train", -1); t >= 0) acc = fmt::format(" acc {:.3f}", t);
  draw(fmt::format("[{}] {}/{} loss {:.4f}{} | {:.2f} step/s {:.0f} tok/s | ETA {}", bar, m.step, total_,
                   smoothed_loss_, acc, rate, m.get("speed/tokens_per_s"), format_duration(eta)));
}

void TerminalProgress::on_eval(const StepMetrics& m) {
  finish_line();
  std::string text = fmt::format("eval @ step {}:", m.step);
  for (const auto& [k, v] : m.values) {
    if (k == "eval/examples") continue;
    text += fmt::format(" {} {:.4f}", k.substr(5), v);
  }
  fmt::print(stderr, "{}\n", text);
}

void TerminalProgress::on_event(const RunEvent& e) {
  if (e.kind == "checkpoint" && quiet_) return;
  if (e.kind == "finished" || e.kind == "stopped") return;  // the summary says it
  finish_line();
  fmt::print(stderr, "{} @ step {}: {}\n", e.kind, e.step, e.message);
}

}  // namespace smx::cli
