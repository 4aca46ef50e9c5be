#include "tst_dist.h"

#include <signal.h>

#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <torch/torch.h>

#include "model/config/model_config.h"
#include "model/dist/launcher.h"
#include "model/dist/process_group.h"
#include "model/nn/encoder.h"
#include "model/store/run_store.h"
#include "model/train/checkpoint.h"
#include "model/train/trainer.h"
#include "trainer_fixtures.h"

using namespace smx;
namespace fs = std::filesystem;

namespace {

const fs::path kCorpus = fs::path(SMX_FIXTURES_DIR) / "corpus" / "tiny.txt";

struct Result {
  int code = -1;
  QString err;
};

Result smx_cli(const QStringList& args, int timeout_ms = 180000) {
  QProcess p;
  p.start(SMX_CLI_PATH, args);
  if (!p.waitForStarted()) return {};
  // A guard against a hang (the runs take seconds), not a speed check.
  if (!p.waitForFinished(timeout_ms)) {
    p.kill();
    p.waitForFinished();
    return {-2, "did not end within " + QString::number(timeout_ms / 1000) + " s"};
  }
  return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, QString::fromUtf8(p.readAllStandardError())};
}

std::vector<double> metric(const fs::path& data, int64_t run, const std::string& name) {
  store::RunStore s(data / "runs.sqlite");
  std::vector<double> v;
  for (const auto& p : s.metric(run, name)) v.push_back(p.value);
  return v;
}

double max_relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(std::abs(a[i]), 1e-12));
  return worst;
}

// A model for exact comparisons: no dropout or jitter, and routing groups of
// one rank's tokens (2 ranks: 4 rows x 32), so that both ways route the same groups.
QString exact_config(const QString& dir, const std::string& preset_name, RouterKind router, int64_t group = 128) {
  ModelConfig c = preset(preset_name);
  c.dropout = 0;
  c.expert_dropout = 0;
  c.router.jitter = 0;
  c.router.kind = router;
  c.router.max_group_size = group;
  const QString file = dir + "/" + QString::fromStdString(preset_name) + "-" + QString::fromStdString(to_string(router)) +
                       "-" + QString::number(group) + ".json";
  std::ofstream(file.toStdString()) << config_to_json_text(c);
  return file;
}

QStringList train_args(const QString& config, const QString& data, int steps) {
  return {"pretrain", "--config", config, "--corpus", QString::fromStdString(kCorpus.string()), "--steps",
          QString::number(steps), "--batch", "8", "--seq", "32", "--log-every", "1", "--eval-every", "0",
          "--snapshot-every", "0", "--data-dir", data, "--quiet"};
}

/// args with `flag`'s value replaced.
QStringList with(QStringList args, const QString& flag, const QString& value) {
  const int i = int(args.indexOf(flag));
  if (i >= 0 && i + 1 < args.size()) args[i + 1] = value;
  else args << flag << value;
  return args;
}

}  // namespace

void TestDist::initTestCase() { torch::set_num_threads(1); }

