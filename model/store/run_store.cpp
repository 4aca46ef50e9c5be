// The run store on SQLite: schema, open-time checks, cached prepared
// statements and the transactions that keep a step's metrics together.
//
// Schema (user_version 2, application_id kApplicationId):
//   runs(id, name, kind, status, device, config_json, directory, parent_id,
//        created_at, updated_at, last_step)
//        directory is "runs/<id>", relative to the data folder (the store
//        file's folder); schema 1 kept absolute paths, which broke copied and
//        moved data folders: Db::migrate_to_2 rewrites them.
//   metric_names(id, name)            -- each metric name once, for all runs
//   metrics(run_id, name_id, step, wall, value)   WITHOUT ROWID, primary key
//        (run_id, name_id, step): one metric of one run is one range scan
//   events(id, run_id, step, wall, kind, message, value), index (run_id, step)
//   snapshots(run_id, step, path)     WITHOUT ROWID, primary key (run_id, step)
//        path relative to the run's folder (schema 1: absolute)
// SQLite stores a NaN as NULL; NULL values read back as NaN.
#include "model/store/run_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <system_error>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace smx::store {

namespace fs = std::filesystem;

namespace {

/// PRAGMA application_id of a run store: "SMXS".
constexpr int32_t kApplicationId = 0x534D5853;
/// PRAGMA user_version: the schema below. Bump it and add a migration step in
/// Db::ensure_schema when the schema changes. 2: run folders and snapshot
/// paths relative (1 had absolute ones).
constexpr int kSchemaVersion = 2;

constexpr const char* kSchema = R"sql(
CREATE TABLE runs(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  device TEXT NOT NULL,
  config_json TEXT NOT NULL,
  directory TEXT NOT NULL,
  parent_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  last_step INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_parent ON runs(parent_id);
CREATE TABLE metric_names(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
CREATE TABLE metrics(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name_id INTEGER NOT NULL REFERENCES metric_names(id),
  step INTEGER NOT NULL,
  wall REAL NOT NULL,
  value REAL,
  PRIMARY KEY(run_id, name_id, step)
) WITHOUT ROWID;
CREATE TABLE events(
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  wall REAL NOT NULL,
  kind TEXT NOT NULL,
  message TEXT NOT NULL,
  value REAL
);
CREATE INDEX events_by_run ON events(run_id, step);
CREATE TABLE snapshots(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  path TEXT NOT NULL,
  PRIMARY KEY(run_id, step)
) WITHOUT ROWID;
)sql";

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string describe(const fs::path& file) { return "run store '" + file.string() + "'"; }

/// What the runs table says run `id`'s folder is.
std::string relative_run_folder(int64_t id) { return "runs/" + std::to_string(id); }

/// Lexically normal, without a trailing separator.
fs::path normal(const fs::path& p) {
  fs::path n = p.lexically_normal();
  if (!n.has_filename() && n.has_relative_path()) n = n.parent_path();
  return n;
}

/// The same folder, by name or (both existing) by identity.
bool same_folder(const fs::path& a, const fs::path& b) {
  if (normal(a) == normal(b)) return true;
  std::error_code ec;
  return fs::equivalent(a, b, ec) && !ec;
}

/// `inner` is `outer` or lies inside it (both canonical).
bool is_within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // a trailing separator
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

/// A path relative to a run's folder that stays inside it.
bool is_inside_relative(const fs::path& p) {
  if (p.empty() || p.has_root_path()) return false;
  for (const auto& part : p)
    if (part == "..") return false;
  return true;
}

/// Schema 1's absolute folder of run `id`: <X>/runs/<id> for some absolute X.
bool is_some_data_folders_run(const fs::path& dir, int64_t id) {
  const fs::path p = normal(dir);
  return p.is_absolute() && p.filename() == std::to_string(id) && p.parent_path().filename() == "runs";
}

/// Schema 1's absolute snapshot path of run `run` as a path relative to the
/// run's folder: the part after the last ".../runs/<run>/"; empty if none.
fs::path v1_snapshot_relative(const std::string& path, int64_t run) {
  const fs::path p = normal(path);
  if (!p.is_absolute()) return is_inside_relative(p) ? p : fs::path();
  const std::vector<fs::path> parts(p.begin(), p.end());
  const std::string id = std::to_string(run);
  for (size_t i = parts.size() - 1; i >= 2; --i)
    if (parts[i - 1] == id && parts[i - 2] == "runs") {
      fs::path rest;
      for (size_t k = i; k < parts.size(); ++k) rest /= parts[k];
      return is_inside_relative(rest) ? rest : fs::path();
    }
  return {};
}

struct CloseDb {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct FinalizeStmt {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

class Db;

/// A cached prepared statement in use: bind, step, read columns. Resets on
/// destruction, so no statement keeps a read transaction open by accident.
class Stmt {
 public:
  Stmt(const Db& db, sqlite3_stmt* s) : db_(db), s_(s) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

  Stmt& bind(int i, int64_t v) { return check(sqlite3_bind_int64(s_, i, v)); }
  Stmt& bind(int i, double v) { return check(sqlite3_bind_double(s_, i, v)); }  // NaN binds as NULL
  Stmt& bind(int i, const std::string& v) {
    return check(sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT));
  }
  Stmt& bind(int i, const std::optional<int64_t>& v) {
    return v ? bind(i, *v) : check(sqlite3_bind_null(s_, i));
  }

  /// True while there is a row to read.
  bool step();
  /// Runs a statement to its end (rows, if any, are ignored).
  void run() {
    while (step()) {
    }
  }
  /// Ready to run again with the same bindings.
  void reset() { sqlite3_reset(s_); }

  bool is_null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  double real(int c) const {
    return is_null(c) ? std::numeric_limits<double>::quiet_NaN() : sqlite3_column_double(s_, c);
  }
  std::string text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string(p, size_t(sqlite3_column_bytes(s_, c))) : std::string();
  }
  std::optional<int64_t> opt_i64(int c) const { return is_null(c) ? std::nullopt : std::optional<int64_t>(i64(c)); }

 private:
  Stmt& check(int rc);
  const Db& db_;
  sqlite3_stmt* s_;
};

/// One connection: opening checks, statement cache, error conversion.
class Db {
 public:
  explicit Db(const fs::path& file);

  const fs::path& file() const { return file_; }
  sqlite3* handle() const { return db_.get(); }

  /// StoreError naming the file, the problem and SQLite's own message.
  [[noreturn]] void fail(const std::string& what) const {
    const int code = sqlite3_errcode(handle()) & 0xff;
    const std::string detail = what + ": " + sqlite3_errmsg(handle());
    if (code == SQLITE_NOTADB) throw StoreError(describe(file_) + ": is not an SQLite database (" + detail + ")");
    if (code == SQLITE_CORRUPT) throw StoreError(describe(file_) + ": is corrupt or truncated (" + detail + ")");
    throw StoreError(describe(file_) + ": " + detail);
  }
  [[noreturn]] void fail_plain(const std::string& what) const { throw StoreError(describe(file_) + ": " + what); }

  /// The prepared statement for `sql`, prepared once per connection.
  Stmt query(const char* sql) const {
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v3(handle(), sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK)
        fail(std::string("cannot prepare '") + first_words(sql) + "'");
      it = statements_.emplace(sql, std::unique_ptr<sqlite3_stmt, FinalizeStmt>(s)).first;
    }
    return Stmt(*this, it->second.get());
  }
  void exec(const char* sql) const { query(sql).run(); }
  int64_t changes() const { return sqlite3_changes(handle()); }
  int64_t last_insert_id() const { return sqlite3_last_insert_rowid(handle()); }

  /// Id of a metric name; 0 when absent and `create` is false.
  int64_t name_id(const std::string& name, bool create);
  void forget_names() { name_ids_.clear(); }

  static std::string first_words(const char* sql) {
    std::string s(sql, std::min<size_t>(std::strlen(sql), 60));
    std::replace(s.begin(), s.end(), '\n', ' ');
    return s;
  }

 private:
  int64_t single_int(const char* sql) const {
    Stmt st = query(sql);
    if (!st.step()) fail_plain(std::string(sql) + " returned nothing");
    return st.i64(0);
  }
  void use_wal();
  void check_foreign_or_newer(int64_t app, int64_t version) const;
  void quick_check() const;
  void ensure_schema();
  void migrate_to_2();

  fs::path file_;
  std::unique_ptr<sqlite3, CloseDb> db_;  // declared before the statements: closed after them
  mutable std::unordered_map<std::string, std::unique_ptr<sqlite3_stmt, FinalizeStmt>> statements_;
  std::unordered_map<std::string, int64_t> name_ids_;
};

bool Stmt::step() {
  const int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_.fail("'" + Db::first_words(sqlite3_sql(s_)) + "' failed");
}

Stmt& Stmt::check(int rc) {
  if (rc != SQLITE_OK) db_.fail("cannot bind a value of '" + Db::first_words(sqlite3_sql(s_)) + "'");
  return *this;
}

/// BEGIN IMMEDIATE ... COMMIT; rolls back unless committed. IMMEDIATE takes the
/// write lock up front (waiting up to busy_timeout), so two writers never
/// deadlock upgrading read transactions.
class WriteTransaction {
 public:
  explicit WriteTransaction(Db& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;
  void commit() {
    db_.exec("COMMIT");
    done_ = true;
  }
  ~WriteTransaction() {
    if (!done_) {
      sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
      db_.forget_names();  // ids created inside the transaction are gone
    }
  }

 private:
  Db& db_;
  bool done_ = false;
};

/// BEGIN ... COMMIT around several reads that must see one state.
class ReadTransaction {
 public:
  explicit ReadTransaction(const Db& db) : db_(db) { db_.exec("BEGIN"); }
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;
  ~ReadTransaction() { sqlite3_exec(db_.handle(), "COMMIT", nullptr, nullptr, nullptr); }

