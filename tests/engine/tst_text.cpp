#include "tests/engine/tst_text.h"

#include <QTemporaryDir>
#include <QtTest>

#include <fstream>
#include <map>

#include <torch/torch.h>

#include "model/text/corpus.h"
#include "model/text/pretraining_data.h"
#include "model/text/tokenizer.h"

using namespace smx::text;
namespace fs = std::filesystem;

namespace {
const fs::path kFixtures = SMX_FIXTURES_DIR;

void write(const fs::path& f, const std::string& s) {
  std::ofstream(f, std::ios::binary) << s;
}

// A synthetic corpus where every token names its document: doc d's tokens are
// all 100 + d, so an example's segments reveal where they came from.
TokenizedCorpus labelled_corpus(int docs) {
  TokenizedCorpus t;
  for (int d = 0; d < docs; ++d) {
    t.document_starts.push_back(static_cast<uint32_t>(t.sentence_starts.size()));
    for (int s = 0; s < 2 + d % 5; ++s) {
      t.sentence_starts.push_back(t.tokens.size());
      for (int k = 0; k < 3 + (d + s) % 9; ++k) t.tokens.push_back(100 + d);
    }
  }
  t.sentence_starts.push_back(t.tokens.size());
  t.document_starts.push_back(static_cast<uint32_t>(t.sentence_starts.size() - 1));
  return t;
}
}  // namespace

void TestText::initTestCase() { torch::manual_seed(0); }

void TestText::tokenizerRoundTripWithTorch() {
  // LibTorch is live in this process before and after SentencePiece runs.
  auto before = torch::randn({8, 8}).matmul(torch::randn({8, 8}));
  QTemporaryDir dir;
  const auto corpus = read_text_corpus(kFixtures / "corpus" / "tiny.txt");
  TokenizerTrainOptions o;
  o.model_path = fs::path(dir.path().toStdString()) / "a folder with spaces" / "tiny.model";
  o.vocab_size = 120;
  std::vector<std::string> stages;
  double last_fraction = -1;
  auto tok = Tokenizer::train(corpus.sentences, o, [&](const std::string& s, double f) {
    if (stages.empty() || stages.back() != s) stages.push_back(s);
    last_fraction = f;
  });
  QVERIFY(fs::exists(o.model_path));
  QVERIFY(!stages.empty());
  QCOMPARE(stages.back(), std::string("done"));
  // Progress comes from SentencePiece's own log, read through the shim.
  QVERIFY(std::find(stages.begin(), stages.end(), "pruning vocabulary") != stages.end());
  QCOMPARE(last_fraction, 1.0);
  QVERIFY(tok.vocab_size() > 20 && tok.vocab_size() <= 120);
  QCOMPARE(tok.piece(Tokenizer::kPad), std::string("[PAD]"));
  QCOMPARE(tok.piece(Tokenizer::kMask), std::string("[MASK]"));
  const std::string text = "The old horse heard a red ball near the old mill.";
  const auto ids = tok.encode(text);
  QVERIFY(ids.size() > 3);
  QCOMPARE(tok.decode(ids), text);
  // A typed [MASK] is the mask token (the playground relies on it).
  const auto masked = tok.encode("the [MASK] dog");
  QVERIFY(std::find(masked.begin(), masked.end(), Tokenizer::kMask) != masked.end());
  // Loading the written model gives the same ids; torch still works.
  auto again = Tokenizer::load(o.model_path);
  QCOMPARE(again.encode(text), ids);
  QCOMPARE(again.fingerprint(), tok.fingerprint());
  auto after = torch::randn({8, 8}).matmul(torch::randn({8, 8}));
  QVERIFY(before.isfinite().all().item<bool>() && after.isfinite().all().item<bool>());
}

void TestText::tokenizerRefusesBadModels() {
  QTemporaryDir dir;
  const fs::path d = dir.path().toStdString();
  try {
    Tokenizer::load(d / "absent.model");
    QFAIL("loaded a missing file");
  } catch (const TokenizerError& e) {
    QVERIFY(std::string(e.what()).find("does not exist") != std::string::npos);
  }
  write(d / "junk.model", "this is not a sentencepiece model");
  try {
    Tokenizer::load(d / "junk.model");
    QFAIL("loaded junk");
  } catch (const TokenizerError& e) {
    QVERIFY(std::string(e.what()).find("not a SentencePiece model") != std::string::npos);
  }
  try {
    Tokenizer::train({}, TokenizerTrainOptions{d / "empty.model"});
    QFAIL("trained on nothing");
  } catch (const TokenizerError& e) {
    QVERIFY(std::string(e.what()).find("empty corpus") != std::string::npos);
  }
}

