// Task table (labels, metrics, published file layouts) and the TSV / JSON Lines / WordNet loaders.
#include "model/data/tasks.h"

#include "model/core/hash.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string_view>

#include <nlohmann/json.hpp>

namespace smx::data {
namespace fs = std::filesystem;

namespace {

enum class Format { GlueTsv, SuperGlueJsonl, WordNet };
/// How a GLUE label cell is read: a class index ("0"/"1"), a class name, or a real-valued score.
enum class LabelCell { Index, Name, Score };

/// Everything the loaders need to know about one task.
struct TaskSpec {
  TaskInfo info;
  /// The folder name of the published download, for messages ("SST-2").
  std::string folder;
  Format format = Format::GlueTsv;
  std::string train_file, dev_file;
  // GLUE: header names of the text and label columns (col_b empty for single-sentence tasks).
  std::string col_a, col_b, col_label;
  LabelCell label_cell = LabelCell::Index;
  // GLUE files without a header (CoLA): fixed column count and positions.
  bool has_header = true;
  size_t fixed_columns = 0, fixed_a = 0, fixed_label = 0;
  /// A label value that marks a row to skip (MNLI "-": no annotator consensus).
  std::string skip_label;
  /// Skip rows with the wrong number of columns instead of failing (QQP's published files have some).
  bool skip_malformed_rows = false;
  // SuperGLUE: JSON fields.
  std::string field_a, field_b, field_word;
};

TaskInfo make_info(std::string name, std::vector<std::string> labels, std::vector<MetricKind> metrics, bool pair) {
  TaskInfo info;
  info.name = std::move(name);
  info.num_labels = static_cast<int>(labels.size());
  info.label_names = std::move(labels);
  info.metrics = std::move(metrics);
  info.sentence_pair = pair;
  return info;
}

TaskSpec glue(TaskInfo info, std::string folder, std::string col_a, std::string col_b, std::string col_label,
              LabelCell cell, std::string dev_file = "dev.tsv") {
  TaskSpec s;
  s.info = std::move(info);
  s.folder = std::move(folder);
  s.format = Format::GlueTsv;
  s.train_file = "train.tsv";
  s.dev_file = std::move(dev_file);
  s.col_a = std::move(col_a);
  s.col_b = std::move(col_b);
  s.col_label = std::move(col_label);
  s.label_cell = cell;
  return s;
}

TaskSpec superglue(TaskInfo info, std::string folder, std::string field_a, std::string field_b,
                   std::string field_word = "") {
  TaskSpec s;
  s.info = std::move(info);
  s.folder = std::move(folder);
  s.format = Format::SuperGlueJsonl;
  s.train_file = "train.jsonl";
  s.dev_file = "val.jsonl";
  s.field_a = std::move(field_a);
  s.field_b = std::move(field_b);
  s.field_word = std::move(field_word);
  return s;
}

const std::vector<TaskSpec>& task_specs() {
  static const std::vector<TaskSpec> specs = [] {
    using M = MetricKind;
    const std::vector<std::string> entail2 = {"entailment", "not_entailment"};
    const std::vector<std::string> boolean = {"false", "true"};
    std::vector<TaskSpec> v;
    v.push_back(glue(make_info("sst2", {"negative", "positive"}, {M::Accuracy}, false), "SST-2", "sentence", "",
                     "label", LabelCell::Index));
    TaskSpec cola = glue(make_info("cola", {"unacceptable", "acceptable"}, {M::Matthews}, false), "CoLA", "", "", "",
                         LabelCell::Index);
    cola.has_header = false;  // source, label, original label, sentence
    cola.fixed_columns = 4;
    cola.fixed_a = 3;
    cola.fixed_label = 1;
    v.push_back(cola);
    v.push_back(glue(make_info("mrpc", {"not_equivalent", "equivalent"}, {M::F1, M::Accuracy}, true), "MRPC",
                     "#1 String", "#2 String", "Quality", LabelCell::Index));
    v.push_back(glue(make_info("stsb", {}, {M::Pearson, M::Spearman}, true), "STS-B", "sentence1", "sentence2", "score",
                     LabelCell::Score));
    TaskSpec qqp = glue(make_info("qqp", {"not_duplicate", "duplicate"}, {M::F1, M::Accuracy}, true), "QQP",
                        "question1", "question2", "is_duplicate", LabelCell::Index);
    qqp.skip_malformed_rows = true;
    v.push_back(qqp);
    TaskSpec mnli = glue(make_info("mnli", {"contradiction", "entailment", "neutral"}, {M::Accuracy}, true), "MNLI",
                         "sentence1", "sentence2", "gold_label", LabelCell::Name, "dev_matched.tsv");
    mnli.skip_label = "-";
    v.push_back(mnli);
    v.push_back(glue(make_info("qnli", entail2, {M::Accuracy}, true), "QNLI", "question", "sentence", "label",
                     LabelCell::Name));
    v.push_back(glue(make_info("rte", entail2, {M::Accuracy}, true), "RTE", "sentence1", "sentence2", "label",
                     LabelCell::Name));
    v.push_back(superglue(make_info("wic", boolean, {M::Accuracy}, true), "WiC", "sentence1", "sentence2", "word"));
    v.push_back(superglue(make_info("boolq", boolean, {M::Accuracy}, true), "BoolQ", "question", "passage"));
    v.push_back(superglue(make_info("cb", {"entailment", "contradiction", "neutral"}, {M::Accuracy, M::MacroF1}, true),
                          "CB", "premise", "hypothesis"));
    TaskSpec wn;
    wn.info = make_info("wordnet-lexname", lexicographer_files(), {M::Accuracy, M::MacroF1}, false);
    wn.folder = "WordNet";
    wn.format = Format::WordNet;
    v.push_back(wn);
    return v;
  }();
  return specs;
}

std::string normalized(const std::string& name) {
  std::string s;
  for (char c : name) {
    if (c == '-' || c == '_' || c == ' ') continue;
    s += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return s;
}

const TaskSpec& find_spec(const std::string& name) {
  const std::string key = normalized(name);
  std::string known;
  for (const TaskSpec& s : task_specs()) {
    if (normalized(s.info.name) == key) return s;
    known += (known.empty() ? "" : ", ") + s.info.name;
  }
  throw DataError("unknown task '" + name + "' (known: " + known + ")");
}

std::string_view trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError("cannot open " + path.string());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);  // UTF-8 byte order mark (MRPC has one)
  return text;
}

/// Calls f(line_number, line) for each line, '\r' of CRLF files removed.
template <typename F>
void for_each_line(std::string_view text, F&& f) {
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = end + 1;
    f(++line_no, line);
  }
}

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> cells;
  size_t pos = 0;
  for (;;) {
    const size_t tab = line.find('\t', pos);
    if (tab == std::string_view::npos) {
      cells.push_back(line.substr(pos));
      return cells;
    }
    cells.push_back(line.substr(pos, tab - pos));
    pos = tab + 1;
  }
}

