#include "tst_data.h"

#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "model/data/metrics.h"
#include "model/data/tasks.h"
#include "model/data/wordnet.h"

using namespace smx::data;
namespace fs = std::filesystem;

/// Reference values below are computed by hand; 1e-6 covers their printed rounding.
#define SMX_NEAR(actual, expected)                                                                       \
  QVERIFY2(std::abs((actual) - (expected)) < 1e-6,                                                     \
           qPrintable(QString("%1 = %2, expected %3").arg(#actual).arg(actual, 0, 'g', 10).arg(expected, 0, 'g', 10)))

namespace {

const fs::path kFixtures = SMX_FIXTURES_DIR;

/// what() of the E thrown by f, or an empty string when f throws nothing.
template <typename E, typename F>
QString error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return QString::fromStdString(e.what());
  }
  return {};
}

QString labels_of(const std::vector<TaskExample>& examples) {
  QStringList l;
  for (const TaskExample& ex : examples) l << QString::number(ex.label);
  return l.join(',');
}

QStringList qstrings(const std::vector<std::string>& v) {
  QStringList l;
  for (const std::string& s : v) l << QString::fromStdString(s);
  return l;
}

const Synset* find_synset(const std::vector<Synset>& synsets, char pos, uint32_t offset) {
  for (const Synset& s : synsets)
    if (s.pos == pos && s.offset == offset) return &s;
  return nullptr;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

void TestData::wordnetFixture() {
  const std::vector<Synset> s = read_wordnet(kFixtures / "wordnet");
  QCOMPARE(s.size(), size_t{6 + 3 + 7 + 3});  // noun, verb, adj, adv lines after the 29 license lines
  // File order: nouns first, then verbs, adjectives, adverbs.
  QCOMPARE(s.front().pos, 'n');
  QCOMPARE(s.back().pos, 'r');

  const Synset* dog = find_synset(s, 'n', 2084071);
  QVERIFY(dog);
  QCOMPARE(qstrings(dog->words), QStringList({"dog", "domestic dog", "Canis familiaris"}));
  QCOMPARE(dog->lex_filenum, 5);
  QCOMPARE(lexicographer_files()[dog->lex_filenum], std::string("noun.animal"));
  QCOMPARE(dog->definition, std::string("a member of the genus Canis (probably descended from the common wolf) that has "
                                        "been domesticated by man since prehistoric times; occurs in many breeds"));
  QCOMPARE(qstrings(dog->examples), QStringList({"the dog barked all night"}));

  // A definition with ';' in it and two examples.
  const Synset* motivation = find_synset(s, 'n', 23773);
  QVERIFY(motivation);
  QCOMPARE(motivation->definition,
           std::string("the psychological feature that arouses an organism to action toward a desired goal; the reason "
                       "for the action; that which gives purpose and direction to behavior"));
  QCOMPARE(qstrings(motivation->examples),
           QStringList({"we did not understand his motivation", "he acted with the best of motives"}));

  // No examples at all.
  const Synset* entity = find_synset(s, 'n', 1740);
  QVERIFY(entity);
  QCOMPARE(entity->lex_filenum, 3);
  QVERIFY(entity->examples.empty());
  QCOMPARE(entity->definition, std::string("that which is perceived or known or inferred to have its own distinct "
                                           "existence (living or nonliving)"));

  // A quoted phrase inside the definition stays there; an attribution after an example is dropped;
  // examples separated by ':' are both found.
  const Synset* stride = find_synset(s, 'n', 249987);
  QVERIFY(stride);
  QCOMPARE(stride->definition, std::string("significant progress (especially in the phrase \"make strides\")"));
  QCOMPARE(qstrings(stride->examples), QStringList({"they made big strides in productivity"}));
  const Synset* permutation = find_synset(s, 'n', 399223);
  QVERIFY(permutation);
  QCOMPARE(qstrings(permutation->examples), QStringList({"the permutations...taking place in the physical world"}));
  const Synset* swimming = find_synset(s, 'n', 442115);
  QVERIFY(swimming);
  QCOMPARE(swimming->definition, std::string("the act of swimming"));
  QCOMPARE(qstrings(swimming->examples),
           QStringList({"it was the swimming they enjoyed most", "they took a short swim in the pool"}));

  // Verbs carry frames between the pointers and the gloss.
  const Synset* breathe = find_synset(s, 'v', 1740);
  QVERIFY(breathe);
  QCOMPARE(qstrings(breathe->words), QStringList({"breathe", "take a breath", "respire", "suspire"}));
  QCOMPARE(lexicographer_files()[breathe->lex_filenum], std::string("verb.body"));
  QCOMPARE(breathe->definition, std::string("draw air into, and expel out of, the lungs"));
  QCOMPARE(breathe->examples.size(), size_t{2});
  const Synset* rain = find_synset(s, 'v', 2756558);
  QVERIFY(rain);
  QCOMPARE(lexicographer_files()[rain->lex_filenum], std::string("verb.weather"));
  QCOMPARE(qstrings(rain->examples), QStringList({"If it rains much more, we can expect some flooding"}));

  // Adjective satellites ('s') and the syntactic markers (a), (p), (ip) removed from words.
  const Synset* abounding = find_synset(s, 's', 14358);
  QVERIFY(abounding);
  QCOMPARE(qstrings(abounding->words), QStringList({"abounding", "galore"}));
  QCOMPARE(abounding->definition, std::string("existing in abundance"));
  QCOMPARE(qstrings(abounding->examples), QStringList({"abounding confidence", "whiskey galore"}));
  const Synset* handy = find_synset(s, 's', 19731);
  QVERIFY(handy);
  QCOMPARE(qstrings(handy->words), QStringList({"handy", "ready to hand"}));
  const Synset* outback = find_synset(s, 's', 20103);
  QVERIFY(outback);
  QCOMPARE(qstrings(outback->words), QStringList({"outback", "remote"}));
  QCOMPARE(outback->definition, std::string("inaccessible and sparsely populated"));  // trailing ';' dropped
  QVERIFY(outback->examples.empty());
  const Synset* able = find_synset(s, 'a', 1740);
  QVERIFY(able);
  QCOMPARE(able->lex_filenum, 0);
  QCOMPARE(able->examples.size(), size_t{4});
  const Synset* avenged = find_synset(s, 'a', 3147282);
  QVERIFY(avenged);
  QCOMPARE(lexicographer_files()[avenged->lex_filenum], std::string("adj.ppl"));

  const Synset* ad = find_synset(s, 'r', 1837);
  QVERIFY(ad);
  QCOMPARE(qstrings(ad->words), QStringList({"AD", "A.D.", "anno Domini"}));
  QCOMPARE(lexicographer_files()[ad->lex_filenum], std::string("adv.all"));

  // $SMX_WORDNET_DIR overrides /usr/share/wordnet.
  const QByteArray saved = qgetenv("SMX_WORDNET_DIR");
  const bool was_set = qEnvironmentVariableIsSet("SMX_WORDNET_DIR");
  qunsetenv("SMX_WORDNET_DIR");
  QCOMPARE(default_wordnet_dir(), fs::path("/usr/share/wordnet"));
  qputenv("SMX_WORDNET_DIR", QByteArray::fromStdString((kFixtures / "wordnet").string()));
  QCOMPARE(default_wordnet_dir(), kFixtures / "wordnet");
  if (was_set)
    qputenv("SMX_WORDNET_DIR", saved);
  else
    qunsetenv("SMX_WORDNET_DIR");
}

void TestData::wordnetMissingFile() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  const QString message = error_of<DataError>([&] { read_wordnet(dir.path().toStdString()); });
  QVERIFY2(message.contains("data.noun") && message.contains("wordnet-base"), qPrintable(message));
}

void TestData::wordnetMalformedLine() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  const fs::path root = dir.path().toStdString();
  for (const char* name : {"data.noun", "data.verb", "data.adj", "data.adv"})
    fs::copy_file(kFixtures / "wordnet" / name, root / name);
  // The verb file has 32 lines; line 33 gets a word count that is not hexadecimal.
  std::string verbs = read_file(root / "data.verb");
  QCOMPARE(std::count(verbs.begin(), verbs.end(), '\n'), std::ptrdiff_t{32});
  verbs += "00009999 29 v zz breathe 0 000 | a broken line  \n";
  write_file(root / "data.verb", verbs);
  const QString message = error_of<DataError>([&] { read_wordnet(root); });
  QVERIFY2(message.contains("data.verb:33") && message.contains("word count"), qPrintable(message));

  // A line cut short before its gloss.
  write_file(root / "data.verb", read_file(kFixtures / "wordnet" / "data.verb") + "00009999 29 v 01 breathe 0\n");
  const QString cut = error_of<DataError>([&] { read_wordnet(root); });
  QVERIFY2(cut.contains("data.verb:33"), qPrintable(cut));
}

void TestData::lexicographerFiles() {
  const std::vector<std::string>& names = lexicographer_files();
  QCOMPARE(names.size(), size_t{45});
  QCOMPARE(names[0], std::string("adj.all"));
  QCOMPARE(names[1], std::string("adj.pert"));
  QCOMPARE(names[2], std::string("adv.all"));
  QCOMPARE(names[3], std::string("noun.Tops"));
  QCOMPARE(names[4], std::string("noun.act"));
  QCOMPARE(names[28], std::string("noun.time"));
  QCOMPARE(names[29], std::string("verb.body"));
  QCOMPARE(names[43], std::string("verb.weather"));
  QCOMPARE(names[44], std::string("adj.ppl"));
}

void TestData::realWordNet() {
  const fs::path dir = default_wordnet_dir();
  if (!fs::exists(dir / "data.noun")) QSKIP("WordNet not installed (Debian package wordnet-base)");
  // The parse time is the benchmark's result, not a limit: a loaded machine is slower.
  std::vector<Synset> synsets;
  QBENCHMARK_ONCE { synsets = read_wordnet(dir); }
  QCOMPARE(synsets.size(), size_t{117659});  // 82115 nouns, 13767 verbs, 18156 adjectives, 3621 adverbs
  for (const Synset& s : synsets) QVERIFY(!s.definition.empty() && !s.words.empty());

  const TaskData task = wordnet_lexname_task(synsets);
  QCOMPARE(task.info.num_labels, 45);  // every lexicographer file occurs
  QCOMPARE(task.train.size() + task.dev.size(), synsets.size());
  QCOMPARE(task.dev.size(), size_t{11693});  // pins the split: splitmix64(offset * 31 + pos) % 10 == 0
  const double baseline = majority_baseline(task);
  qInfo("wordnet-lexname: %zu train, %zu dev, majority baseline %.4f", task.train.size(), task.dev.size(), baseline);
  QVERIFY(baseline > 0.05 && baseline < 0.3);
}

void TestData::lexnameTaskSplit() {
  // Synthetic synsets: 20,000 offsets over the four parts of speech, three lexicographer files.
  std::vector<Synset> synsets;
  const char parts[] = {'n', 'v', 'a', 'r'};
  const int files[] = {3, 5, 29};
  for (uint32_t i = 0; i < 20000; ++i) {
    Synset s;
    s.offset = 1740 + 97 * i;
    s.pos = parts[i % 4];
    s.lex_filenum = files[i % 3];
    s.words = {"w" + std::to_string(i)};
    s.definition = "definition " + std::to_string(i);
    synsets.push_back(s);
  }
  const TaskData a = wordnet_lexname_task(synsets);
  QCOMPARE(qstrings(a.info.label_names), QStringList({"noun.Tops", "noun.animal", "verb.body"}));
  QCOMPARE(a.info.num_labels, 3);
  QCOMPARE(a.info.name, std::string("wordnet-lexname"));
  QCOMPARE(a.info.metrics.front(), MetricKind::Accuracy);
  QCOMPARE(a.train.size() + a.dev.size(), synsets.size());
  const double dev_fraction = static_cast<double>(a.dev.size()) / static_cast<double>(synsets.size());
  QVERIFY2(dev_fraction > 0.085 && dev_fraction < 0.115, qPrintable(QString::number(dev_fraction)));

  // Same input, same split; the split does not depend on the order of the synsets.
  const TaskData b = wordnet_lexname_task(synsets);
  QCOMPARE(b.dev.size(), a.dev.size());
  for (size_t i = 0; i < a.dev.size(); ++i) QCOMPARE(b.dev[i].text_a, a.dev[i].text_a);
  std::vector<Synset> reversed(synsets.rbegin(), synsets.rend());
  const TaskData c = wordnet_lexname_task(reversed);
  QCOMPARE(c.dev.size(), a.dev.size());
  QCOMPARE(c.dev.front().text_a, a.dev.back().text_a);

  // On the fixture: text_a is the definition alone, labels index the lexnames that occur.
  const std::vector<Synset> fixture = read_wordnet(kFixtures / "wordnet");
  const TaskData f = wordnet_lexname_task(fixture);
  QCOMPARE(qstrings(f.info.label_names),
           QStringList({"adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "verb.body",
                        "verb.weather", "adj.ppl"}));
  QCOMPARE(f.train.size() + f.dev.size(), fixture.size());
  std::vector<TaskExample> all = f.train;
  all.insert(all.end(), f.dev.begin(), f.dev.end());
  for (const Synset& s : fixture) {
    bool found = false;
    for (const TaskExample& ex : all)
      if (ex.text_a == s.definition) {
        found = true;
        QCOMPARE(f.info.label_names[ex.label], lexicographer_files()[s.lex_filenum]);
        QVERIFY(ex.text_b.empty());
      }
    QVERIFY(found);
  }
  // Loading it by name from a WordNet folder gives the same task.
  const TaskData loaded = load_task("wordnet-lexname", kFixtures / "wordnet");
  QCOMPARE(loaded.dev.size(), f.dev.size());
  QCOMPARE(loaded.info.label_names, f.info.label_names);
}

void TestData::taskNamesAndAliases_data() {
  QTest::addColumn<QString>("alias");
  QTest::addColumn<QString>("canonical");
  QTest::addColumn<int>("numLabels");
  QTest::addColumn<QString>("metrics");
  QTest::addColumn<bool>("pair");
  QTest::newRow("SST-2") << "SST-2" << "sst2" << 2 << "accuracy" << false;
  QTest::newRow("sst2") << "sst2" << "sst2" << 2 << "accuracy" << false;
  QTest::newRow("CoLA") << "CoLA" << "cola" << 2 << "matthews" << false;
  QTest::newRow("MRPC") << "MRPC" << "mrpc" << 2 << "f1,accuracy" << true;
  QTest::newRow("STS-B") << "STS-B" << "stsb" << 0 << "pearson,spearman" << true;
  QTest::newRow("qqp") << "qqp" << "qqp" << 2 << "f1,accuracy" << true;
  QTest::newRow("MNLI") << "MNLI" << "mnli" << 3 << "accuracy" << true;
  QTest::newRow("QNLI") << "QNLI" << "qnli" << 2 << "accuracy" << true;
  QTest::newRow("RTE") << "RTE" << "rte" << 2 << "accuracy" << true;
  QTest::newRow("WiC") << "WiC" << "wic" << 2 << "accuracy" << true;
  QTest::newRow("BoolQ") << "BoolQ" << "boolq" << 2 << "accuracy" << true;
  QTest::newRow("CB") << "CB" << "cb" << 3 << "accuracy,macro-f1" << true;
  QTest::newRow("WordNet_Lexname") << "WordNet_Lexname" << "wordnet-lexname" << 45 << "accuracy,macro-f1" << false;
}

void TestData::taskNamesAndAliases() {
  QFETCH(QString, alias);
  QFETCH(QString, canonical);
  QFETCH(int, numLabels);
  QFETCH(QString, metrics);
  QFETCH(bool, pair);
  const TaskInfo info = task_info(alias.toStdString());
  QCOMPARE(QString::fromStdString(info.name), canonical);
  QCOMPARE(info.num_labels, numLabels);
  QCOMPARE(static_cast<int>(info.label_names.size()), numLabels);
  QStringList m;
  for (MetricKind k : info.metrics) m << QString::fromStdString(to_string(k));
  QCOMPARE(m.join(','), metrics);
  QCOMPARE(info.sentence_pair, pair);

  const std::vector<std::string> names = task_names();
  QCOMPARE(qstrings(names), QStringList({"sst2", "cola", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wic",
                                         "boolq", "cb"}));
}

void TestData::unknownTask() {
  const QString message = error_of<DataError>([] { task_info("glue"); });
  QVERIFY2(message.contains("'glue'") && message.contains("sst2") && message.contains("cb"), qPrintable(message));
}

void TestData::loadTask_data() {
  QTest::addColumn<QString>("name");
  QTest::addColumn<QString>("folder");
  QTest::addColumn<QString>("trainLabels");
  QTest::addColumn<QString>("devLabels");
  QTest::addColumn<QString>("firstA");  // train[0].text_a
  QTest::addColumn<QString>("firstB");  // train[0].text_b
  QTest::addColumn<QString>("quoted");  // some text_a or text_b with a quote character, kept verbatim
  QTest::addColumn<QStringList>("labelNames");
  // SST-2: header sentence/label; published sentences end with a space before the tab (trimmed).
  QTest::newRow("SST-2") << "SST-2" << "SST-2" << "0,0,1,0,1" << "1,0,1"
                         << "hide new secretions from the parental units" << ""
                         << "the film , like \" memento \" , rewards a second viewing"
                         << QStringList({"negative", "positive"});
  // CoLA: no header; label is column 1, the sentence column 3.
  QTest::newRow("CoLA") << "cola" << "CoLA" << "1,1,1,0,1,0" << "1,1,0"
                        << "Our friends won't buy this analysis, let alone the next one we propose." << ""
                        << "Mary said \"I will come.\"" << QStringList({"unacceptable", "acceptable"});
  // MRPC: byte order mark before the header; a field that starts with a quote.
  QTest::newRow("MRPC") << "mrpc" << "MRPC" << "1,0,1" << "1,0"
                        << "Amrozi accused his brother , whom he called \" the witness \" , of deliberately "
                           "distorting his evidence ."
                        << "Referring to him as only \" the witness \" , Amrozi accused his brother of deliberately "
                           "distorting his evidence ."
                        << "\" The foodservice pie business does not fit our long-term growth strategy ."
                        << QStringList({"not_equivalent", "equivalent"});
  // QQP: the broken row (split over two lines) is skipped.
  QTest::newRow("QQP") << "QQP" << "QQP" << "0,1,0,1" << "1,0"
                       << "How is the life of a math student? Could you describe your own experiences?"
                       << "Which level of prepration is enough for the exam jlpt5?"
                       << "What is the meaning of \"carpe diem\"?" << QStringList({"not_duplicate", "duplicate"});
  QTest::newRow("MNLI") << "MNLI" << "MNLI" << "2,1,1,1" << "2,0,1"
                        << "Conceptually cream skimming has two basic dimensions - product and geography."
                        << "Product and geography are what make cream skimming work."
                        << "I like him for the most part, but would still enjoy seeing someone beat him in \"Ghost\"."
                        << QStringList({"contradiction", "entailment", "neutral"});
  QTest::newRow("QNLI") << "QNLI" << "QNLI" << "1,1,0" << "0,1" << "When did the third Digimon series begin?"
                        << "Unlike the two seasons before it and most of the seasons that followed, Digimon Tamers "
                           "takes a darker and more realistic approach to its story featuring Digimon who do not "
                           "reincarnate after their deaths and more complex character development in the original "
                           "Japanese."
                        << "The so-called \"red telephone\" was in fact a teletype link."
                        << QStringList({"entailment", "not_entailment"});
  QTest::newRow("RTE") << "RTE" << "RTE" << "1,0,0" << "1,0,0" << "No Weapons of Mass Destruction Found in Iraq Yet."
                       << "Weapons of Mass Destruction Found in Iraq."
                       << "The \"Harry Potter\" author J.K. Rowling is now richer than the Queen."
                       << QStringList({"entailment", "not_entailment"});
  // WiC: the target word goes in front of sentence1.
  QTest::newRow("WiC") << "WiC" << "WiC" << "0,0,1" << "1,0" << "place: Do you want to come over to my place later?"
                       << "A political system with no place for the less prominent groups."
                       << "Bolt them to the floor with the \"special\" boards." << QStringList({"false", "true"});
  QTest::newRow("BoolQ") << "BoolQ" << "BoolQ" << "1,1,1,1,0" << "0,1"
                         << "do iran and afghanistan speak the same language"
                         << QString::fromUtf8("Persian language -- Persian (/ˈpɜːrʒən, -ʃən/), also known by its "
                                              "endonym Farsi (فارسی fārsi (fɒːɾˈsiː) ( listen)), is one of the Western "
                                              "Iranian languages within the Indo-Iranian branch of the Indo-European "
                                              "language family.")
                         << "Windows Movie Maker -- Windows Movie Maker (formerly known as \"Windows Live Movie "
                            "Maker\" in Windows 7) is a discontinued video editing software by Microsoft."
                         << QStringList({"false", "true"});
  QTest::newRow("CB") << "CB" << "CB" << "0,2,1,1" << "1,2,2"
                      << "It was a complex language. Not written down but handed down. One might say it was peeled "
                         "down."
                      << "the language was peeled down"
                      << "The Paris sewer was no help. \"I don't think he'll come back,\" she said."
                      << QStringList({"entailment", "contradiction", "neutral"});
}

void TestData::loadTask() {
  QFETCH(QString, name);
  QFETCH(QString, folder);
  QFETCH(QString, trainLabels);
  QFETCH(QString, devLabels);
  QFETCH(QString, firstA);
  QFETCH(QString, firstB);
  QFETCH(QString, quoted);
  QFETCH(QStringList, labelNames);
  const TaskData data = load_task(name.toStdString(), kFixtures / "glue" / folder.toStdString());
  QCOMPARE(labels_of(data.train), trainLabels);
  QCOMPARE(labels_of(data.dev), devLabels);
  QCOMPARE(QString::fromStdString(data.train.front().text_a), firstA);
  QCOMPARE(QString::fromStdString(data.train.front().text_b), firstB);
  QCOMPARE(qstrings(data.info.label_names), labelNames);
  QCOMPARE(data.info.num_labels, static_cast<int>(labelNames.size()));
  bool found = false;
  for (const auto* split : {&data.train, &data.dev})
    for (const TaskExample& ex : *split) {
      found = found || QString::fromStdString(ex.text_a) == quoted || QString::fromStdString(ex.text_b) == quoted;
      QCOMPARE(ex.text_b.empty(), !data.info.sentence_pair);
    }
  QVERIFY2(found, qPrintable("no example has the text: " + quoted));
}

void TestData::regressionTargets() {
  const TaskData data = load_task("STS-B", kFixtures / "glue" / "STS-B");
  QCOMPARE(data.info.num_labels, 0);
  QCOMPARE(data.train.size(), size_t{4});
  QCOMPARE(data.dev.size(), size_t{3});
  const double train_targets[] = {5.0, 3.8, 3.8, 2.6};
  for (size_t i = 0; i < 4; ++i) {
    SMX_NEAR(data.train[i].target, train_targets[i]);
    QCOMPARE(data.train[i].label, -1);
  }
  SMX_NEAR(data.dev[1].target, 4.75);
  QCOMPARE(data.train[0].text_a, std::string("A plane is taking off."));
  QCOMPARE(data.train[0].text_b, std::string("An air plane is taking off."));
  QCOMPARE(data.dev[2].text_a, std::string("\"It's a real step forward,\" he said."));
}

void TestData::missingFolderOrFile() {
  const fs::path nowhere = kFixtures / "glue" / "no-such-task";
  const QString folder = error_of<DataError>([&] { load_task("rte", nowhere); });
  QVERIFY2(folder.contains(QString::fromStdString(nowhere.string())) && folder.contains("train.tsv") &&
               folder.contains("dev.tsv"),
           qPrintable(folder));

  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  const fs::path root = dir.path().toStdString();
  fs::copy_file(kFixtures / "glue" / "MNLI" / "train.tsv", root / "train.tsv");
  const QString file = error_of<DataError>([&] { load_task("mnli", root); });
  QVERIFY2(file.contains(QString::fromStdString((root / "dev_matched.tsv").string())), qPrintable(file));

  const QString jsonl = error_of<DataError>([&] { load_task("boolq", root); });
  QVERIFY2(jsonl.contains("train.jsonl") && jsonl.contains("val.jsonl"), qPrintable(jsonl));
}

void TestData::malformedRows() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  const fs::path root = dir.path().toStdString();
  const std::string rte_train = read_file(kFixtures / "glue" / "RTE" / "train.tsv");
  fs::copy_file(kFixtures / "glue" / "RTE" / "dev.tsv", root / "dev.tsv");

  // A row with a missing column (line 5 of train.tsv).
  write_file(root / "train.tsv", rte_train + "3\tOnly one sentence.\tentailment\n");
  QString message = error_of<DataError>([&] { load_task("RTE", root); });
  QVERIFY2(message.contains("train.tsv:5") && message.contains("3 tab-separated columns"), qPrintable(message));

  // A label that is not one of the task's.
  write_file(root / "train.tsv", rte_train + "3\tA sentence.\tAnother one.\tmaybe\n");
  message = error_of<DataError>([&] { load_task("RTE", root); });
  QVERIFY2(message.contains("train.tsv:5") && message.contains("'maybe'"), qPrintable(message));

  // A header without the expected column.
  write_file(root / "train.tsv", "index\tsentence1\tsentence2\tgold\n0\ta\tb\tentailment\n");
  message = error_of<DataError>([&] { load_task("RTE", root); });
  QVERIFY2(message.contains("train.tsv:1") && message.contains("'label'"), qPrintable(message));

  // A broken JSON line.
  write_file(root / "train.jsonl", "{\"premise\": \"p\", \"hypothesis\": \"h\", \"label\": \"neutral\"}\n{\"premise\": \n");
  write_file(root / "val.jsonl", "{\"premise\": \"p\", \"hypothesis\": \"h\", \"label\": \"neutral\"}\n");
  message = error_of<DataError>([&] { load_task("CB", root); });
  QVERIFY2(message.contains("train.jsonl:2"), qPrintable(message));

  // A JSON record without a text field.
  write_file(root / "train.jsonl", "{\"premise\": \"p\", \"label\": \"neutral\"}\n");
  message = error_of<DataError>([&] { load_task("CB", root); });
  QVERIFY2(message.contains("train.jsonl:1") && message.contains("'hypothesis'"), qPrintable(message));
}