void TestText::textCorpusDocuments() {
  QTemporaryDir dir;
  const fs::path d = dir.path().toStdString();
  write(d / "a.txt", "one.\ntwo.\r\n\n\n  \nthree.\n");
  fs::create_directories(d / "sub");
  write(d / "sub" / "b.txt", "four.\n\nfive.\nsix.");
  const auto c = read_text_corpus(d);
  QCOMPARE(c.num_documents(), size_t(4));
  QCOMPARE(c.sentences.size(), size_t(6));
  QCOMPARE(c.sentences[1], std::string("two."));  // \r stripped
  QCOMPARE(c.document_starts, (std::vector<uint32_t>{0, 2, 3, 4, 6}));
  // The fingerprint follows the files.
  const auto before = c.fingerprint;
  write(d / "sub" / "b.txt", "four.\n\nfive.\nsix. seven.");
  QVERIFY(read_text_corpus(d).fingerprint != before);
}

void TestText::textCorpusRefusesBadInput() {
  QTemporaryDir dir;
  const fs::path d = dir.path().toStdString();
  write(d / "latin1.txt", "fine\ncaf\xe9 au lait\n");
  try {
    read_text_corpus(d / "latin1.txt");
    QFAIL("accepted Latin-1");
  } catch (const CorpusError& e) {
    QVERIFY2(std::string(e.what()).find("latin1.txt:2") != std::string::npos, e.what());
  }
  write(d / "truncated.txt", "ok \xe2\x82");  // a cut-off euro sign
  QVERIFY_EXCEPTION_THROWN(read_text_corpus(d / "truncated.txt"), CorpusError);
  write(d / "blank.txt", "\n\n  \n");
  QVERIFY_EXCEPTION_THROWN(read_text_corpus(d / "blank.txt"), CorpusError);
  QVERIFY_EXCEPTION_THROWN(read_text_corpus(d / "absent"), CorpusError);
  write(d / "utf8.txt", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n");
  QCOMPARE(read_text_corpus(d / "utf8.txt").sentences.size(), size_t(1));
}

void TestText::tokenCacheIsReusedAndValidated() {
  QTemporaryDir dir;
  const fs::path d = dir.path().toStdString();
  const auto corpus = read_text_corpus(kFixtures / "corpus" / "tiny.txt");
  TokenizerTrainOptions o;
  o.model_path = d / "t.model";
  o.vocab_size = 100;
  auto tok = Tokenizer::train(corpus.sentences, o);
  bool cached = true;
  const auto first = tokenize_corpus(corpus, tok, d / "cache", {}, &cached);
  QVERIFY(!cached);
  QCOMPARE(first.num_sentences(), corpus.sentences.size());
  QCOMPARE(first.num_documents(), corpus.num_documents());
  const auto second = tokenize_corpus(corpus, tok, d / "cache", {}, &cached);
  QVERIFY(cached);
  QCOMPARE(second.tokens, first.tokens);
  QCOMPARE(second.sentence_starts, first.sentence_starts);
  // A damaged cache file is not trusted: it is rebuilt.
  fs::path file;
  for (const auto& e : fs::directory_iterator(d / "cache")) file = e.path();
  fs::resize_file(file, fs::file_size(file) - 9);
  TokenizedCorpus t;
  QVERIFY(!load_tokenized(file, 0, t));
  const auto third = tokenize_corpus(corpus, tok, d / "cache", {}, &cached);
  QVERIFY(!cached);
  QCOMPARE(third.tokens, first.tokens);
}

void TestText::maskingStatistics() {
  const auto corpus = labelled_corpus(60);
  PretrainingOptions o;
  o.seq_len = 64;
  o.max_predictions = 10;
  o.short_seq_probability = 0;
  const int vocab = 1000;
  PretrainingData data(corpus, vocab, 5, o, 0);
  int64_t predictions = 0, masked = 0, kept = 0, random = 0, capped = 0;
  for (uint64_t k = 0; k < 4000; ++k) {
    const auto ex = data.example(Split::Train, k);
    QCOMPARE(int(ex.ids.size()), 64);
    QCOMPARE(ex.ids[0], Tokenizer::kCls);
    QCOMPARE(ex.ids[ex.length - 1], Tokenizer::kSep);
    for (int i = ex.length; i < 64; ++i) QCOMPARE(ex.ids[i], Tokenizer::kPad);
    int n = 0;
    for (int p = 0; p < o.max_predictions; ++p) {
      if (ex.mlm_labels[p] == -100) continue;
      ++n;
      const int pos = ex.mlm_positions[p];
      QVERIFY(pos > 0 && pos < ex.length);
      QVERIFY(ex.mlm_labels[p] >= 100);  // never a special token
      if (ex.ids[pos] == Tokenizer::kMask) ++masked;
      else if (ex.ids[pos] == ex.mlm_labels[p]) ++kept;
      else ++random;
    }
    const int expected = std::min<int>(o.max_predictions, std::max<long>(1, std::lround(ex.length * 0.15)));
    QCOMPARE(n, expected);
    if (n == o.max_predictions) ++capped;
    predictions += n;
  }
  // 80/10/10 within a few standard deviations (n ~ 30k).
  const double m = double(masked) / predictions, k = double(kept) / predictions, r = double(random) / predictions;
  QVERIFY2(std::abs(m - 0.8) < 0.015, qPrintable(QString::number(m)));
  QVERIFY2(std::abs(k - 0.1) < 0.012, qPrintable(QString::number(k)));  // includes random draws of the same token
  QVERIFY2(std::abs(r - 0.1) < 0.012, qPrintable(QString::number(r)));
  QVERIFY(capped > 0);  // long sequences hit the cap
}

void TestText::nspPairing() {
  const auto corpus = labelled_corpus(80);
  PretrainingOptions o;
  o.seq_len = 48;
  o.mask_probability = 0.0001;  // one prediction: segments stay readable
  o.max_predictions = 1;
  PretrainingData data(corpus, 1000, 5, o, 0);
  int random_next = 0;
  const int N = 3000;
  for (uint64_t k = 0; k < N; ++k) {
    const auto ex = data.example(Split::Train, k);
    auto ids = ex.ids;
    if (ex.mlm_labels[0] != -100) ids[ex.mlm_positions[0]] = ex.mlm_labels[0];  // undo the one mask
    std::map<int, int> doc_of_segment;
    int seps = 0;
    for (int i = 1; i < ex.length; ++i) {
      if (ids[i] == Tokenizer::kSep) {
        ++seps;
        continue;
      }
      QCOMPARE(ex.segments[i], seps == 0 ? 0 : 1);
      if (doc_of_segment.count(seps)) QCOMPARE(ids[i], doc_of_segment[seps]);  // one document per segment
      doc_of_segment[seps] = ids[i];
    }
    QCOMPARE(seps, 2);
    QCOMPARE(int(doc_of_segment.size()), 2);
    const bool same_document = doc_of_segment[0] == doc_of_segment[1];
    QCOMPARE(same_document, ex.nsp_label == 0);
    random_next += ex.nsp_label;
  }
  // About half random (a one-sentence chunk is always random: a little more).
  QVERIFY2(random_next > N * 0.45 && random_next < N * 0.65, qPrintable(QString::number(random_next)));
}

void TestText::examplesAreDeterministic() {
  const auto corpus = labelled_corpus(50);
  PretrainingOptions o;
  o.seq_len = 32;
  o.max_predictions = 5;
  PretrainingData a(corpus, 1000, 5, o, 10), b(corpus, 1000, 5, o, 10);
  o.seed = 1;
  PretrainingData c(corpus, 1000, 5, o, 10);
  int differ = 0;
  for (uint64_t k = 0; k < 50; ++k) {
    QCOMPARE(a.example(Split::Train, k).ids, b.example(Split::Train, k).ids);
    differ += a.example(Split::Train, k).ids != c.example(Split::Train, k).ids;
  }
  QVERIFY(differ > 40);
  // The held-out split uses other documents than training.
  QVERIFY(a.num_documents(Split::Heldout) > 0);
  QCOMPARE(a.num_documents(Split::Heldout) + a.num_documents(Split::Train), size_t(50));
}

QTEST_GUILESS_MAIN(TestText)
