#include "tests/engine/tst_trainer.h"

#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <csignal>
#include <fstream>
#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>

#include <torch/torch.h>

#include "model/nn/encoder.h"
#include "tests/engine/trainer_fixtures.h"
#include "model/store/run_store.h"
#include "model/store/snapshot.h"
#include "model/train/checkpoint.h"
#include "model/train/stability.h"
#include "model/train/trainer.h"

using namespace smx;
namespace fs = std::filesystem;

namespace {
const fs::path kFixtures = SMX_FIXTURES_DIR;
QTemporaryDir* g_dir = nullptr;  // one data folder: the tokenizer is trained once

using smx::test::tiny_model;
TrainConfig tiny_training(int64_t steps) { return smx::test::tiny_training(kFixtures, steps, 2, 2); }

TrainerOptions options(const ModelConfig& m, const TrainConfig& t) {
  TrainerOptions o;
  o.model = m;
  o.training = t;
  o.data_dir = g_dir->path().toStdString();
  return o;
}

std::vector<double> losses(int64_t run) {
  store::RunStore s(fs::path(g_dir->path().toStdString()) / "runs.sqlite");
  std::vector<double> out;
  for (const auto& p : s.metric(run, "loss/total")) out.push_back(p.value);
  return out;
}

class Recorder : public TrainerObserver {
 public:
  int steps = 0, evals = 0, snapshots = 0;
  std::vector<RunEvent> events;
  telemetry::Snapshot last;
  void on_step(const StepMetrics&) override { ++steps; }
  void on_eval(const StepMetrics&) override { ++evals; }
  void on_event(const RunEvent& e) override { events.push_back(e); }
  void on_snapshot(const telemetry::Snapshot& s) override {
    ++snapshots;
    last = s;
  }
  std::atomic<int64_t> live_step{-1};  ///< the step of the newest live copy (-1: none yet)
  void on_live_weights(const LiveWeights& w) override { live_step = w.step; }
};

/// The weights of a checkpoint file (live or not), loaded into the model its header describes.
std::vector<torch::Tensor> weights_of(const fs::path& file) {
  const auto info = read_checkpoint_info(file);
  ModelConfig m;
  TrainConfig t;
  checkpoint_run_config(file, info, m, t);
  EncoderModel model(m);
  load_checkpoint(file, *model, nullptr, false);
  std::vector<torch::Tensor> out;
  for (const auto& p : model->parameters()) out.push_back(p.detach().clone());
  return out;
}
}  // namespace

void TestTrainer::initTestCase() {
  g_dir = new QTemporaryDir;
  QVERIFY(g_dir->isValid());
}

