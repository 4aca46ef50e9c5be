// smx data-dir [--set DIR | --reset]: the data folder shared with the studio.
#include <fmt/core.h>

#include "model/cli/commands.h"
#include "model/store/data_dir.h"

namespace smx::cli {

void add_data_dir_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("data-dir", "print the data folder (run store, checkpoints, tokenizers), or choose it");
  auto set = std::make_shared<std::string>();
  auto reset = std::make_shared<bool>(false);
  auto* s = cmd->add_option("--set", *set, "make this folder the data folder of smx and smx-studio (created if needed)");
  auto* r = cmd->add_flag("--reset", *reset, "forget the chosen folder: back to the XDG default");
  s->excludes(r);
  cmd->callback([set, reset] {
    if (!set->empty() || *reset) {
      store::save_data_dir_setting(*reset ? std::filesystem::path() : std::filesystem::path(*set));
      fmt::print("smx: {} {}\n", *reset ? "forgot the data folder in" : "recorded the data folder in",
                 store::settings_file().string());
    }
    const auto choice = store::resolve_data_dir();
    fmt::print("{}\n(from {})\n", choice.dir.string(), choice.source);
    if (choice.source == "SMX_DATA_DIR" && !set->empty())
      fmt::print("note: SMX_DATA_DIR is set and wins over the recorded folder\n");
  });
}

}  // namespace smx::cli
