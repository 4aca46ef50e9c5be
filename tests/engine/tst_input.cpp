#include "tests/engine/tst_input.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "model/config/cost.h"
#include "model/config/train_config.h"
#include "model/core/hash.h"
#include "model/nn/encoder.h"
#include "model/text/corpus.h"
#include "model/text/tokenizer.h"
#include "model/train/checkpoint.h"
#include "model/train/trainer.h"
#include "tests/engine/trainer_fixtures.h"

using namespace smx;
namespace fs = std::filesystem;

namespace {
const fs::path kFixtures = SMX_FIXTURES_DIR;
QTemporaryDir* g_dir = nullptr;
RunOutcome g_pretrain, g_finetune;  // made by resumeOfTheOtherKindIsRefused, used after it

using smx::test::tiny_model;
TrainConfig tiny_training(int64_t steps) { return smx::test::tiny_training(kFixtures, steps, 0, 1); }

TrainerOptions options(const ModelConfig& m, const TrainConfig& t) {
  TrainerOptions o;
  o.model = m;
  o.training = t;
  o.data_dir = g_dir->path().toStdString();
  return o;
}

// Runs `f`, which must throw E; returns its message (empty, and a test failure, if it did not throw).
template <typename E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return {};
}
#define EXPECT_ERROR(E, call, ...)                                                                   \
  do {                                                                                               \
    const std::string msg_ = error_of<E>([&] { call; });                                             \
    QVERIFY2(!msg_.empty(), "accepted: " #call);                                                     \
    for (const std::string& w : std::vector<std::string>{__VA_ARGS__})                             \
      QVERIFY2(msg_.find(w) != std::string::npos, msg_.c_str());                                     \
  } while (0)

// Rewrites a checkpoint file's header (and optionally its version and payload
// length fields) and recomputes the checksum, as a forger would.
void forge(const fs::path& good, const fs::path& out, const std::function<void(nlohmann::json&)>& edit,
           uint32_t version = 1, std::optional<uint64_t> payload_len_field = std::nullopt) {
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t n = 0, m = 0;
  std::memcpy(&n, bytes.data() + 12, 8);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(20, n));
  std::memcpy(&m, bytes.data() + 20 + n, 8);
  const std::string payload = bytes.substr(28 + n, m);
  edit(header);
  const std::string h = header.dump();
  const uint64_t hn = h.size(), pm = payload_len_field.value_or(m);
  std::string o(bytes.data(), 8);
  o.append(reinterpret_cast<const char*>(&version), 4);
  o.append(reinterpret_cast<const char*>(&hn), 8);
  o += h;
  o.append(reinterpret_cast<const char*>(&pm), 8);
  o += payload;
  const uint64_t sum = fnv1a(kFnvBasis, o.data(), o.size());
  o.append(reinterpret_cast<const char*>(&sum), 8);
  std::ofstream(out, std::ios::binary) << o;
}

}  // namespace

void TestInput::initTestCase() {
  g_dir = new QTemporaryDir;
  QVERIFY(g_dir->isValid());
}

void TestInput::jsonNumbersOutOfRange_data() {
  QTest::addColumn<QString>("json");
  QTest::addColumn<QString>("training");  // "1": a training config, else a model config
  QTest::addColumn<QStringList>("mentions");
  QTest::newRow("1e999") << "{\n  \"dropout\": 1e999\n}" << "" << QStringList{"line 2, column 14", "1e999", "out of range"};
  QTest::newRow("-1e999") << R"({"init_std": -1e999})" << "" << QStringList{"-1e999", "out of range"};
  QTest::newRow("int64 overflow") << R"({"d_model": 99999999999999999999})" << ""
                                  << QStringList{"d_model", "must be an integer"};
  QTest::newRow("syntax") << "{\n\"d_model\": 64,,\n}" << "" << QStringList{"not valid JSON at line 2"};
  QTest::newRow("threads wraps int") << R"({"threads": 4294967297})" << "1"
                                     << QStringList{"training.threads", "4294967297", "[-2147483648, 2147483647]"};
  QTest::newRow("negative seed") << R"({"seed": -1})" << "1" << QStringList{"training.seed", "-1"};
  QTest::newRow("training 1e999") << R"({"clip_norm": 1e999})" << "1" << QStringList{"1e999", "out of range"};
}

