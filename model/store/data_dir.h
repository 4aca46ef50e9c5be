// Where the run store, runs, tokenizers and caches live: the data folder,
// shared by smx and smx-studio. Chosen, in order, by
//   1. $SMX_DATA_DIR,
//   2. the "data_dir" of the settings file (smx data-dir --set, the studio's File menu),
//   3. $XDG_DATA_HOME/sparse-mixer-studio (when absolute, as the XDG spec says),
//   4. ~/.local/share/sparse-mixer-studio.
// A --data-dir option of either program comes before all of these.
// No LibTorch, no Qt.
#pragma once

#include <filesystem>
#include <string>

namespace smx::store {

struct DataDirChoice {
  std::filesystem::path dir;
  std::string source;  ///< "SMX_DATA_DIR", "settings file <path>", "XDG_DATA_HOME" or "default"
};

/// The data folder and why. Throws StoreError when the settings file exists
/// but cannot be read or is not a JSON object (it is never overwritten then).
DataDirChoice resolve_data_dir();
/// resolve_data_dir().dir.
std::filesystem::path default_data_dir();

/// $XDG_CONFIG_HOME/sparse-mixer-studio/settings.json (XDG_CONFIG_HOME when
/// absolute), else ~/.config/sparse-mixer-studio/settings.json.
std::filesystem::path settings_file();

/// Records `dir` (made absolute) as the data folder in the settings file,
/// keeping its other keys; an empty path removes the choice. The folder is
/// created. Written to a temporary file and renamed, so a crash never leaves a
/// half-written settings file. Throws StoreError with the reason.
void save_data_dir_setting(const std::filesystem::path& dir);

}  // namespace smx::store
