// The studio's wiring: the run controller drives a real Trainer on its worker
// thread and the views receive snapshots; pause, resume and stop; the launcher
// refuses bad configs and starts nothing; the run list reads runs the CLI
// made; the inspector thread answers playground and what-if requests.
#include "tests/app/tst_studio.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QRegularExpression>
#include <QLabel>
#include <QMessageBox>
#include <QTabWidget>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include "app/inspector_worker.h"
#include "app/launcher_dialog.h"
#include "app/main_window.h"
#include "app/run_controller.h"
#include "app/run_list_model.h"
#include "model/config/train_config.h"
#include "model/inspect/inspector.h"
#include "model/inspect/runtime.h"
#include "model/train/checkpoint.h"
#include "model/store/run_store.h"
#include "tests/store/test_files.h"
#include "widgets/capacity_view.h"
#include "widgets/mixing_view.h"
#include "widgets/playground_view.h"
#include "widgets/routing_view.h"
#include "widgets/router_comparison_view.h"
#include "widgets/stability_lab_view.h"
#include "widgets/training_curves_view.h"

namespace fs = std::filesystem;
using namespace smx;

namespace {

QTemporaryDir* g_dir = nullptr;
const fs::path kFixtures = SMX_FIXTURES_DIR;

/// A run of `m` on the tiny fixture corpus, named `name`; evaluations and snapshots every `every` steps (0: none).
app::RunRequest fixture_request(const ModelConfig& m, int steps, int every, const QString& dir, const char* name) {
  TrainConfig t = recommended_pretraining(m);
  t.corpus = (kFixtures / "corpus" / "tiny.txt").string();
  t.steps = steps;
  t.batch_size = 4;
  if (m.is_decoder()) t.warmup_steps = 2;
  t.eval_every = every;
  t.eval_batches = m.is_decoder() ? 1 : 2;
  t.checkpoint_every = 0;
  t.snapshot_every = m.is_decoder() ? every : 2;
  t.threads = 1;
  t.device = "cpu";
  app::RunRequest r;
  r.options.model = m;
  r.options.training = t;
  r.options.data_dir = dir.toStdString();
  r.options.run_name = name;
  r.label = name;
  return r;
}

/// The demo architecture with a vocabulary and length that the tiny fixture corpus can feed.
app::RunRequest demo_request(int steps, const QString& dir) {
  ModelConfig m = preset("demo");
  m.vocab_size = 100;
  m.max_seq_len = 32;
  return fixture_request(m, steps, 0, dir, "demo-test");
}

/// A tiny sMLP (deterministic sMoE + feature MoE) the fixture corpus can feed, as the studio launches LMs.
app::RunRequest lm_request(int steps, const QString& dir) {
  const ModelConfig m = config_from_json_text(R"({"preset": "smlp-demo", "name": "tiny-lm", "d_model": 32, "d_ff": 64,
    "num_layers": 3, "moe_layers": 1, "num_experts": 2, "max_seq_len": 32, "vocab_size": 100})");
  return fixture_request(m, steps, 4, dir, "lm-test");
}

/// Waits for runEnded and returns its arguments.
// True once `spy` holds a signal. The inspector emits from its own thread and
// QSignalSpy records there at once, so a quick answer (an error) may already
// be in the spy before wait() would start listening for the next one.
bool arrived(QSignalSpy& spy, int ms = 60000) { return !spy.isEmpty() || spy.wait(ms); }

QList<QVariant> wait_ended(QSignalSpy& ended, int ms = 120000) {
  if (ended.isEmpty()) ended.wait(ms);
  return ended.isEmpty() ? QList<QVariant>{} : ended.takeFirst();
}

/// Runs SQL on a store file as another program (or a person) might.
bool store_sql(const fs::path& file, const std::string& statements) {
  sqlite3* db = nullptr;
  bool ok = sqlite3_open(file.c_str(), &db) == SQLITE_OK &&
            sqlite3_exec(db, statements.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
  sqlite3_close(db);
  return ok;
}

/// A fingerprint of a data folder without the store's own files (-wal, -shm
/// come and go with connections).
std::map<std::string, std::string> files_of(const fs::path& root) {
  auto m = smx_test::tree_fingerprint(root);
  for (auto it = m.begin(); it != m.end();) it = it->first.rfind("runs.sqlite", 0) == 0 ? m.erase(it) : std::next(it);
  return m;
}

}  // namespace

void TestStudio::initTestCase() {
  g_dir = new QTemporaryDir;
  QVERIFY(g_dir->isValid());
}

void TestStudio::controllerTrainsThroughTheWorkerThread() {
  app::RunController controller;
  QSignalSpy started(&controller, &app::RunController::runStarted);
  QSignalSpy ended(&controller, &app::RunController::runEnded);
  int steps = 0, snapshots = 0, batches = 0;
  qint64 last_step = 0;
  bool in_order = true;
  bool gui_thread = true;
  connect(&controller, &app::RunController::liveBatch, this, [&](const app::LiveBatch& b) {
    ++batches;
    gui_thread = gui_thread && QThread::currentThread() == qApp->thread();
    for (const auto& s : b.steps) {
      in_order = in_order && s.step == last_step + 1;
      last_step = s.step;
    }
    steps += b.steps.size();
    snapshots += b.snapshots.size();
    // The step-0 snapshot (the initialisation, for "difference from init") has no batch routing yet.
    for (const auto& s : b.snapshots) QVERIFY(s->probe.size() == 2 && !s->mixing.empty() && (s->step == 0 || s->moe.size() == 2));
  });
  QElapsedTimer clock;
  clock.start();
  controller.enqueue(demo_request(12, g_dir->path()));
  QVERIFY(controller.busy());
  const auto args = wait_ended(ended);
  QVERIFY(!args.isEmpty());
  QCOMPARE(args.at(3).toString(), QString("finished"));
  QCOMPARE(started.size(), 1);
  QVERIFY(started.at(0).at(0).toLongLong() > 0);
  QCOMPARE(steps, 12);  // every step arrives, in order, on the GUI thread
  QVERIFY(in_order);
  QVERIFY(gui_thread);
  QCOMPARE(snapshots, 7);  // steps 0, 2, ..., 12
  // Coalesced: never more drains than one per 200 ms (plus the final one).
  QVERIFY2(controller.drainCount() <= clock.elapsed() / 200 + 2,
           qPrintable(QString("%1 drains in %2 ms").arg(controller.drainCount()).arg(clock.elapsed())));
  QVERIFY(!controller.busy());
}

