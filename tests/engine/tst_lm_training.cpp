#include "tests/engine/tst_lm_training.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <set>

#include <torch/torch.h>

#include "model/inspect/inspector.h"
#include "model/nn/decoder.h"
#include "model/store/run_store.h"
#include "model/store/snapshot.h"
#include "model/text/lm_data.h"
#include "model/train/checkpoint.h"
#include "model/train/trainer.h"

using namespace smx;
namespace fs = std::filesystem;

namespace {
const fs::path kFixtures = SMX_FIXTURES_DIR;
QTemporaryDir* g_dir = nullptr;

ModelConfig tiny_lm() {
  return config_from_json_text(R"({"preset": "smlp-demo", "name": "tiny-lm", "d_model": 32, "d_ff": 64,
    "num_layers": 3, "moe_layers": 1, "num_experts": 2, "max_seq_len": 32, "vocab_size": 100,
    "router": {"eval_capacity_factor": 2.0, "max_group_size": 512}})");
}

// Training options of a short run of a tiny model (an LM, or an encoder) on the fixture corpus, no
// evaluations or checkpoints between.
TrainerOptions tiny_run(const ModelConfig& model, int64_t steps, int64_t snapshot_every) {
  TrainerOptions o;
  o.model = model;
  o.training = recommended_pretraining(o.model);
  o.training.corpus = (kFixtures / "corpus" / "tiny.txt").string();
  o.training.steps = steps;
  o.training.batch_size = 4;
  o.training.warmup_steps = 2;
  o.training.eval_every = 0;
  o.training.eval_batches = 1;
  o.training.checkpoint_every = 0;
  o.training.snapshot_every = snapshot_every;
  o.training.threads = 1;
  o.training.device = "cpu";
  o.data_dir = g_dir->path().toStdString();
  return o;
}
}  // namespace

void TestLmTraining::initTestCase() { g_dir = new QTemporaryDir; }
void TestLmTraining::cleanupTestCase() { delete g_dir; }

void TestLmTraining::lmDataWindowsAndSplit() {
  // 300 documents of 2 sentences; document d holds tokens 1000·d .. 1000·d + 19, so every token names its document.
  text::TokenizedCorpus c;
  c.sentence_starts.push_back(0);
  c.document_starts.push_back(0);
  for (int d = 0; d < 300; ++d) {
    for (int s = 0; s < 2; ++s) {
      for (int t = 0; t < 10; ++t) c.tokens.push_back(1000 * d + 10 * s + t);
      c.sentence_starts.push_back(c.tokens.size());
    }
    c.document_starts.push_back(uint32_t(c.num_sentences()));
  }
  text::LmDataOptions o;
  o.seq_len = 16;
  o.separator = 3;
  o.seed = 7;
  text::LmData data(c, o);
  const auto& train = data.stream(text::Split::Train);
  const auto& held = data.stream(text::Split::Heldout);
  QCOMPARE(qint64(data.num_tokens(text::Split::Train) + data.num_tokens(text::Split::Heldout)), qint64(300 * 21));
  QVERIFY(held.size() > 0 && held.size() < train.size() / 10);
  std::set<int> train_docs, held_docs;
  for (int32_t t : train)
    if (t != 3) train_docs.insert(t / 1000);
  for (int32_t t : held)
    if (t != 3) held_docs.insert(t / 1000);
  for (int d : held_docs) QVERIFY2(!train_docs.count(d), "a held-out document is in the training stream");
  // Each document is contiguous and closed by the separator.
  QCOMPARE(train[20], int32_t(3));
  // Held-out windows tile the stream, consecutive ones sharing one token; training windows are a pure
  // function of (seed, index).
  const uint64_t n = data.num_heldout_windows();
  QCOMPARE(qint64(n), qint64((held.size() - 1) / 15));
  for (uint64_t k = 0; k < n; ++k) {
    const auto w = data.window(text::Split::Heldout, k);
    QCOMPARE(int(w.size()), 16);
    QCOMPARE(w[0], held[k * 15]);
    if (k > 0) QCOMPARE(w[0], data.window(text::Split::Heldout, k - 1).back());
  }
  QCOMPARE(data.window(text::Split::Train, 5), text::LmData(c, o).window(text::Split::Train, 5));
  o.seed = 8;
  bool differs = false;
  for (uint64_t i = 0; i < 8; ++i) differs = differs || data.window(text::Split::Train, i) != text::LmData(c, o).window(text::Split::Train, i);
  QVERIFY(differs);
  o.seq_len = 1;
  QVERIFY_EXCEPTION_THROWN(text::LmData(c, o), std::invalid_argument);
}

