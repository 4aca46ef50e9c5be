#include "tst_store.h"

#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "model/store/run_store.h"
#include "test_files.h"

using namespace smx::store;
using namespace smx_test;
namespace fs = std::filesystem;

namespace {

NewRun new_run(const std::string& name, std::optional<int64_t> parent = std::nullopt) {
  NewRun r;
  r.name = name;
  r.kind = parent ? "finetune" : "pretrain";
  r.config_json = R"({"model":{"preset":"demo"},"lr":0.0001})";
  r.device = "cpu";
  r.parent_id = parent;
  return r;
}
void sql(const fs::path& file, const std::string& statements) {
  sqlite3* db = nullptr;
  QCOMPARE(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, statements.c_str(), nullptr, nullptr, &err);
  const QString msg = err ? QString(err) : QString();
  sqlite3_free(err);
  sqlite3_close(db);
  QVERIFY2(rc == SQLITE_OK, qPrintable(msg));
}

std::string integrity_check(const fs::path& file) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  std::string result = "<failed>";
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    result = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return result;
}

std::vector<std::pair<std::string, double>> fifty_metrics(int64_t step) {
  std::vector<std::pair<std::string, double>> v;
  for (int i = 0; i < 50; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "layer%02d/fill", i);
    v.emplace_back(name, double(step) * 100 + i);
  }
  return v;
}

template <class F>
QString store_error_of(F&& f) {
  try {
    f();
  } catch (const StoreError& e) {
    return QString::fromStdString(e.what());
  }
  return QString();
}

}  // namespace

// ---------------------------------------------------------------- run store

void TestStore::createListFindRuns() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  const fs::path file = in(dir, "a/b/runs.sqlite");  // parent folders are created
  RunStore store(file);
  QCOMPARE(store.path(), file);
  QVERIFY(fs::exists(file));
  QVERIFY(store.list_runs().empty());
  QVERIFY(!store.find_run(1));

  const double before = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const int64_t a = store.create_run(new_run("first"));
  const int64_t b = store.create_run(new_run("second"));
  QVERIFY(a > 0);
  QVERIFY(b != a);

  const auto runs = store.list_runs();
  QCOMPARE(runs.size(), size_t(2));
  QCOMPARE(runs[0].id, b);  // newest first
  QCOMPARE(runs[1].id, a);

  const auto r = store.find_run(a);
  QVERIFY(r);
  QCOMPARE(r->name, std::string("first"));
  QCOMPARE(r->kind, std::string("pretrain"));
  QCOMPARE(r->status, std::string("created"));
  QCOMPARE(r->device, std::string("cpu"));
  QCOMPARE(r->config_json, new_run("first").config_json);
  QCOMPARE(r->directory, "runs/" + std::to_string(a));  // relative to the data folder, never absolute
  QVERIFY(!r->parent_id);
  QCOMPARE(r->last_step, int64_t(0));
  QVERIFY(r->created_at >= before - 1 && r->created_at < before + 60);
  QCOMPARE(r->updated_at, r->created_at);

  NewRun bad = new_run("bad json");
  bad.config_json = "{\"lr\": ";
  QVERIFY(store_error_of([&] { store.create_run(bad); }).contains("not valid JSON"));
  bad.config_json.clear();
  QCOMPARE(store.find_run(store.create_run(bad))->config_json, std::string("{}"));
}

void TestStore::parentRuns() {
  QTemporaryDir dir;
  RunStore store(in(dir, "runs.sqlite"));
  const int64_t pre = store.create_run(new_run("pretrain"));
  const int64_t fine = store.create_run(new_run("finetune", pre));
  QCOMPARE(store.find_run(fine)->parent_id, std::optional<int64_t>(pre));
  QCOMPARE(store.find_run(fine)->kind, std::string("finetune"));
  const QString err = store_error_of([&] { store.create_run(new_run("orphan", 999)); });
  QVERIFY2(err.contains("parent run 999 does not exist"), qPrintable(err));
  QCOMPARE(store.list_runs().size(), size_t(2));
}

void TestStore::statusAndLastStep() {
  QTemporaryDir dir;
  RunStore store(in(dir, "runs.sqlite"));
  const int64_t run = store.create_run(new_run("r"));
  const double created = store.find_run(run)->updated_at;
  for (const char* s : {"running", "paused", "running", "diverged", "finished", "stopped", "failed"}) {
    store.set_status(run, s);
    QCOMPARE(store.find_run(run)->status, std::string(s));
  }
  store.set_last_step(run, 4200);
  QCOMPARE(store.find_run(run)->last_step, int64_t(4200));
  store.set_config(run, R"({"lr":0.5})");
  QCOMPARE(store.find_run(run)->config_json, std::string(R"({"lr":0.5})"));
  QVERIFY(store_error_of([&] { store.set_config(run, "{"); }).contains("not valid JSON"));
  QCOMPARE(store.find_run(run)->config_json, std::string(R"({"lr":0.5})"));
  QVERIFY(store_error_of([&] { store.set_config(run + 1, "{}"); }).contains("no run with id"));
  QVERIFY(store.find_run(run)->updated_at >= created);
  QVERIFY(store_error_of([&] { store.set_status(run, "exploded"); }).contains("unknown status"));
  QVERIFY(store_error_of([&] { store.set_status(run + 1, "running"); }).contains("no run with id"));
  QVERIFY(store_error_of([&] { store.set_last_step(run + 1, 1); }).contains("no run with id"));
}

