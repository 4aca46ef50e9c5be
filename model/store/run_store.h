// The run store: one SQLite database (WAL mode) holding every run's record,
// metrics, events and snapshot index. The CLI writes it while training (also
// headless on a GPU server) and the studio reads it live or later, so several
// processes open the same file at once. No LibTorch, no Qt.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "model/store/data_dir.h"  // default_data_dir()

namespace smx::store {

/// Any failure of the store; what() names the database file and the problem.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What create_run needs.
struct NewRun {
  std::string name;
  std::string kind;         ///< "pretrain" | "finetune"
  std::string config_json;  ///< the full run config; must be valid JSON ("" is stored as "{}")
  std::string device;       ///< e.g. "cpu", "cuda:0"
  std::string directory;    ///< the run's checkpoints/snapshots folder
  std::optional<int64_t> parent_id;  ///< the run this one starts from (a fine-tune's pre-training run)
};

struct RunRecord {
  int64_t id = 0;
  std::string name, kind, status, device, config_json, directory;
  std::optional<int64_t> parent_id;  ///< unset also when the parent was deleted
  double created_at = 0, updated_at = 0;  ///< unix seconds; updated_at moves with every write to the run
  int64_t last_step = 0;
};

struct MetricPoint {
  int64_t step;
  double wall_seconds;
  double value;  ///< NaN survives the round trip (SQLite keeps it as NULL)
};

struct EventRecord {
  int64_t run_id = 0, step = 0;
  double wall_seconds = 0;
  std::string kind;  ///< e.g. "nonfinite-loss", "loss-spike", "checkpoint", "resumed", "stopped"
  std::string message;
  double value = 0;
};

struct SnapshotRecord {
  int64_t run_id = 0, step = 0;
  std::string path;
};

/// Run statuses set_status accepts.
inline constexpr const char* kRunStatuses[] = {"created", "running", "paused",  "finished",
                                               "stopped", "diverged", "failed"};

/// default_data_dir() / "runs.sqlite".
std::filesystem::path default_store_path();

/// One connection to the store. Not thread-safe: use one RunStore per thread
/// (any number of them, in any number of processes, on one file). Writes that
/// belong together are one transaction, so a killed writer never leaves half a
/// step behind.
class RunStore {
 public:
  /// Opens `file`, creating its parent folders and the schema when absent.
  /// Throws StoreError, and leaves the file untouched, when it is not an
  /// SQLite database, belongs to another application, was written by a newer
  /// version, or fails SQLite's quick_check (truncated or corrupt).
  explicit RunStore(const std::filesystem::path& file);
  ~RunStore();
  RunStore(RunStore&&) noexcept;
  RunStore& operator=(RunStore&&) noexcept;
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;

  /// A new run with status "created"; returns its id. An unknown parent_id
  /// or invalid config_json -> StoreError.
  int64_t create_run(const NewRun& run);
  /// One of kRunStatuses; anything else, or an unknown run -> StoreError.
  void set_status(int64_t run, const std::string& status);
  void set_last_step(int64_t run, int64_t step);
  /// The run's folder, known only once the run has an id. Unknown run -> StoreError.
  void set_directory(int64_t run, const std::string& directory);
  /// Replaces the run config (a resumed run's settings); rules of create_run.
  void set_config(int64_t run, const std::string& config_json);
  /// All values of one step in one transaction. Logging a step again replaces
  /// its values (a run resumed from an earlier checkpoint).
  void log_metrics(int64_t run, int64_t step, double wall_seconds,
                   const std::vector<std::pair<std::string, double>>& values);
  void log_event(const EventRecord& event);
  /// Records a snapshot file (a step recorded again replaces the path).
  void add_snapshot(int64_t run, int64_t step, const std::string& path);

  /// Newest first.
  std::vector<RunRecord> list_runs() const;
  std::optional<RunRecord> find_run(int64_t id) const;
  /// Names of the metrics the run has values for, sorted.
  std::vector<std::string> metric_names(int64_t run) const;
  /// Points of one metric by step; only those with step > after_step, so that
  /// a live view fetches just the new ones. Unknown run or name -> empty.
  std::vector<MetricPoint> metric(int64_t run, const std::string& name, int64_t after_step = -1) const;
  /// By step, then in logging order.
  std::vector<EventRecord> events(int64_t run) const;
  /// By step.
  std::vector<SnapshotRecord> snapshots(int64_t run) const;
  /// Wide CSV: a header `step,wall_seconds,<metric names sorted>` then one line
  /// per step; a metric with no value at a step leaves its cell empty; NaN is
  /// written "nan". Names are quoted when they need it (RFC 4180).
  void export_csv(int64_t run, std::ostream& out) const;
  /// Deletes the run's rows (not its files), in one transaction; runs that
  /// named it as parent keep going with no parent. Unknown id -> StoreError.
  void delete_run(int64_t run);

  const std::filesystem::path& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace smx::store