void TestDist::collectivesAreExact() {
  dist::DistOptions base;
  base.world_size = 2;
  base.master_port = dist::free_port();
  base.timeout_seconds = 60;
  struct Seen {
    torch::Tensor sum, max, broadcast, to_all, grad_a, grad_b;
    std::string bytes, published;
  };
  auto rank_main = [&](int rank) {
    dist::DistOptions o = base;
    o.rank = rank;
    auto g = dist::ProcessGroup::connect(o);
    Seen s;
    // Integers sum exactly; floats of one rank plus the other's, as written.
    s.sum = torch::tensor({int64_t(1) << 40, int64_t(rank)}, torch::kLong);
    g->all_reduce_sum(s.sum, "test sum");
    s.max = torch::tensor({float(rank), -float(rank)});
    g->all_reduce_max(s.max, "test max");
    s.broadcast = rank == 0 ? torch::arange(5, torch::kDouble) : torch::zeros({5}, torch::kDouble);
    g->broadcast(s.broadcast, 0, "test broadcast");
    // Unequal and zero splits: rank 0 sends 1 row to itself and 3 to rank 1; rank 1 sends 2 to rank 0 and none to itself.
    const auto input = torch::arange(rank == 0 ? 8 : 4, torch::kFloat).view({-1, 2}) + 100 * rank;
    const std::vector<int64_t> in = rank == 0 ? std::vector<int64_t>{1, 3} : std::vector<int64_t>{2, 0};
    const std::vector<int64_t> out = rank == 0 ? std::vector<int64_t>{1, 2} : std::vector<int64_t>{3, 0};
    s.to_all = g->all_to_all(input, in, out, "test all_to_all");
    // Gradients: a parameter with a grad on one rank only counts as zeros on the other.
    auto a = torch::zeros({3}, torch::requires_grad()), b = torch::zeros({2, 2}, torch::requires_grad());
    a.mutable_grad() = torch::full({3}, float(rank + 1));
    if (rank == 1) b.mutable_grad() = torch::ones({2, 2}) * 4;
    dist::GradientAverager avg({a, b}, *g);
    avg.average();
    s.grad_a = a.grad().clone();
    s.grad_b = b.grad().clone();
    s.bytes = g->broadcast_bytes(rank == 0 ? std::string("tok\0en", 6) : std::string(), 0, "test bytes");
    if (rank == 0) g->publish("k", "value from 0");
    s.published = g->fetch("k");
    g->barrier("test barrier");
    return s;
  };
  auto r1 = std::async(std::launch::async, rank_main, 1);
  Seen s0 = rank_main(0), s1 = r1.get();
  for (const Seen* s : {&s0, &s1}) {
    QCOMPARE(s->sum[0].item<int64_t>(), int64_t(1) << 41);
    QCOMPARE(s->sum[1].item<int64_t>(), int64_t(1));
    QVERIFY(torch::equal(s->max, torch::tensor({1.0f, 0.0f})));
    QVERIFY(torch::equal(s->broadcast, torch::arange(5, torch::kDouble)));
    QVERIFY(torch::equal(s->grad_a, torch::full({3}, 1.5f)));
    QVERIFY(torch::equal(s->grad_b, torch::full({2, 2}, 2.0f)));
    QCOMPARE(s->bytes, std::string("tok\0en", 6));
    QCOMPARE(s->published, std::string("value from 0"));
  }
  // Rank 0 gets its own row 0 and rank 1's rows 0-1; rank 1 gets rank 0's rows 1-3.
  QVERIFY(torch::equal(s0.to_all, torch::tensor({0.f, 1.f, 100.f, 101.f, 102.f, 103.f}).view({3, 2})));
  QVERIFY(torch::equal(s1.to_all, torch::tensor({2.f, 3.f, 4.f, 5.f, 6.f, 7.f}).view({3, 2})));
}

void TestDist::optionsAreChecked() {
  QTemporaryDir dir;
  const QString config = exact_config(dir.path(), "demo", RouterKind::ExpertsChoose);
  auto args = train_args(config, dir.path(), 2);
  // A batch that does not split evenly, a rank outside the world, --nproc with --rank: each refused, saying why.
  Result r = smx_cli(QStringList(args) << "--nproc" << "3");
  QVERIFY2(r.code != 0 && r.err.contains("cannot be split evenly over 3 ranks"), qPrintable(r.err));
  r = smx_cli(QStringList(args) << "--rank" << "2" << "--world-size" << "2");
  QVERIFY2(r.code == 2 && r.err.contains("ranks 0..1"), qPrintable(r.err));
  r = smx_cli(QStringList(args) << "--nproc" << "2" << "--rank" << "0");
  QVERIFY2(r.code == 2 && r.err.contains("--nproc starts all ranks"), qPrintable(r.err));
  r = smx_cli(QStringList(args) << "--nproc" << "2" << "--expert-parallel" << "3");
  QVERIFY2(r.code == 2 && r.err.contains("give a divisor of the 2 ranks"), qPrintable(r.err));
  // A model without MoE layers has no experts to spread.
  r = smx_cli(train_args(exact_config(dir.path(), "demo-bert", RouterKind::ExpertsChoose), dir.path(), 2)
              << "--nproc" << "2" << "--expert-parallel" << "2");
  QVERIFY2(r.code != 0 && r.err.contains("has no MoE layers"), qPrintable(r.err));
  QVERIFY(!fs::exists(fs::path(dir.path().toStdString()) / "runs.sqlite") ||
          store::RunStore(fs::path(dir.path().toStdString()) / "runs.sqlite").list_runs().empty());
}