std::string where(const fs::path& file, size_t line_no) { return file.string() + ":" + std::to_string(line_no); }

int label_index(const TaskInfo& info, std::string_view cell, const fs::path& file, size_t line_no) {
  const auto it = std::find(info.label_names.begin(), info.label_names.end(), cell);
  if (it == info.label_names.end()) {
    std::string known;
    for (const auto& n : info.label_names) known += (known.empty() ? "" : ", ") + n;
    throw DataError(where(file, line_no) + ": unknown " + info.name + " label '" + std::string(cell) +
                    "' (expected one of: " + known + ")");
  }
  return static_cast<int>(it - info.label_names.begin());
}

void read_glue_label(const TaskSpec& spec, std::string_view cell, TaskExample& ex, const fs::path& file,
                     size_t line_no) {
  switch (spec.label_cell) {
    case LabelCell::Index: {
      int v = -1;
      const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
      if (ec != std::errc() || end != cell.data() + cell.size() || v < 0 || v >= spec.info.num_labels)
        throw DataError(where(file, line_no) + ": " + spec.info.name + " label '" + std::string(cell) +
                        "' is not a class index in [0, " + std::to_string(spec.info.num_labels) + ")");
      ex.label = v;
      return;
    }
    case LabelCell::Name: ex.label = label_index(spec.info, cell, file, line_no); return;
    case LabelCell::Score: {
      double v = 0;
      const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);  // locale-independent
      if (ec != std::errc() || end != cell.data() + cell.size() || !std::isfinite(v))
        throw DataError(where(file, line_no) + ": " + spec.info.name + " score '" + std::string(cell) +
                        "' is not a number");
      ex.target = v;
      return;
    }
  }
}