void TestStore::metricsRoundTrip() {
  QTemporaryDir dir;
  RunStore store(in(dir, "runs.sqlite"));
  const int64_t run = store.create_run(new_run("r"));
  const int64_t other = store.create_run(new_run("other"));
  const double inf = std::numeric_limits<double>::infinity();
  for (int64_t step = 0; step < 10; ++step)
    store.log_metrics(run, step, 0.5 * step,
                      {{"loss/total", 10.0 - step}, {"lr", 1e-4 * step}, {"grad_norm", step == 7 ? inf : 1.0}});
  store.log_metrics(run, 10, 5.0, {{"loss/total", std::nan("")}});  // a diverged step
  store.log_metrics(other, 3, 1.0, {{"lr", 42.0}, {"accuracy", 0.5}});

  QCOMPARE(store.metric_names(run), (std::vector<std::string>{"grad_norm", "loss/total", "lr"}));
  QCOMPARE(store.metric_names(other), (std::vector<std::string>{"accuracy", "lr"}));

  const auto loss = store.metric(run, "loss/total");
  QCOMPARE(loss.size(), size_t(11));
  for (int64_t step = 0; step < 10; ++step) {
    QCOMPARE(loss[step].step, step);
    QCOMPARE(loss[step].wall_seconds, 0.5 * step);
    QCOMPARE(loss[step].value, 10.0 - step);
  }
  QVERIFY(std::isnan(loss[10].value));
  QCOMPARE(store.metric(run, "grad_norm")[7].value, inf);
  QCOMPARE(store.metric(other, "lr").size(), size_t(1));
  QCOMPARE(store.metric(other, "lr")[0].value, 42.0);

  const auto tail = store.metric(run, "lr", 6);  // a live view's "only what is new"
  QCOMPARE(tail.size(), size_t(3));
  QCOMPARE(tail.front().step, int64_t(7));
  QCOMPARE(tail.back().step, int64_t(9));
  QVERIFY(store.metric(run, "lr", 9).empty());
  QVERIFY(store.metric(run, "no such metric").empty());
  QVERIFY(store.metric(run + 100, "lr").empty());

  store.log_metrics(run, 4, 99.0, {{"lr", 7.0}});  // logged again after a resume: replaced
  const auto lr = store.metric(run, "lr");
  QCOMPARE(lr.size(), size_t(10));
  QCOMPARE(lr[4].value, 7.0);
  QCOMPARE(lr[4].wall_seconds, 99.0);

  QVERIFY(store_error_of([&] { store.log_metrics(run + 100, 0, 0, {{"lr", 1}}); }).contains("no run with id"));
  QVERIFY(store_error_of([&] { store.log_metrics(run, 0, 0, {{"", 1}}); }).contains("must not be empty"));
  // The failed transactions left nothing behind, and the store still works.
  QCOMPARE(store.metric(run, "lr").size(), size_t(10));
  store.log_metrics(run, 11, 6.0, {{"new-after-rollback", 1.0}});
  QCOMPARE(store.metric(run, "new-after-rollback").size(), size_t(1));
}

void TestStore::eventsAndSnapshots() {
  QTemporaryDir dir;
  RunStore store(in(dir, "runs.sqlite"));
  const int64_t run = store.create_run(new_run("r"));
  store.log_event({run, 300, 12.5, "loss-spike", "loss 9.1 > 3x running mean", 9.1});
  store.log_event({run, 100, 4.0, "checkpoint", "ckpt-100.pt", 0});
  store.log_event({run, 300, 12.6, "nonfinite-loss", "NaN in MLM loss", std::nan("")});
  const auto ev = store.events(run);
  QCOMPARE(ev.size(), size_t(3));
  QCOMPARE(ev[0].kind, std::string("checkpoint"));  // by step, then in logging order
  QCOMPARE(ev[0].message, std::string("ckpt-100.pt"));
  QCOMPARE(ev[1].kind, std::string("loss-spike"));
  QCOMPARE(ev[1].step, int64_t(300));
  QCOMPARE(ev[1].wall_seconds, 12.5);
  QCOMPARE(ev[1].value, 9.1);
  QCOMPARE(ev[1].run_id, run);
  QCOMPARE(ev[2].kind, std::string("nonfinite-loss"));
  QVERIFY(std::isnan(ev[2].value));
  QVERIFY(store_error_of([&] { store.log_event({run + 1, 0, 0, "x", "y", 0}); }).contains("no run with id"));

  for (const char* bad : {"/etc/passwd", "../2/snap.smxsnap", "snap/../../x", ""})
    QVERIFY2(store_error_of([&] { store.add_snapshot(run, 1, bad); }).contains("must be relative to the run's folder"), bad);
  store.add_snapshot(run, 200, "snap/000200.smxsnap");
  store.add_snapshot(run, 100, "snap/000100.smxsnap");
  store.add_snapshot(run, 200, "snap/000200-b.smxsnap");  // same step again: replaced
  const auto sn = store.snapshots(run);
  QCOMPARE(sn.size(), size_t(2));
  QCOMPARE(sn[0].step, int64_t(100));
  QCOMPARE(sn[0].path, std::string("snap/000100.smxsnap"));
  QCOMPARE(sn[1].path, std::string("snap/000200-b.smxsnap"));
  QCOMPARE(sn[1].run_id, run);
  QCOMPARE(store.snapshot_file(sn[0]), fs::path(dir.path().toStdString()) / "runs" / std::to_string(run) / "snap/000100.smxsnap");
  QVERIFY(store.snapshots(run + 1).empty());
}