void TestDist::dataParallelEqualsOneProcess_data() {
  QTest::addColumn<QString>("preset");
  QTest::addColumn<int>("router");
  QTest::newRow("bert") << "demo-bert" << int(RouterKind::ExpertsChoose);
  QTest::newRow("sparse mixer, experts choose") << "demo" << int(RouterKind::ExpertsChoose);
  QTest::newRow("sparse mixer, tokens choose") << "demo" << int(RouterKind::TokensChoose);
}

void TestDist::dataParallelEqualsOneProcess() {
  QFETCH(QString, preset);
  QFETCH(int, router);
  QTemporaryDir dir;
  const fs::path data = dir.path().toStdString();
  const QString config = exact_config(dir.path(), preset.toStdString(), RouterKind(router));
  Result one = smx_cli(train_args(config, dir.path(), 10));
  QVERIFY2(one.code == 0, qPrintable(one.err));
  Result two = smx_cli(train_args(config, dir.path(), 10) << "--nproc" << "2");
  QVERIFY2(two.code == 0, qPrintable(two.err));
  for (const char* name : {"loss/total", "optim/grad_norm", "loss/mlm", "loss/z"}) {
    const auto a = metric(data, 1, name), b = metric(data, 2, name);
    QCOMPARE(a.size(), size_t(10));
    QCOMPARE(b.size(), size_t(10));
    const double d = max_relative_difference(a, b);
    QVERIFY2(d < 1e-5, qPrintable(QString("%1: relative difference %2").arg(name).arg(d)));
  }
  // Both ranks' speeds are recorded; only rank 0 wrote the store (one run per launch).
  QCOMPARE(metric(data, 2, "dist/rank1_tokens_per_s").size(), size_t(10));
  QCOMPARE(store::RunStore(data / "runs.sqlite").list_runs().size(), size_t(2));
}

void TestDist::checkpointsDoNotDependOnRanks() {
  // Runs 1-3 train 6 steps on 1, 1 and 2 processes and resume to 10 on 1, 2 and 1: the same curve.
  QTemporaryDir dir;
  const fs::path data = dir.path().toStdString();
  const QString config = exact_config(dir.path(), "demo", RouterKind::ExpertsChoose);
  const int first[] = {1, 1, 2}, then[] = {1, 2, 1};
  for (int run = 1; run <= 3; ++run) {
    Result r = smx_cli(train_args(config, dir.path(), 6) << "--nproc" << QString::number(first[run - 1]));
    QVERIFY2(r.code == 0, qPrintable(r.err));
    r = smx_cli({"pretrain", "--resume", QString::number(run), "--steps", "10", "--nproc", QString::number(then[run - 1]),
                 "--data-dir", dir.path(), "--quiet"});
    QVERIFY2(r.code == 0, qPrintable(r.err));
  }
  const auto reference = metric(data, 1, "loss/total");
  QCOMPARE(reference.size(), size_t(10));
  for (int run = 2; run <= 3; ++run) {
    const auto resumed = metric(data, run, "loss/total");
    QCOMPARE(resumed.size(), size_t(10));
    const double d = max_relative_difference(reference, resumed);
    QVERIFY2(d < 1e-5, qPrintable(QString("run %1: relative difference %2").arg(run).arg(d)));
  }
}

void TestDist::expertParallelEqualsOneProcess_data() {
  QTest::addColumn<int>("router");
  QTest::addColumn<int>("ranks");
  QTest::newRow("experts choose, 2 ranks") << int(RouterKind::ExpertsChoose) << 2;
  QTest::newRow("tokens choose, 2 ranks") << int(RouterKind::TokensChoose) << 2;
  // Two groups of 2 ranks: each shard has a replica, which sums its gradients with it.
  QTest::newRow("experts choose, 4 ranks") << int(RouterKind::ExpertsChoose) << 4;
}