void TestLmTraining::inverseSqrtSchedule() {
  TrainConfig t = recommended_pretraining(preset("smlp-demo"));
  QCOMPARE(QString::fromStdString(t.schedule), QString("inverse-sqrt"));
  QCOMPARE(t.adam_beta2, 0.98);
  QCOMPARE(t.weight_decay, 0.1);
  t.learning_rate = 1e-3;
  t.warmup_steps = 100;
  t.steps = 10000;
  QCOMPARE(t.learning_rate_at(0), 1e-5);               // linear warm-up
  QCOMPARE(t.learning_rate_at(99), 1e-3);              // the peak at the end of warm-up
  QVERIFY(std::abs(t.learning_rate_at(399) - 5e-4) < 1e-12);  // peak·sqrt(100/400)
  QVERIFY(t.learning_rate_at(9999) > 0);               // no decay to zero
  t.schedule = "cosine";
  QVERIFY_EXCEPTION_THROWN(t.validate(), ConfigError);
  // Encoders keep BERT's settings.
  QCOMPARE(QString::fromStdString(recommended_pretraining(preset("demo")).schedule), QString("linear"));
}

void TestLmTraining::trainerRunsTheLmObjective() {
  TrainerOptions o = tiny_run(tiny_lm(), 40, 50);
  o.training.batch_size = 8;
  o.training.warmup_steps = 5;
  o.training.eval_every = 20;
  o.training.eval_batches = 2;
  o.training.checkpoint_every = 20;
  Trainer trainer(o);
  const RunOutcome out = trainer.run();
  QCOMPARE(QString::fromStdString(out.status), QString("finished"));
  const double ppl = out.last_eval.get("eval/perplexity", -1);
  qInfo("tiny LM: held-out perplexity %.2f after 40 steps (vocabulary %lld)", ppl, (long long)o.model.vocab_size);
  QVERIFY(std::isfinite(ppl) && ppl > 1);
  QVERIFY2(ppl < 0.5 * double(o.model.vocab_size), "40 steps should bring perplexity well below the vocabulary");
  // The run store has the LM's numbers.
  store::RunStore s(fs::path(g_dir->path().toStdString()) / "runs.sqlite");
  QVERIFY(s.metric(out.run_id, "loss/nll").size() == 40);
  QCOMPARE(int(s.metric(out.run_id, "eval/perplexity").size()), 2);  // step 20 and the final one
  QCOMPARE(QString::fromStdString(s.find_run(out.run_id)->kind), QString("lm"));
  // Evaluating the checkpoint again gives the same held-out perplexity.
  const auto again = evaluate_checkpoint(out.last_checkpoint, g_dir->path().toStdString(), nullptr, "cpu");
  QVERIFY(std::abs(again.get("eval/perplexity") / ppl - 1) < 1e-5);
  // Resume: the run continues from its checkpoint to 45 steps.
  TrainerOptions r;
  r.resume_run = out.run_id;
  r.training.steps = 45;
  r.data_dir = g_dir->path().toStdString();
  const RunOutcome resumed = Trainer(r).run();
  QCOMPARE(resumed.steps_done, int64_t(45));
  QCOMPARE(int(s.metric(out.run_id, "loss/nll").size()), 45);
  // Generation from the trained model: greedy is deterministic, sampling follows the seed.
  ModelConfig mc;
  TrainConfig tc;
  run_config_from_json_text(read_checkpoint_info(resumed.last_checkpoint).run_config_json, mc, tc);
  CausalLm lm(mc);
  load_checkpoint(resumed.last_checkpoint, *lm, nullptr, false, true);
  lm->eval();
  GenerateOptions g;
  g.max_new_tokens = 12;
  const auto a = generate(lm, {5, 6, 7}, g), b = generate(lm, {5, 6, 7}, g);
  QCOMPARE(a, b);
  QCOMPARE(int(a.size()), 12);
  g.temperature = 1.0;
  g.top_k = 5;
  g.seed = 3;
  QCOMPARE(generate(lm, {5, 6, 7}, g), generate(lm, {5, 6, 7}, g));
  g.top_k = 1;  // top-1 sampling is greedy
  QCOMPARE(generate(lm, {5, 6, 7}, g), a);
  g.top_k = 1000;
  QVERIFY_EXCEPTION_THROWN(generate(lm, {5}, g), c10::Error);
  // A decoder LM refuses fine-tuning tasks with a message.
  TrainerOptions f = o;
  f.training.task = "wordnet-lexname";
  try {
    Trainer(f).run();
    QFAIL("a decoder LM accepted a fine-tuning task");
  } catch (const ConfigError& e) {
    QVERIFY2(QString(e.what()).contains("decoder LM"), e.what());
  }
}

