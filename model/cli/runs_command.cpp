// smx runs list | show ID | export ID | delete ID
#include <ctime>
#include <fstream>
#include <iostream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "model/cli/commands.h"
#include "model/config/train_config.h"
#include "model/store/run_store.h"

namespace smx::cli {
namespace fs = std::filesystem;

namespace {

std::string local_time(double unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

store::RunRecord require_run(store::RunStore& s, int64_t id) {
  auto r = s.find_run(id);
  if (!r) throw ConfigError("there is no run " + std::to_string(id) + " in " + s.path().string());
  return *r;
}

// The run's folder, or (damaged set) what is wrong with it.
std::string folder_or_problem(const store::RunStore& s, int64_t id, bool& damaged) {
  try {
    damaged = false;
    return s.run_folder(id).string();
  } catch (const store::RunFolderError& e) {
    damaged = true;
    return e.what();
  }
}

// The last value of each metric (and the best of the eval ones).
void print_summary(store::RunStore& s, int64_t id) {
  for (const auto& name : s.metric_names(id)) {
    const auto points = s.metric(id, name);
    if (points.empty()) continue;
    const bool lower_is_better = name.find("loss") != std::string::npos;
    auto best = points.front();
    for (const auto& p : points)
      if (lower_is_better ? p.value < best.value : p.value > best.value) best = p;
    if (name.rfind("eval/", 0) == 0)
      fmt::print("  {:<24} last {:<10.4f} best {:.4f} (step {})\n", name, points.back().value, best.value, best.step);
    else
      fmt::print("  {:<24} last {:.4f}\n", name, points.back().value);
  }
}

}  // namespace

void add_runs_command(CLI::App& app) {
  auto* runs = app.add_subcommand("runs", "the run store: list, show, export (CSV) and delete runs");
  runs->require_subcommand(1);
  auto data_dir = std::make_shared<std::string>();
  runs->add_option("--data-dir", *data_dir, "data folder holding runs.sqlite");
  auto open = [data_dir] {
    const fs::path dir = data_dir->empty() ? store::default_data_dir() : fs::path(*data_dir);
    return store::RunStore(dir / "runs.sqlite");
  };

  auto json = std::make_shared<bool>(false);
  // --data-dir may also follow the sub-subcommand: `smx runs list --data-dir D`.
  auto sub = [runs](const char* name, const char* help) { return runs->add_subcommand(name, help)->fallthrough(); };
  auto* list = sub("list", "list the runs, newest first");
  list->add_flag("--json", *json, "JSON output");
  list->callback([open, json] {
    auto s = open();
    const auto all = s.list_runs();
    if (*json) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& r : all) {
        bool damaged = false;
        const std::string folder = folder_or_problem(s, r.id, damaged);
        j.push_back({{"id", r.id}, {"name", r.name}, {"kind", r.kind}, {"status", r.status}, {"device", r.device},
                     {"last_step", r.last_step}, {"created_at", r.created_at}, {"updated_at", r.updated_at},
                     {"parent_id", r.parent_id ? nlohmann::json(*r.parent_id) : nlohmann::json()},
                     {"directory", damaged ? nlohmann::json() : nlohmann::json(folder)}});
        if (damaged) j.back()["damaged"] = folder;
      }
      fmt::print("{}\n", j.dump(2));
      return;
    }
    if (all.empty()) {
      fmt::print("no runs yet in {} (start one with `smx pretrain`)\n", s.path().string());
      return;
    }
    fmt::print("{:>4}  {:<34} {:<9} {:<9} {:<6} {:>7}  {:<16} {}\n", "id", "name", "kind", "status", "device", "step",
               "started", "parent");
    for (const auto& r : all)
      fmt::print("{:>4}  {:<34} {:<9} {:<9} {:<6} {:>7}  {:<16} {}\n", r.id, r.name.substr(0, 34), r.kind, r.status,
                 r.device, r.last_step, local_time(r.created_at), r.parent_id ? std::to_string(*r.parent_id) : "");
  });