void TestStudio::pauseResumeStop() {
  app::RunController controller;
  QSignalSpy ended(&controller, &app::RunController::runEnded);
  qint64 last = 0;
  connect(&controller, &app::RunController::liveBatch, this, [&](const app::LiveBatch& b) {
    if (!b.steps.isEmpty()) last = b.steps.back().step;
  });
  auto r = demo_request(100000, g_dir->path());
  r.options.training.snapshot_every = 0;
  controller.enqueue(r);
  controller.enqueue(demo_request(3, g_dir->path()));  // queued behind it
  QCOMPARE(controller.queuedCount(), 1);
  QTRY_VERIFY_WITH_TIMEOUT(last >= 2, 60000);
  controller.pause();
  QVERIFY(controller.paused());
  QTest::qWait(400);  // let the current step finish and the pause take hold
  const qint64 at_pause = last;
  QTest::qWait(600);
  QVERIFY2(last <= at_pause + 1, "training went on while paused");
  controller.resume();
  QTRY_VERIFY_WITH_TIMEOUT(last > at_pause + 2, 30000);
  controller.stop();
  auto args = wait_ended(ended);
  QCOMPARE(args.at(3).toString(), QString("stopped"));
  // The queued run starts by itself and finishes.
  args = wait_ended(ended);
  QCOMPARE(args.at(3).toString(), QString("finished"));
  QCOMPARE(controller.queuedCount(), 0);
}

void TestStudio::setupErrorIsReportedNotThrown() {
  app::RunController controller;
  QSignalSpy ended(&controller, &app::RunController::runEnded);
  auto r = demo_request(5, g_dir->path());
  r.options.training.corpus = (kFixtures / "no-such-corpus.txt").string();
  controller.enqueue(r);
  const auto args = wait_ended(ended);
  QCOMPARE(args.at(3).toString(), QString("failed"));
  QVERIFY2(args.at(4).toString().contains("no-such-corpus"), qPrintable(args.at(4).toString()));
  QVERIFY(!controller.busy());
}

void TestStudio::launcherRefusesBadConfigs() {
  store::RunStore store(fs::path(g_dir->path().toStdString()) / "runs.sqlite");
  app::LauncherDialog dialog(&store, g_dir->path(), false);
  QVERIFY(dialog.validate());  // the demo preset as shown is fine
  QCOMPARE(dialog.requests().size(), 1);

  QVERIFY(dialog.setValue("model", "d_model", "abc"));
  QVERIFY(!dialog.validate());
  QVERIFY2(dialog.errorText().contains("not a number"), qPrintable(dialog.errorText()));
  QVERIFY(dialog.requests().isEmpty());

  QVERIFY(dialog.setValue("model", "d_model", "130"));  // 2 heads do not divide... 130 / 4 heads: refused by the engine
  QVERIFY(dialog.setValue("model", "num_heads", "4"));
  QVERIFY(!dialog.validate());
  QVERIFY2(dialog.errorText().contains("num_heads") || dialog.errorText().contains("d_model"), qPrintable(dialog.errorText()));

  dialog.setPreset("demo");
  QVERIFY(dialog.setValue("training", "learning_rate", "-1"));
  QVERIFY(!dialog.validate());
  QVERIFY2(dialog.errorText().contains("Learning rate"), qPrintable(dialog.errorText()));

  dialog.setPreset("demo");
  QVERIFY(dialog.setValue("training", "task", "sst2"));  // fine-tuning needs its folder
  QVERIFY(dialog.setValue("training", "task_dir", ""));
  // Whether the folder is checked here or when the run starts, nothing is queued by a refused dialog:
  app::RunController controller;
  if (!dialog.validate()) QCOMPARE(controller.busy(), false);
}

void TestStudio::launcherBuildsSeedRuns() {
  app::LauncherDialog dialog(nullptr, g_dir->path(), true);
  dialog.setPreset("sparse-mixer-l2-h256");
  QCOMPARE(dialog.value("model", "num_layers"), QString("2"));
  QVERIFY(dialog.setValue("training", "steps", "7"));
  QVERIFY(dialog.setValue("training", "seed", "10"));
  dialog.setSeeds(3);
  QVERIFY2(dialog.validate(), qPrintable(dialog.errorText()));
  const auto& r = dialog.requests();
  QCOMPARE(r.size(), 3);
  for (int i = 0; i < 3; ++i) {
    QCOMPARE(r[i].options.training.seed, uint64_t(10 + i));
    QCOMPARE(r[i].options.training.steps, int64_t(7));
    QCOMPARE(r[i].options.model.num_layers, int64_t(2));
    QCOMPARE(r[i].group, r[0].group);
  }
  QVERIFY(!r[0].group.isEmpty());
}

void TestStudio::multiProcessRunFromTheStudio() {
  {
    // The launcher's Processes: the batch must split evenly over them.
    app::LauncherDialog dialog(nullptr, g_dir->path(), true);
    dialog.setPreset("demo");
    dialog.setProcesses(2);
    QVERIFY(dialog.setValue("training", "batch_size", "5"));
    QVERIFY(!dialog.validate());
    QVERIFY2(dialog.errorText().contains("split evenly over 2 processes"), qPrintable(dialog.errorText()));
    QVERIFY(dialog.setValue("training", "batch_size", "8"));
    QVERIFY2(dialog.validate(), qPrintable(dialog.errorText()));
    QCOMPARE(dialog.requests()[0].options.dist.world_size, 2);
  }
  // The window's controller trains rank 0 itself and starts `smx` as rank 1; each step carries both
  // ranks' speeds, and the status bar shows them.
  QTemporaryDir dir;
  app::MainWindow window(dir.path());
  window.resize(1200, 800);
  window.show();
  QSignalSpy ended(window.controller(), &app::RunController::runEnded);
  int both_ranks = 0;
  connect(window.controller(), &app::RunController::liveBatch, this, [&](const app::LiveBatch& b) {
    for (const auto& s : b.steps) both_ranks += s.get("dist/rank0_tokens_per_s", 0) > 0 && s.get("dist/rank1_tokens_per_s", 0) > 0;
  });
  auto r = demo_request(6, dir.path());
  r.options.dist.world_size = 2;
  window.launch({r});
  const auto args = wait_ended(ended);
  QVERIFY(!args.isEmpty());
  QVERIFY2(args[3].toString() == "finished", qPrintable(args[3].toString() + ": " + args[4].toString()));
  QCOMPARE(both_ranks, 6);
  QTest::qWait(300);
  bool shown = false;
  for (const QLabel* l : window.findChildren<QLabel*>()) shown = shown || l->text().contains("tokens/s (ranks: ");
  QVERIFY2(shown, "the status bar shows each rank's tokens/s");
  if (const QByteArray shots = qgetenv("SMX_SCREENSHOTS"); !shots.isEmpty()) {
    QDir().mkpath(QString::fromUtf8(shots));
    window.showTab("Curves");
    QTest::qWait(400);
    window.grab().save(QString::fromUtf8(shots) + "/two-processes.png");
    app::LauncherDialog dialog(nullptr, dir.path(), false);
    dialog.setProcesses(2);
    dialog.show();
    QTest::qWait(200);
    dialog.grab().save(QString::fromUtf8(shots) + "/launcher-processes.png");
  }
}