 private:
  const Db& db_;
};

Db::Db(const fs::path& file) : file_(file) {
  std::error_code ec;
  const bool existed = fs::exists(file_, ec);
  if (!existed && file_.has_parent_path()) {
    fs::create_directories(file_.parent_path(), ec);
    if (ec) fail_plain("cannot create folder '" + file_.parent_path().string() + "': " + ec.message());
  }
  // An existing file is opened without CREATE, and everything up to the
  // checks runs with query_only: a foreign or damaged file is never written.
  sqlite3* raw = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | (existed ? 0 : SQLITE_OPEN_CREATE);
  const int rc = sqlite3_open_v2(file_.c_str(), &raw, flags, nullptr);
  db_.reset(raw);
  if (rc != SQLITE_OK) {
    if (!raw) fail_plain("cannot open: out of memory");
    fail("cannot open");
  }
  sqlite3_busy_timeout(handle(), 5000);
  exec("PRAGMA query_only = ON");
  int64_t version = 0;
  {
    ReadTransaction read(*this);  // all checks see one state, even while another process creates the schema
    const int64_t app = single_int("PRAGMA application_id");
    version = single_int("PRAGMA user_version");
    check_foreign_or_newer(app, version);
    quick_check();
  }
  exec("PRAGMA query_only = OFF");

  use_wal();
  exec("PRAGMA synchronous = NORMAL");
  exec("PRAGMA foreign_keys = ON");
  if (version < kSchemaVersion) ensure_schema();
}

void Db::use_wal() {
  {
    Stmt st = query("PRAGMA journal_mode");
    if (st.step() && st.text(0) == "wal") return;  // the usual case: nothing to write
  }
  // The switch needs the file to itself and SQLite answers SQLITE_BUSY at once
  // instead of waiting (another connection may be creating the store just now):
  // retry for as long as busy_timeout would wait. Where WAL is impossible (some
  // network file systems) the pragma succeeds and the old mode stays.
  for (int attempt = 0;; ++attempt) {
    const int rc = sqlite3_exec(handle(), "PRAGMA journal_mode = WAL", nullptr, nullptr, nullptr) & 0xff;
    if (rc == SQLITE_OK) return;
    if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || attempt == 500) fail("cannot switch to WAL mode");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void Db::check_foreign_or_newer(int64_t app, int64_t version) const {
  if (app != 0 && app != kApplicationId)
    fail_plain("belongs to another application (SQLite application_id " + std::to_string(app) + ", expected " +
               std::to_string(kApplicationId) + "); not opened");
  if (app == 0) {
    // Ours before the schema exists only when empty (just created, or created
    // by a process that died before its first transaction).
    const int64_t objects = single_int("SELECT count(*) FROM sqlite_master");
    if (objects != 0 || version != 0)
      fail_plain("is an SQLite database of another application (it has no Sparse Mixer Studio application_id); "
                 "not opened");
  }
  if (version > kSchemaVersion)
    fail_plain("was written by a newer version of Sparse Mixer Studio (schema " + std::to_string(version) + " > " +
               std::to_string(kSchemaVersion) + "); update");
}

void Db::quick_check() const {
  Stmt st = query("PRAGMA quick_check");
  std::string problems;
  int lines = 0;
  while (st.step()) {
    std::string line = st.text(0);
    if (line == "ok") continue;
    const std::string banner = "*** in database main ***\n";
    if (line.compare(0, banner.size(), banner) == 0) line.erase(0, banner.size());
    std::replace(line.begin(), line.end(), '\n', ' ');
    if (lines++ < 3) problems += (problems.empty() ? "" : "; ") + line;
  }
  if (lines > 0)
    fail_plain("is corrupt or truncated (quick_check: " + problems + (lines > 3 ? "; ..." : "") + "); not opened");
}

void Db::ensure_schema() {
  WriteTransaction t(*this);
  // Again under the write lock: another process may have created it meanwhile.
  const int64_t app = single_int("PRAGMA application_id");
  const int64_t version = single_int("PRAGMA user_version");
  check_foreign_or_newer(app, version);
  if (version == 0) {
    if (sqlite3_exec(handle(), kSchema, nullptr, nullptr, nullptr) != SQLITE_OK) fail("cannot create the schema");
    exec(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str());
    exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
  } else if (version < kSchemaVersion) {
    // Migrations from older schema versions, in order.
    if (version < 2) migrate_to_2();
    exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
  }
  t.commit();
}

// Schema 1 -> 2, inside ensure_schema's transaction. A run folder recorded as
// <X>/runs/<id> becomes "runs/<id>": X is this data folder, or the one this
// folder was copied or moved from (then an event says so; from now on the run
// uses its folder here, never the original's). An empty one (a run killed
// before its folder was recorded) becomes "runs/<id>" too. Any other value is
// left as it is, and RunStore::run_folder refuses it. Snapshot paths become
// relative to the run's folder the same way.
void Db::migrate_to_2() {
  const fs::path data_dir = fs::absolute(file_).parent_path();
  struct Row {
    int64_t id, last_step;
    std::string directory;
  };
  std::vector<Row> rows;
  {
    Stmt st = query("SELECT id, last_step, directory FROM runs");
    while (st.step()) rows.push_back({st.i64(0), st.i64(1), st.text(2)});
  }
  for (const Row& r : rows) {
    const bool empty = r.directory.empty();
    if (!empty && !is_some_data_folders_run(r.directory, r.id)) continue;  // damaged: left for run_folder to refuse
    query("UPDATE runs SET directory = ?1 WHERE id = ?2").bind(1, relative_run_folder(r.id)).bind(2, r.id).run();
    if (!empty && !same_folder(normal(r.directory).parent_path().parent_path(), data_dir))
      query("INSERT INTO events(run_id, step, wall, kind, message, value) VALUES(?1, ?2, 0, 'folder-relocated', ?3, NULL)")
          .bind(1, r.id)
          .bind(2, r.last_step)
          .bind(3, "the run store named this run's folder '" + r.directory +
                       "' (this data folder was copied or moved from there); from now on the run uses " +
                       relative_run_folder(r.id) + " in this data folder, '" +
                       (data_dir / "runs" / std::to_string(r.id)).string() + "'")
          .run();
  }
  struct Snap {
    int64_t run, step;
    std::string path;
  };
  std::vector<Snap> snaps;
  {
    Stmt st = query("SELECT run_id, step, path FROM snapshots");
    while (st.step()) snaps.push_back({st.i64(0), st.i64(1), st.text(2)});
  }
  for (const Snap& s : snaps) {
    const fs::path rel = v1_snapshot_relative(s.path, s.run);
    if (rel.empty() || rel.string() == s.path) continue;  // already relative, or damaged (snapshot_file refuses it)
    query("UPDATE snapshots SET path = ?1 WHERE run_id = ?2 AND step = ?3")
        .bind(1, rel.string())
        .bind(2, s.run)
        .bind(3, s.step)
        .run();
  }
}

int64_t Db::name_id(const std::string& name, bool create) {
  if (auto it = name_ids_.find(name); it != name_ids_.end()) return it->second;
  int64_t id = 0;
  {
    Stmt st = query("SELECT id FROM metric_names WHERE name = ?1");
    st.bind(1, name);
    if (st.step()) id = st.i64(0);
  }
  if (id == 0 && create) {
    if (name.empty()) fail_plain("a metric name must not be empty");
    query("INSERT INTO metric_names(name) VALUES(?1)").bind(1, name).run();
    id = last_insert_id();
  }
  if (id != 0) name_ids_.emplace(name, id);
  return id;
}

RunRecord read_run(const Stmt& st) {
  RunRecord r;
  r.id = st.i64(0);
  r.name = st.text(1);
  r.kind = st.text(2);
  r.status = st.text(3);
  r.device = st.text(4);
  r.config_json = st.text(5);
  r.directory = st.text(6);
  r.parent_id = st.opt_i64(7);
  r.created_at = st.real(8);
  r.updated_at = st.real(9);
  r.last_step = st.i64(10);
  return r;
}

constexpr const char* kSelectRun =
    "SELECT id, name, kind, status, device, config_json, directory, parent_id, created_at, updated_at, last_step "
    "FROM runs";

/// A number as the shortest text that reads back to the same double.
void write_number(std::ostream& out, double v) {
  if (std::isnan(v)) {
    out << "nan";
    return;
  }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.write(buf, r.ptr - buf);
}

void write_csv_field(std::ostream& out, const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) {
    out << s;
    return;
  }
  out << '"';
  for (char c : s) {
    if (c == '"') out << '"';
    out << c;
  }
  out << '"';
}

/// The config text to store: valid JSON, "" as "{}".
std::string valid_config(const Db& db, const std::string& run, const std::string& config_json) {
  const std::string config = config_json.empty() ? std::string("{}") : config_json;
  if (!nlohmann::json::accept(config)) db.fail_plain(run + ": config_json is not valid JSON");
  return config;
}

}  // namespace

struct RunStore::Impl {
  explicit Impl(const fs::path& file) : db(file), data_dir(normal(fs::absolute(file).parent_path())) {}
  Db db;
  fs::path data_dir;  ///< absolute: a later change of the working folder changes nothing

