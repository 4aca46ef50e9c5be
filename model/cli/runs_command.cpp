// smx runs list | show ID | export ID | delete ID
#include <ctime>
#include <fstream>
#include <iostream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "model/cli/commands.h"
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
      for (const auto& r : all)
        j.push_back({{"id", r.id}, {"name", r.name}, {"kind", r.kind}, {"status", r.status}, {"device", r.device},
                     {"last_step", r.last_step}, {"created_at", r.created_at}, {"updated_at", r.updated_at},
                     {"parent_id", r.parent_id ? nlohmann::json(*r.parent_id) : nlohmann::json()},
                     {"directory", r.directory}});
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
  show->callback([open, id] {
    auto s = open();
    const auto r = require_run(s, *id);
    fmt::print("run {}: {} ({}, {})\n  device {}, step {}, created {}, updated {}\n  folder {}\n", r.id, r.name, r.kind,
               r.status, r.device, r.last_step, local_time(r.created_at), local_time(r.updated_at), r.directory);
    if (r.parent_id) fmt::print("  parent run {}\n", *r.parent_id);
    fmt::print("metrics:\n");
    print_summary(s, r.id);
    const auto events = s.events(r.id);
    fmt::print("events ({}):\n", events.size());
    for (const auto& e : events) fmt::print("  step {:>7}  {:<18} {}\n", e.step, e.kind, e.message);
    fmt::print("snapshots: {}\nconfig:\n{}\n", s.snapshots(r.id).size(), nlohmann::json::parse(r.config_json).dump(2));
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
  auto* del = sub("delete", "delete a run's records and its folder (checkpoints, snapshots)");
  del->add_option("id", *id, "run id")->required()->check(in_range(1, 9e18));
  del->add_flag("--yes,-y", *yes, "really delete");
  del->callback([open, id, yes] {
    auto s = open();
    const auto r = require_run(s, *id);
    if (!*yes) throw ConfigError("this deletes run " + std::to_string(r.id) + " (" + r.name + ") and " + r.directory +
                                 "; add --yes to confirm");
    s.delete_run(r.id);
    std::error_code ec;
    if (!r.directory.empty()) fs::remove_all(r.directory, ec);
    fmt::print("deleted run {}\n", r.id);
  });
}

}  // namespace smx::cli