void TestStore::exportCsvWithMissingCell() {
  QTemporaryDir dir;
  RunStore store(in(dir, "runs.sqlite"));
  const int64_t run = store.create_run(new_run("r"));
  const int64_t other = store.create_run(new_run("other"));
  store.log_metrics(run, 0, 0.5, {{"loss", 2.5}, {"acc", 0.25}, {"grad,norm", 0.1}});
  store.log_metrics(run, 1, 1.0, {{"loss", 2.0}, {"grad,norm", 1e-7}});  // no accuracy at step 1
  store.log_metrics(run, 2, 1.5, {{"loss", std::nan("")}, {"acc", 0.5}, {"grad,norm", 3.0}});
  store.log_metrics(other, 1, 9.0, {{"other-metric", 1.0}});
  std::ostringstream out;
  store.export_csv(run, out);
  QCOMPARE(QString::fromStdString(out.str()), QString("step,wall_seconds,acc,\"grad,norm\",loss\n"
                                                       "0,0.5,0.25,0.1,2.5\n"
                                                       "1,1,,1e-07,2\n"
                                                       "2,1.5,0.5,3,nan\n"));
  std::ostringstream none;
  store.export_csv(run + 100, none);
  QCOMPARE(QString::fromStdString(none.str()), QString("step,wall_seconds\n"));
}

void TestStore::deleteRun() {
  QTemporaryDir dir;
  RunStore store(in(dir, "runs.sqlite"));
  const int64_t pre = store.create_run(new_run("pre"));
  const int64_t fine = store.create_run(new_run("fine", pre));
  const int64_t keep = store.create_run(new_run("keep"));
  for (int64_t r : {pre, keep}) {
    store.log_metrics(r, 0, 0, {{"loss", 1.0}});
    store.log_event({r, 0, 0, "checkpoint", "c", 0});
    store.add_snapshot(r, 0, "s");
  }
  store.delete_run(pre);
  QVERIFY(!store.find_run(pre));
  QVERIFY(store.metric(pre, "loss").empty());
  QVERIFY(store.metric_names(pre).empty());
  QVERIFY(store.events(pre).empty());
  QVERIFY(store.snapshots(pre).empty());
  QVERIFY(store.find_run(fine));
  QVERIFY(!store.find_run(fine)->parent_id);  // the child stays, without a parent
  QCOMPARE(store.metric(keep, "loss").size(), size_t(1));
  QCOMPARE(store.events(keep).size(), size_t(1));
  QCOMPARE(store.snapshots(keep).size(), size_t(1));
  QCOMPARE(store.list_runs().size(), size_t(2));
  QVERIFY(store_error_of([&] { store.delete_run(pre); }).contains("no such run"));
  QVERIFY(store.create_run(new_run("later")) > keep);  // ids are never reused
}

namespace {

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

// A run folder with a checkpoint and a snapshot in it.
void fill_run_folder(const fs::path& folder) {
  write_file(folder / "checkpoints" / "step-000004.ckpt", "weights of " + folder.string());
  write_file(folder / "snapshots" / "step-000004.snap", "snapshot");
}

// A fingerprint without the store's files (runs.sqlite, -wal, -shm).
std::map<std::string, std::string> without_store(std::map<std::string, std::string> m) {
  for (auto it = m.begin(); it != m.end();) it = it->first.rfind("runs.sqlite", 0) == 0 ? m.erase(it) : std::next(it);
  return m;
}

template <class F>
QString folder_error_of(F&& f) {
  try {
    f();
  } catch (const RunFolderError& e) {
    return QString::fromStdString(e.what());
  }
  return QString();
}

}  // namespace

void TestStore::runFolderIsDerived() {
  QTemporaryDir dir;
  const fs::path data = dir.path().toStdString();
  RunStore store(data / "runs.sqlite");
  const int64_t a = store.create_run(new_run("a"));
  QCOMPARE(store.data_dir(), data);
  QCOMPARE(store.run_folder(a), data / "runs" / std::to_string(a));  // no folder yet: fine, nothing to check
  fill_run_folder(store.run_folder(a));
  QCOMPARE(store.run_folder(a), data / "runs" / std::to_string(a));
  QVERIFY(store_error_of([&] { store.run_folder(a + 1); }).contains("no run with id"));
  // The run whose folder holds a file: only inside runs/ID of an existing run.
  QVERIFY(store.run_holding(data / "runs" / std::to_string(a) / "checkpoints" / "step-000004.ckpt") == a);
  QVERIFY(!store.run_holding(data / "runs" / std::to_string(a + 1) / "checkpoints" / "x.ckpt"));
  QVERIFY(!store.run_holding(data / "elsewhere.ckpt"));
  QVERIFY(!store.run_holding(data / "runs" / std::to_string(a)));  // the folder itself is no file in it
  // A store opened through a relative path still knows its absolute data folder.
  const fs::path cwd = fs::current_path();
  fs::current_path(data);
  RunStore relative("runs.sqlite");
  fs::current_path("/");
  QCOMPARE(relative.run_folder(a), data / "runs" / std::to_string(a));
  fs::current_path(cwd);
}