void TestStudio::launcherListsTheDevices() {
  // The device choice: auto, the CPU, and every GPU LibTorch sees (none on a CPU-only machine),
  // each with its name and memory.
  const auto devices = inspect::list_devices();
  const bool gpu = devices.size() > 1;
  app::LauncherDialog dialog(nullptr, g_dir->path(), false);
  dialog.setPreset("demo");
  auto* combo = dialog.findChild<QComboBox*>("training/device");
  QVERIFY(combo);
  QCOMPARE(combo->count(), int(devices.size()) + 1);
  QCOMPARE(combo->itemData(0).toString(), QString("auto"));
  for (size_t i = 0; i < devices.size(); ++i) {
    QCOMPARE(combo->itemData(int(i) + 1).toString(), QString::fromStdString(devices[i].id));
    QVERIFY2(combo->itemText(int(i) + 1).contains("GiB"), qPrintable(combo->itemText(int(i) + 1)));
  }
  QVERIFY2(combo->itemText(0).contains(gpu ? "GPU" : "no GPU"), qPrintable(combo->itemText(0)));
  // bf16 applies on a GPU only.
  auto* bf16 = dialog.findChild<QCheckBox*>("training/bf16");
  QVERIFY(bf16);
  QVERIFY(dialog.setValue("training", "device", "cpu"));
  QVERIFY(!bf16->isEnabled());
  QCOMPARE(dialog.value("training", "device"), QString("cpu"));
  QVERIFY2(dialog.validate(), qPrintable(dialog.errorText()));
  QCOMPARE(dialog.requests()[0].options.training.device, std::string("cpu"));
  QVERIFY(dialog.setValue("training", "device", "auto"));
  QCOMPARE(bf16->isEnabled(), gpu);
  // A config made on a machine with more GPUs: its device is shown, and refused with what this machine has.
  const std::string missing = "cuda:" + std::to_string(devices.size() - 1);
  QTemporaryDir dir;
  const QString file = dir.filePath("gpu-run.json");
  {
    std::ofstream out(file.toStdString());
    out << R"({"model": {"preset": "demo"}, "training": {"device": ")" << missing << R"(", "steps": 10}})";
  }
  QVERIFY2(dialog.loadConfigFile(file), qPrintable(dialog.errorText()));
  QCOMPARE(dialog.value("training", "device"), QString::fromStdString(missing));
  QVERIFY2(combo->currentText().contains("not on this machine"), qPrintable(combo->currentText()));
  QVERIFY(bf16->isEnabled());  // a GPU device, even one that is not here
  QVERIFY(!dialog.validate());
  QVERIFY2(dialog.errorText().contains(QString::fromStdString("'" + missing + "' is not on this machine")),
           qPrintable(dialog.errorText()));
  QVERIFY2(dialog.errorText().contains(gpu ? "CUDA device" : "no CUDA device"), qPrintable(dialog.errorText()));
  if (const QByteArray shots = qgetenv("SMX_SCREENSHOTS"); !shots.isEmpty()) {
    QDir().mkpath(QString::fromUtf8(shots));
    if (auto* tabs = dialog.findChild<QTabWidget*>()) tabs->setCurrentIndex(tabs->count() - 1);
    dialog.resize(1000, 900);
    dialog.show();
    combo->showPopup();
    QTest::qWait(300);
    dialog.grab().save(QString::fromUtf8(shots) + "/launcher-devices.png");
    combo->hidePopup();
  }
}

void TestStudio::outOfMemoryRunFailsAndTheStudioGoesOn() {
  QTemporaryDir dir;
  app::MainWindow window(dir.path());
  window.resize(1200, 800);
  window.show();
  QSignalSpy ended(window.controller(), &app::RunController::runEnded);
  // A real allocation failure on the run's device before step 4 (on a GPU machine, run on the GPU).
  auto r = demo_request(8, dir.path());
  r.options.training.device = "auto";
  r.options.training.checkpoint_every = 2;
  r.options.fail_allocation_at_step = 4;
  window.launch({r});
  auto args = wait_ended(ended);
  QVERIFY(!args.isEmpty());
  QCOMPARE(args[3].toString(), QString("failed"));
  const QString message = args[4].toString();
  QVERIFY2(message.startsWith("out of ") && message.contains("memory") && message.contains("at step 4"), qPrintable(message));
  QVERIFY2(message.contains("Try a smaller batch_size"), qPrintable(message));
  QVERIFY2(message.contains("checkpoint is kept"), qPrintable(message));
  const qint64 failed = args[0].toLongLong();
  {
    store::RunStore s(fs::path(dir.path().toStdString()) / "runs.sqlite");
    QCOMPARE(s.find_run(failed)->status, std::string("failed"));
    const auto kept = newest_checkpoint(s.run_folder(failed));
    QVERIFY(!kept.empty());
    QCOMPARE(read_checkpoint_info(kept).step, int64_t(2));
  }
  // The message box is up (not blocking); the studio trains the next run as usual.
  QTest::qWait(200);
  if (const QByteArray shots = qgetenv("SMX_SCREENSHOTS"); !shots.isEmpty()) {
    QDir().mkpath(QString::fromUtf8(shots));
    for (QMessageBox* box : window.findChildren<QMessageBox*>()) box->grab().save(QString::fromUtf8(shots) + "/out-of-memory.png");
  }
  window.launch({demo_request(3, dir.path())});
  args = wait_ended(ended);
  QVERIFY(!args.isEmpty());
  QVERIFY2(args[3].toString() == "finished", qPrintable(args[3].toString() + ": " + args[4].toString()));
  // The status bar's memory: the process's on a CPU run; allocated and peak for a GPU run.
  const auto label_with = [&](const QString& text) {
    for (const QLabel* l : window.findChildren<QLabel*>())
      if (l->text().contains(text)) return true;
    return false;
  };
  if (inspect::default_device() == "cpu") QVERIFY(label_with("RAM "));
  app::LiveBatch batch;
  batch.run_id = args[0].toLongLong();
  StepMetrics gpu_step;
  gpu_step.step = 3;
  gpu_step.values = {{"speed/tokens_per_s", 1000.0}, {"memory/resident_mb", 900.0},
                     {"memory/gpu_allocated_mb", 1536.0}, {"memory/gpu_peak_mb", 4096.0}};
  batch.steps.push_back(gpu_step);
  Q_EMIT window.controller()->liveBatch(batch);
  QVERIFY(label_with("GPU 1.50 GiB · peak 4.00 GiB"));
}