void TestDist::expertParallelEqualsOneProcess() {
  // Run 1: 10 steps on one process, then 2 more with the experts spread over 2 ranks. Run 2: the other
  // way round. Evaluations, snapshots and checkpoints every 5 steps gather the experts on the way.
  QFETCH(int, router);
  QFETCH(int, ranks);
  QTemporaryDir dir;
  const fs::path data = dir.path().toStdString();
  const QString config = exact_config(dir.path(), "demo", RouterKind(router), 8 / ranks * 32);
  const QStringList every5 =
      with(with(with(train_args(config, dir.path(), 10), "--eval-every", "5"), "--snapshot-every", "5"), "--checkpoint-every", "5");
  const QStringList spread{"--nproc", QString::number(ranks), "--expert-parallel", "2"};
  Result r = smx_cli(every5);
  QVERIFY2(r.code == 0, qPrintable(r.err));
  r = smx_cli(QStringList(every5) << spread);
  QVERIFY2(r.code == 0, qPrintable(r.err));
  // Both final checkpoints hold all the experts of every layer, with the same weights.
  store::RunStore s(data / "runs.sqlite");
  std::vector<EncoderModel> models;
  for (int64_t run : {1, 2}) {
    const fs::path file = newest_checkpoint(s.run_folder(run));
    ModelConfig mc;
    TrainConfig tc;
    run_config_from_json_text(read_checkpoint_info(file).run_config_json, mc, tc);
    models.emplace_back(mc);
    load_checkpoint(file, *models.back(), nullptr, false, /*strict=*/true);
  }
  const auto a = models[0]->moe_layers(), b = models[1]->moe_layers();
  QVERIFY(!a.empty());
  for (size_t i = 0; i < a.size(); ++i) {
    QCOMPARE(b[i].second->w_in.size(0), a[i].second->num_experts());
    const double d = (a[i].second->w_in - b[i].second->w_in).abs().max().item<double>();
    QVERIFY2(d < 1e-5, qPrintable(QString("layer %1 experts differ by %2").arg(a[i].first).arg(d)));
  }
  r = smx_cli(QStringList{"pretrain", "--resume", "1", "--steps", "12", "--data-dir", dir.path(), "--quiet"} << spread);
  QVERIFY2(r.code == 0, qPrintable(r.err));
  r = smx_cli({"pretrain", "--resume", "2", "--steps", "12", "--data-dir", dir.path(), "--quiet"});
  QVERIFY2(r.code == 0, qPrintable(r.err));
  for (const char* name : {"loss/total", "optim/grad_norm", "loss/z", "loss/load_balancing"}) {
    const auto one = metric(data, 1, name), two = metric(data, 2, name);
    QCOMPARE(one.size(), size_t(12));
    QCOMPARE(two.size(), size_t(12));
    const double d = max_relative_difference(one, two);
    QVERIFY2(d < 1e-5, qPrintable(QString("%1: relative difference %2").arg(name).arg(d)));
  }
  QCOMPARE(metric(data, 1, "eval/loss_mlm").size(), metric(data, 2, "eval/loss_mlm").size());
  QVERIFY(max_relative_difference(metric(data, 1, "eval/loss_mlm"), metric(data, 2, "eval/loss_mlm")) < 1e-5);
}

void TestDist::ranksStartedByHandJoin() {
  // The multi-machine way, on one machine: each rank started by hand with --rank/--world-size/--master-*,
  // rank 1 first (it waits for rank 0's store).
  QTemporaryDir dir;
  const fs::path data = dir.path().toStdString();
  const QString config = exact_config(dir.path(), "demo", RouterKind::ExpertsChoose);
  const QString port = QString::number(dist::free_port());
  const QStringList join{"--world-size", "2", "--master-addr", "127.0.0.1", "--master-port", port};
  QProcess rank1;
  rank1.start(SMX_CLI_PATH, train_args(config, dir.path(), 4) << join << "--rank" << "1");
  QVERIFY(rank1.waitForStarted());
  const Result rank0 = smx_cli(train_args(config, dir.path(), 4) << join << "--rank" << "0");
  QVERIFY2(rank0.code == 0, qPrintable(rank0.err));
  QVERIFY(rank1.waitForFinished(60000));
  QCOMPARE(rank1.exitCode(), 0);
  QCOMPARE(metric(data, 1, "dist/rank1_tokens_per_s").size(), size_t(4));
  QCOMPARE(store::RunStore(data / "runs.sqlite").list_runs().size(), size_t(1));
}