void TestStore::migratesAbsoluteFolders() {
  QTemporaryDir dir;
  const fs::path data = fs::path(dir.path().toStdString()) / "data";
  const fs::path file = data / "runs.sqlite";
  {
    RunStore store(file);
    for (int i = 1; i <= 7; ++i) store.create_run(new_run("r" + std::to_string(i)));
    store.add_snapshot(1, 4, "snapshots/step-000004.snap");
    store.add_snapshot(2, 4, "snapshots/step-000004.snap");
    store.add_snapshot(3, 4, "snapshots/step-000004.snap");
  }
  // What schema 1 held: absolute folders, some of them damaged.
  const std::string here = data.string(), other = "/mnt/old-disk/smx";
  sql(file, "PRAGMA user_version = 1;"
            "UPDATE runs SET directory = '" + here + "/runs/1' WHERE id = 1;"
            "UPDATE runs SET directory = '" + other + "/runs/2/' WHERE id = 2;"  // copied or moved from there
            "UPDATE runs SET directory = '/' WHERE id = 3;"
            "UPDATE runs SET directory = '" + here + "' WHERE id = 4;"
            "UPDATE runs SET directory = '' WHERE id = 5;"                       // killed before its folder was set
            "UPDATE runs SET directory = '" + here + "/runs/1' WHERE id = 6;"    // another run's folder
            "UPDATE runs SET directory = 'runs/7' WHERE id = 7;"
            "UPDATE snapshots SET path = '" + here + "/runs/1/snapshots/step-000004.snap' WHERE run_id = 1;"
            "UPDATE snapshots SET path = '" + other + "/runs/2/snapshots/step-000004.snap' WHERE run_id = 2;"
            "UPDATE snapshots SET path = '/etc/passwd' WHERE run_id = 3;");
  RunStore store(file);
  const auto dir_of = [&](int64_t id) { return store.find_run(id)->directory; };
  QCOMPARE(dir_of(1), std::string("runs/1"));
  QCOMPARE(dir_of(2), std::string("runs/2"));
  QCOMPARE(dir_of(3), std::string("/"));  // left as it was, and refused:
  QCOMPARE(dir_of(4), here);
  QCOMPARE(dir_of(5), std::string("runs/5"));
  QCOMPARE(dir_of(6), here + "/runs/1");
  QCOMPARE(dir_of(7), std::string("runs/7"));
  for (int64_t id : {1, 2, 5, 7}) QCOMPARE(store.run_folder(id), data / "runs" / std::to_string(id));
  for (int64_t id : {3, 4, 6}) {
    const QString err = folder_error_of([&] { store.run_folder(id); });
    QVERIFY2(err.contains(QString("run %1: the store names its folder '%2'").arg(id).arg(QString::fromStdString(dir_of(id)))),
             qPrintable(err));
    QVERIFY2(err.contains(QString("'runs/%1'").arg(id)) && err.contains("damaged"), qPrintable(err));
  }
  // The run that came from another data folder says so.
  const auto events = store.events(2);
  QCOMPARE(events.size(), size_t(1));
  QCOMPARE(events[0].kind, std::string("folder-relocated"));
  QVERIFY(events[0].message.find(other + "/runs/2/") != std::string::npos);
  QVERIFY(store.events(1).empty());
  // Snapshot paths: relative to the run folder, or refused.
  QCOMPARE(store.snapshots(1)[0].path, std::string("snapshots/step-000004.snap"));
  QCOMPARE(store.snapshot_file(store.snapshots(2)[0]), data / "runs" / "2" / "snapshots" / "step-000004.snap");
  const QString err = store_error_of([&] { store.snapshot_file(store.snapshots(3)[0]); });
  QVERIFY2(err.contains("'/etc/passwd'") && err.contains("not read"), qPrintable(err));
  // Migrated once: a second open changes nothing.
  { RunStore again(file); }
  QCOMPARE(dir_of(2), std::string("runs/2"));
  QCOMPARE(store.events(2).size(), size_t(1));
}

void TestStore::damagedRowsDeleteNothing() {
  QTemporaryDir dir;
  const fs::path root = dir.path().toStdString();
  const fs::path data = root / "data", outside = root / "outside";
  write_file(outside / "thesis.tex", "years of work");
  write_file(data / "tokenizers" / "wordnet-4000.model", "pieces");
  const fs::path file = data / "runs.sqlite";
  RunStore store(file);
  const int64_t victim = store.create_run(new_run("victim"));
  const int64_t other = store.create_run(new_run("other"));
  fill_run_folder(store.run_folder(victim));
  fill_run_folder(store.run_folder(other));
  const auto outside_before = tree_fingerprint(outside);
  const std::string tampered[] = {outside.string(), data.string(), data.string() + "/", "/", root.string(),
                                  "..", ".", "runs", "runs/", "runs/../..", "runs/" + std::to_string(other),
                                  data.string() + "/runs", "runs/" + std::to_string(victim) + "/../..",
                                  outside.string() + "/runs/" + std::to_string(victim)};
  for (const std::string& value : tampered) {
    sql(file, "UPDATE runs SET directory = '" + value + "' WHERE id = " + std::to_string(victim) + ";");
    const auto data_before = tree_fingerprint(data);
    const QString err = folder_error_of([&] { store.delete_run_and_folder(victim); });
    QVERIFY2(err.contains(QString("run %1: the store names its folder '%2'").arg(victim).arg(QString::fromStdString(value))),
             qPrintable(QString::fromStdString(value) + " -> " + err));
    QVERIFY2(err.contains(QString::fromStdString((data / "runs" / std::to_string(victim)).string())), qPrintable(err));
    QVERIFY2(store.find_run(victim), "the run's records were deleted");
    QVERIFY2(tree_fingerprint(outside) == outside_before, value.c_str());
    // Only the store's own files (WAL) may change; every other file is as it was.
    QVERIFY2(without_store(tree_fingerprint(data)) == without_store(data_before), value.c_str());
  }
  // Repaired, the run deletes as usual: its own folder and nothing else.
  sql(file, "UPDATE runs SET directory = 'runs/" + std::to_string(victim) + "' WHERE id = " + std::to_string(victim) + ";");
  QCOMPARE(store.delete_run_and_folder(victim), data / "runs" / std::to_string(victim));
  QVERIFY(!fs::exists(data / "runs" / std::to_string(victim)));
  QVERIFY(fs::exists(data / "runs" / std::to_string(other) / "checkpoints" / "step-000004.ckpt"));
  QVERIFY(fs::exists(data / "tokenizers" / "wordnet-4000.model"));
  QVERIFY(tree_fingerprint(outside) == outside_before);
  // A run that never got a folder deletes too.
  const int64_t bare = store.create_run(new_run("bare"));
  QCOMPARE(store.delete_run_and_folder(bare), fs::path());
  QVERIFY(!store.find_run(bare));
}