void TestStudio::runListShowsHeadlessRuns() {
  QTemporaryDir dir;
  const fs::path file = fs::path(dir.path().toStdString()) / "runs.sqlite";
  {
    store::RunStore s(file);
    store::NewRun run;
    run.name = "from the CLI";
    run.kind = "pretrain";
    run.config_json = R"({"model": {}, "training": {"task": "pretrain"}})";
    run.device = "cpu";
    const int64_t id = s.create_run(run);
    s.log_metrics(id, 10, 1.0, {{"eval/accuracy_mlm", 0.30}, {"eval/loss_mlm", 4.0}});
    s.log_metrics(id, 20, 2.0, {{"eval/accuracy_mlm", 0.25}, {"eval/loss_mlm", 3.5}});
    s.set_status(id, "finished");
  }
  app::RunListModel model;
  QString error;
  QVERIFY2(model.open(QString::fromStdString(file.string()), &error), qPrintable(error));
  QCOMPARE(model.rowCount(), 1);
  QCOMPARE(model.data(model.index(0, app::RunListModel::Name)).toString(), QString("from the CLI"));
  QCOMPARE(model.data(model.index(0, app::RunListModel::Status)).toString(), QString("finished"));
  // Best, not last: accuracy 0.30 (step 10), loss 3.5 (step 20).
  const auto best = model.bestMetrics(model.runAt(0)->id);
  QCOMPARE(best.size(), 2);
  for (const auto& [name, value] : best) QCOMPARE(value, name.contains("loss") ? 3.5 : 0.30);
  QVERIFY(model.data(model.index(0, app::RunListModel::Best)).toString().contains("0.300"));

  // A foreign file is refused with a message and left alone.
  const fs::path junk = fs::path(dir.path().toStdString()) / "junk.sqlite";
  { std::FILE* f = std::fopen(junk.c_str(), "wb"); std::fputs("not a database at all, not at all", f); std::fclose(f); }
  QVERIFY(!model.open(QString::fromStdString(junk.string()), &error));
  QVERIFY(!error.isEmpty());
  QCOMPARE(model.rowCount(), 0);
}

// Delete, resume and fine-tune from the run list act on <data folder>/runs/ID
// only: in a copied data folder they leave the original byte for byte as it
// was, and a store row naming another folder is refused with its message.
void TestStudio::runListKeepsToTheDataFolder() {
  QTemporaryDir dir;
  const fs::path original = fs::path(dir.path().toStdString()) / "original";
  const fs::path copy = fs::path(dir.path().toStdString()) / "copy";
  qint64 trained = 0, spare = 0;
  {
    app::RunController controller;
    QSignalSpy ended(&controller, &app::RunController::runEnded);
    controller.enqueue(demo_request(2, QString::fromStdString(original.string())));
    const auto args = wait_ended(ended);
    QCOMPARE(args.at(3).toString(), QString("finished"));
    trained = args.at(0).toLongLong();
    store::RunStore s(original / "runs.sqlite");
    store::NewRun r;
    r.name = "spare";
    r.kind = "pretrain";
    r.device = "cpu";
    spare = s.create_run(r);
    fs::create_directories(s.run_folder(spare) / "checkpoints");
    std::ofstream(s.run_folder(spare) / "checkpoints" / "step-00000001.ckpt") << "weights";
  }
  const auto before = smx_test::tree_fingerprint(original);
  fs::copy(original, copy, fs::copy_options::recursive | fs::copy_options::copy_symlinks);  // as cp -a
  const fs::path trained_folder = copy / "runs" / std::to_string(trained);
  {
    app::MainWindow window(QString::fromStdString(copy.string()));
    QSignalSpy ended(window.controller(), &app::RunController::runEnded);
    QCOMPARE(window.deleteRun(spare), QString());
    QVERIFY(!fs::exists(copy / "runs" / std::to_string(spare)));
    QCOMPARE(window.resumeRun(trained), QString());
    const auto args = wait_ended(ended);
    QVERIFY2(args.at(3).toString() == "finished", qPrintable(args.at(3).toString() + ": " + args.at(4).toString()));
    bool resumed = false;
    for (const auto& e : window.runList()->store()->events(trained)) resumed = resumed || e.kind == "resumed";
    QVERIFY(resumed);
    app::LauncherDialog launcher(window.runList()->store(), QString::fromStdString(copy.string()), false);
    launcher.setStartFromRun(trained);
    QCOMPARE(launcher.value("training", "task"), QString("wordnet-lexname"));  // the offline task, chosen for it
    QVERIFY2(launcher.validate(), qPrintable(launcher.errorText()));
    const fs::path init = launcher.requests().at(0).options.init_checkpoint;
    QCOMPARE(init.parent_path(), trained_folder / "checkpoints");

    // Tampered rows: the data folder itself, a folder outside it, another run's folder.
    const fs::path file = copy / "runs.sqlite";
    for (const std::string& value : {copy.string(), original.string(), (original / "runs" / std::to_string(trained)).string(),
                                     std::string("runs/") + std::to_string(spare)}) {
      QVERIFY(store_sql(file, "UPDATE runs SET directory = '" + value + "' WHERE id = " + std::to_string(trained)));
      const auto copy_before = files_of(copy);
      const QString expected = QString("run %1: the store names its folder '%2' where 'runs/%1'")
                                   .arg(trained)
                                   .arg(QString::fromStdString(value));
      QString error = window.deleteRun(trained);
      QVERIFY2(error.contains("was not deleted") && error.contains(expected), qPrintable(error));
      error = window.resumeRun(trained);
      QVERIFY2(error.contains("cannot be resumed") && error.contains(expected), qPrintable(error));
      QVERIFY(!window.controller()->busy());
      QCOMPARE(window.controller()->queuedCount(), 0);
      app::LauncherDialog refused(window.runList()->store(), QString::fromStdString(copy.string()), false);
      refused.setStartFromRun(trained);
      QVERIFY(!refused.validate());
      QVERIFY2(refused.errorText().contains(expected), qPrintable(refused.errorText()));
      QVERIFY(refused.requests().isEmpty());
      QVERIFY(files_of(copy) == copy_before);
      QVERIFY(window.runList()->store()->find_run(trained));
    }
  }
  QVERIFY(fs::exists(trained_folder / "checkpoints"));
  QVERIFY2(smx_test::tree_fingerprint(original) == before, "working in the copy changed the original data folder");
}