void TestInput::jsonNumbersOutOfRange() {
  QFETCH(QString, json);
  QFETCH(QString, training);
  QFETCH(QStringList, mentions);
  const fs::path file = fs::path(g_dir->path().toStdString()) / "config.json";
  std::ofstream(file) << json.toStdString();
  std::string msg;
  if (training == "1") msg = error_of<ConfigError>([&] { training_config_from_file(file.string()); });
  else msg = error_of<ConfigError>([&] { config_from_file(file.string()); });
  QVERIFY2(!msg.empty(), "accepted");
  QVERIFY2(msg.find(file.string()) != std::string::npos, msg.c_str());  // the file is named
  QVERIFY2(msg.find("json.exception") == std::string::npos, msg.c_str());  // no library text
  for (const auto& m : mentions) QVERIFY2(msg.find(m.toStdString()) != std::string::npos, msg.c_str());
}

void TestInput::sizesThatCannotFit_data() {
  QTest::addColumn<QString>("json");
  QTest::addColumn<QString>("mentions");
  QTest::newRow("d_model") << R"({"d_model": 10000000})" << "d_model";
  QTest::newRow("d_ff") << R"({"d_ff": 100000000})" << "d_ff";
  QTest::newRow("vocab") << R"({"vocab_size": 2000000000})" << "vocab_size";
  QTest::newRow("experts") << R"({"num_experts": 100000})" << "num_experts";
  QTest::newRow("heads > d_model") << R"({"preset": "demo", "num_heads": 1024})" << "num_heads";
  // Each size in range, the product absurd: ~4e13 parameters.
  QTest::newRow("product") << R"({"d_model": 65536, "d_ff": 1048576, "num_layers": 256, "num_heads": 8})"
                           << "parameters";
}

void TestInput::sizesThatCannotFit() {
  QFETCH(QString, json);
  QFETCH(QString, mentions);
  EXPECT_ERROR(ConfigError, config_from_json_text(json.toStdString()), mentions.toStdString());
}

void TestInput::trainingValuesAgainstTheModel() {
  const ModelConfig m = tiny_model();  // max_seq_len 32
  TrainConfig t = tiny_training(1);
  t.clip_norm = std::nan("");
  EXPECT_ERROR(ConfigError, t.validate(), "clip_norm", "finite");
  t = tiny_training(1);
  t.weight_decay = std::numeric_limits<double>::infinity();
  EXPECT_ERROR(ConfigError, t.validate(), "weight_decay");
  t = tiny_training(1);
  t.threads = 100000;
  EXPECT_ERROR(ConfigError, t.validate(), "threads", "100000");
  t = tiny_training(1);
  t.seq_len = 64;
  EXPECT_ERROR(ConfigError, t.validate(m), "seq_len", "64", "max_seq_len (32)");
  t.seq_len = 32;
  t.max_predictions = 40;
  EXPECT_ERROR(ConfigError, t.validate(m), "max_predictions");
  // The trainer refuses (not caps) it too, before a run is created.
  t = tiny_training(1);
  t.seq_len = 64;
  EXPECT_ERROR(ConfigError, Trainer(options(m, t)).run(), "max_seq_len (32)");
}

void TestInput::memoryEstimateRefusesHugeRuns() {
  // The estimate counts the parameters as model_cost does (which a test checks against the modules).
  for (const auto& name : preset_names()) {
    const ModelConfig c = preset(name);
    const double est = training_memory(c, CostShape{}).parameters;
    const double exact = double(model_cost(c).total_params);
    QVERIFY2(std::abs(est - exact) <= 1e-9 * exact, name.c_str());
  }
  const MemoryEstimate demo = training_memory(preset("demo"), CostShape{32, 0, -1, true});
  QCOMPARE(demo.weights, 4 * demo.parameters);
  QCOMPARE(demo.optimizer, 12 * demo.parameters);
  QVERIFY(demo.total() < 2e9);
  // bert-base with 65536 x 512 tokens a batch: tens of TB of activations, refused up front with the estimate.
  TrainConfig t = tiny_training(1);
  t.batch_size = 65536;
  const MemoryEstimate huge = training_memory(preset("bert-base"), CostShape{65536, 512, -1, true});
  QVERIFY(huge.activations > 1e13);
  EXPECT_ERROR(ConfigError, Trainer(options(preset("bert-base"), t)).run(), "'bert-base' needs about", "activations",
               "batch_size 65536 x 512", "of memory");
}

void TestInput::resumeOfTheOtherKindIsRefused() {
  Trainer pre(options(tiny_model(), tiny_training(2)));
  g_pretrain = pre.run();
  QCOMPARE(g_pretrain.status, std::string("finished"));
  TrainConfig f = tiny_training(2);
  f.task = "sst2";
  f.task_dir = (kFixtures / "glue" / "SST-2").string();
  TrainerOptions fo = options(tiny_model(), f);
  fo.init_checkpoint = g_pretrain.last_checkpoint;
  Trainer ft(fo);
  g_finetune = ft.run();
  QCOMPARE(g_finetune.status, std::string("finished"));

  TrainerOptions r = options(tiny_model(), tiny_training(3));
  r.resume_run = g_pretrain.run_id;
  r.resume_kind = "finetune";
  EXPECT_ERROR(ConfigError, Trainer(r).run(), "is a pre-training run, not a fine-tuning run", "smx pretrain --resume");
  r.resume_run = g_finetune.run_id;
  r.resume_kind = "pretrain";
  EXPECT_ERROR(ConfigError, Trainer(r).run(), "is a fine-tuning run, not a pre-training run", "smx finetune --resume");
}