void TestTrainer::pretrainRecordsEverything() {
  auto t = tiny_training(8);
  t.eval_every = 4;
  t.snapshot_every = 4;
  t.checkpoint_every = 4;
  Recorder rec;
  Trainer trainer(options(tiny_model(), t), &rec);
  const auto out = trainer.run();
  QCOMPARE(out.status, std::string("finished"));
  QCOMPARE(out.steps_done, int64_t(8));
  QCOMPARE(rec.steps, 8);
  QCOMPARE(rec.evals, 2);      // step 4 and the final one
  QCOMPARE(rec.snapshots, 3);  // steps 0, 4, 8
  QVERIFY(out.last_eval.get("eval/accuracy_mlm", -1) >= 0);

  store::RunStore s(fs::path(g_dir->path().toStdString()) / "runs.sqlite");
  const auto run = s.find_run(out.run_id);
  QVERIFY(run);
  QCOMPARE(run->status, std::string("finished"));
  QCOMPARE(run->kind, std::string("pretrain"));
  QCOMPARE(run->last_step, int64_t(8));
  const auto names = s.metric_names(out.run_id);
  for (const char* n : {"loss/total", "loss/mlm", "loss/nsp", "loss/load_balancing", "loss/z", "accuracy/mlm",
                        "optim/lr", "optim/grad_norm", "speed/tokens_per_s", "router/entropy", "router/confidence", "moe/load_spread",
                        "eval/accuracy_mlm", "eval/accuracy_nsp"})
    QVERIFY2(std::find(names.begin(), names.end(), n) != names.end(), n);
  QCOMPARE(int(s.metric(out.run_id, "loss/total").size()), 8);
  // Attention health (the tiny model has one attention layer): entropy within [0, log S], a finite score.
  const auto entropy = s.metric(out.run_id, "attention/entropy");
  QCOMPARE(int(entropy.size()), 8);
  for (const auto& p : entropy) QVERIFY2(p.value > 0 && p.value <= std::log(32.0) + 1e-6, qPrintable(QString::number(p.value)));
  QVERIFY(std::isfinite(s.metric(out.run_id, "attention/logit_max").back().value));
  // The learning rate warms up, then decays to zero at the end.
  const auto lr = s.metric(out.run_id, "optim/lr");
  QVERIFY(lr[0].value < lr[1].value);
  QVERIFY(lr.back().value < lr[2].value);
  // Snapshots: on disk, in the store, with routing of the probe and the mixing matrices.
  const auto snaps = s.snapshots(out.run_id);
  QCOMPARE(int(snaps.size()), 3);
  QVERIFY(fs::path(snaps.back().path).is_relative());  // to the run's folder: a copied data folder stays whole
  const auto snap = telemetry::load_snapshot(s.snapshot_file(snaps.back()));
  QCOMPARE(snap.step, int64_t(8));
  QCOMPARE(int(snap.moe.size()), 1);
  QCOMPARE(snap.moe[0].num_experts, 4);
  QCOMPARE(int(snap.probe.size()), 1);
  QVERIFY(snap.probe[0].tokens.size() > 5);
  QCOMPARE(snap.probe[0].probs.size(), snap.probe[0].tokens.size() * 4);
  bool has_linear = false, has_attention = false;
  for (const auto& m : snap.mixing) {
    has_linear |= m.kind == "linear";
    has_attention |= m.kind == "attention" && !m.matrices.empty();
  }
  QVERIFY(has_linear && has_attention);
  // Checkpoints: the final one is loadable and names the step.
  QVERIFY(fs::exists(out.last_checkpoint));
  QCOMPARE(read_checkpoint_info(out.last_checkpoint).step, int64_t(8));
}

void TestTrainer::resumeEqualsUninterrupted() {
  auto t = tiny_training(6);
  t.checkpoint_every = 3;
  Trainer whole(options(tiny_model(), t));
  const auto a = whole.run();

  auto first_half = t;
  // Stop after step 3 from the observer: the run checkpoints there.
  struct StopAt : TrainerObserver {
    Trainer* t = nullptr;
    void on_step(const StepMetrics& m) override {
      if (m.step == 3) t->stop();
    }
  } stopper;
  Trainer part2(options(tiny_model(), first_half), &stopper);
  stopper.t = &part2;
  const auto b = part2.run();
  QCOMPARE(b.status, std::string("stopped"));
  QCOMPARE(b.steps_done, int64_t(3));

  TrainerOptions r;
  r.resume_run = b.run_id;
  r.training.steps = 1;  // keep the run's own 6
  r.data_dir = g_dir->path().toStdString();
  Trainer resumed(r);
  const auto c = resumed.run();
  QCOMPARE(c.run_id, b.run_id);
  QCOMPARE(c.status, std::string("finished"));
  const auto la = losses(a.run_id), lc = losses(c.run_id);
  QCOMPARE(int(la.size()), 6);
  QCOMPARE(int(lc.size()), 6);
  for (int i = 0; i < 6; ++i) QCOMPARE(lc[i], la[i]);  // bit-identical on the CPU
}