void TestStore::symlinksAreNotFollowed() {
  QTemporaryDir dir;
  const fs::path root = dir.path().toStdString();
  const fs::path data = root / "data", outside = root / "outside";
  write_file(outside / "checkpoints" / "step-000004.ckpt", "not ours");
  write_file(outside / "notes.txt", "keep me");
  RunStore store(data / "runs.sqlite");
  const int64_t linked = store.create_run(new_run("linked"));
  const int64_t sub_linked = store.create_run(new_run("sub-linked"));
  const int64_t inner_link = store.create_run(new_run("inner-link"));
  fs::create_directories(data / "runs");
  fs::create_directory_symlink(outside, store.run_folder_path(linked));  // runs/1 -> outside
  fs::create_directories(store.run_folder_path(sub_linked));
  fs::create_directory_symlink(outside / "checkpoints", store.run_folder_path(sub_linked) / "checkpoints");
  fill_run_folder(store.run_folder_path(inner_link));
  fs::create_symlink(outside / "notes.txt", store.run_folder_path(inner_link) / "notes-link.txt");
  fs::create_directory_symlink(outside, store.run_folder_path(inner_link) / "outside-link");
  const auto outside_before = tree_fingerprint(outside);

  QString err = folder_error_of([&] { store.delete_run_and_folder(linked); });
  QVERIFY2(err.contains("is a symbolic link to '" + QString::fromStdString(fs::canonical(outside).string()) + "'") &&
               err.contains("not followed"),
           qPrintable(err));
  QVERIFY(store.find_run(linked));
  err = folder_error_of([&] { store.run_folder(sub_linked); });
  QVERIFY2(err.contains("checkpoints' is a symbolic link") && err.contains("outside the run's folder"), qPrintable(err));
  QVERIFY(folder_error_of([&] { store.delete_run_and_folder(sub_linked); }).contains("not followed"));
  QVERIFY(store.find_run(sub_linked));
  // Links inside a run's own folder are removed with it, their targets kept.
  QCOMPARE(store.delete_run_and_folder(inner_link), store.run_folder_path(inner_link));
  QVERIFY(!fs::exists(fs::symlink_status(store.run_folder_path(inner_link))));
  QVERIFY(tree_fingerprint(outside) == outside_before);

  // runs/ itself may live on another disk: a link there is the user's choice.
  const fs::path big = root / "big-disk-runs";
  fs::create_directories(big);
  const fs::path data2 = root / "data2";
  fs::create_directories(data2);
  fs::create_directory_symlink(big, data2 / "runs");
  RunStore store2(data2 / "runs.sqlite");
  const int64_t r = store2.create_run(new_run("on the big disk"));
  fill_run_folder(store2.run_folder(r));
  QVERIFY(fs::exists(big / std::to_string(r) / "checkpoints" / "step-000004.ckpt"));
  QCOMPARE(store2.delete_run_and_folder(r), data2 / "runs" / std::to_string(r));
  QVERIFY(!fs::exists(big / std::to_string(r)));
  QVERIFY(fs::is_directory(big));
}

void TestStore::copiedDataFolderIsIndependent() {
  QTemporaryDir dir;
  const fs::path root = dir.path().toStdString();
  const fs::path original = root / "original", copy = root / "copy";
  int64_t a = 0, b = 0;
  {
    RunStore store(original / "runs.sqlite");
    a = store.create_run(new_run("a"));
    b = store.create_run(new_run("b"));
    fill_run_folder(store.run_folder(a));
    fill_run_folder(store.run_folder(b));
    store.add_snapshot(a, 4, "snapshots/step-000004.snap");
  }
  const auto before = tree_fingerprint(original);
  fs::copy(original, copy, fs::copy_options::recursive | fs::copy_options::copy_symlinks);  // as cp -a
  {
    RunStore store(copy / "runs.sqlite");
    QCOMPARE(store.run_folder(a), copy / "runs" / std::to_string(a));
    QCOMPARE(store.snapshot_file(store.snapshots(a)[0]), copy / "runs" / std::to_string(a) / "snapshots" / "step-000004.snap");
    QCOMPARE(store.delete_run_and_folder(a), copy / "runs" / std::to_string(a));
    write_file(store.run_folder(b) / "checkpoints" / "step-000008.ckpt", "resumed in the copy");
  }
  QVERIFY(!fs::exists(copy / "runs" / std::to_string(a)));
  QVERIFY(tree_fingerprint(original) == before);  // byte for byte, every file
  RunStore store(original / "runs.sqlite");
  QVERIFY(store.find_run(a));
}