void TestInput::checkpointMisfitsAreNamed() {
  QVERIFY(!g_pretrain.last_checkpoint.empty());
  ModelConfig saved, other;
  TrainConfig t;
  checkpoint_run_config(g_pretrain.last_checkpoint, read_checkpoint_info(g_pretrain.last_checkpoint), saved, t);
  // Another vocabulary: a non-strict (fine-tuning) load refuses it, naming the tensors and both shapes.
  other = saved;
  other.vocab_size = saved.vocab_size + 7;
  auto wrong = EncoderModel(other);
  const auto before = wrong->embeddings->word->weight.clone();
  const std::string V = std::to_string(saved.vocab_size), V7 = std::to_string(other.vocab_size);
  EXPECT_ERROR(CheckpointError, load_checkpoint(g_pretrain.last_checkpoint, *wrong, nullptr, false, /*strict=*/false),
               "embeddings.word.weight", "[" + V + ", 32] in the file, [" + V7 + ", 32] in the model",
               "mlm_bias", g_pretrain.last_checkpoint.string());
  QVERIFY(torch::equal(before, wrong->embeddings->word->weight));  // nothing loaded
  // A stored config that does not match its tensors (d_ff): refused alike.
  other = saved;
  other.d_ff = 48;
  auto narrow = EncoderModel(other);
  EXPECT_ERROR(CheckpointError, load_checkpoint(g_pretrain.last_checkpoint, *narrow, nullptr, false, false),
               "block0.feed_forward.in.weight: [64, 32] in the file, [48, 32] in the model");
  // The task head alone may differ when fine-tuning; everything else loads.
  other = saved;
  other.num_classes = 5;
  auto head = EncoderModel(other);
  load_checkpoint(g_pretrain.last_checkpoint, *head, nullptr, false, false);
  auto same = EncoderModel(saved);
  load_checkpoint(g_pretrain.last_checkpoint, *same, nullptr, false, true);
  QVERIFY(torch::equal(head->embeddings->word->weight, same->embeddings->word->weight));
  // ... but not in a strict load (resume, evaluation).
  EXPECT_ERROR(CheckpointError, load_checkpoint(g_pretrain.last_checkpoint, *head, nullptr, false, true),
               "classifier.weight: [2, 32] in the file, [5, 32] in the model");
}

void TestInput::finetuneWithAnotherVocabularyIsRefused() {
  QVERIFY(!g_pretrain.last_checkpoint.empty());
  const fs::path other = fs::path(g_dir->path().toStdString()) / "other.model";
  text::TokenizerTrainOptions o;
  o.model_path = other;
  o.vocab_size = 40;
  o.threads = 1;
  const auto corpus = text::read_text_corpus(kFixtures / "corpus" / "tiny.txt");
  const auto tok = text::Tokenizer::train(corpus.sentences, o);
  TrainConfig f = tiny_training(2);
  f.task = "sst2";
  f.task_dir = (kFixtures / "glue" / "SST-2").string();
  f.tokenizer = other.string();
  TrainerOptions fo = options(tiny_model(), f);
  fo.init_checkpoint = g_pretrain.last_checkpoint;
  EXPECT_ERROR(ConfigError, Trainer(fo).run(), "tokenizer " + other.string(),
               std::to_string(tok.vocab_size()) + " pieces, but the model of the checkpoint was trained with a vocabulary of");
}

void TestInput::forgedCheckpointHeaders_data() {
  QTest::addColumn<QString>("case_name");
  QTest::addColumn<QString>("mentions");
  QTest::newRow("step is a string") << "step" << "header field 'step' = \"many\", expected a non-negative integer";
  QTest::newRow("negative run id") << "run_id" << "header field 'run_id' = -3";
  QTest::newRow("no tokenizer") << "tokenizer_path" << "lacks the field 'tokenizer_path'";
  QTest::newRow("wall seconds") << "wall_seconds" << "header field 'wall_seconds'";
  QTest::newRow("rng not hex") << "rng_cpu" << "header field 'rng_cpu' is not a generator state";
  QTest::newRow("rng wrong size") << "rng_size" << "header field 'rng_cpu' holds 2 bytes";
  QTest::newRow("run config") << "run_config" << "header field 'run_config'";
  QTest::newRow("version 0") << "version" << "format version 0";
  QTest::newRow("payload length") << "payload" << "payload length field says";
}