void TestDist::ctrlCStopsEveryRank() {
  QTemporaryDir dir;
  const fs::path data = dir.path().toStdString();
  const QString config = exact_config(dir.path(), "demo", RouterKind::ExpertsChoose);
  QProcess p;
  p.start(SMX_CLI_PATH, train_args(config, dir.path(), 100000) << "--nproc" << "2");
  QVERIFY(p.waitForStarted());
  for (int i = 0; i < 1200 && metric(data, 1, "loss/total").size() < 3; ++i) QTest::qWait(50);
  QVERIFY2(metric(data, 1, "loss/total").size() >= 3, "no step was recorded within 60 s");
  ::kill(static_cast<pid_t>(p.processId()), SIGINT);
  QVERIFY(p.waitForFinished(120000));
  QCOMPARE(p.exitCode(), 0);
  store::RunStore s(data / "runs.sqlite");
  QCOMPARE(s.find_run(1)->status, std::string("stopped"));
  QVERIFY(!newest_checkpoint(s.run_folder(1)).empty());
}

void TestDist::pauseAndStopReachEveryRank() {
  // Two trainers in threads of this process as ranks 0 and 1: rank 0 (the studio's) is paused, continued
  // and stopped; rank 1 follows at the same steps, and the collectives keep each other alive meanwhile.
  QTemporaryDir dir;
  const fs::path data = dir.path().toStdString();
  dist::DistOptions base;
  base.world_size = 2;
  base.master_port = dist::free_port();
  base.timeout_seconds = 60;
  struct Steps : TrainerObserver {
    std::atomic<int64_t> last{0};
    void on_step(const StepMetrics& m) override { last = m.step; }
  } steps;
  auto options = [&](int rank) {
    TrainerOptions o;
    o.model = test::tiny_model();
    o.training = test::tiny_training(fs::path(SMX_FIXTURES_DIR), 100000, 0, 1);
    o.data_dir = data;
    o.dist = base;
    o.dist.rank = rank;
    return o;
  };
  Trainer rank0(options(0), &steps), rank1(options(1));
  auto follower = std::async(std::launch::async, [&] { return rank1.run(); });
  auto leader = std::async(std::launch::async, [&] { return rank0.run(); });
  for (int i = 0; i < 1200 && steps.last < 3; ++i) QTest::qWait(50);
  QVERIFY(steps.last >= 3);
  rank0.pause();
  QTest::qWait(500);
  const int64_t paused_at = steps.last;
  QTest::qWait(1000);
  QCOMPARE(steps.last.load(), paused_at);  // no rank trains while one is paused
  rank0.resume();
  for (int i = 0; i < 1200 && steps.last < paused_at + 3; ++i) QTest::qWait(50);
  QVERIFY(steps.last >= paused_at + 3);
  rank0.stop();
  QCOMPARE(leader.wait_for(std::chrono::seconds(120)), std::future_status::ready);
  QCOMPARE(follower.wait_for(std::chrono::seconds(120)), std::future_status::ready);
  const RunOutcome a = leader.get(), b = follower.get();
  QCOMPARE(a.status, std::string("stopped"));
  QCOMPARE(b.status, std::string("stopped"));
  QCOMPARE(a.steps_done, b.steps_done);
  store::RunStore s(data / "runs.sqlite");
  int paused = 0, continued = 0;
  for (const auto& e : s.events(a.run_id)) {
    paused += e.kind == "paused";
    continued += e.kind == "continued";
  }
  QCOMPARE(paused, 1);
  QCOMPARE(continued, 1);
}