void TestTrainer::nanIsDetectedAtItsStep() {
  auto t = tiny_training(10);
  t.inject_nan_at_step = 4;  // the 5th step (0-based 4)
  Recorder rec;
  Trainer trainer(options(tiny_model(), t), &rec);
  const auto out = trainer.run();
  QCOMPARE(out.status, std::string("diverged"));
  store::RunStore s(fs::path(g_dir->path().toStdString()) / "runs.sqlite");
  QCOMPARE(s.find_run(out.run_id)->status, std::string("diverged"));
  bool found = false;
  for (const auto& e : s.events(out.run_id))
    if (e.kind == "nonfinite") {
      QCOMPARE(e.step, int64_t(4));
      found = true;
    }
  QVERIFY(found);
  QCOMPARE(int(losses(out.run_id).size()), 4);  // steps 0..3 recorded, nothing after
}

void TestTrainer::outOfMemoryEndsTheRunAndKeepsItsCheckpoints() {
  // A real allocation failure (an impossible request to the run's allocator) before step 6: the
  // same path a GPU that runs out of memory takes.
  auto t = tiny_training(10);
  t.checkpoint_every = 2;
  auto o = options(tiny_model(), t);
  o.fail_allocation_at_step = 6;
  Recorder rec;
  int64_t run_id = 0;
  try {
    Trainer trainer(o, &rec);
    trainer.run();
    QFAIL("a run whose allocation failed finished");
  } catch (const OutOfMemory& e) {
    const QString m = QString::fromUtf8(e.what());
    QVERIFY2(m.startsWith("out of memory on the CPU at step 6 (batch_size 4"), e.what());
    QVERIFY2(m.contains("Try a smaller batch_size (2, with accumulation 2"), e.what());
    QVERIFY2(m.contains("checkpoint is kept") && m.contains("step-00000004"), e.what());
  }
  QCOMPARE(rec.steps, 5);  // steps 1..5 ran and were reported; the 6th never started
  store::RunStore s(fs::path(g_dir->path().toStdString()) / "runs.sqlite");
  const auto runs = s.list_runs();
  run_id = runs.front().id;  // newest first
  QCOMPARE(s.find_run(run_id)->status, std::string("failed"));
  bool event = false;
  for (const auto& e : s.events(run_id))
    if (e.kind == "failed") {
      QCOMPARE(e.step, int64_t(5));
      QVERIFY2(QString::fromStdString(e.message).contains("out of memory"), e.message.c_str());
      event = true;
    }
  QVERIFY(event);
  // The checkpoints before the failure are kept and the run resumes from the newest.
  const auto kept = newest_checkpoint(s.run_folder(run_id));
  QVERIFY(!kept.empty());
  QCOMPARE(read_checkpoint_info(kept).step, int64_t(4));
  auto r = options(tiny_model(), t);
  r.resume_run = run_id;
  Trainer again(r);
  const auto out = again.run();
  QCOMPARE(out.status, std::string("finished"));
  QCOMPARE(out.steps_done, int64_t(10));
}

void TestTrainer::nanSkipPolicyKeepsWeightsFinite() {
  auto t = tiny_training(6);
  t.inject_nan_at_step = 2;
  t.on_nonfinite = StabilityPolicy::Skip;
  Trainer trainer(options(tiny_model(), t));
  const auto out = trainer.run();
  QCOMPARE(out.status, std::string("finished"));
  const auto l = losses(out.run_id);
  QCOMPARE(int(l.size()), 6);
  QVERIFY(std::isnan(l[2]));
  for (int i : {3, 4, 5}) QVERIFY(std::isfinite(l[i]));  // the bad update was never applied
}