std::vector<TaskExample> read_glue_file(const TaskSpec& spec, const fs::path& file) {
  const std::string text = read_text_file(file);
  std::vector<TaskExample> out;
  size_t columns = spec.fixed_columns, col_a = spec.fixed_a, col_label = spec.fixed_label;
  size_t col_b = SIZE_MAX;
  bool header_pending = spec.has_header;
  for_each_line(text, [&](size_t line_no, std::string_view line) {
    if (trim(line).empty()) return;
    const std::vector<std::string_view> cells = split_tabs(line);
    if (header_pending) {
      header_pending = false;
      columns = cells.size();
      const auto column = [&](const std::string& name) {
        for (size_t i = 0; i < cells.size(); ++i)
          if (trim(cells[i]) == name) return i;
        std::string header;
        for (const auto& c : cells) header += (header.empty() ? "" : " | ") + std::string(trim(c));
        throw DataError(where(file, line_no) + ": the " + spec.folder + " header has no column '" + name +
                        "' (header: " + header + ")");
      };
      col_a = column(spec.col_a);
      if (!spec.col_b.empty()) col_b = column(spec.col_b);
      col_label = column(spec.col_label);
      return;
    }
    if (cells.size() != columns) {
      if (spec.skip_malformed_rows) return;
      throw DataError(where(file, line_no) + ": malformed " + spec.folder + " row: " + std::to_string(cells.size()) +
                      " tab-separated columns, expected " + std::to_string(columns));
    }
    const std::string_view label = trim(cells[col_label]);
    if (!spec.skip_label.empty() && label == spec.skip_label) return;
    TaskExample ex;
    ex.text_a = std::string(trim(cells[col_a]));
    if (col_b != SIZE_MAX) ex.text_b = std::string(trim(cells[col_b]));
    read_glue_label(spec, label, ex, file, line_no);
    out.push_back(std::move(ex));
  });
  if (header_pending) throw DataError(file.string() + " is empty (expected a header line)");
  return out;
}

std::string json_text(const nlohmann::json& record, const std::string& field, const fs::path& file, size_t line_no) {
  const auto it = record.find(field);
  if (it == record.end() || !it->is_string())
    throw DataError(where(file, line_no) + ": field '" + field + "' is missing or not a string");
  return it->get<std::string>();
}

std::vector<TaskExample> read_jsonl_file(const TaskSpec& spec, const fs::path& file) {
  const std::string text = read_text_file(file);
  std::vector<TaskExample> out;
  for_each_line(text, [&](size_t line_no, std::string_view line) {
    if (trim(line).empty()) return;
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw DataError(where(file, line_no) + ": malformed JSON line: " + e.what());
    }
    if (!record.is_object()) throw DataError(where(file, line_no) + ": expected a JSON object");
    TaskExample ex;
    ex.text_a = json_text(record, spec.field_a, file, line_no);
    if (!spec.field_word.empty()) ex.text_a = json_text(record, spec.field_word, file, line_no) + ": " + ex.text_a;
    ex.text_b = json_text(record, spec.field_b, file, line_no);
    auto label = record.find("label");
    if (label == record.end()) label = record.find("answer");  // the original BoolQ release
    if (label == record.end() || label->is_null()) {
      ex.label = -1;
    } else if (label->is_boolean()) {
      ex.label = label->get<bool>() ? label_index(spec.info, "true", file, line_no)
                                    : label_index(spec.info, "false", file, line_no);
    } else if (label->is_string()) {
      ex.label = label_index(spec.info, label->get<std::string>(), file, line_no);
    } else {
      throw DataError(where(file, line_no) + ": field 'label' is neither a boolean nor a string");
    }
    out.push_back(std::move(ex));
  });
  return out;
}

}  // namespace