void TestDist::anotherMachineKeepsItsOwnTokenizer() {
  // Rank 1 has a data folder of its own (another machine), holding a different tokenizer of the name
  // rank 0's has: it trains with rank 0's, stored beside its own, and its own file is left as it was.
  QTemporaryDir dir0, dir1;
  const fs::path data0 = dir0.path().toStdString(), data1 = dir1.path().toStdString();
  auto options = [&](int rank, const fs::path& data, int port) {
    TrainerOptions o;
    o.model = test::tiny_model();
    o.training = test::tiny_training(fs::path(SMX_FIXTURES_DIR), 2, 0, 1);
    o.data_dir = data;
    o.dist.world_size = 2;
    o.dist.rank = rank;
    o.dist.master_port = port;
    o.dist.timeout_seconds = 60;
    return o;
  };
  auto train = [&](const fs::path& data_of_rank1) {
    const int port = dist::free_port();
    Trainer rank0(options(0, data0, port)), rank1(options(1, data_of_rank1, port));
    auto follower = std::async(std::launch::async, [&] { return rank1.run(); });
    const RunOutcome a = rank0.run();
    return std::make_pair(a.status, follower.get().status);
  };
  auto [s0, s1] = train(data0);  // rank 0 trains the tokenizer; its name is what rank 1 will look for
  QCOMPARE(s0, std::string("finished"));
  QCOMPARE(s1, std::string("finished"));
  fs::path name;
  for (const auto& e : fs::directory_iterator(data0 / "tokenizers"))
    if (e.path().extension() == ".model") name = e.path().filename();
  QVERIFY(!name.empty());
  fs::create_directories(data1 / "tokenizers");
  std::ofstream(data1 / "tokenizers" / name) << "this machine's own tokenizer";
  std::tie(s0, s1) = train(data1);
  QCOMPARE(s0, std::string("finished"));
  QCOMPARE(s1, std::string("finished"));
  std::ifstream own(data1 / "tokenizers" / name);
  QCOMPARE(std::string(std::istreambuf_iterator<char>(own), {}), std::string("this machine's own tokenizer"));
  int copies = 0;
  for (const auto& e : fs::directory_iterator(data1 / "tokenizers"))
    copies += e.path().filename().string().find("-rank0-") != std::string::npos;
  QCOMPARE(copies, 1);
}

void TestDist::killedRankEndsTheRun() {
  QTemporaryDir dir;
  const fs::path data = dir.path().toStdString();
  const QString config = exact_config(dir.path(), "demo", RouterKind::ExpertsChoose);
  Result r = smx_cli(train_args(config, dir.path(), 10)
                     << "--nproc" << "2" << "--checkpoint-every" << "2" << "--inject-rank-fault" << "1:6:kill"
                     << "--dist-timeout" << "60");
  QVERIFY2(r.code != 0, qPrintable(r.err));
  QVERIFY2(r.err.contains("rank 1 (pid"), qPrintable(r.err));  // the launcher names the rank that died
  store::RunStore s(data / "runs.sqlite");
  QCOMPARE(s.find_run(1)->status, std::string("failed"));
  bool named = false;
  for (const auto& e : s.events(1))
    if (e.kind == "failed") named = e.message.find("rank 1 stopped answering") != std::string::npos;
  QVERIFY2(named, "the run's failure event names rank 1");
  // The last checkpoint (step 6) is intact, and the run resumes on one process.
  QCOMPARE(read_checkpoint_info(newest_checkpoint(s.run_folder(1))).step, int64_t(6));
  r = smx_cli({"pretrain", "--resume", "1", "--steps", "10", "--data-dir", dir.path(), "--quiet"});
  QVERIFY2(r.code == 0, qPrintable(r.err));
  QCOMPARE(store::RunStore(data / "runs.sqlite").find_run(1)->status, std::string("finished"));
}

void TestDist::hungRankEndsTheRunAtTheTimeout() {
  // Rank 1 stops answering: rank 0 gives up at the 5 s timeout and says which rank hung.
  QTemporaryDir dir;
  const fs::path data = dir.path().toStdString();
  const QString config = exact_config(dir.path(), "demo", RouterKind::ExpertsChoose);
  Result r = smx_cli(train_args(config, dir.path(), 10)
                     << "--nproc" << "2" << "--inject-rank-fault" << "1:3:hang" << "--dist-timeout" << "5");
  QVERIFY2(r.code != 0 && r.code != -2, qPrintable(r.err));
  QVERIFY2(r.err.contains("rank 1 stopped answering") && r.err.contains("5 s timeout"), qPrintable(r.err));
  QCOMPARE(store::RunStore(data / "runs.sqlite").find_run(1)->status, std::string("failed"));
}

QTEST_GUILESS_MAIN(TestDist)
