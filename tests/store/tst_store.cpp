#include "tst_store.h"

#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <QElapsedTimer>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "model/store/run_store.h"
#include "model/store/snapshot.h"

using namespace smx::store;
using namespace smx::telemetry;
namespace fs = std::filesystem;

namespace {

fs::path in(const QTemporaryDir& dir, const char* name) { return fs::path(dir.path().toStdString()) / name; }

NewRun new_run(const std::string& name, std::optional<int64_t> parent = std::nullopt) {
  NewRun r;
  r.name = name;
  r.kind = parent ? "finetune" : "pretrain";
  r.config_json = R"({"model":{"preset":"demo"},"lr":0.0001})";
  r.device = "cpu";
  r.directory = "/tmp/runs/" + name;
  r.parent_id = parent;
  return r;
}

QByteArray file_bytes(const fs::path& p) {
  QFile f(QString::fromStdString(p.string()));
  if (!f.open(QIODevice::ReadOnly)) return QByteArray("<unreadable>");
  return f.readAll();
}

void write_bytes(const fs::path& p, const QByteArray& bytes) {
  QFile f(QString::fromStdString(p.string()));
  QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
  QCOMPARE(f.write(bytes), bytes.size());
}

/// Runs SQL on a file with SQLite directly (not through RunStore).
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

// CRC-32 (IEEE, as zlib), computed bit by bit: an independent reference.
uint32_t reference_crc32(const QByteArray& data) {
  uint32_t crc = 0xffffffffu;
  for (char ch : data) {
    crc ^= uint8_t(ch);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put_u32(QByteArray& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.append(char(uint8_t(v >> (8 * i))));
}
void put_u64(QByteArray& b, uint64_t v) {
  put_u32(b, uint32_t(v));
  put_u32(b, uint32_t(v >> 32));
}

/// A snapshot file built by hand: magic, version, payload size, payload, CRC.
QByteArray crafted_snapshot(uint32_t version, const QByteArray& payload) {
  QByteArray b("SMXSNAP\x1a", 8);
  put_u32(b, version);
  put_u64(b, uint64_t(payload.size()));
  b.append(payload);
  put_u32(b, reference_crc32(b));
  return b;
}

/// Independent float16 decoding for the exhaustive check.
double reference_half(uint16_t h) {
  const int e = (h >> 10) & 31, m = h & 1023;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 0) return sign * std::ldexp(double(m), -24);
  if (e == 31) return m ? std::numeric_limits<double>::quiet_NaN() : sign * HUGE_VAL;
  return sign * std::ldexp(1.0 + m / 1024.0, e - 15);
}

Snapshot make_snapshot(int moe_layers, int experts, int tokens, int mixing_layers, std::vector<int> sizes,
                       uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Snapshot s;
  s.step = 123456789012LL;
  s.wall_seconds = 3600.125;
  for (int l = 0; l < moe_layers; ++l) {
    MoeLayerStats m;
    m.layer = 5 + l;
    m.router = l % 2 ? "tokens-choose" : "experts-choose";
    m.num_experts = experts;
    m.capacity = 32;
    m.groups = 2;
    m.tokens_per_group = 256;
    for (int e = 0; e < experts; ++e) {
      m.tokens_per_expert.push_back(float(e * 3 + l));
      m.fill.push_back(0.125f * float(e % 8));
    }
    m.experts_per_token = {0.25f, 0.5f, 0.125f, 0.125f};
    m.dropped_fraction = 0.03125f;
    m.unrouted_fraction = 0.1f;
    m.router_entropy = 1.7f;
    m.load_balancing_loss = 1.01f;
    m.z_loss = 2.5e-3f;
    m.router_logit_max = 7.25f;
    s.moe.push_back(m);

    ProbeRouting p;
    p.layer = m.layer;
    p.num_experts = experts;
    for (int t = 0; t < tokens; ++t) {
      p.tokens.push_back(t == 0 ? "[CLS]" : "\xe2\x96\x81word" + std::to_string(t));  // "▁word7"
      for (int e = 0; e < experts; ++e) {
        p.probs.push_back(std::abs(u(rng)));
        p.assigned.push_back(uint8_t((t + e) % 3 == 0));
        if (l % 2) p.wanted.push_back(uint8_t((t * e) % 5 == 0));
      }
    }
    s.probe.push_back(p);
  }
  for (int l = 0; l < mixing_layers; ++l) {
    MixingSnapshot m;
    m.layer = l;
    m.kind = "linear";
    for (int n : sizes) {
      Matrix x;
      x.name = n == sizes.front() ? "hidden" : "sequence";
      x.rows = x.cols = n;
      for (int i = 0; i < n * n; ++i) x.values.push_back(u(rng) * (i % 7 == 0 ? 1e-3f : 1.f));
      m.matrices.push_back(x);
    }
    s.mixing.push_back(m);
  }
  return s;
}

bool close_half(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::abs(a - b) <= std::abs(a) * 4.9e-4f + 6e-8f;  // half: 11-bit significand, subnormal step 2^-24
}

template <class F>
QString snapshot_error_of(F&& f) {
  try {
    f();
  } catch (const SnapshotError& e) {
    return QString::fromStdString(e.what());
  }
  return QString();
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
  QCOMPARE(r->directory, std::string("/tmp/runs/first"));
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
  store.set_directory(run, "/data/runs/7");
  QCOMPARE(store.find_run(run)->directory, std::string("/data/runs/7"));
  store.set_config(run, R"({"lr":0.5})");
  QCOMPARE(store.find_run(run)->config_json, std::string(R"({"lr":0.5})"));
  QVERIFY(store_error_of([&] { store.set_config(run, "{"); }).contains("not valid JSON"));
  QCOMPARE(store.find_run(run)->config_json, std::string(R"({"lr":0.5})"));
  QVERIFY(store_error_of([&] { store.set_directory(run + 1, "x"); }).contains("no run with id"));
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

  store.add_snapshot(run, 200, "snap/000200.smxsnap");
  store.add_snapshot(run, 100, "snap/000100.smxsnap");
  store.add_snapshot(run, 200, "snap/000200-b.smxsnap");  // same step again: replaced
  const auto sn = store.snapshots(run);
  QCOMPARE(sn.size(), size_t(2));
  QCOMPARE(sn[0].step, int64_t(100));
  QCOMPARE(sn[0].path, std::string("snap/000100.smxsnap"));
  QCOMPARE(sn[1].path, std::string("snap/000200-b.smxsnap"));
  QCOMPARE(sn[1].run_id, run);
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
  QTest::addColumn<QString>("expected");
  QTest::newRow("other application's SQLite") << "foreign-app" << "another application";
  QTest::newRow("SQLite without application_id") << "no-app-id" << "another application";
  QTest::newRow("text file") << "text" << "not an SQLite database";
  QTest::newRow("truncated store") << "truncated" << "corrupt or truncated";
  QTest::newRow("store with a damaged page") << "damaged" << "corrupt or truncated";
  QTest::newRow("store with a damaged index page") << "damaged-index" << "corrupt or truncated (quick_check: Page 4";
  QTest::newRow("newer schema") << "newer" << "newer version";
}

void TestStore::refusesForeignOrDamagedFiles() {
  QFETCH(QString, kind);
  QFETCH(QString, expected);
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
  QVERIFY2(err.contains(expected), qPrintable(err));
  QVERIFY2(file_bytes(file) == before, "the refused file was modified");
  qInfo("%s", qPrintable(err));
}

void TestStore::defaultPaths() {
  const QByteArray smx = qgetenv("SMX_DATA_DIR"), xdg = qgetenv("XDG_DATA_HOME"), home = qgetenv("HOME");
  const bool had_smx = qEnvironmentVariableIsSet("SMX_DATA_DIR"), had_xdg = qEnvironmentVariableIsSet("XDG_DATA_HOME");
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
  if (had_smx) qputenv("SMX_DATA_DIR", smx);
  if (had_xdg) qputenv("XDG_DATA_HOME", xdg);
  qputenv("HOME", home);
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

void TestStore::readsMillionPointsQuickly() {
  QTemporaryDir dir;
  const fs::path file = in(dir, "runs.sqlite");
  int64_t run = 0;
  {
    RunStore store(file);
    run = store.create_run(new_run("long"));
    store.log_metrics(run, 0, 0, {{"loss", 10.0}, {"lr", 0.0}});
  }
  // One million steps in one statement (through log_metrics it would take a while).
  sql(file, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 999999) "
            "INSERT INTO metrics(run_id, name_id, step, wall, value) "
            "SELECT " + std::to_string(run) + ", (SELECT id FROM metric_names WHERE name = 'loss'), i, i * 0.05, "
            "10.0 / (i + 1) FROM c;");
  QElapsedTimer open_timer;
  open_timer.start();
  RunStore store(file);
  const qint64 open_ms = open_timer.elapsed();
  QElapsedTimer timer;
  timer.start();
  const auto points = store.metric(run, "loss");
  const qint64 read_ms = timer.elapsed();
  QCOMPARE(points.size(), size_t(1000000));
  QCOMPARE(points[999999].step, int64_t(999999));
  QCOMPARE(points[500000].value, 10.0 / 500001);
  timer.restart();
  const auto tail = store.metric(run, "loss", 999000);
  const qint64 tail_ms = timer.elapsed();
  QCOMPARE(tail.size(), size_t(999));
  qInfo("1M points: open (with quick_check) %lld ms, read %lld ms, last 999 points %lld ms",
        static_cast<long long>(open_ms), static_cast<long long>(read_ms), static_cast<long long>(tail_ms));
  QVERIFY2(read_ms < 1000, qPrintable(QString("reading 1M points took %1 ms").arg(read_ms)));
  QVERIFY(tail_ms < 50);
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

// ---------------------------------------------------------------- snapshots

void TestStore::halfConversionExhaustive() {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = half_to_float(uint16_t(h));
    const double ref = reference_half(uint16_t(h));
    if (std::isnan(ref)) {
      QVERIFY(std::isnan(f));
      const uint16_t back = float_to_half(f);
      QVERIFY((back & 0x7c00) == 0x7c00 && (back & 0x3ff) != 0);  // still NaN
      QCOMPARE(back & 0x8000, int(h & 0x8000));
      continue;
    }
    QCOMPARE(double(f), ref);
    QCOMPARE(std::signbit(f), bool(h & 0x8000));
    QCOMPARE(uint32_t(float_to_half(f)), h);
  }
}

void TestStore::halfConversionRoundsToNearestEven() {
  struct Case {
    float in;
    uint16_t out;
  };
  const Case cases[] = {
      {0.0f, 0x0000},
      {-0.0f, 0x8000},
      {1.0f, 0x3c00},
      {-2.0f, 0xc000},
      {1.0f + std::ldexp(1.0f, -11), 0x3c00},      // tie between 1 and 1+2^-10: to even (1)
      {1.0f + 3 * std::ldexp(1.0f, -11), 0x3c02},  // tie: to even (1+2^-9)
      {1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20), 0x3c01},  // just past the tie: up
      {65504.0f, 0x7bff},
      {65519.0f, 0x7bff},
      {65520.0f, 0x7c00},  // tie past the largest half: infinity
      {1e9f, 0x7c00},
      {-std::numeric_limits<float>::infinity(), 0xfc00},
      {std::ldexp(1.0f, -14), 0x0400},  // smallest normal
      {std::ldexp(1.0f, -24), 0x0001},  // smallest subnormal
      {std::ldexp(1.0f, -25), 0x0000},  // tie between 0 and 2^-24: to even (0)
      {std::ldexp(1.5f, -25), 0x0001},
      {std::ldexp(3.0f, -25), 0x0002},  // 1.5 * 2^-24: tie, to even (2)
      {std::ldexp(5.0f, -25), 0x0002},  // 2.5 * 2^-24: tie, to even (2)
      {std::ldexp(1.0f, -14) - std::ldexp(1.0f, -26), 0x0400},  // rounds up into the normals
      {1e-30f, 0x0000},
      {-1e-30f, 0x8000},
      {std::numeric_limits<float>::denorm_min(), 0x0000},
  };
  for (const Case& c : cases) QCOMPARE(float_to_half(c.in), c.out);
  const uint16_t nan = float_to_half(std::numeric_limits<float>::quiet_NaN());
  QVERIFY((nan & 0x7c00) == 0x7c00 && (nan & 0x3ff) != 0);

  // Random floats over the whole half range: the result is a nearest half.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exponent(-26.f, 16.f);
  for (int i = 0; i < 200000; ++i) {
    const float x = std::exp2(exponent(rng)) * (rng() % 2 ? 1.f : -1.f);
    if (std::abs(x) >= 65520.f) continue;  // rounds to infinity, as checked above
    const uint16_t h = float_to_half(x);
    const double err = std::abs(double(half_to_float(h)) - x);
    for (int d : {-1, 1}) {
      const uint16_t n = uint16_t(h + d);
      if ((n & 0x7fff) > 0x7c00 || ((n ^ h) & 0x8000)) continue;  // NaN, or across zero
      QVERIFY2(err <= std::abs(double(half_to_float(n)) - x), qPrintable(QString::number(double(x), 'g', 9)));
    }
  }
}

void TestStore::snapshotRoundTrip() {
  QTemporaryDir dir;
  const fs::path file = in(dir, "000100.smxsnap");
  Snapshot s = make_snapshot(2, 4, 6, 2, {3, 5});
  s.mixing[1].matrices[0].values[0] = std::numeric_limits<float>::infinity();
  s.mixing[1].matrices[0].values[1] = -std::numeric_limits<float>::infinity();
  s.mixing[1].matrices[0].values[2] = std::numeric_limits<float>::quiet_NaN();
  s.mixing[1].matrices[0].values[3] = 1e6f;  // past float16: infinity
  s.probe[0].tokens[1] = "";                 // an empty string survives too
  save_snapshot(s, file);
  QCOMPARE(std::distance(fs::directory_iterator(dir.path().toStdString()), fs::directory_iterator()),
           std::ptrdiff_t(1));  // no temporary file left behind
  const Snapshot t = load_snapshot(file);

  QCOMPARE(t.step, s.step);
  QCOMPARE(t.wall_seconds, s.wall_seconds);
  QCOMPARE(t.moe.size(), s.moe.size());
  for (size_t i = 0; i < s.moe.size(); ++i) {
    const MoeLayerStats &a = s.moe[i], &b = t.moe[i];
    QCOMPARE(b.layer, a.layer);
    QCOMPARE(b.router, a.router);
    QCOMPARE(b.num_experts, a.num_experts);
    QCOMPARE(b.capacity, a.capacity);
    QCOMPARE(b.groups, a.groups);
    QCOMPARE(b.tokens_per_group, a.tokens_per_group);
    QCOMPARE(b.tokens_per_expert, a.tokens_per_expert);
    QCOMPARE(b.fill, a.fill);
    QCOMPARE(b.experts_per_token, a.experts_per_token);
    QCOMPARE(b.dropped_fraction, a.dropped_fraction);
    QCOMPARE(b.unrouted_fraction, a.unrouted_fraction);
    QCOMPARE(b.router_entropy, a.router_entropy);
    QCOMPARE(b.load_balancing_loss, a.load_balancing_loss);
    QCOMPARE(b.z_loss, a.z_loss);
    QCOMPARE(b.router_logit_max, a.router_logit_max);
  }
  QCOMPARE(t.probe.size(), s.probe.size());
  for (size_t i = 0; i < s.probe.size(); ++i) {
    QCOMPARE(t.probe[i].layer, s.probe[i].layer);
    QCOMPARE(t.probe[i].num_experts, s.probe[i].num_experts);
    QCOMPARE(t.probe[i].tokens, s.probe[i].tokens);
    QCOMPARE(t.probe[i].probs, s.probe[i].probs);  // float32: exact
    QCOMPARE(t.probe[i].assigned, s.probe[i].assigned);
    QCOMPARE(t.probe[i].wanted, s.probe[i].wanted);
  }
  QVERIFY(t.probe[0].wanted.empty() && !t.probe[1].wanted.empty());
  QCOMPARE(t.mixing.size(), s.mixing.size());
  for (size_t i = 0; i < s.mixing.size(); ++i) {
    QCOMPARE(t.mixing[i].layer, s.mixing[i].layer);
    QCOMPARE(t.mixing[i].kind, s.mixing[i].kind);
    QCOMPARE(t.mixing[i].matrices.size(), s.mixing[i].matrices.size());
    for (size_t k = 0; k < s.mixing[i].matrices.size(); ++k) {
      const Matrix &a = s.mixing[i].matrices[k], &b = t.mixing[i].matrices[k];
      QCOMPARE(b.name, a.name);
      QCOMPARE(b.rows, a.rows);
      QCOMPARE(b.cols, a.cols);
      QCOMPARE(b.values.size(), a.values.size());
      for (size_t v = 0; v < a.values.size(); ++v) {
        const float want = (i == 1 && k == 0 && v == 3) ? std::numeric_limits<float>::infinity() : a.values[v];
        QVERIFY2(close_half(want, b.values[v]),
                 qPrintable(QString("%1 read back as %2").arg(double(a.values[v])).arg(double(b.values[v]))));
      }
    }
  }

  Snapshot bad = s;
  bad.mixing[0].matrices[0].rows = 4;  // 4 x 3 but 9 values
  const fs::path bad_file = in(dir, "bad.smxsnap");
  QVERIFY(snapshot_error_of([&] { save_snapshot(bad, bad_file); }).contains("has 9 values"));
  QVERIFY(!fs::exists(bad_file));
  QVERIFY(snapshot_error_of([&] { save_snapshot(s, in(dir, "no/such/folder/x.smxsnap")); })
              .contains("no/such/folder/x.smxsnap"));
}

void TestStore::snapshotRefusesDamage() {
  QTemporaryDir dir;
  const fs::path good = in(dir, "good.smxsnap");
  save_snapshot(make_snapshot(1, 4, 5, 1, {4, 6}), good);
  const QByteArray bytes = file_bytes(good);
  const fs::path bad = in(dir, "damaged.smxsnap");
  const QString bad_name = QString::fromStdString(bad.string());

  QVERIFY(snapshot_error_of([&] { load_snapshot(in(dir, "missing.smxsnap")); }).contains("does not exist"));
  write_bytes(bad, QByteArray("PK\x03\x04 this is a zip file, not a snapshot"));
  QVERIFY(snapshot_error_of([&] { load_snapshot(bad); }).contains("wrong magic"));

  for (int n = 0; n < bytes.size(); ++n) {  // every truncation
    write_bytes(bad, bytes.left(n));
    const QString err = snapshot_error_of([&] { load_snapshot(bad); });
    QVERIFY2(err.contains(bad_name), qPrintable(QString("truncated to %1 bytes: '%2'").arg(n).arg(err)));
  }
  for (int i = 0; i < bytes.size(); ++i) {  // a flipped bit anywhere
    QByteArray flipped = bytes;
    flipped[i] = char(flipped[i] ^ (1 << (i % 8)));
    write_bytes(bad, flipped);
    const QString err = snapshot_error_of([&] { load_snapshot(bad); });
    QVERIFY2(err.contains(bad_name), qPrintable(QString("bit flipped in byte %1: '%2'").arg(i).arg(err)));
  }
  QByteArray payload_flip = bytes;
  payload_flip[40] = char(payload_flip[40] ^ 0x10);
  write_bytes(bad, payload_flip);
  QVERIFY(snapshot_error_of([&] { load_snapshot(bad); }).contains("checksum"));
  write_bytes(bad, bytes.left(bytes.size() - 10));
  QVERIFY(snapshot_error_of([&] { load_snapshot(bad); }).contains("truncated"));
  QVERIFY(load_snapshot(good).step == 123456789012LL);  // the original is fine
}

void TestStore::snapshotRefusesCraftedFiles() {
  QTemporaryDir dir;
  const fs::path file = in(dir, "crafted.smxsnap");
  QByteArray empty_payload;
  put_u64(empty_payload, 7);               // step
  put_u64(empty_payload, 0);               // wall_seconds (0.0)
  for (int i = 0; i < 3; ++i) put_u32(empty_payload, 0);  // no moe, probe, mixing
  write_bytes(file, crafted_snapshot(1, empty_payload));
  QCOMPARE(load_snapshot(file).step, int64_t(7));  // the independent CRC agrees with the writer's

  write_bytes(file, crafted_snapshot(2, empty_payload));
  QString err = snapshot_error_of([&] { load_snapshot(file); });
  QVERIFY2(err.contains("newer version") && err.contains("2 > 1"), qPrintable(err));

  // A well-formed file (right checksum) announcing 4 billion MoE layers:
  // refused before anything is allocated for them.
  QByteArray absurd;
  put_u64(absurd, 7);
  put_u64(absurd, 0);
  put_u32(absurd, 0xffffffffu);
  write_bytes(file, crafted_snapshot(1, absurd));
  err = snapshot_error_of([&] { load_snapshot(file); });
  QVERIFY2(err.contains("MoE layers") && err.contains("does not fit"), qPrintable(err));

  // A matrix whose values do not number rows * cols.
  QByteArray mismatch;
  put_u64(mismatch, 7);
  put_u64(mismatch, 0);
  put_u32(mismatch, 0);
  put_u32(mismatch, 0);
  put_u32(mismatch, 1);  // one mixing layer
  put_u32(mismatch, 0);  // layer 0
  put_u32(mismatch, 0);  // kind ""
  put_u32(mismatch, 1);  // one matrix
  put_u32(mismatch, 0);  // name ""
  put_u32(mismatch, 2);  // rows
  put_u32(mismatch, 2);  // cols
  put_u32(mismatch, 1);  // but one value
  mismatch.append("\x00\x3c", 2);
  write_bytes(file, crafted_snapshot(1, mismatch));
  err = snapshot_error_of([&] { load_snapshot(file); });
  QVERIFY2(err.contains("2 x 2 but has 1 values"), qPrintable(err));

  write_bytes(file, crafted_snapshot(1, empty_payload + QByteArray(3, '\0')));
  QVERIFY(snapshot_error_of([&] { load_snapshot(file); }).contains("unread bytes"));
}

void TestStore::snapshotRealisticSize() {
  QTemporaryDir dir;
  const fs::path file = in(dir, "000500.smxsnap");
  // 4 MoE layers x 8 experts, a 64-token probe through each, 3 mixing layers
  // with a 64x64 hidden and a 128x128 sequence matrix.
  const Snapshot s = make_snapshot(4, 8, 64, 3, {64, 128});
  save_snapshot(s, file);
  const auto size = fs::file_size(file);
  qInfo("realistic snapshot: %llu bytes", static_cast<unsigned long long>(size));
  QVERIFY2(size < 200 * 1024, qPrintable(QString("%1 bytes").arg(size)));
  const Snapshot t = load_snapshot(file);
  QCOMPARE(t.mixing.size(), size_t(3));
  QCOMPARE(t.mixing[2].matrices[1].values.size(), size_t(128 * 128));
  QCOMPARE(t.probe[3].tokens.size(), size_t(64));
}

QTEST_MAIN(TestStore)
