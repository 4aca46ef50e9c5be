// The data folder and its setting: see data_dir.h.
#include "model/store/data_dir.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "model/store/run_store.h"  // StoreError

namespace fs = std::filesystem;

namespace smx::store {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

fs::path home_dir() {
  std::string home = env("HOME");
  if (home.empty()) {
    if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir) home = pw->pw_dir;
  }
  if (home.empty()) throw StoreError("cannot find the home folder: set HOME (or SMX_DATA_DIR)");
  return fs::path(home);
}

// An XDG base folder: the variable when it holds an absolute path (the spec
// ignores relative ones), else HOME/fallback.
fs::path xdg_dir(const char* variable, const char* fallback) {
  if (std::string d = env(variable); !d.empty() && fs::path(d).is_absolute()) return fs::path(d);
  return home_dir() / fallback;
}

// The settings file's JSON object; an empty object when there is no file.
nlohmann::json read_settings(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return nlohmann::json::object();
  std::ifstream in(file);
  if (!in) throw StoreError("cannot read the settings file " + file.string());
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    throw StoreError("the settings file " + file.string() + " is not a JSON object; fix or remove it");
  return j;
}

}  // namespace

fs::path settings_file() { return xdg_dir("XDG_CONFIG_HOME", ".config") / "sparse-mixer-studio" / "settings.json"; }

DataDirChoice resolve_data_dir() {
  if (std::string d = env("SMX_DATA_DIR"); !d.empty()) return {fs::path(d), "SMX_DATA_DIR"};
  const fs::path file = settings_file();
  const nlohmann::json settings = read_settings(file);
  if (auto it = settings.find("data_dir"); it != settings.end()) {
    if (!it->is_string() || !fs::path(it->get<std::string>()).is_absolute())
      throw StoreError("\"data_dir\" in the settings file " + file.string() + " must be an absolute folder path");
    return {fs::path(it->get<std::string>()), "settings file " + file.string()};
  }
  if (std::string d = env("XDG_DATA_HOME"); !d.empty() && fs::path(d).is_absolute())
    return {fs::path(d) / "sparse-mixer-studio", "XDG_DATA_HOME"};
  return {home_dir() / ".local" / "share" / "sparse-mixer-studio", "default"};
}

fs::path default_data_dir() { return resolve_data_dir().dir; }

void save_data_dir_setting(const fs::path& dir) {
  const fs::path file = settings_file();
  nlohmann::json settings = read_settings(file);  // throws on a damaged file: it stays as it is
  std::error_code ec;
  if (dir.empty()) {
    settings.erase("data_dir");
  } else {
    const fs::path absolute = fs::absolute(dir, ec).lexically_normal();
    if (ec) throw StoreError("cannot use the folder " + dir.string() + ": " + ec.message());
    fs::create_directories(absolute, ec);
    if (ec || !fs::is_directory(absolute))
      throw StoreError("cannot create the data folder " + absolute.string() + (ec ? ": " + ec.message() : ""));
    settings["data_dir"] = absolute.string();
  }
  fs::create_directories(file.parent_path(), ec);
  if (ec) throw StoreError("cannot create " + file.parent_path().string() + ": " + ec.message());
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << settings.dump(2) << "\n";
    out.close();
    if (!out) throw StoreError("cannot write " + tmp.string());
  }
  fs::rename(tmp, file, ec);
  if (ec) throw StoreError("cannot replace the settings file " + file.string() + ": " + ec.message());
}

}  // namespace smx::store