  /// Marks the run as written now; StoreError when there is no such run.
  void touch(int64_t run) {
    db.query("UPDATE runs SET updated_at = ?1 WHERE id = ?2").bind(1, now_seconds()).bind(2, run).run();
    if (db.changes() == 0) db.fail_plain("no run with id " + std::to_string(run));
  }
};

fs::path default_store_path() { return default_data_dir() / "runs.sqlite"; }

RunStore::RunStore(const fs::path& file) : impl_(std::make_unique<Impl>(file)) {}
RunStore::~RunStore() = default;
RunStore::RunStore(RunStore&&) noexcept = default;
RunStore& RunStore::operator=(RunStore&&) noexcept = default;

const fs::path& RunStore::path() const { return impl_->db.file(); }

int64_t RunStore::create_run(const NewRun& run) {
  Db& db = impl_->db;
  const std::string config = valid_config(db, "run '" + run.name + "'", run.config_json);
  WriteTransaction t(db);
  if (run.parent_id) {
    Stmt st = db.query("SELECT 1 FROM runs WHERE id = ?1");
    if (!st.bind(1, *run.parent_id).step())
      db.fail_plain("run '" + run.name + "': parent run " + std::to_string(*run.parent_id) + " does not exist");
  }
  const double now = now_seconds();
  db.query(
        "INSERT INTO runs(name, kind, status, device, config_json, directory, parent_id, created_at, updated_at) "
        "VALUES(?1, ?2, 'created', ?3, ?4, '', ?5, ?6, ?6)")
      .bind(1, run.name)
      .bind(2, run.kind)
      .bind(3, run.device)
      .bind(4, config)
      .bind(5, run.parent_id)
      .bind(6, now)
      .run();
  const int64_t id = db.last_insert_id();
  db.query("UPDATE runs SET directory = ?1 WHERE id = ?2").bind(1, relative_run_folder(id)).bind(2, id).run();
  t.commit();
  return id;
}

void RunStore::set_status(int64_t run, const std::string& status) {
  Db& db = impl_->db;
  if (std::find(std::begin(kRunStatuses), std::end(kRunStatuses), status) == std::end(kRunStatuses))
    db.fail_plain("run " + std::to_string(run) + ": unknown status '" + status + "'");
  db.query("UPDATE runs SET status = ?1, updated_at = ?2 WHERE id = ?3")
      .bind(1, status)
      .bind(2, now_seconds())
      .bind(3, run)
      .run();
  if (db.changes() == 0) db.fail_plain("no run with id " + std::to_string(run));
}

void RunStore::set_last_step(int64_t run, int64_t step) {
  Db& db = impl_->db;
  db.query("UPDATE runs SET last_step = ?1, updated_at = ?2 WHERE id = ?3")
      .bind(1, step)
      .bind(2, now_seconds())
      .bind(3, run)
      .run();
  if (db.changes() == 0) db.fail_plain("no run with id " + std::to_string(run));
}

void RunStore::set_config(int64_t run, const std::string& config_json) {
  Db& db = impl_->db;
  const std::string config = valid_config(db, "run " + std::to_string(run), config_json);
  db.query("UPDATE runs SET config_json = ?1, updated_at = ?2 WHERE id = ?3")
      .bind(1, config)
      .bind(2, now_seconds())
      .bind(3, run)
      .run();
  if (db.changes() == 0) db.fail_plain("no run with id " + std::to_string(run));
}

void RunStore::log_metrics(int64_t run, int64_t step, double wall_seconds,
                           const std::vector<std::pair<std::string, double>>& values) {
  if (values.empty()) return;
  Db& db = impl_->db;
  WriteTransaction t(db);
  impl_->touch(run);
  std::vector<int64_t> ids;
  ids.reserve(values.size());
  for (const auto& [name, value] : values) ids.push_back(db.name_id(name, true));
  {
    Stmt insert = db.query("INSERT OR REPLACE INTO metrics(run_id, name_id, step, wall, value) VALUES(?1, ?2, ?3, ?4, ?5)");
    insert.bind(1, run).bind(3, step).bind(4, wall_seconds);
    for (size_t i = 0; i < values.size(); ++i) {
      insert.bind(2, ids[i]).bind(5, values[i].second).run();
      insert.reset();  // keeps the bindings of run, step and wall
    }
  }
  t.commit();
}

void RunStore::log_event(const EventRecord& e) {
  Db& db = impl_->db;
  WriteTransaction t(db);
  impl_->touch(e.run_id);
  db.query("INSERT INTO events(run_id, step, wall, kind, message, value) VALUES(?1, ?2, ?3, ?4, ?5, ?6)")
      .bind(1, e.run_id)
      .bind(2, e.step)
      .bind(3, e.wall_seconds)
      .bind(4, e.kind)
      .bind(5, e.message)
      .bind(6, e.value)
      .run();
  t.commit();
}

void RunStore::add_snapshot(int64_t run, int64_t step, const std::string& path) {
  Db& db = impl_->db;
  if (!is_inside_relative(fs::path(path)))
    db.fail_plain("run " + std::to_string(run) + ": snapshot path '" + path +
                  "' must be relative to the run's folder and stay inside it");
  WriteTransaction t(db);
  impl_->touch(run);
  db.query("INSERT OR REPLACE INTO snapshots(run_id, step, path) VALUES(?1, ?2, ?3)")
      .bind(1, run)
      .bind(2, step)
      .bind(3, path)
      .run();
  t.commit();
}

std::vector<RunRecord> RunStore::list_runs() const {
  static const std::string sql = std::string(kSelectRun) + " ORDER BY id DESC";
  std::vector<RunRecord> runs;
  Stmt st = impl_->db.query(sql.c_str());
  while (st.step()) runs.push_back(read_run(st));
  return runs;
}

std::optional<RunRecord> RunStore::find_run(int64_t id) const {
  static const std::string sql = std::string(kSelectRun) + " WHERE id = ?1";
  Stmt st = impl_->db.query(sql.c_str());
  st.bind(1, id);
  if (!st.step()) return std::nullopt;
  return read_run(st);
}

namespace {
constexpr const char* kRunMetricNames =
    "SELECT n.id, n.name FROM metric_names n "
    "WHERE EXISTS(SELECT 1 FROM metrics m WHERE m.run_id = ?1 AND m.name_id = n.id) ORDER BY n.name";
}

std::vector<std::string> RunStore::metric_names(int64_t run) const {
  std::vector<std::string> names;
  Stmt st = impl_->db.query(kRunMetricNames);
  st.bind(1, run);
  while (st.step()) names.push_back(st.text(1));
  return names;
}

std::vector<MetricPoint> RunStore::metric(int64_t run, const std::string& name, int64_t after_step) const {
  std::vector<MetricPoint> points;
  const int64_t id = impl_->db.name_id(name, false);
  if (id == 0) return points;
  Stmt st = impl_->db.query(
      "SELECT step, wall, value FROM metrics WHERE run_id = ?1 AND name_id = ?2 AND step > ?3 ORDER BY step");
  st.bind(1, run).bind(2, id).bind(3, after_step);
  while (st.step()) points.push_back(MetricPoint{st.i64(0), st.real(1), st.real(2)});
  return points;
}

std::vector<EventRecord> RunStore::events(int64_t run) const {
  std::vector<EventRecord> events;
  Stmt st = impl_->db.query(
      "SELECT run_id, step, wall, kind, message, value FROM events WHERE run_id = ?1 ORDER BY step, id");
  st.bind(1, run);
  while (st.step()) {
    EventRecord e;
    e.run_id = st.i64(0);
    e.step = st.i64(1);
    e.wall_seconds = st.real(2);
    e.kind = st.text(3);
    e.message = st.text(4);
    e.value = st.real(5);
    events.push_back(std::move(e));
  }
  return events;
}

std::vector<SnapshotRecord> RunStore::snapshots(int64_t run) const {
  std::vector<SnapshotRecord> snaps;
  Stmt st = impl_->db.query("SELECT run_id, step, path FROM snapshots WHERE run_id = ?1 ORDER BY step");
  st.bind(1, run);
  while (st.step()) snaps.push_back(SnapshotRecord{st.i64(0), st.i64(1), st.text(2)});
  return snaps;
}

fs::path RunStore::snapshot_file(const SnapshotRecord& s) const {
  if (!is_inside_relative(fs::path(s.path)))
    impl_->db.fail_plain("run " + std::to_string(s.run_id) + ": the snapshot of step " + std::to_string(s.step) +
                         " is recorded as '" + s.path + "', not as a file inside the run's folder " +
                         run_folder_path(s.run_id).string() + "; not read");
  return run_folder_path(s.run_id) / s.path;
}

fs::path RunStore::data_dir() const { return impl_->data_dir; }

fs::path RunStore::run_folder_path(int64_t id) const { return impl_->data_dir / "runs" / std::to_string(id); }

fs::path RunStore::run_folder(int64_t id) const {
  const Db& db = impl_->db;
  const auto rec = find_run(id);
  if (!rec) db.fail_plain("no run with id " + std::to_string(id));
  const std::string run = "run " + std::to_string(id);
  const fs::path expected = run_folder_path(id);
  const auto refuse = [&](const std::string& what) -> void {
    throw RunFolderError(describe(db.file()) + ": " + run + ": " + what);
  };
  // The row: "runs/ID"; an absolute path to the same folder is accepted (a
  // schema-1 program that still had the store open may have written one).
  const fs::path named(rec->directory);
  if (!(rec->directory == relative_run_folder(id) || (named.is_absolute() && same_folder(named, expected))))
    refuse("the store names its folder '" + rec->directory + "' where '" + relative_run_folder(id) +
           "' of the data folder (" + expected.string() +
           ") was expected; the row is damaged or was edited, so that folder is not used");
  // The folder on disk, where it exists: ID inside the real runs/ folder.
  std::error_code ec;
  if (fs::symlink_status(expected, ec).type() == fs::file_type::not_found) return expected;
  const fs::path real_runs = fs::canonical(impl_->data_dir / "runs", ec);
  if (ec) refuse("cannot resolve the folder '" + (impl_->data_dir / "runs").string() + "': " + ec.message());
  const fs::path real = fs::canonical(expected, ec);
  if (ec)
    refuse("its folder '" + expected.string() + "' cannot be resolved (" + ec.message() +
           "; a symbolic link to nothing?); it is not used");
  if (real != real_runs / std::to_string(id))
    refuse("its folder '" + expected.string() + "' is a symbolic link to '" + real.string() + "', not the folder " +
           (real_runs / std::to_string(id)).string() + " itself; the link is not followed");
  const fs::path real_data = fs::canonical(impl_->data_dir, ec);
  if (!ec && is_within(real_data, real))
    refuse("its folder '" + real.string() + "' holds the data folder '" + real_data.string() + "'; it is not used");
  for (const char* sub : {"checkpoints", "snapshots"}) {
    const fs::path p = expected / sub;
    if (fs::symlink_status(p, ec).type() == fs::file_type::not_found) continue;
    const fs::path r = fs::canonical(p, ec);
    if (ec || r != real / sub)
      refuse("its folder '" + p.string() + "' is a symbolic link to '" + (ec ? "nothing" : r.string()) +
             "', outside the run's folder " + real.string() + "; the link is not followed");
  }
  return expected;
}

std::optional<int64_t> RunStore::run_holding(const fs::path& file) const {
  std::error_code ec;
  const fs::path real_file = fs::weakly_canonical(fs::absolute(file), ec);
  if (ec) return std::nullopt;
  const fs::path real_runs = fs::weakly_canonical(impl_->data_dir / "runs", ec);
  if (ec) return std::nullopt;
  const fs::path rel = real_file.lexically_relative(real_runs);
  if (rel.empty() || !is_inside_relative(rel) || std::distance(rel.begin(), rel.end()) < 2) return std::nullopt;
  const std::string first = rel.begin()->string();
  int64_t id = 0;
  const auto [end, err] = std::from_chars(first.data(), first.data() + first.size(), id);
  if (err != std::errc() || end != first.data() + first.size() || id <= 0 || std::to_string(id) != first)
    return std::nullopt;
  try {
    run_folder(id);  // exists, and its row and folder are sound
  } catch (const StoreError&) {
    return std::nullopt;
  }
  return id;
}

void RunStore::export_csv(int64_t run, std::ostream& out) const {
  const Db& db = impl_->db;
  ReadTransaction read(db);  // names and rows from one state of the file
  std::unordered_map<int64_t, size_t> column;
  out << "step,wall_seconds";
  {
    Stmt st = db.query(kRunMetricNames);
    st.bind(1, run);
    while (st.step()) {
      column.emplace(st.i64(0), column.size());
      out << ',';
      write_csv_field(out, st.text(1));
    }
  }
  out << '\n';
  std::vector<double> cells(column.size());
  std::vector<bool> present(column.size());
  int64_t step = 0;
  double wall = 0;
  bool have_row = false;
  const auto flush = [&] {
    out << step << ',';
    write_number(out, wall);
    for (size_t i = 0; i < cells.size(); ++i) {
      out << ',';
      if (present[i]) write_number(out, cells[i]);
    }
    out << '\n';
    std::fill(present.begin(), present.end(), false);
  };
  Stmt st = db.query("SELECT step, wall, name_id, value FROM metrics WHERE run_id = ?1 ORDER BY step");
  st.bind(1, run);
  while (st.step()) {
    const int64_t s = st.i64(0);
    if (have_row && s != step) flush();
    if (!have_row || s != step) {
      step = s;
      wall = st.real(1);
      have_row = true;
    }
    const size_t c = column.at(st.i64(2));
    cells[c] = st.real(3);
    present[c] = true;
  }
  if (have_row) flush();
}

void RunStore::delete_run(int64_t run) {
  Db& db = impl_->db;
  WriteTransaction t(db);
  {
    Stmt st = db.query("SELECT 1 FROM runs WHERE id = ?1");
    if (!st.bind(1, run).step()) db.fail_plain("cannot delete run " + std::to_string(run) + ": no such run");
  }
  db.query("DELETE FROM metrics WHERE run_id = ?1").bind(1, run).run();
  db.query("DELETE FROM events WHERE run_id = ?1").bind(1, run).run();
  db.query("DELETE FROM snapshots WHERE run_id = ?1").bind(1, run).run();
  db.query("UPDATE runs SET parent_id = NULL WHERE parent_id = ?1").bind(1, run).run();
  db.query("DELETE FROM runs WHERE id = ?1").bind(1, run).run();
  t.commit();
}

fs::path RunStore::delete_run_and_folder(int64_t run) {
  const fs::path folder = run_folder(run);  // refuses a damaged row or a folder linking out, before anything is deleted
  delete_run(run);
  std::error_code ec;
  if (fs::symlink_status(folder, ec).type() == fs::file_type::not_found) return {};
  fs::remove_all(folder, ec);  // removes symbolic links inside, never what they point to
  if (ec)
    impl_->db.fail_plain("run " + std::to_string(run) + ": its records were deleted, but its folder '" +
                         folder.string() + "' could not be removed: " + ec.message());
  return folder;
}

}  // namespace smx::store