std::string to_string(MetricKind kind) {
  switch (kind) {
    case MetricKind::Accuracy: return "accuracy";
    case MetricKind::F1: return "f1";
    case MetricKind::MacroF1: return "macro-f1";
    case MetricKind::Matthews: return "matthews";
    case MetricKind::Pearson: return "pearson";
    case MetricKind::Spearman: return "spearman";
  }
  return "?";
}

std::vector<std::string> task_names() {
  std::vector<std::string> names;
  for (const TaskSpec& s : task_specs())
    if (s.format != Format::WordNet) names.push_back(s.info.name);
  return names;
}

TaskInfo task_info(const std::string& name) { return find_spec(name).info; }

TaskData load_task(const std::string& name, const fs::path& dir) {
  const TaskSpec& spec = find_spec(name);
  if (spec.format == Format::WordNet) return wordnet_lexname_task(read_wordnet(dir));
  const std::string expected =
      "the published " + spec.folder + " folder holds " + spec.train_file + " and " + spec.dev_file;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw DataError("task folder " + dir.string() + " not found (" + expected + ")");
  TaskData data;
  data.info = spec.info;
  const auto read = [&](const std::string& file_name) {
    const fs::path file = dir / file_name;
    if (!fs::is_regular_file(file, ec)) throw DataError(file.string() + " not found (" + expected + ")");
    return spec.format == Format::GlueTsv ? read_glue_file(spec, file) : read_jsonl_file(spec, file);
  };
  data.train = read(spec.train_file);
  data.dev = read(spec.dev_file);
  return data;
}

TaskData wordnet_lexname_task(const std::vector<Synset>& synsets) {
  const std::vector<std::string>& lexnames = lexicographer_files();
  const int num_files = static_cast<int>(lexnames.size());
  std::vector<int> label_of(lexnames.size(), -1);
  for (const Synset& s : synsets) {
    if (s.lex_filenum < 0 || s.lex_filenum >= num_files)
      throw DataError("synset " + std::to_string(s.offset) + " has lexicographer file number " +
                      std::to_string(s.lex_filenum) + ", not in [0, " + std::to_string(num_files) + ")");
    label_of[s.lex_filenum] = 0;
  }
  TaskData data;
  data.info = find_spec("wordnet-lexname").info;
  data.info.label_names.clear();
  for (int f = 0; f < num_files; ++f)
    if (label_of[f] == 0) {
      label_of[f] = static_cast<int>(data.info.label_names.size());
      data.info.label_names.push_back(lexnames[f]);
    }
  data.info.num_labels = static_cast<int>(data.info.label_names.size());
  if (data.info.num_labels == 0) throw DataError("wordnet-lexname: no synsets to make the task from");
  for (const Synset& s : synsets) {
    TaskExample ex;
    ex.text_a = s.definition;
    ex.label = label_of[s.lex_filenum];
    const uint64_t key = uint64_t{s.offset} * 31 + static_cast<unsigned char>(s.pos);
    (splitmix64(key) % 10 == 0 ? data.dev : data.train).push_back(std::move(ex));
  }
  return data;
}

double majority_baseline(const TaskData& data) {
  const int n = data.info.num_labels;
  if (n <= 0) throw std::invalid_argument("majority_baseline: task '" + data.info.name + "' is a regression task");
  std::vector<size_t> counts(n, 0);
  for (const TaskExample& ex : data.train)
    if (ex.label >= 0 && ex.label < n) ++counts[ex.label];
  const int majority = static_cast<int>(std::max_element(counts.begin(), counts.end()) - counts.begin());
  if (counts[majority] == 0)
    throw std::invalid_argument("majority_baseline: task '" + data.info.name + "' has no labelled train examples");
  size_t labelled = 0, hits = 0;
  for (const TaskExample& ex : data.dev)
    if (ex.label >= 0) {
      ++labelled;
      hits += ex.label == majority;
    }
  if (labelled == 0)
    throw std::invalid_argument("majority_baseline: task '" + data.info.name + "' has no labelled dev examples");
  return static_cast<double>(hits) / static_cast<double>(labelled);
}

}  // namespace smx::data
