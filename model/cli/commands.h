// Subcommands of the `smx` CLI; each file adds one to the app.
#pragma once

#include <CLI/CLI.hpp>

#include "model/config/model_config.h"

namespace smx::cli {

void add_info_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_presets_command(CLI::App& app);
void add_train_commands(CLI::App& app);
void add_runs_command(CLI::App& app);
void add_data_dir_command(CLI::App& app);

/// --preset NAME or --config FILE, resolved (throws ConfigError).
struct ModelChoice {
  std::string preset, config_file;
  void add_options(CLI::App& cmd, const std::string& default_preset = "");
  ModelConfig resolve() const;
};

}  // namespace smx::cli