  auto id = std::make_shared<int64_t>(0);
  auto* show = sub("show", "a run's config, metrics, events and snapshots");
  show->add_option("id", *id, "run id")->required()->check(in_range(1, 9e18));
  // Everything that can be printed is; what is damaged (the folder row, the
  // stored config) is said where it would be and again at the end, exit 1.
  show->callback([open, id] {
    auto s = open();
    const auto r = require_run(s, *id);
    std::vector<std::string> damage;
    bool folder_damaged = false;
    const std::string folder = folder_or_problem(s, r.id, folder_damaged);
    if (folder_damaged) damage.push_back("its folder: " + folder);
    fmt::print("run {}: {} ({}, {})\n  device {}, step {}, created {}, updated {}\n  folder {}{}\n", r.id, r.name,
               r.kind, r.status, r.device, r.last_step, local_time(r.created_at), local_time(r.updated_at),
               folder_damaged ? "DAMAGED: " : "", folder);
    if (r.parent_id) fmt::print("  parent run {}\n", *r.parent_id);
    fmt::print("metrics:\n");
    print_summary(s, r.id);
    const auto events = s.events(r.id);
    fmt::print("events ({}):\n", events.size());
    for (const auto& e : events) fmt::print("  step {:>7}  {:<18} {}\n", e.step, e.kind, e.message);
    fmt::print("snapshots: {}\n", s.snapshots(r.id).size());
    try {
      const auto config = nlohmann::json::parse(r.config_json);
      fmt::print("config:\n{}\n", config.dump(2));
      ModelConfig model;
      TrainConfig training;
      run_config_from_json_text(r.config_json, model, training);  // what resuming and fine-tuning read
      model.validate();
      training.validate();
    } catch (const nlohmann::json::parse_error& e) {
      const std::string why = fmt::format("not valid JSON (syntax error at byte {})", e.byte);
      fmt::print("config: DAMAGED, {}; as stored ({} bytes):\n{}\n", why, r.config_json.size(),
                 r.config_json.substr(0, 4000) + (r.config_json.size() > 4000 ? "..." : ""));
      damage.push_back("its stored config is " + why);
    } catch (const std::exception& e) {
      fmt::print("config: DAMAGED, it cannot be used to resume or fine-tune: {}\n", e.what());
      damage.push_back(std::string("its stored config cannot be used: ") + e.what());
    }
    if (!damage.empty()) {
      std::string text = "run " + std::to_string(r.id) + " in " + s.path().string() + " is damaged (printed above as far as readable):";
      for (const auto& d : damage) text += "\n  " + d;
      throw store::StoreError(text);
    }
  });

  auto output = std::make_shared<std::string>();
  auto* exp = sub("export", "a run's metrics as CSV (one row per step, one column per metric)");
  exp->add_option("id", *id, "run id")->required()->check(in_range(1, 9e18));
  exp->add_option("--output,-o", *output, "CSV file (default: standard output)");
  exp->callback([open, id, output] {
    auto s = open();
    require_run(s, *id);
    if (output->empty()) {
      s.export_csv(*id, std::cout);
      return;
    }
    std::ofstream out(*output);
    if (!out) throw ConfigError("cannot write " + *output);
    s.export_csv(*id, out);
    if (!out.flush()) throw ConfigError("cannot write " + *output + " (disk full?)");
    fmt::print(stderr, "wrote {}\n", *output);
  });

  auto yes = std::make_shared<bool>(false);
  auto keep_files = std::make_shared<bool>(false);
  auto* del = sub("delete", "delete a run's records and its folder DATA/runs/ID (checkpoints, snapshots)");
  del->add_option("id", *id, "run id")->required()->check(in_range(1, 9e18));
  del->add_flag("--yes,-y", *yes, "really delete");
  del->add_flag("--keep-files", *keep_files, "delete only the run's records; leave every file and folder");
  del->callback([open, id, yes, keep_files] {
    auto s = open();
    const auto r = require_run(s, *id);
    const std::string what = "run " + std::to_string(r.id) + " (" + r.name + ")";
    if (*keep_files) {
      if (!*yes) throw ConfigError("this deletes the records of " + what + " and no files; add --yes to confirm");
      s.delete_run(r.id);
      fmt::print("deleted the records of run {}; no file was touched\n", r.id);
      return;
    }
    fs::path folder;
    try {
      folder = s.run_folder(r.id);  // checked before anything is deleted
    } catch (const store::RunFolderError& e) {
      throw store::RunFolderError(std::string(e.what()) + "\nnothing was deleted; `smx runs delete " +
                                  std::to_string(r.id) + " --keep-files --yes` deletes only its records");
    }
    if (!*yes) throw ConfigError("this deletes " + what + " and its folder " + folder.string() + "; add --yes to confirm");
    const fs::path removed = s.delete_run_and_folder(r.id);
    if (removed.empty()) fmt::print("deleted run {} (it had no folder)\n", r.id);
    else fmt::print("deleted run {} and {}\n", r.id, removed.string());
  });
}

}  // namespace smx::cli