void TestStore::twoConnectionsSeeEachOther() {
  QTemporaryDir dir;
  const fs::path file = in(dir, "runs.sqlite");
  RunStore writer(file);
  RunStore reader(file);
  const int64_t run = writer.create_run(new_run("live"));
  QCOMPARE(reader.list_runs().size(), size_t(1));
  writer.set_status(run, "running");
  QCOMPARE(reader.find_run(run)->status, std::string("running"));

  for (int64_t step = 0; step < 5; ++step) writer.log_metrics(run, step, step * 0.1, {{"loss", 5.0 - step}});
  auto seen = reader.metric(run, "loss");
  QCOMPARE(seen.size(), size_t(5));
  for (int64_t step = 5; step < 8; ++step) writer.log_metrics(run, step, step * 0.1, {{"loss", 5.0 - step}});
  const auto fresh = reader.metric(run, "loss", seen.back().step);
  QCOMPARE(fresh.size(), size_t(3));
  QCOMPARE(fresh.front().step, int64_t(5));

  reader.log_event({run, 7, 0.7, "stopped", "stopped from the studio", 0});  // the GUI writes too
  QCOMPARE(writer.events(run).size(), size_t(1));
  QCOMPARE(writer.events(run)[0].kind, std::string("stopped"));
  QCOMPARE(integrity_check(file), std::string("ok"));
}

void TestStore::concurrentCreation() {
  // Several connections (here threads, as well processes) open a store that
  // does not exist yet: one creates the schema, the others find it.
  QTemporaryDir dir;
  for (int round = 0; round < 10; ++round) {
    const fs::path file = in(dir, ("runs" + std::to_string(round) + ".sqlite").c_str());
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    std::string first_error;
    std::mutex error_mutex;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        try {
          RunStore store(file);
          const int64_t run = store.create_run(new_run("thread " + std::to_string(t)));
          store.log_metrics(run, 0, 0, {{"loss", double(t)}});
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lock(error_mutex);
          if (failures++ == 0) first_error = e.what();
        }
      });
    for (auto& th : threads) th.join();
    QVERIFY2(failures == 0, first_error.c_str());
    RunStore store(file);
    QCOMPARE(store.list_runs().size(), size_t(4));
  }
}

void TestStore::refusesForeignOrDamagedFiles_data() {
  QTest::addColumn<QString>("kind");
  QTest::addColumn<QRegularExpression>("expected");
  const auto literally = [](const char* text) { return QRegularExpression(QRegularExpression::escape(text)); };
  QTest::newRow("other application's SQLite") << "foreign-app" << literally("another application");
  QTest::newRow("SQLite without application_id") << "no-app-id" << literally("another application");
  QTest::newRow("text file") << "text" << literally("not an SQLite database");
  QTest::newRow("truncated store") << "truncated" << literally("corrupt or truncated");
  QTest::newRow("store with a damaged page") << "damaged" << literally("corrupt or truncated");
  // The damaged page itself must be named, in either SQLite's wording: 3.40 (Debian 12)
  // "Page 4: btreeInitPage() returns error code 11", 3.46 (Debian 13) "Tree 4 page 4: ...".
  QTest::newRow("store with a damaged index page")
      << "damaged-index" << QRegularExpression(R"(corrupt or truncated \(quick_check: (Page 4|Tree 4 page 4): )");
  QTest::newRow("newer schema") << "newer" << literally("newer version");
}

void TestStore::refusesForeignOrDamagedFiles() {
  QFETCH(QString, kind);
  QFETCH(QRegularExpression, expected);
  QTemporaryDir dir;
  const fs::path file = in(dir, "runs.sqlite");
  if (kind == "foreign-app") {
    sql(file, "PRAGMA application_id = 1234; CREATE TABLE notes(x TEXT); INSERT INTO notes VALUES('mine');");
  } else if (kind == "no-app-id") {
    sql(file, "CREATE TABLE notes(x TEXT); INSERT INTO notes VALUES('mine');");
  } else if (kind == "text") {
    write_bytes(file, QByteArray("step,loss\n0,2.5\n1,2.25\n").repeated(200));
  } else if (kind == "truncated" || kind.startsWith("damaged") || kind == "newer") {
    {
      RunStore store(file);
      const int64_t run = store.create_run(new_run("r"));
      for (int64_t step = 0; step < 400; ++step) store.log_metrics(run, step, step, fifty_metrics(step));
    }  // closing the last connection checkpoints the WAL into the file
    QVERIFY(!fs::exists(file.string() + "-wal"));
    if (kind == "truncated") {
      const QByteArray all = file_bytes(file);
      QVERIFY(all.size() > 100000);
      write_bytes(file, all.left(all.size() / 2));
    } else if (kind.startsWith("damaged")) {
      // A page in the middle of the metrics, or the root page of the first
      // index (page 4: runs_by_parent), which only quick_check reads.
      QByteArray all = file_bytes(file);
      const int page = 4096, at = kind == "damaged" ? (all.size() / 2) / page * page : 3 * page;
      for (int i = 0; i < page; ++i) all[at + i] = char(0xa5 ^ (i * 7));
      write_bytes(file, all);
    } else {
      sql(file, "PRAGMA user_version = 99;");
    }
  }
  const QByteArray before = file_bytes(file);
  const QString err = store_error_of([&] { RunStore store(file); });
  QVERIFY2(err.contains(QString::fromStdString(file.string())), qPrintable(err));
  QVERIFY2(expected.isValid(), qPrintable(expected.errorString()));
  QVERIFY2(err.contains(expected), qPrintable(err + "\ndoes not match: " + expected.pattern()));
  QVERIFY2(file_bytes(file) == before, "the refused file was modified");
  qInfo("%s", qPrintable(err));
}