void TestStudio::windowShowsLiveRun() {
  QTemporaryDir dir;
  app::MainWindow window(dir.path());
  window.resize(1200, 800);
  window.show();
  QSignalSpy ended(window.controller(), &app::RunController::runEnded);
  auto r = demo_request(10, dir.path());
  window.launch({r});
  const auto args = wait_ended(ended);
  QCOMPARE(args.at(3).toString(), QString("finished"));
  const qint64 id = args.at(0).toLongLong();
  QCOMPARE(window.focusedRun(), id);       // the live run is shown
  QCOMPARE(window.snapshotCount(), 6);     // snapshots at steps 0, 2, ..., 10
  QTRY_VERIFY(window.routingView()->layerCount() == 2);  // demo: 2 MoE layers
  QVERIFY(window.routingView()->cellCount() > 0);
  QVERIFY(window.capacityView()->layerCount() == 2);
  QVERIFY(window.mixingView()->mixingLayerCount() >= 1);
  QVERIFY(window.curvesView()->graphCount() >= 2);
  QTRY_VERIFY(window.runList()->rowOf(id) >= 0);
  // Every view exports from the window.
  for (const QString& tab : {"Curves", "Routing", "Capacity", "Mixing"}) {
    window.showTab(tab);
    const QString out = dir.filePath(tab + ".svg");
    QString error;
    QVERIFY2(window.exportCurrentView(out, &error), qPrintable(tab + ": " + error));
    QVERIFY(QFileInfo(out).size() > 0);
  }
  // A click on a stability event jumps the routing view: simulated through the signal.
  Q_EMIT window.curvesView()->eventClicked(4);
  QCOMPARE(window.currentTabName(), QString("Routing"));
}

void TestStudio::inspectorAnswersFromCheckpoint() {
  QTemporaryDir dir;
  app::RunController controller;
  QSignalSpy ended(&controller, &app::RunController::runEnded);
  controller.enqueue(demo_request(4, dir.path()));
  const auto args = wait_ended(ended);
  QCOMPARE(args.at(3).toString(), QString("finished"));
  const auto outcome = args.at(5).value<RunOutcome>();
  QVERIFY(!outcome.last_checkpoint.empty());
  const QString ckpt = QString::fromStdString(outcome.last_checkpoint.string());

  app::InspectorWorker inspector;
  QSignalSpy predicted(&inspector, &app::InspectorWorker::predicted);
  inspector.predict(ckpt, "a [MASK] of the family");
  QVERIFY(arrived(predicted));
  const auto result = predicted.takeFirst().at(0).value<widgets::PlaygroundResult>();
  QVERIFY2(result.error.isEmpty(), qPrintable(result.error));
  QCOMPARE(result.predictions.size(), 1);
  QCOMPARE(result.predictions[0].top.size(), 5);
  double previous = 1.0;
  for (const auto& [piece, p] : result.predictions[0].top) {
    QVERIFY(p <= previous && p >= 0);
    previous = p;
  }
  QCOMPARE(result.moe_layers.size(), 2);
  QVERIFY(result.latency_ms > 0);

  QSignalSpy what_if(&inspector, &app::InspectorWorker::whatIfReady);
  inspector.whatIf(ckpt, "", 4.0, "tokens-choose");
  QVERIFY(arrived(what_if));
  auto w = what_if.takeFirst().at(0).value<app::WhatIfResult>();
  QVERIFY2(w.error.isEmpty(), qPrintable(w.error));
  QVERIFY2(w.caption.contains("checkpoint step 4"), qPrintable(w.caption));  // names the step of its weights
  QCOMPARE(int(w.routing.size()), 2);
  QVERIFY(!w.routing[0].wanted.empty());  // routed as Tokens Choose
  inspector.whatIf(ckpt, "", 0, "sideways");
  QVERIFY(arrived(what_if));
  w = what_if.takeFirst().at(0).value<app::WhatIfResult>();
  QVERIFY(w.error.contains("sideways"));

  QSignalSpy capacity(&inspector, &app::InspectorWorker::capacityReady);
  inspector.capacityProbe(ckpt, 0.5);
  QVERIFY(arrived(capacity));
  const auto low = capacity.takeFirst().at(0).value<widgets::CapacityProbe>();
  inspector.capacityProbe(ckpt, 4.0);
  QVERIFY(arrived(capacity));
  const auto high = capacity.takeFirst().at(0).value<widgets::CapacityProbe>();
  QVERIFY2(low.error.isEmpty(), qPrintable(low.error));
  QCOMPARE(low.weights, QString("checkpoint step 4"));
  QCOMPARE(int(low.layers.size()), 2);
  // More capacity leaves fewer tokens without an expert.
  QVERIFY(high.layers[0].unrouted_fraction < low.layers[0].unrouted_fraction);

  inspector.predict(dir.filePath("missing.ckpt"), "x");
  QVERIFY(arrived(predicted));
  QVERIFY(!predicted.takeFirst().at(0).value<widgets::PlaygroundResult>().error.isEmpty());
}

