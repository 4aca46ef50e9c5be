// Fine-tuning tasks: GLUE (TSV) and SuperGLUE (JSON Lines) loaders for the task folders in
// their published layouts, the label names and metrics of each task, and the offline
// wordnet-lexname task built from WordNet glosses.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "model/data/data_error.h"
#include "model/data/wordnet.h"

namespace smx::data {

enum class MetricKind { Accuracy, F1, MacroF1, Matthews, Pearson, Spearman };
/// "accuracy", "f1", "macro-f1", "matthews", "pearson", "spearman".
std::string to_string(MetricKind kind);

struct TaskExample {
  /// First (or only) text.
  std::string text_a;
  /// Second text of a sentence-pair task; empty for single-sentence tasks.
  std::string text_b;
  /// Class index into TaskInfo::label_names; -1 when unlabelled (and for regression).
  int label = -1;
  /// Regression target (STS-B: similarity 0..5).
  double target = 0;
};

struct TaskInfo {
  /// Canonical name: "sst2", "cola", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wic", "boolq", "cb",
  /// "wordnet-lexname".
  std::string name;
  /// Number of classes; 0 = regression.
  int num_labels = 0;
  /// Class names in label-index order (fixed per task).
  std::vector<std::string> label_names;
  /// Metrics reported for the task; the first one is the headline metric.
  std::vector<MetricKind> metrics;
  /// True when examples carry text_b.
  bool sentence_pair = false;
};

struct TaskData {
  TaskInfo info;
  std::vector<TaskExample> train, dev;
};

/// The GLUE and SuperGLUE task names, canonical form (not wordnet-lexname).
std::vector<std::string> task_names();

/// Accepts case-insensitive forms with or without dashes/underscores ("SST-2", "sst2", "STS-B",
/// "BoolQ", "WordNet-Lexname"); unknown names throw DataError listing the known ones.
/// For "wordnet-lexname" the labels are all 45 lexicographer files; wordnet_lexname_task keeps
/// only those that occur (the same list for the full WordNet).
TaskInfo task_info(const std::string& name);

/// Loads a task from its folder in the published layout:
///  - GLUE: train.tsv and dev.tsv (MNLI: dev_matched.tsv), split on tabs only (quote characters are
///    text), columns found by header name (CoLA has no header). Text fields are trimmed of
///    surrounding whitespace. MNLI rows whose gold_label is "-" (no annotator consensus) are skipped;
///    QQP rows with missing columns (the published train.tsv has a few) are skipped; any other
///    malformed row throws DataError naming file and line.
///  - SuperGLUE: train.jsonl and val.jsonl. WiC: text_a = word + ": " + sentence1, text_b = sentence2.
///    BoolQ: text_a = question, text_b = passage, label from "label" (or "answer" in the original
///    BoolQ release). A record without a label is kept unlabelled (label -1).
///  - wordnet-lexname: dir is a WordNet folder (read_wordnet + wordnet_lexname_task).
/// A missing folder or file throws DataError naming the path and the files expected.
TaskData load_task(const std::string& name, const std::filesystem::path& dir);

/// One example per synset: text_a = the definition (no lemma words), label = the synset's
/// lexicographer file as an index into the lexnames that occur (label_names, in lex_filenum order).
/// dev = synsets with splitmix64(offset * 31 + pos) % 10 == 0 (about 10%), train = the rest.
TaskData wordnet_lexname_task(const std::vector<Synset>& synsets);

/// Dev accuracy of always predicting the most frequent train label (ties: the lower index).
/// Classification tasks only; throws std::invalid_argument for regression or no labelled examples.
double majority_baseline(const TaskData& data);

}  // namespace smx::data