// Sets environment variables for one test and puts the old values back.
class ScopedEnv {
 public:
  void set(const char* name, const QByteArray& value) {
    remember(name);
    qputenv(name, value);
  }
  void unset(const char* name) {
    remember(name);
    qunsetenv(name);
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_)
      if (value)
        qputenv(name.constData(), *value);
      else
        qunsetenv(name.constData());
  }

 private:
  void remember(const char* name) {
    for (const auto& s : saved_)
      if (s.first == name) return;
    saved_.push_back({name, qEnvironmentVariableIsSet(name) ? std::optional(qgetenv(name)) : std::nullopt});
  }
  std::vector<std::pair<QByteArray, std::optional<QByteArray>>> saved_;
};

void TestStore::defaultPaths() {
  QTemporaryDir config;  // no settings file in it
  ScopedEnv env;
  env.set("XDG_CONFIG_HOME", config.path().toUtf8());
  qputenv("SMX_DATA_DIR", "/data/smx");
  qputenv("XDG_DATA_HOME", "/xdg");
  qputenv("HOME", "/home/someone");
  QCOMPARE(default_data_dir(), fs::path("/data/smx"));
  QCOMPARE(default_store_path(), fs::path("/data/smx/runs.sqlite"));
  qunsetenv("SMX_DATA_DIR");
  QCOMPARE(default_data_dir(), fs::path("/xdg/sparse-mixer-studio"));
  qputenv("XDG_DATA_HOME", "relative/ignored");
  QCOMPARE(default_data_dir(), fs::path("/home/someone/.local/share/sparse-mixer-studio"));
  qunsetenv("XDG_DATA_HOME");
  QCOMPARE(default_store_path(), fs::path("/home/someone/.local/share/sparse-mixer-studio/runs.sqlite"));
  QCOMPARE(settings_file(), fs::path(config.path().toStdString()) / "sparse-mixer-studio" / "settings.json");
  env.set("XDG_CONFIG_HOME", "relative/ignored");
  QCOMPARE(settings_file(), fs::path("/home/someone/.config/sparse-mixer-studio/settings.json"));
}

void TestStore::dataDirSetting() {
  QTemporaryDir tmp;
  const fs::path root = tmp.path().toStdString();
  ScopedEnv env;
  env.set("HOME", (root / "home").c_str());
  env.set("XDG_CONFIG_HOME", (root / "config").c_str());
  env.unset("SMX_DATA_DIR");
  env.unset("XDG_DATA_HOME");
  const fs::path file = root / "config" / "sparse-mixer-studio" / "settings.json";
  QCOMPARE(settings_file(), file);
  QCOMPARE(resolve_data_dir().source, std::string("default"));

  // Chosen once: made absolute and normal, created, and wins over XDG_DATA_HOME.
  save_data_dir_setting(root / "x" / ".." / "chosen");
  QVERIFY(fs::is_directory(root / "chosen"));
  env.set("XDG_DATA_HOME", (root / "xdg").c_str());
  auto choice = resolve_data_dir();
  QCOMPARE(choice.dir, root / "chosen");
  QVERIFY2(choice.source == "settings file " + file.string(), choice.source.c_str());
  // SMX_DATA_DIR still wins.
  env.set("SMX_DATA_DIR", (root / "env").c_str());
  QCOMPARE(resolve_data_dir().source, std::string("SMX_DATA_DIR"));
  env.unset("SMX_DATA_DIR");

  // Other keys of the file survive a change; no temporary file is left.
  {
    std::ofstream out(file);
    out << R"({"data_dir": "/somewhere", "studio": {"theme": "dark"}})";
  }
  save_data_dir_setting(root / "second");
  QCOMPARE(default_data_dir(), root / "second");
  QVERIFY(file_bytes(file).contains("\"theme\""));
  QVERIFY(!fs::exists(file.string() + ".tmp"));
  // Forgetting the choice falls back to XDG_DATA_HOME.
  save_data_dir_setting({});
  QCOMPARE(default_data_dir(), root / "xdg" / "sparse-mixer-studio");
  QVERIFY(file_bytes(file).contains("\"theme\""));

  // A damaged or wrong file is an error naming it, and is never rewritten.
  for (const char* text : {"{not json", "[1, 2]", R"({"data_dir": 5})", R"({"data_dir": ""})", R"({"data_dir": "relative/path"})"}) {
    {
      std::ofstream out(file, std::ios::trunc);
      out << text;
    }
    const QString err = store_error_of([] { resolve_data_dir(); });
    QVERIFY2(err.contains(QString::fromStdString(file.string())), qPrintable(err));
    if (std::string(text).find("data_dir") == std::string::npos) {
      QVERIFY2(store_error_of([&] { save_data_dir_setting(root / "third"); }).contains("not a JSON object"), text);
      QCOMPARE(file_bytes(file), QByteArray(text));
    }
  }
  // A folder that cannot be created is refused; the setting stays as it was.
  std::ofstream(file, std::ios::trunc) << R"({"data_dir": "/kept"})";
  std::ofstream(root / "plain-file") << "x";
  const QString err = store_error_of([&] { save_data_dir_setting(root / "plain-file" / "sub"); });
  QVERIFY2(err.contains("cannot create the data folder"), qPrintable(err));
  QCOMPARE(default_data_dir(), fs::path("/kept"));
}

