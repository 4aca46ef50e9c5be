// The run store: one SQLite database (WAL mode) holding every run's record,
// metrics, events and snapshot index. The CLI writes it while training (also
// headless on a GPU server) and the studio reads it live or later, so several
// processes open the same file at once. No LibTorch, no Qt.
//
// The store file lives in the data folder, and run N's files always live in
// <data folder>/runs/N: the store records that folder as the relative path
// "runs/N" and never as an absolute one, so a copied or moved data folder is
// whole and independent of the original. A row that names any other folder
// is damaged: run_folder() refuses it, and nothing outside runs/ is ever
// written or deleted on its word.
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

/// A run whose folder cannot be used: the store row names another folder than
/// runs/ID, or the folder is a symbolic link leading out of runs/. what()
/// names the run, the path found and the path expected.
class RunFolderError : public StoreError {
 public:
  using StoreError::StoreError;
};

/// What create_run needs.
struct NewRun {
  std::string name;
  std::string kind;         ///< "pretrain" | "finetune"
  std::string config_json;  ///< the full run config; must be valid JSON ("" is stored as "{}")
  std::string device;       ///< e.g. "cpu", "cuda:0"
  std::optional<int64_t> parent_id;  ///< the run this one starts from (a fine-tune's pre-training run)
};

struct RunRecord {
  int64_t id = 0;
  std::string name, kind, status, device, config_json;
  /// The run's folder as the store row names it: "runs/ID", relative to the
  /// data folder. Anything else is a damaged row (see RunStore::run_folder).
  std::string directory;
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
  std::string path;  ///< relative to the run's folder, e.g. "snapshots/step-000050.snap"
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
  /// A store of schema 1 (absolute run folders) is migrated once: a row naming
  /// <some folder>/runs/ID (this data folder's, or the one it was copied or
  /// moved from) becomes "runs/ID"; any other row is left as it is, and
  /// run_folder refuses it.
  explicit RunStore(const std::filesystem::path& file);
  ~RunStore();
  RunStore(RunStore&&) noexcept;
  RunStore& operator=(RunStore&&) noexcept;
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;

  /// A new run with status "created" and folder runs/ID; returns its id. An
  /// unknown parent_id or invalid config_json -> StoreError.
  int64_t create_run(const NewRun& run);
  /// One of kRunStatuses; anything else, or an unknown run -> StoreError.
  void set_status(int64_t run, const std::string& status);
  void set_last_step(int64_t run, int64_t step);
  /// Replaces the run config (a resumed run's settings); rules of create_run.
  void set_config(int64_t run, const std::string& config_json);
  /// All values of one step in one transaction. Logging a step again replaces
  /// its values (a run resumed from an earlier checkpoint).
  void log_metrics(int64_t run, int64_t step, double wall_seconds,
                   const std::vector<std::pair<std::string, double>>& values);
  void log_event(const EventRecord& event);
  /// Records a snapshot file by its path relative to the run's folder (a step
  /// recorded again replaces the path). An absolute path or one with ".." ->
  /// StoreError.
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
  /// The snapshot's file: run_folder_path(run) / its relative path. A row with
  /// an absolute path or one that leaves the run's folder -> StoreError.
  std::filesystem::path snapshot_file(const SnapshotRecord& snapshot) const;

  /// The data folder: the folder holding the store file.
  std::filesystem::path data_dir() const;
  /// Where run `id`'s files belong: data_dir() / "runs" / id, whatever the row says.
  std::filesystem::path run_folder_path(int64_t id) const;
  /// run_folder_path(id), checked before anything reads, writes or deletes
  /// there: the run exists (else StoreError), its row names "runs/ID" and the
  /// folder, where it exists, resolves to ID inside the real runs/ folder (a
  /// symbolic link out of it is not followed), and so do its checkpoints/ and
  /// snapshots/ folders; otherwise RunFolderError naming the run, the path
  /// found and the path expected. runs/ itself may be a link (a bigger disk).
  std::filesystem::path run_folder(int64_t id) const;
  /// The run of this store whose folder holds `file` (e.g. a checkpoint), when
  /// it is inside data_dir()/runs/ID/ of an existing, undamaged run ID.
  std::optional<int64_t> run_holding(const std::filesystem::path& file) const;
  /// Wide CSV: a header `step,wall_seconds,<metric names sorted>` then one line
  /// per step; a metric with no value at a step leaves its cell empty; NaN is
  /// written "nan". Names are quoted when they need it (RFC 4180).
  void export_csv(int64_t run, std::ostream& out) const;
  /// Deletes the run's rows (not its files), in one transaction; runs that
  /// named it as parent keep going with no parent. Unknown id -> StoreError.
  void delete_run(int64_t run);
  /// Deletes the run's rows and then its folder, run_folder(run) (checked
  /// first: a damaged row or a folder linking out of runs/ throws and
  /// nothing is deleted). Symbolic links inside the folder are removed, never
  /// followed. Returns the folder removed, empty when there was none. A folder
  /// that cannot be removed -> StoreError after the rows are gone.
  std::filesystem::path delete_run_and_folder(int64_t run);

  const std::filesystem::path& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace smx::store