void TestTrainer::checkpointRefusesDamagedFiles() {
  QTemporaryDir dir;
  const fs::path d = dir.path().toStdString();
  auto model = EncoderModel(tiny_model());
  torch::optim::AdamW opt(model->parameters());
  CheckpointInfo info;
  info.run_config_json = "{}";
  info.step = 7;
  save_checkpoint(d / "good.ckpt", info, *model, &opt);
  QCOMPARE(read_checkpoint_info(d / "good.ckpt").step, int64_t(7));
  // Round trip: another model gets the same weights.
  auto other = EncoderModel(tiny_model());
  torch::optim::AdamW opt2(other->parameters());
  load_checkpoint(d / "good.ckpt", *other, &opt2, false);
  QVERIFY(torch::equal(other->blocks[0]->feed_forward->parameters()[0], model->blocks[0]->feed_forward->parameters()[0]));

  auto expect_refusal = [&](const fs::path& f, const char* words) {
    try {
      read_checkpoint_info(f);
      QFAIL("a damaged checkpoint was accepted");
    } catch (const CheckpointError& e) {
      QVERIFY2(std::string(e.what()).find(words) != std::string::npos, e.what());
    }
  };
  fs::copy_file(d / "good.ckpt", d / "truncated.ckpt");
  fs::resize_file(d / "truncated.ckpt", fs::file_size(d / "good.ckpt") / 2);
  expect_refusal(d / "truncated.ckpt", "truncated");
  fs::copy_file(d / "good.ckpt", d / "flipped.ckpt");
  {
    std::fstream f(d / "flipped.ckpt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(d / "good.ckpt") / 2));
    f.put('\x5a');
  }
  expect_refusal(d / "flipped.ckpt", "checksum");
  std::ofstream(d / "foreign.ckpt") << "PK\x03\x04 a zip file, say";
  expect_refusal(d / "foreign.ckpt", "not a Sparse Mixer Studio checkpoint");
  expect_refusal(d / "absent.ckpt", "does not exist");
  // A model of another shape is refused by a strict load, and left untouched.
  auto cfg = tiny_model();
  cfg.d_ff = 48;
  auto wrong = EncoderModel(cfg);
  const auto before = wrong->blocks[0]->feed_forward->parameters()[0].clone();
  QVERIFY_EXCEPTION_THROWN(load_checkpoint(d / "good.ckpt", *wrong, nullptr, false), CheckpointError);
}

void TestTrainer::killDuringCheckpointWriteLeavesLoadableCheckpoint() {
  // A real `smx pretrain` that checkpoints every step, killed with SIGKILL at
  // several moments; every time, the newest checkpoint file loads.
  QTemporaryDir dir;
  const QString data = dir.path();
  const QString config = dir.filePath("model.json");
  std::ofstream(config.toStdString()) << R"({"preset": "demo", "d_model": 64, "d_ff": 128, "max_seq_len": 32})";
  int killed_while_writing = 0;
  for (int attempt = 0; attempt < 6; ++attempt) {
    QProcess p;
    p.setProcessChannelMode(QProcess::ForwardedErrorChannel);
    QStringList args{"pretrain", "--config", config, "--corpus", QString::fromStdString((kFixtures / "corpus" / "tiny.txt").string()),
                     "--steps", "100000", "--batch", "2", "--checkpoint-every", "1", "--snapshot-every", "0",
                     "--eval-every", "0", "--device", "cpu", "--threads", "1", "--data-dir", data, "--quiet"};
    if (attempt > 0) args = QStringList{"pretrain", "--resume", "1", "--data-dir", data, "--quiet"};
    p.start(SMX_CLI_PATH, args);
    QVERIFY(p.waitForStarted());
    // Wait until a checkpoint exists, then kill at a varying moment.
    const fs::path ckdir = fs::path(data.toStdString()) / "runs" / "1" / "checkpoints";
    for (int i = 0; i < 600 && newest_checkpoint(ckdir.parent_path()).empty(); ++i) QTest::qWait(50);
    QVERIFY2(fs::is_directory(ckdir), "smx pretrain wrote no checkpoint within 30 s");
    QTest::qWait(20 + 37 * attempt);
    for (const auto& e : fs::directory_iterator(ckdir))
      killed_while_writing += e.path().string().find(".tmp-") != std::string::npos;
    ::kill(static_cast<pid_t>(p.processId()), SIGKILL);
    p.waitForFinished();
    // Every complete checkpoint loads; partial ones are only ever temp files.
    const fs::path newest = newest_checkpoint(ckdir.parent_path());
    QVERIFY(!newest.empty());
    for (const auto& e : fs::directory_iterator(ckdir))
      if (e.path().extension() == ".ckpt") read_checkpoint_info(e.path());
    // The vocabulary follows the tokenizer: rebuild the model from the checkpoint's config.
    ModelConfig mc;
    TrainConfig tc;
    run_config_from_json_text(read_checkpoint_info(newest).run_config_json, mc, tc);
    auto m = EncoderModel(mc);
    load_checkpoint(newest, *m, nullptr, false);
  }
  qInfo("temp files seen at kill time: %d of 6", killed_while_writing);
  // The store survived the kills too, and the run resumes.
  store::RunStore s(fs::path(data.toStdString()) / "runs.sqlite");
  QVERIFY(s.find_run(1));
  QVERIFY(s.find_run(1)->last_step > 0);
}

void TestTrainer::finetuneFromCheckpoint() {
  auto t = tiny_training(4);
  Trainer pre(options(tiny_model(), t));
  const auto p = pre.run();
  // A tiny classification task in GLUE's SST-2 layout.
  QTemporaryDir dir;
  const fs::path d = dir.path().toStdString();
  {
    std::ofstream train(d / "train.tsv"), dev(d / "dev.tsv");
    train << "sentence\tlabel\n";
    dev << "sentence\tlabel\n";
    for (int i = 0; i < 40; ++i) {
      (i % 5 ? train : dev) << (i % 2 ? "the dog chased a red ball happily" : "a tired farmer ignored the gate") << "\t"
                            << i % 2 << "\n";
    }
  }
  TrainConfig f = tiny_training(30);
  f.task = "sst2";
  f.task_dir = d.string();
  f.expert_dropout = 0.2;
  f.learning_rate = 3e-3;
  TrainerOptions o = options(tiny_model(), f);
  o.init_checkpoint = p.last_checkpoint;
  o.parent_run = p.run_id;
  Trainer ft(o);
  const auto out = ft.run();
  QCOMPARE(out.status, std::string("finished"));
  QCOMPARE(out.majority_baseline, 0.5);
  QVERIFY2(out.last_eval.get("eval/accuracy") == 1.0, "two distinct sentences must be separable");
  store::RunStore s(fs::path(g_dir->path().toStdString()) / "runs.sqlite");
  QCOMPARE(*s.find_run(out.run_id)->parent_id, p.run_id);
  QCOMPARE(s.find_run(out.run_id)->kind, std::string("finetune"));
}

void TestTrainer::pauseAndStopFromAnotherThread() {
  auto t = tiny_training(100000);
  Recorder rec;
  Trainer trainer(options(tiny_model(), t), &rec);
  RunOutcome out;
  std::thread worker([&] { out = trainer.run(); });
  while (rec.steps < 3) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  trainer.pause();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const int at_pause = rec.steps;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  QVERIFY(rec.steps <= at_pause + 1);  // at most the step in flight finished
  trainer.resume();
  while (rec.steps < at_pause + 3) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  trainer.stop();
  worker.join();
  QCOMPARE(out.status, std::string("stopped"));
  bool paused = false, continued = false;
  for (const auto& e : rec.events) {
    paused |= e.kind == "paused";
    continued |= e.kind == "continued";
  }
  QVERIFY(paused && continued);
  QVERIFY(fs::exists(out.last_checkpoint));  // a stopped run checkpoints
}

void TestTrainer::runStabilityIsClassifiedFromLossesAndEvents() {
  // A falling loss: stable.
  std::vector<std::pair<int64_t, double>> falling;
  for (int64_t s = 1; s <= 100; ++s) falling.emplace_back(s, 8.0 - 0.02 * double(s));
  QCOMPARE(int(classify_run(falling, {}, -1, 100).kind), int(RunStability::Stable));
  // A spike at step 50 that comes back within a few steps: stable, named "recovered".
  auto bump = falling;
  for (int64_t s = 50; s < 55; ++s) bump[s - 1].second = 20;
  auto v = classify_run(bump, {50}, -1, 100);
  QCOMPARE(int(v.kind), int(RunStability::Recovered));
  QCOMPARE(v.step, int64_t(50));
  QVERIFY(!v.diverged());
  // A spike after which the loss stays above the median before it: diverged at the spike's step.
  auto blowup = falling;
  for (int64_t s = 60; s <= 100; ++s) blowup[s - 1].second = 7.9;
  v = classify_run(blowup, {60}, -1, 100);
  QCOMPARE(int(v.kind), int(RunStability::Unrecovered));
  QCOMPARE(v.step, int64_t(60));
  QVERIFY(v.diverged());
  QVERIFY(std::abs(v.reference - (8.0 - 0.02 * 30)) < 0.03);  // median of steps 1..59
  QVERIFY(QString::fromStdString(v.describe()).contains("step 60"));
  // A recovered spike, then one that never recovers: the second is the divergence.
  auto both = bump;
  for (int64_t s = 80; s <= 100; ++s) both[s - 1].second = 9;
  v = classify_run(both, {50, 80}, -1, 100);
  QCOMPARE(int(v.kind), int(RunStability::Unrecovered));
  QCOMPARE(v.step, int64_t(80));
  // Non-finite wins over everything, at its own step.
  v = classify_run(both, {50, 80}, 70, 100);
  QCOMPARE(int(v.kind), int(RunStability::NonFinite));
  QCOMPARE(v.step, int64_t(70));
}

void TestTrainer::firstDepartureFindsWhereACurveTurned() {
  std::vector<std::pair<int64_t, double>> logits, entropy;
  for (int64_t s = 0; s <= 100; ++s) {
    logits.emplace_back(s, s < 60 ? 2.0 : 2.0 + 0.2 * double(s - 60));  // 3.0 (1.5x) at step 65
    entropy.emplace_back(s, s < 80 ? 2.0 : 0.5);                         // collapses at 80
  }
  QCOMPARE(first_departure(logits, 40, 100, true, 1.5), int64_t(65));
  QCOMPARE(first_departure(entropy, 40, 100, false, 1.5), int64_t(80));
  QCOMPARE(first_departure(entropy, 40, 100, true, 1.5), int64_t(-1));  // it never rose
  QCOMPARE(first_departure(logits, 40, 64, true, 1.5), int64_t(-1));    // not before step 65
  QCOMPARE(first_departure({}, 0, 10, true, 1.5), int64_t(-1));
  auto nan = logits;
  nan[70].second = std::numeric_limits<double>::quiet_NaN();
  QCOMPARE(first_departure(nan, 66, 100, true, 1.5), int64_t(70));  // non-finite counts as departed
}

void TestTrainer::liveWeightsBetweenSteps() {
  // Requests from the observer (so the steps are exact): one during set-up, answered before the
  // first step, and one after step 3; then one while paused, from another thread.
  auto t = tiny_training(100000);
  struct Asker : Recorder {
    Trainer* trainer = nullptr;
    fs::path copies;
    bool asked = false;
    std::vector<int64_t> answered;  // steps of the live copies, in order
    std::vector<std::string> problems;
    std::atomic<int64_t> last_step{0};
    std::atomic<bool> is_paused{false};
    void on_event(const RunEvent& e) override {
      Recorder::on_event(e);
      if (e.kind == "paused") is_paused = true;
    }
    void on_stage(const std::string&, double) override {
      if (!asked) trainer->request_live_weights();
      asked = true;
    }
    void on_step(const StepMetrics& m) override {
      Recorder::on_step(m);
      last_step = m.step;
      if (m.step == 3) trainer->request_live_weights();
    }
    void on_live_weights(const LiveWeights& w) override {
      answered.push_back(w.step);
      if (!fs::exists(w.file)) problems.push_back("no file " + w.file.string());
      if (w.file.parent_path().filename() != "live") problems.push_back("not in live/: " + w.file.string());
      const auto run_dir = w.file.parent_path().parent_path();
      if (!newest_checkpoint(run_dir).empty()) problems.push_back("a checkpoint exists at step " + std::to_string(w.step));
      const auto info = read_checkpoint_info(w.file);
      if (!info.live || info.step != w.step) problems.push_back("header: not live or another step");
      fs::copy_file(w.file, copies / ("step-" + std::to_string(w.step) + ".ckpt"));  // the trainer deletes its own
      Recorder::on_live_weights(w);
    }
  } asker;
  asker.copies = fs::path(g_dir->path().toStdString()) / "live-copies";
  fs::create_directories(asker.copies);
  Trainer trainer(options(tiny_model(), t), &asker);
  asker.trainer = &trainer;
  RunOutcome out;
  std::thread worker([&] { out = trainer.run(); });
  // Poll, never time: each loop ends when the run has got there (or after a generous minute: a hang).
  auto wait_for = [](const std::function<bool()>& done) {
    for (int i = 0; i < 12000 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return done();
  };
  QVERIFY(wait_for([&] { return asker.last_step >= 5; }));
  trainer.pause();
  QVERIFY(wait_for([&] { return bool(asker.is_paused); }));
  trainer.request_live_weights();  // answered while paused, at the step it paused before
  QVERIFY(wait_for([&] { return asker.live_step > 3; }));
  const int64_t paused_at = asker.live_step;
  trainer.stop();
  trainer.resume();
  worker.join();
  QCOMPARE(out.status, std::string("stopped"));
  QCOMPARE(out.steps_done, paused_at);  // a paused run did not step to answer
  for (const auto& p : asker.problems) qWarning("%s", p.c_str());
  QVERIFY(asker.problems.empty());
  QCOMPARE(int(asker.answered.size()), 3);
  QCOMPARE(asker.answered[0], int64_t(0));  // before any step: the initial weights
  QCOMPARE(asker.answered[1], int64_t(3));

  // The copies differ: the model trained between them.
  const auto w0 = weights_of(asker.copies / "step-0.ckpt"), w3 = weights_of(asker.copies / "step-3.ckpt");
  QCOMPARE(w0.size(), w3.size());
  double change = 0;
  for (size_t i = 0; i < w0.size(); ++i) change = std::max(change, (w0[i] - w3[i]).abs().max().item<double>());
  QVERIFY2(change > 1e-6, qPrintable(QString::number(change)));

  // Gone with the run; resume reads the real checkpoint, never a live copy; a live copy cannot resume.
  const fs::path run_dir = fs::path(out.last_checkpoint).parent_path().parent_path();
  QVERIFY(!fs::exists(run_dir / "live"));
  QVERIFY(!read_checkpoint_info(newest_checkpoint(run_dir)).live);
  QCOMPARE(newest_checkpoint(run_dir), out.last_checkpoint);
  {
    const auto file = asker.copies / "step-3.ckpt";
    ModelConfig m;
    TrainConfig tc;
    checkpoint_run_config(file, read_checkpoint_info(file), m, tc);
    EncoderModel model(m);
    torch::optim::AdamW adam(model->parameters());
    try {
      load_checkpoint(file, *model, &adam, false);
      QFAIL("a live copy loaded for resuming");
    } catch (const CheckpointError& e) {
      QVERIFY2(std::string(e.what()).find("cannot resume") != std::string::npos, e.what());
    }
  }
}

void TestTrainer::cleanupTestCase() {
  delete g_dir;
  g_dir = nullptr;
}

QTEST_GUILESS_MAIN(TestTrainer)