void TestInput::forgedCheckpointHeaders() {
  QFETCH(QString, case_name);
  QFETCH(QString, mentions);
  QVERIFY(!g_pretrain.last_checkpoint.empty());
  const std::string c = case_name.toStdString();
  const fs::path f = fs::path(g_dir->path().toStdString()) / ("forged-" + c + ".ckpt");
  std::function<void(nlohmann::json&)> edit = [&](nlohmann::json& h) {
    if (c == "step") h["step"] = "many";
    if (c == "run_id") h["run_id"] = -3;
    if (c == "tokenizer_path") h.erase("tokenizer_path");
    if (c == "wall_seconds") h["wall_seconds"] = nlohmann::json::array();
    if (c == "rng_cpu") h["rng_cpu"] = "not hex at all";
    if (c == "rng_size") h["rng_cpu"] = "abcd";
    if (c == "run_config") h["run_config"] = "{\"model\": 1e999";
  };
  forge(g_pretrain.last_checkpoint, f, edit, c == "version" ? 0 : 1,
        c == "payload" ? std::optional<uint64_t>(std::numeric_limits<uint64_t>::max() - 40) : std::nullopt);
  ModelConfig saved;
  TrainConfig t;
  checkpoint_run_config(g_pretrain.last_checkpoint, read_checkpoint_info(g_pretrain.last_checkpoint), saved, t);
  auto model = EncoderModel(saved);
  const std::string msg = error_of<CheckpointError>([&] {
    const auto info = load_checkpoint(f, *model, nullptr, /*restore_rng=*/true, true);
    ModelConfig m;
    TrainConfig tc;
    checkpoint_run_config(f, info, m, tc);
  });
  QVERIFY2(!msg.empty(), "a forged checkpoint was accepted");
  QVERIFY2(msg.find(f.string()) != std::string::npos, msg.c_str());
  QVERIFY2(msg.find(mentions.toStdString()) != std::string::npos, msg.c_str());
  QVERIFY2(msg.find("json.exception") == std::string::npos && msg.find("Exception raised from") == std::string::npos,
           msg.c_str());
}

void TestInput::corpusSymlinkLoopIsSkipped() {
  const fs::path d = fs::path(g_dir->path().toStdString()) / "looped";
  fs::create_directories(d / "sub");
  fs::copy_file(kFixtures / "corpus" / "tiny.txt", d / "sub" / "a.txt");
  fs::create_symlink("loop-b", d / "loop-a");  // a -> b -> a
  fs::create_symlink("loop-a", d / "loop-b");
  fs::create_symlink("self", d / "sub" / "self");
  fs::create_directory_symlink("..", d / "sub" / "up");  // a folder link: not followed
  const text::Corpus c = text::read_text_corpus(d);
  const text::Corpus plain = text::read_text_corpus(kFixtures / "corpus" / "tiny.txt");
  QCOMPARE(c.sentences, plain.sentences);
  QCOMPARE(int(c.warnings.size()), 3);
  for (const auto& w : c.warnings) QVERIFY2(w.find("a symbolic link loop") != std::string::npos, w.c_str());
  int named = 0;  // each link is named
  for (const auto& link : {d / "loop-a", d / "loop-b", d / "sub" / "self"})
    for (const auto& w : c.warnings) named += w.find("skipped " + link.string() + ": ") != std::string::npos;
  QCOMPARE(named, 3);
}

void TestInput::smallCorpusTokenizerWarns() {
  text::TokenizerTrainOptions o;
  o.model_path = fs::path(g_dir->path().toStdString()) / "big.model";
  o.vocab_size = 8000;
  o.threads = 1;
  const auto corpus = text::read_text_corpus(kFixtures / "corpus" / "tiny.txt");
  const auto tok = text::Tokenizer::train(corpus.sentences, o);
  QVERIFY(tok.vocab_size() < 8000);
  const std::string w = text::vocabulary_shortfall(tok, 8000, "tiny.txt");
  QVERIFY2(w.find("too small for a vocabulary of 8000") != std::string::npos, w.c_str());
  QVERIFY2(w.find("has only " + std::to_string(tok.vocab_size()) + " pieces") != std::string::npos, w.c_str());
  QVERIFY(text::vocabulary_shortfall(tok, tok.vocab_size(), "tiny.txt").empty());
}

void TestInput::cleanupTestCase() { delete g_dir; }

QTEST_GUILESS_MAIN(TestInput)