void TestLmTraining::lmSnapshotsFeedTheViews() {
  // A partial-prediction sMLP with a Hash-routed feature MoE (balanced table from the corpus): its
  // snapshots carry what the studio's views draw for encoders, plus the sMoE's channel routing.
  ModelConfig m = tiny_lm();
  m.smoe_routing = SmoeRouting::Partial;
  m.router.kind = RouterKind::Hash;
  m.router.hash_table = HashTable::Balanced;
  const TrainerOptions o = tiny_run(m, 10, 5);
  const RunOutcome out = Trainer(o).run();
  QCOMPARE(QString::fromStdString(out.status), QString("finished"));
  store::RunStore s(fs::path(g_dir->path().toStdString()) / "runs.sqlite");
  const auto snaps = s.snapshots(out.run_id);
  QCOMPARE(int(snaps.size()), 3);  // steps 0 (the initialisation, as encoders), 5 and 10
  const telemetry::Snapshot snap = telemetry::load_snapshot(s.snapshot_file(snaps.back()));
  QCOMPARE(snap.step, int64_t(10));
  // The feature MoE: every token of the batch routed (Hash never drops), top tokens per expert.
  QCOMPARE(int(snap.moe.size()), 1);
  const auto& moe = snap.moe[0];
  QCOMPARE(QString::fromStdString(moe.router), QString("hash"));
  double routed = 0;
  for (float t : moe.tokens_per_expert) routed += t;
  QCOMPARE(routed, double(4 * 32));
  QCOMPARE(moe.dropped_fraction, 0.f);
  QVERIFY(!moe.top_tokens.empty() && !moe.top_tokens[0].empty());
  // The probe: plain text (no [CLS]), routed by the same layer.
  QCOMPARE(int(snap.probe.size()), 1);
  QVERIFY(!snap.probe[0].tokens.empty() && snap.probe[0].tokens.front() != "[CLS]");
  // Mixing: every block's causal SGU or sMoE experts (upper triangle zero), and the sparse block's
  // channel -> expert probabilities, rows summing to 1 (training batch and probe).
  int smoe_layers = 0, sgu_layers = 0;
  for (const auto& m : snap.mixing) {
    if (m.kind == "sgu") ++sgu_layers;
    if (m.kind == "smoe-partial") ++smoe_layers;
    for (const auto& mat : m.matrices) {
      if (mat.name.rfind("expert", 0) == 0 || mat.name == "sequence")
        for (int r = 0; r < mat.rows; ++r)
          for (int c = r + 1; c < mat.cols; ++c) QCOMPARE(mat.values[size_t(r * mat.cols + c)], 0.f);
      if (mat.name.find("channels to experts") != std::string::npos) {
        QCOMPARE(mat.cols, 2);
        for (int r = 0; r < mat.rows; ++r)
          // Snapshot matrices are stored as float16: each value is off by up to half an ulp (2.4e-4 near 0.5).
          QVERIFY2(std::abs(mat.values[size_t(r * 2)] + mat.values[size_t(r * 2 + 1)] - 1.f) < 1e-3f,
                   qPrintable(QString("%1 %2 row %3: %4 + %5").arg(QString::fromStdString(m.kind), QString::fromStdString(mat.name)).arg(r)
                                  .arg(mat.values[size_t(r * 2)]).arg(mat.values[size_t(r * 2 + 1)])));
      }
    }
  }
  QCOMPARE(sgu_layers, 2);
  QCOMPARE(smoe_layers, 1);
}