void TestStore::survivesKilledWriter() {
  QTemporaryDir dir;
  const fs::path file = in(dir, "runs.sqlite");
  int64_t run = 0;
  {
    RunStore store(file);
    run = store.create_run(new_run("headless"));
  }
  int64_t logged = 0;
  for (int round = 0; round < 3; ++round) {
    const int64_t first_step = logged;
    int ready[2];
    QCOMPARE(::pipe(ready), 0);
    const pid_t child = ::fork();
    QVERIFY(child >= 0);
    if (child == 0) {  // the writer: log 50 metrics per step until killed
      ::close(ready[0]);
      try {
        RunStore store(file);
        for (int64_t step = first_step;; ++step) {
          store.log_metrics(run, step, step * 0.05, fifty_metrics(step));
          if (step == first_step && ::write(ready[1], "1", 1) != 1) break;  // "the first step is in"
        }
      } catch (...) {
      }
      ::_exit(3);
    }
    ::close(ready[1]);
    // Kill ~200 ms after the writer's first step, however slowly it started.
    pollfd wait_for{ready[0], POLLIN, 0};
    const bool started = ::poll(&wait_for, 1, 30000) == 1;
    ::close(ready[0]);
    if (started) std::this_thread::sleep_for(std::chrono::milliseconds(150 + 50 * round));
    ::kill(child, SIGKILL);
    int status = 0;
    QCOMPARE(::waitpid(child, &status, 0), child);
    QVERIFY2(started, "the writer did not log its first step within 30 s");
    QVERIFY2(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the writer ended before it was killed");

    RunStore store(file);  // runs quick_check
    QCOMPARE(integrity_check(file), std::string("ok"));
    const auto names = store.metric_names(run);
    QCOMPARE(names.size(), size_t(50));
    const auto steps = store.metric(run, names[0]);
    QVERIFY2(int64_t(steps.size()) > logged, "the writer logged nothing before it was killed");
    logged = int64_t(steps.size());
    // Every committed step has all 50 values: no half-written step.
    for (size_t i = 0; i < names.size(); ++i) {
      const auto points = store.metric(run, names[i]);
      QCOMPARE(points.size(), steps.size());
      for (size_t k = 0; k < points.size(); ++k) {
        QCOMPARE(points[k].step, int64_t(k));
        QCOMPARE(points[k].value, double(k) * 100 + double(i));
      }
    }
    qInfo("round %d: %lld steps of 50 metrics in the store", round, static_cast<long long>(logged));
  }
}

namespace {

// A store whose run has one million points of "loss" (10 / (step + 1)), made
// in one statement (through log_metrics it would take a while); returns the run.
int64_t million_point_store(const fs::path& file) {
  int64_t run = 0;
  {
    RunStore store(file);
    run = store.create_run(new_run("long"));
    store.log_metrics(run, 0, 0, {{"loss", 10.0}, {"lr", 0.0}});
  }
  sql(file, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 999999) "
            "INSERT INTO metrics(run_id, name_id, step, wall, value) "
            "SELECT " + std::to_string(run) + ", (SELECT id FROM metric_names WHERE name = 'loss'), i, i * 0.05, "
            "10.0 / (i + 1) FROM c;");
  return run;
}

}  // namespace

// Correctness here; the time is the benchmark's result (run `tst_store
// readsMillionPoints` to see it), never a limit: a loaded machine is slower.
void TestStore::readsMillionPoints() {
  QTemporaryDir dir;
  const fs::path file = in(dir, "runs.sqlite");
  const int64_t run = million_point_store(file);
  RunStore store(file);  // with quick_check
  std::vector<MetricPoint> points;
  QBENCHMARK_ONCE { points = store.metric(run, "loss"); }
  QCOMPARE(points.size(), size_t(1000000));
  QCOMPARE(points[0].value, 10.0);
  QCOMPARE(points[999999].step, int64_t(999999));
  QCOMPARE(points[500000].value, 10.0 / 500001);
  QCOMPARE(points[500000].wall_seconds, 500000 * 0.05);
}

// A live view asks only for the points after the last one it has.
void TestStore::readsNewPointsOfMillion() {
  QTemporaryDir dir;
  const fs::path file = in(dir, "runs.sqlite");
  const int64_t run = million_point_store(file);
  RunStore store(file);
  std::vector<MetricPoint> tail;
  QBENCHMARK { tail = store.metric(run, "loss", 999000); }
  QCOMPARE(tail.size(), size_t(999));
  QCOMPARE(tail.front().step, int64_t(999001));
  QCOMPARE(tail.back().step, int64_t(999999));
}

void TestStore::benchmarkLogStep() {
  QTemporaryDir dir;
  RunStore store(in(dir, "runs.sqlite"));
  const int64_t run = store.create_run(new_run("bench"));
  int64_t step = 0;
  auto values = fifty_metrics(0);
  QBENCHMARK {
    store.log_metrics(run, step, step * 0.05, values);
    ++step;
  }
  QCOMPARE(store.metric(run, values[0].first).size(), size_t(step));
}

QTEST_MAIN(TestStore)