void TestStudio::playgroundAnswersFromARunningRun() {
  // A run that trains until stopped and writes no checkpoint before its end: the playground, the
  // what-if and the capacity probe answer from live copies of its weights, and say which step's.
  QTemporaryDir dir;
  app::MainWindow window(dir.path());
  window.resize(1200, 800);
  window.show();
  QSignalSpy started(window.controller(), &app::RunController::runStarted);
  QSignalSpy ended(window.controller(), &app::RunController::runEnded);
  qint64 trained = 0;  // steps done, as the live telemetry reports them
  connect(window.controller(), &app::RunController::liveBatch, this, [&](const app::LiveBatch& b) {
    for (const auto& m : b.steps) trained = std::max<qint64>(trained, m.step);
  });
  window.launch({demo_request(1000000, dir.path())});
  QVERIFY(arrived(started));
  const qint64 id = started.takeFirst().at(0).toLongLong();
  QCOMPARE(window.focusedRun(), id);
  const fs::path folder = window.runList()->store()->run_folder(id);

  auto* play = window.playgroundView();
  QSignalSpy predicted(window.inspector(), &app::InspectorWorker::predicted);
  const QRegularExpression live_step("weights of step (\\d+) \\(live, running\\)");
  // One prediction: its probabilities and the step of the weights that answered.
  auto predict = [&](qint64* step) -> QVector<double> {
    predicted.clear();
    Q_EMIT play->predictRequested("a domesticated carnivorous [MASK] that barks");
    if (!arrived(predicted)) return {};
    const auto args = predicted.takeFirst();
    const auto r = args.at(0).value<widgets::PlaygroundResult>();
    const QString description = args.at(1).toString();
    const auto m = live_step.match(description);
    if (!r.error.isEmpty() || !m.hasMatch() || r.predictions.size() != 1) {
      qWarning("%s / %s", qPrintable(r.error), qPrintable(description));
      return {};
    }
    *step = m.captured(1).toLongLong();
    QVector<double> p;
    for (const auto& [piece, prob] : r.predictions[0].top) p << prob;
    return p;
  };
  qint64 first_step = -1, second_step = -1;
  const auto first = predict(&first_step);
  QCOMPARE(first.size(), 5);
  QVERIFY(inspect::latest_checkpoint(folder).empty());  // no checkpoint yet: the live copy answered
  QTRY_VERIFY_WITH_TIMEOUT(trained >= first_step + 4, 120000);
  const auto second = predict(&second_step);
  QCOMPARE(second.size(), 5);
  QVERIFY2(second_step > first_step, qPrintable(QString("%1 then %2").arg(first_step).arg(second_step)));
  QVERIFY2(first != second, "the guesses did not change as the model trained");

  // The what-if and the capacity probe name the step of the weights they used.
  QSignalSpy what_if(window.inspector(), &app::InspectorWorker::whatIfReady);
  Q_EMIT window.routingView()->whatIfRequested("", 2.0, "");
  QVERIFY(arrived(what_if));
  const auto w = what_if.takeFirst().at(0).value<app::WhatIfResult>();
  QVERIFY2(w.error.isEmpty(), qPrintable(w.error));
  QVERIFY2(live_step.match(w.caption).hasMatch(), qPrintable(w.caption));
  QSignalSpy capacity(window.inspector(), &app::InspectorWorker::capacityReady);
  Q_EMIT window.capacityView()->evalCapacityFactorRequested(0.5);
  QVERIFY(arrived(capacity));
  const auto probe = capacity.takeFirst().at(0).value<widgets::CapacityProbe>();
  QVERIFY2(probe.error.isEmpty(), qPrintable(probe.error));
  QVERIFY2(live_step.match(probe.weights).hasMatch(), qPrintable(probe.weights));
  QVERIFY(fs::exists(folder / "live"));

  // The run ends: its live copies go, and the playground answers from its checkpoint.
  window.controller()->stop();
  const auto args = wait_ended(ended);
  QCOMPARE(args.value(3).toString(), QString("stopped"));
  QVERIFY(!fs::exists(folder / "live"));
  const QString final_ckpt = QString::fromStdString(inspect::latest_checkpoint(folder).string());
  QVERIFY(!final_ckpt.isEmpty());
  predicted.clear();
  Q_EMIT play->predictRequested("a domesticated carnivorous [MASK] that barks");
  QVERIFY(arrived(predicted));
  const QString description = predicted.takeFirst().at(1).toString();
  QVERIFY2(description.contains("checkpoint step"), qPrintable(description));
}

void TestStudio::launcherKnowsLanguageModels() {
  app::LauncherDialog dialog(nullptr, g_dir->path(), false);
  // Both families are offered, under their headers.
  auto* presets = dialog.findChild<QComboBox*>("preset");
  QVERIFY(presets);
  QVERIFY(presets->findText("smlp-demo") >= 0 && presets->findText("demo") >= 0);
  QVERIFY(presets->findText("smlp-demo") > presets->findText("demo"));
  dialog.setPreset("smlp-partial-demo");
  QVERIFY(dialog.isDecoderLm());
  // LM fields shown and editable; encoder-only ones hidden.
  for (const char* key : {"lm_mixing", "smoe_routing", "smoe_prefix_fraction"}) QVERIFY2(dialog.fieldVisible("model", key), key);
  QCOMPARE(dialog.value("model", "smoe_routing"), QString("partial"));
  QVERIFY(dialog.fieldEnabled("model", "smoe_prefix_fraction"));
  for (const char* key : {"mixing", "attention_layers", "type_vocab_size"}) QVERIFY2(!dialog.fieldVisible("model", key), key);
  QVERIFY(!dialog.fieldVisible("training", "max_predictions"));
  QVERIFY(!dialog.fieldEnabled("training", "task"));  // next-token prediction only
  QVERIFY(dialog.setValue("model", "smoe_prefix_fraction", "0.25"));
  QVERIFY(dialog.setValue("training", "steps", "7"));
  QVERIFY2(dialog.validate(), qPrintable(dialog.errorText()));
  const auto& r = dialog.requests().front().options;
  QVERIFY(r.model.is_decoder());
  QCOMPARE(r.model.smoe_routing, SmoeRouting::Partial);
  QCOMPARE(r.model.smoe_prefix_fraction, 0.25);
  QCOMPARE(r.training.steps, int64_t(7));
  // Recommended LM training settings come from recommended_pretraining.
  const TrainConfig rec = recommended_pretraining(preset("smlp-partial-demo"));
  QCOMPARE(r.training.learning_rate, rec.learning_rate);
  QCOMPARE(QString::fromStdString(r.training.schedule), QString("inverse-sqrt"));
  QCOMPARE(r.training.adam_beta2, 0.98);
  // The routing prefix means something for partial prediction only.
  QVERIFY(dialog.setValue("model", "smoe_routing", "deterministic"));
  QVERIFY(!dialog.fieldEnabled("model", "smoe_prefix_fraction"));
  // Back to an encoder: its fields return, the LM ones go, and nothing LM-only leaks into the config.
  dialog.setPreset("demo");
  QVERIFY(!dialog.isDecoderLm());
  QVERIFY(dialog.fieldVisible("model", "mixing"));
  QVERIFY(!dialog.fieldVisible("model", "smoe_routing"));
  QVERIFY(dialog.fieldEnabled("training", "task"));
  QVERIFY2(dialog.validate(), qPrintable(dialog.errorText()));
  QCOMPARE(dialog.requests().front().options.model.smoe_routing, SmoeRouting::None);
  QVERIFY(!dialog.requests().front().options.model.is_decoder());
}

