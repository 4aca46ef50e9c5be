// Subcommands of the `smx` CLI; each file adds one to the app.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "model/config/model_config.h"

namespace smx::cli {

void add_info_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_presets_command(CLI::App& app);
void add_train_commands(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_runs_command(CLI::App& app);
void add_data_dir_command(CLI::App& app);

/// The largest run id an option accepts: beyond any real store, far from int64 overflow.
constexpr double kMaxId = 9e18;

/// A CLI11 check: the value is a number in [lo, hi] (an open end with
/// lo_open / hi_open); NaN, infinities and values CLI11 would wrap (a negative
/// unsigned) are refused too. CLI11 puts the option's name in front of the
/// message and exits with its usage-error code: `--threads: 100000 is out of
/// range: must be in [1, 2] (the CPUs of this machine)`.
inline CLI::Validator in_range(double lo, double hi, const std::string& why = "", bool lo_open = false,
                               bool hi_open = false) {
  const std::string range = fmt::format("{}{:g}, {:g}{}", lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
  const std::string rule = "must be in " + range + (why.empty() ? "" : " (" + why + ")");
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        errno = 0;
        char* end = nullptr;
        const long double v = std::strtold(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size()) return "'" + text + "' is not a number: " + rule;
        if (std::isnan(v)) return "NaN is not allowed: " + rule;
        if (std::isinf(v) || errno == ERANGE || v < lo || v > hi || (lo_open && v == lo) || (hi_open && v == hi))
          return text + " is out of range: " + rule;
        return {};
      },
      "in " + range);
}

/// A CLI11 check of a device flag: auto, cpu, cuda or cuda:N. Whether this
/// machine has that GPU is checked when the run starts (with what it has).
inline CLI::Validator device_choice() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const bool indexed = text.rfind("cuda:", 0) == 0 && text.size() > 5 && text.size() <= 8 &&
                             text.find_first_not_of("0123456789", 5) == std::string::npos;
        if (text == "auto" || text == "cpu" || text == "cuda" || indexed) return {};
        return "'" + text + "' is not a device: give auto, cpu, cuda or cuda:N";
      },
      "DEVICE");
}

/// The command line as given (argv), for the launcher of distributed runs.
std::vector<std::string>& command_line();

/// The CPUs of this machine: more LibTorch or SentencePiece threads than this only slow down
/// (and tens of thousands of them never start: `--threads 100000` hung).
int cpu_count();

/// --preset NAME or --config FILE, resolved (throws ConfigError).
struct ModelChoice {
  std::string preset, config_file;
  void add_options(CLI::App& cmd, const std::string& default_preset = "");
  ModelConfig resolve() const;
};

}  // namespace smx::cli