void TestData::majorityBaseline() {
  // SST-2 fixture: train labels 0,0,1,0,1 -> predict 0; dev labels 1,0,1 -> 1 of 3 right.
  SMX_NEAR(majority_baseline(load_task("sst2", kFixtures / "glue" / "SST-2")), 1.0 / 3.0);
  // CoLA fixture: train 1,1,1,0,1,0 -> predict 1; dev 1,1,0 -> 2 of 3.
  SMX_NEAR(majority_baseline(load_task("cola", kFixtures / "glue" / "CoLA")), 2.0 / 3.0);
  const TaskData stsb = load_task("stsb", kFixtures / "glue" / "STS-B");
  QVERIFY(!error_of<std::invalid_argument>([&] { majority_baseline(stsb); }).isEmpty());
}

void TestData::classificationMetrics() {
  // Binary, positive = 1:         gold 1 1 1 1 0 0 0 0 0 0
  //                               pred 1 1 1 0 1 1 0 0 0 0
  // Confusion: tp = 3, fn = 1, fp = 2, tn = 4.
  const std::vector<int> gold = {1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
  const std::vector<int> pred = {1, 1, 1, 0, 1, 1, 0, 0, 0, 0};
  // accuracy = (tp + tn) / 10 = 7 / 10
  SMX_NEAR(accuracy(pred, gold), 0.7);
  // F1 = 2 tp / (2 tp + fp + fn) = 6 / 9 (precision 3/5, recall 3/4)
  SMX_NEAR(f1_binary(pred, gold), 6.0 / 9.0);
  // F1 of class 0: tp0 = 4, fp0 = 1, fn0 = 2 -> 8 / 11
  SMX_NEAR(f1_binary(pred, gold, 0), 8.0 / 11.0);
  // MCC = (tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (12 - 2) / sqrt(5 * 4 * 6 * 5) = 10 / sqrt(600)
  //     = 0.4082483
  SMX_NEAR(matthews(pred, gold), 0.40824829);
  // Macro F1 of the two classes = (6/9 + 8/11) / 2 = 0.6969697
  SMX_NEAR(macro_f1(pred, gold, 2), 0.69696970);

  // Three classes: gold 0 0 1 1 2 2, pred 0 1 1 1 2 0.
  // class 0: tp 1, predicted 2, gold 2 -> F1 = 2 / 4 = 0.5
  // class 1: tp 2, predicted 3, gold 2 -> F1 = 4 / 5 = 0.8
  // class 2: tp 1, predicted 1, gold 2 -> F1 = 2 / 3
  // macro = (0.5 + 0.8 + 0.6666667) / 3 = 0.6555556; a class that never occurs (num_labels 4) is not averaged.
  const std::vector<int> gold3 = {0, 0, 1, 1, 2, 2};
  const std::vector<int> pred3 = {0, 1, 1, 1, 2, 0};
  SMX_NEAR(macro_f1(pred3, gold3, 3), (0.5 + 0.8 + 2.0 / 3.0) / 3.0);
  SMX_NEAR(macro_f1(pred3, gold3, 4), (0.5 + 0.8 + 2.0 / 3.0) / 3.0);
  SMX_NEAR(accuracy(pred3, gold3), 4.0 / 6.0);

  // MCC is undefined when a row or column of the confusion matrix is empty: 0.
  SMX_NEAR(matthews({1, 1, 1, 1}, {1, 0, 1, 0}), 0.0);
  // Perfect and inverted predictions.
  SMX_NEAR(matthews({1, 0, 1, 0}, {1, 0, 1, 0}), 1.0);
  SMX_NEAR(matthews({0, 1, 0, 1}, {1, 0, 1, 0}), -1.0);
  // No positives anywhere: F1 0.
  SMX_NEAR(f1_binary({0, 0}, {0, 0}), 0.0);
}

void TestData::correlationMetrics() {
  // Pearson on 4 points: x = 1 2 3 4, y = 2 4 5 9. Means 2.5 and 5.
  // dx = -1.5 -0.5 0.5 1.5, dy = -3 -1 0 4; sxy = 4.5 + 0.5 + 0 + 6 = 11, sxx = 5, syy = 26
  // r = 11 / sqrt(5 * 26) = 11 / sqrt(130) = 0.9647638
  SMX_NEAR(pearson({1, 2, 3, 4}, {2, 4, 5, 9}), 0.96476382);
  SMX_NEAR(pearson({1, 2, 3}, {3, 2, 1}), -1.0);
  SMX_NEAR(pearson({1, 1, 1}, {1, 2, 3}), 0.0);  // undefined (constant side): 0

  // Spearman with ties: x = 1 2 2 3 -> ranks 1 2.5 2.5 4; y = 1 3 2 4 -> ranks 1 3 2 4.
  // Rank deviations from 2.5: x -1.5 0 0 1.5, y -1.5 0.5 -0.5 1.5; sxy = 4.5, sxx = 4.5, syy = 5
  // rho = 4.5 / sqrt(4.5 * 5) = 0.9486833
  SMX_NEAR(spearman({1, 2, 2, 3}, {1, 3, 2, 4}), 0.94868330);
  // Monotonic but not linear: rho = 1.
  SMX_NEAR(spearman({1, 2, 3, 4}, {2, 4, 5, 9}), 1.0);
  // All tied on one side: undefined, 0.
  SMX_NEAR(spearman({2, 2, 2}, {1, 2, 3}), 0.0);
}

void TestData::evaluateTask() {
  const std::vector<int> gold = {1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
  const std::vector<int> pred = {1, 1, 1, 0, 1, 1, 0, 0, 0, 0};
  const std::vector<MetricValue> mrpc = evaluate_classification(task_info("mrpc"), pred, gold);
  QCOMPARE(mrpc.size(), size_t{2});
  QCOMPARE(mrpc[0].kind, MetricKind::F1);  // headline first
  SMX_NEAR(mrpc[0].value, 6.0 / 9.0);
  QCOMPARE(mrpc[1].kind, MetricKind::Accuracy);
  SMX_NEAR(mrpc[1].value, 0.7);
  const std::vector<MetricValue> cola = evaluate_classification(task_info("cola"), pred, gold);
  QCOMPARE(cola.size(), size_t{1});
  QCOMPARE(cola[0].kind, MetricKind::Matthews);
  SMX_NEAR(cola[0].value, 0.40824829);
  const std::vector<MetricValue> cb = evaluate_classification(task_info("cb"), {0, 1, 1, 1, 2, 0}, {0, 0, 1, 1, 2, 2});
  QCOMPARE(cb.size(), size_t{2});
  SMX_NEAR(cb[0].value, 4.0 / 6.0);
  SMX_NEAR(cb[1].value, (0.5 + 0.8 + 2.0 / 3.0) / 3.0);

  const std::vector<MetricValue> stsb = evaluate_regression(task_info("stsb"), {1, 2, 3, 4}, {2, 4, 5, 9});
  QCOMPARE(stsb.size(), size_t{2});
  QCOMPARE(stsb[0].kind, MetricKind::Pearson);
  SMX_NEAR(stsb[0].value, 0.96476382);
  QCOMPARE(stsb[1].kind, MetricKind::Spearman);
  SMX_NEAR(stsb[1].value, 1.0);

  QVERIFY(!error_of<std::invalid_argument>([&] { evaluate_classification(task_info("stsb"), pred, gold); }).isEmpty());
  QVERIFY(!error_of<std::invalid_argument>([&] { evaluate_regression(task_info("sst2"), {1.0}, {1.0}); }).isEmpty());
}

void TestData::badMetricInput() {
  QString message = error_of<std::invalid_argument>([] { accuracy({1, 0}, {1}); });
  QVERIFY2(message.contains("2 predictions for 1 gold"), qPrintable(message));
  message = error_of<std::invalid_argument>([] { accuracy({}, {}); });
  QVERIFY2(message.contains("no values"), qPrintable(message));
  QVERIFY(!error_of<std::invalid_argument>([] { f1_binary({}, {}); }).isEmpty());
  QVERIFY(!error_of<std::invalid_argument>([] { macro_f1({0}, {3}, 3); }).isEmpty());
  QVERIFY(!error_of<std::invalid_argument>([] { matthews({2}, {1}); }).isEmpty());
  QVERIFY(!error_of<std::invalid_argument>([] { pearson({1, 2}, {1, 2, 3}); }).isEmpty());
  QVERIFY(!error_of<std::invalid_argument>([] { spearman({}, {}); }).isEmpty());
  QVERIFY(!error_of<std::invalid_argument>([] { evaluate_classification(task_info("sst2"), {}, {}); }).isEmpty());
}

QTEST_MAIN(TestData)