void TestStudio::languageModelRunInTheWindow() {
  QTemporaryDir dir;
  app::MainWindow window(dir.path());
  window.resize(1400, 900);
  window.show();
  // An encoder metric chosen before: the LM run shows its perplexity instead.
  Q_EMIT window.curvesView()->metricChanged("accuracy/mlm");
  QSignalSpy ended(window.controller(), &app::RunController::runEnded);
  window.launch({lm_request(8, dir.path())});
  const auto args = wait_ended(ended);
  QVERIFY2(args.size() > 3 && args.at(3).toString() == "finished", qPrintable(args.value(4).toString()));
  const qint64 id = args.at(0).toLongLong();
  QCOMPARE(window.focusedRun(), id);
  // Run list: kind lm, best held-out perplexity.
  QTRY_VERIFY(window.runList()->rowOf(id) >= 0);
  const int row = window.runList()->rowOf(id);
  QCOMPARE(window.runList()->data(window.runList()->index(row, app::RunListModel::Task)).toString(), QString("lm"));
  QVERIFY2(window.runList()->headline(id).startsWith("perplexity"), qPrintable(window.runList()->headline(id)));
  // Curves: perplexity picked, and loss/nll among the metrics.
  window.focusRun(id);
  const QString shown = window.curvesView()->metricName();
  QVERIFY2(shown == "eval/perplexity" || shown == "loss/nll", qPrintable(shown));
  QVERIFY(window.curvesView()->metricNames().contains("loss/nll"));
  QVERIFY(window.curvesView()->metricNames().contains("eval/perplexity"));
  QVERIFY(window.curvesView()->graphCount() >= 1);
  // Mixing: the SGU and the sMoE (experts and channel map) with their sentences.
  QTRY_VERIFY(window.mixingView()->mixingLayerCount() >= 2);
  bool saw_sgu = false, saw_channels = false;
  for (int i = 0; i < window.mixingView()->mixingLayerCount(); ++i) {
    window.mixingView()->setCurrentMixingLayer(i);
    const QStringList names = window.mixingView()->matrixNames();
    if (window.mixingView()->caption().contains("sgu")) saw_sgu = window.mixingView()->explanation().contains("Causal");
    if (names.contains("channels to experts")) {
      window.mixingView()->setCurrentMatrix(names.indexOf("channels to experts"));
      saw_channels = window.mixingView()->explanation().contains("fixed contiguous bands");
    }
  }
  QVERIFY(saw_sgu);
  QVERIFY(saw_channels);

  // Playground: generation instead of masked prediction, and the leak check; both on the inspector thread.
  auto* play = window.playgroundView();
  QVERIFY(play->isLanguageModel());
  QSignalSpy generated(window.inspector(), &app::InspectorWorker::generated);
  widgets::GenerationSettings g;
  g.max_new_tokens = 5;
  g.temperature = 0;
  play->setText("a dog");
  Q_EMIT play->generateRequested(play->text(), g);
  QVERIFY(arrived(generated));
  const auto gen = generated.takeFirst().at(0).value<widgets::GenerationResult>();
  QVERIFY2(gen.error.isEmpty(), qPrintable(gen.error));
  QVERIFY(gen.prompt_tokens >= 1 && gen.tokens.size() <= gen.prompt_tokens + 5);
  QCOMPARE(gen.moe_layers.size(), 1);
  QTRY_VERIFY(play->generatedText().startsWith("a dog"));
  QSignalSpy leak(window.inspector(), &app::InspectorWorker::leakChecked);
  Q_EMIT play->leakCheckRequested();
  QVERIFY(arrived(leak, 300000));
  const auto lr = leak.takeFirst().at(0).value<widgets::LeakCheckResult>();
  QVERIFY2(lr.error.isEmpty(), qPrintable(lr.error));
  QVERIFY(std::abs(lr.token_by_token / lr.teacher_forced - 1) < 1e-4);  // a causal model
  QTRY_VERIFY(play->leakText().contains("Equal"));
  // Masked prediction on the LM's checkpoint says why not.
  QSignalSpy predicted(window.inspector(), &app::InspectorWorker::predicted);
  window.inspector()->predict(QString::fromStdString(args.at(5).value<RunOutcome>().last_checkpoint.string()), "a [MASK]");
  QVERIFY(arrived(predicted));
  QVERIFY(predicted.takeFirst().at(0).value<widgets::PlaygroundResult>().error.contains("decoder LM"));
  // Fine-tuning from the LM run is refused by the launcher.
  app::LauncherDialog dialog(window.runList()->store(), dir.path(), false);
  dialog.setStartFromRun(id);
  dialog.setPreset("demo");
  dialog.setValue("training", "task", "wordnet-lexname");
  QVERIFY(dialog.validate());  // the LM run is not offered: this fine-tunes the demo from scratch
  QVERIFY(dialog.requests().front().options.init_checkpoint.empty());

  // Screenshots for a person to look at (SMX_SCREENSHOTS=folder).
  if (const QByteArray shots = qgetenv("SMX_SCREENSHOTS"); !shots.isEmpty()) {
    QDir().mkpath(QString::fromUtf8(shots));
    for (const QString& tab : {"Playground", "Mixing", "Curves"}) {
      window.showTab(tab);
      if (tab == "Mixing")
        for (int i = 0; i < window.mixingView()->mixingLayerCount(); ++i) {
          window.mixingView()->setCurrentMixingLayer(i);
          if (window.mixingView()->caption().contains("smoe")) break;
        }
      QTest::qWait(400);
      window.grab().save(QString::fromUtf8(shots) + "/lm-" + tab.toLower() + ".png");
    }
  }
  // Back to an encoder run: the playground predicts again.
  window.launch({demo_request(2, dir.path())});
  const auto enc = wait_ended(ended);
  QVERIFY(!enc.isEmpty());
  window.focusRun(enc.at(0).toLongLong());
  QVERIFY(!play->isLanguageModel());
}

void TestStudio::stabilityLabRunsABatch() {
  // Two tiny configs x 2 seeds on the default corpus (WordNet), as the lab runs them.
  QTemporaryDir dir;
  const QString tiny = dir.filePath("tiny.json"), tiny_moe = dir.filePath("tiny-moe.json");
  for (const auto& [path, moe] : {std::pair{tiny, 0}, std::pair{tiny_moe, 1}}) {
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(QString(R"({"preset": "demo", "d_model": 32, "d_ff": 64, "num_layers": 2, "attention_layers": 1,
      "moe_layers": %1, "num_experts": 4, "num_heads": 2, "max_seq_len": 32, "vocab_size": 1000})").arg(moe).toUtf8());
  }
  app::MainWindow window(dir.path());
  QSignalSpy ended(window.controller(), &app::RunController::runEnded);
  widgets::StabilityPlan plan;
  plan.configs = {tiny, tiny_moe};
  plan.seeds = 2;
  plan.learning_rate = 1e-3;
  plan.batch = 4;
  plan.steps = 5;
  Q_EMIT window.labView()->runRequested(plan);
  QCOMPARE(window.labView()->tableRowCount(), 2);
  QCOMPARE(window.controller()->queuedCount() + (window.controller()->busy() ? 1 : 0), 4);
  for (int i = 0; i < 4; ++i) {
    const auto args = wait_ended(ended, 300000);
    QVERIFY(!args.isEmpty());
    QVERIFY2(args.at(3).toString() == "finished", qPrintable(args.at(3).toString() + ": " + args.at(4).toString()));
    QCOMPARE(args.at(2).toString(), QString("lab-1"));
  }
  QCOMPARE(window.labView()->stableSummary(tiny), QString("2/2"));
  QCOMPARE(window.labView()->stableSummary(tiny_moe), QString("2/2"));
  QCOMPARE(window.labView()->curves()->graphCount() >= 4, true);
  QCOMPARE(window.labView()->diagnosisRowCount(), 0);
  // Mostly mixing with MoE stands for the paper's Sparse Mixer; one attention layer of two and no MoE for none.
  QCOMPARE(window.labView()->paperText(tiny_moe), QString("Sparse Mixer: 4/4 · 4/4"));
  QCOMPARE(window.labView()->paperText(tiny), QString());
  // The links of a run: its routing at a step, its router curves.
  const qint64 run = window.runList()->rowCount() > 0 ? window.focusedRun() : 0;
  QVERIFY(run > 0);
  window.showLabRouting(run, 4);
  QCOMPARE(window.currentTabName(), QString("Routing"));
  window.showLabCurves(run, 4);
  QCOMPARE(window.currentTabName(), QString("Curves"));
  QCOMPARE(window.curvesView()->metricName(), QString("router/logit_max"));
}