void TestLmTraining::inspectorGeneratesAndChecksLeaks() {
  // Two tiny sMLPs trained a few steps: deterministic sMoE routing (causal) and learned (leaks).
  auto train = [](SmoeRouting routing) {
    ModelConfig m = tiny_lm();
    m.smoe_routing = routing;
    const TrainerOptions o = tiny_run(m, 6, 0);
    const RunOutcome out = Trainer(o).run();
    return out.last_checkpoint;
  };
  const fs::path causal_ckpt = train(SmoeRouting::Deterministic), leaky_ckpt = train(SmoeRouting::Learned);
  QVERIFY(!causal_ckpt.empty() && !leaky_ckpt.empty());

  inspect::Inspector lm(causal_ckpt, "cpu");
  QVERIFY(lm.is_decoder());
  // Generation: greedy is repeatable; the prompt's and the new tokens' routing through the feature MoE.
  inspect::GenerateSettings g;
  g.max_new_tokens = 6;
  const auto a = lm.generate("a dog", g), b = lm.generate("a dog", g);
  QVERIFY(!a.prompt_tokens.empty());
  QVERIFY(a.new_tokens.size() <= 6);
  QVERIFY(a.new_tokens.size() == 6 || a.stopped);
  QCOMPARE(a.new_tokens, b.new_tokens);
  QCOMPARE(a.continuation, b.continuation);
  QCOMPARE(int(a.moe_layers.size()), 1);
  QCOMPARE(a.experts[0].size(), a.prompt_tokens.size() + a.new_tokens.size());
  g.temperature = 1.0;
  g.top_k = 5;
  g.seed = 4;
  QCOMPARE(lm.generate("a dog", g).new_tokens, lm.generate("a dog", g).new_tokens);
  g.top_k = 100000;
  QVERIFY_EXCEPTION_THROWN(lm.generate("a dog", g), inspect::InspectError);
  QVERIFY_EXCEPTION_THROWN(lm.generate("   ", {}), inspect::InspectError);
  // Masked prediction does not apply to a decoder LM: a clear message, not a crash.
  try {
    lm.predict("a [MASK] dog");
    QFAIL("predict accepted a decoder LM");
  } catch (const inspect::InspectError& e) {
    QVERIFY2(QString(e.what()).contains("decoder LM"), e.what());
  }
  // Routing what-ifs and the capacity probe go through the LM's feature-MoE layers.
  const auto routed = lm.route("a dog barks", 2.0);
  QCOMPARE(int(routed.size()), 1);
  QCOMPARE(int(routed[0].tokens.size()), int(routed[0].assigned.size() / size_t(routed[0].num_experts)));
  QCOMPARE(int(lm.route_batch(1.0, 4).size()), 1);

  // The leak check: teacher-forced = token-by-token for the causal model (SMLP.md check 2: 1e-4 rel.).
  const auto c = lm.leak_check(2, g_dir->path().toStdString());
  qInfo("causal: teacher-forced %.4f, token-by-token %.4f (%lld targets)", c.teacher_forced_perplexity,
        c.token_by_token_perplexity, (long long)c.targets);
  QVERIFY(c.windows >= 1 && c.targets > 0);
  QVERIFY(std::isfinite(c.teacher_forced_perplexity) && c.teacher_forced_perplexity > 1);
  QVERIFY(std::abs(c.token_by_token_perplexity / c.teacher_forced_perplexity - 1) < 1e-4);
  QCOMPARE(QString::fromStdString(c.smoe_routing), QString("deterministic"));
  // Asked again (data folder from the tokenizer's): the same windows, the same number.
  const auto again = lm.leak_check(2);  // data folder from the tokenizer's: the same windows
  QCOMPARE(again.teacher_forced_perplexity, c.teacher_forced_perplexity);

  // The learned sMoE reads future tokens: the two numbers differ.
  inspect::Inspector leaky(leaky_ckpt, "cpu");
  const auto l = leaky.leak_check(2, g_dir->path().toStdString());
  qInfo("learned: teacher-forced %.4f, token-by-token %.4f", l.teacher_forced_perplexity, l.token_by_token_perplexity);
  // After a few steps the router is barely trained, so the gap is small; it is still far above the causal
  // model's float rounding.
  const double causal_gap = std::abs(c.token_by_token_perplexity / c.teacher_forced_perplexity - 1);
  const double leaky_gap = std::abs(l.token_by_token_perplexity / l.teacher_forced_perplexity - 1);
  qInfo("relative gap: causal %.2e, learned %.2e", causal_gap, leaky_gap);
  QVERIFY2(leaky_gap > 1e-6 && leaky_gap > 10 * causal_gap,
           "the learned sMoE should leak: teacher-forced and token-by-token perplexity agree");
  QCOMPARE(QString::fromStdString(l.smoe_routing), QString("learned"));

  // An encoder checkpoint refuses generation and the leak check with a message.
  const TrainerOptions e = tiny_run(
      config_from_json_text(R"({"preset": "demo", "d_model": 32, "d_ff": 64, "num_layers": 2, "attention_layers": 1,
    "moe_layers": 1, "num_experts": 2, "num_heads": 2, "max_seq_len": 32, "vocab_size": 100})"), 2, 0);
  inspect::Inspector encoder(Trainer(e).run().last_checkpoint, "cpu");
  QVERIFY(!encoder.is_decoder());
  QVERIFY_EXCEPTION_THROWN(encoder.generate("a dog"), inspect::InspectError);
  QVERIFY_EXCEPTION_THROWN(encoder.leak_check(), inspect::InspectError);
}

QTEST_GUILESS_MAIN(TestLmTraining)