void TestStudio::stabilityLabDefaultsToTable10() {
  // A new user's "Run batch": the paper's Table 10 models at demo size, 4 seeds each.
  const auto plan = app::MainWindow::defaultLabPlan();
  QCOMPARE(plan.configs, QStringList({"demo-bert", "demo", "demo-sparse-bert-2", "demo-sparse-bert-4"}));
  QCOMPARE(plan.seeds, 4);
  const auto paper = app::MainWindow::labPaperReferences(plan.configs);
  QCOMPARE(paper.value("demo-bert").model, QString("BERT-Base"));
  QCOMPARE(paper.value("demo").model, QString("Sparse Mixer"));
  QCOMPARE(paper.value("demo-sparse-bert-2").model, QString("sparse BERT-4"));
  QCOMPARE(paper.value("demo-sparse-bert-4").model, QString("sparse BERT-12"));
  QCOMPARE(paper.value("demo-sparse-bert-4").stable, QString("1/4 · 0/4"));
  QTemporaryDir dir;
  app::MainWindow window(dir.path());
  auto checked = window.labView()->plan().configs;  // in the list's order (the presets')
  auto expected = plan.configs;
  checked.sort();
  expected.sort();
  QCOMPARE(checked, expected);
  QCOMPARE(window.labView()->plan().seeds, 4);
  QCOMPARE(window.labView()->paperText("demo-sparse-bert-2"), QString("sparse BERT-4: 0/4 · 0/4"));
  QVERIFY(window.labView()->contextNote().contains("no setting tried"));  // the measured result, said plainly
}

void TestStudio::routerComparisonTrainsOnTheSameData() {
  // Issue 16: the comparison trains each LM on the same data and seed and fills the table beside the
  // paper's Table 4. Tiny versions of the sMLP and Switch demos (vocabulary 1000, context 32).
  QTemporaryDir dir;
  const QString smlp = dir.filePath("tiny-smlp.json"), sw = dir.filePath("tiny-switch.json");
  for (const auto& [path, base] : {std::pair{smlp, "smlp-demo"}, std::pair{sw, "switch-lm-demo"}}) {
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(QString(R"({"preset": "%1", "d_model": 32, "d_ff": 64, "expert_d_ff": 64, "max_seq_len": 32,
      "vocab_size": 1000})").arg(base).toUtf8());
  }
  app::MainWindow window(dir.path());
  auto* view = window.comparisonView();
  QSignalSpy ended(window.controller(), &app::RunController::runEnded);
  widgets::RouterComparisonPlan plan;
  plan.presets = {smlp, sw};
  plan.steps = 6;
  Q_EMIT view->compareRequested(plan);
  QCOMPARE(view->tableRowCount(), 2);
  QVERIFY(QStringList({"queued", "running"}).contains(view->tableText(0, "status")));
  QCOMPARE(view->tableText(1, "status"), QString("queued"));
  QCOMPARE(view->tableText(0, "paper"), QString("13.46"));  // sMLP-det in Table 4
  QCOMPARE(view->tableText(1, "paper"), QString("15.31"));  // Switch
  for (int i = 0; i < 2; ++i) {
    const auto args = wait_ended(ended, 300000);
    QVERIFY(!args.isEmpty());
    QVERIFY2(args.at(3).toString() == "finished", qPrintable(args.at(3).toString() + ": " + args.at(4).toString()));
    QCOMPARE(args.at(2).toString(), QString("compare-1"));
  }
  for (int r = 0; r < 2; ++r) {
    QCOMPARE(view->tableText(r, "status"), QString("finished"));
    bool ok = false;
    const double ppl = view->tableText(r, "perplexity").toDouble(&ok);
    QVERIFY2(ok && ppl > 1 && ppl < 2000, qPrintable(view->tableText(r, "perplexity")));
    QVERIFY(view->tableText(r, "tokens/s").toDouble() > 0);
  }
  // BASE layers (the sMLP's feature MoE) assign exactly T/E tokens per expert while training.
  QCOMPARE(view->tableText(0, "load spread"), QString("0.000"));
  QVERIFY(!view->tableText(1, "dropped").isEmpty());
  QVERIFY(view->curves()->graphCount() >= 2);
  QTemporaryDir out;
  QString error;
  QVERIFY2(view->exportView(out.filePath("table.csv"), &error), qPrintable(error));
  QFile csv(out.filePath("table.csv"));
  QVERIFY(csv.open(QIODevice::ReadOnly));
  QVERIFY(csv.readAll().contains("13.46"));
}

void TestStudio::restartKeepsOnlyLastingArguments() {
  // A restart into a newly chosen data folder drops --data-dir (in both forms)
  // and the one-off scripting options, and keeps the rest in order.
  const QStringList in = {"/usr/bin/smx-studio", "--classroom", "--data-dir", "/old", "--demo", "--demo-steps", "5",
                          "--tab", "Routing", "--tour=/tmp/t", "--data-dir=/old2", "--quit-when-idle", "-p", "demo"};
  const QStringList want = {"/usr/bin/smx-studio", "--classroom", "--tab", "Routing", "-p", "demo"};
  QCOMPARE(smx::app::MainWindow::restartArguments(in), want);
  QCOMPARE(smx::app::MainWindow::restartArguments({"smx-studio"}), QStringList{"smx-studio"});
}

QTEST_MAIN(TestStudio)
