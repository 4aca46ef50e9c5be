#include "app/run_list_model.h"

#include <QColor>
#include <QDateTime>
#include <cmath>
#include <nlohmann/json.hpp>

namespace smx::app {

QString runTask(const std::string& configJson) {
  try {
    const auto j = nlohmann::json::parse(configJson);
    if (j.contains("training") && j["training"].contains("task")) return QString::fromStdString(j["training"]["task"].get<std::string>());
  } catch (const std::exception&) {
  }
  return QStringLiteral("?");
}

// "cuda:0 · bf16" for a GPU run that computes in bfloat16; the device as recorded otherwise.
static QString runDevice(const store::RunRecord& run) {
  QString device = QString::fromStdString(run.device);
  if (!device.startsWith("cuda")) return device;
  try {
    const auto j = nlohmann::json::parse(run.config_json);
    if (j.contains("training") && j["training"].value("bf16", true)) device += QStringLiteral(" · bf16");
  } catch (const std::exception&) {
  }
  return device;
}

bool runIsLm(const store::RunRecord& run) {
  if (run.kind == "lm") return true;
  try {
    const auto j = nlohmann::json::parse(run.config_json);
    return j.contains("model") && j["model"].value("family", std::string()) == "decoder-lm";
  } catch (const std::exception&) {
    return false;
  }
}

bool lowerIsBetter(const QString& metric) { return metric.contains("loss") || metric.contains("perplexity"); }

RunListModel::RunListModel(QObject* parent) : QAbstractTableModel(parent) {}

bool RunListModel::open(const QString& storePath, QString* error) {
  beginResetModel();
  rows_.clear();
  store_.reset();
  try {
    store_ = std::make_unique<store::RunStore>(storePath.toStdString());
  } catch (const std::exception& e) {
    if (error) *error = QString::fromUtf8(e.what());
    endResetModel();
    return false;
  }
  endResetModel();
  refresh();
  return true;
}

void RunListModel::computeBest(Row& row) const {
  row.best.clear();
  // Decoder LMs train with task "pretrain" but are language models: the list says "lm".
  row.task = runIsLm(row.run) ? QStringLiteral("lm") : runTask(row.run.config_json);
  row.device = runDevice(row.run);
  for (const auto& name : store_->metric_names(row.run.id)) {
    if (name.rfind("eval/", 0) != 0 || name == "eval/examples" || name == "eval/targets") continue;
    const bool lower_is_better = lowerIsBetter(QString::fromStdString(name));
    double best = std::nan("");
    for (const auto& p : store_->metric(row.run.id, name)) {
      if (!std::isfinite(p.value)) continue;
      if (std::isnan(best) || (lower_is_better ? p.value < best : p.value > best)) best = p.value;
    }
    if (!std::isnan(best)) row.best.push_back({QString::fromStdString(name), best});
  }
}

void RunListModel::refresh() {
  if (!store_) return;
  std::vector<store::RunRecord> runs;
  try {
    runs = store_->list_runs();
  } catch (const std::exception&) {
    return;  // a busy or vanished store: keep what is shown
  }
  QHash<qint64, int> old;
  for (int i = 0; i < rows_.size(); ++i) old.insert(rows_[i].run.id, i);
  QVector<Row> next;
  next.reserve(int(runs.size()));
  for (auto& r : runs) {
    Row row;
    const auto it = old.find(r.id);
    if (it != old.end() && rows_[*it].run.updated_at == r.updated_at) {
      row = rows_[*it];
    } else {
      row.run = r;
      try {
        computeBest(row);
      } catch (const std::exception&) {
      }
    }
    next.push_back(std::move(row));
  }
  // Same runs in the same order: update in place so selections survive.
  bool same = next.size() == rows_.size();
  for (int i = 0; same && i < next.size(); ++i) same = next[i].run.id == rows_[i].run.id;
  if (same) {
    rows_ = std::move(next);
    if (!rows_.isEmpty()) Q_EMIT dataChanged(index(0, 0), index(rowCount() - 1, ColumnCount - 1));
  } else {
    beginResetModel();
    rows_ = std::move(next);
    endResetModel();
  }
}

int RunListModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : rows_.size(); }
int RunListModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

const store::RunRecord* RunListModel::runAt(int row) const {
  return row >= 0 && row < rows_.size() ? &rows_[row].run : nullptr;
}

int RunListModel::rowOf(qint64 runId) const {
  for (int i = 0; i < rows_.size(); ++i)
    if (rows_[i].run.id == runId) return i;
  return -1;
}

QVector<QPair<QString, double>> RunListModel::bestMetrics(qint64 runId) const {
  const int r = rowOf(runId);
  return r < 0 ? QVector<QPair<QString, double>>{} : rows_[r].best;
}

QString RunListModel::headline(qint64 runId) const {
  const int r = rowOf(runId);
  if (r < 0 || rows_[r].best.isEmpty()) return {};
  const auto& row = rows_[r];
  const QString preferred = row.task == "pretrain" ? "eval/accuracy_mlm" : row.task == "lm" ? "eval/perplexity" : QString();
  for (const auto& [name, value] : row.best)
    if (name == preferred) return QString("%1 %2").arg(name.mid(5)).arg(value, 0, 'f', 3);
  for (const auto& [name, value] : row.best)
    if (!lowerIsBetter(name)) return QString("%1 %2").arg(name.mid(5)).arg(value, 0, 'f', 3);
  return QString("%1 %2").arg(row.best.front().first.mid(5)).arg(row.best.front().second, 0, 'f', 3);
}

QVariant RunListModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rows_.size()) return {};
  const Row& row = rows_[index.row()];
  const auto& r = row.run;
  if (role == Qt::DisplayRole) {
    switch (index.column()) {
      case Id: return qlonglong(r.id);
      case Name: return QString::fromStdString(r.name) + (r.parent_id ? QString("  ← %1").arg(*r.parent_id) : QString());
      case Task: return row.task;
      case Status: return QString::fromStdString(r.status);
      case Device: return row.device;
      case Steps: return qlonglong(r.last_step);
      case Best: return headline(r.id);
      case Created: return QDateTime::fromSecsSinceEpoch(qint64(r.created_at)).toString("yyyy-MM-dd hh:mm");
    }
  } else if (role == Qt::ToolTipRole) {
    QStringList lines;
    lines << QString("Run %1: %2").arg(r.id).arg(QString::fromStdString(r.name));
    if (r.parent_id) lines << QString("fine-tuned from run %1").arg(*r.parent_id);
    try {
      lines << QString("folder: %1").arg(QString::fromStdString(store_->run_folder(r.id).string()));
    } catch (const std::exception& e) {
      lines << QString("folder: DAMAGED: %1").arg(QString::fromUtf8(e.what()));
    }
    if (!row.best.isEmpty()) lines << "best evaluation:";
    for (const auto& [name, value] : row.best) lines << QString("  %1 = %2").arg(name).arg(value, 0, 'g', 4);
    return lines.join('\n');
  } else if (role == Qt::ForegroundRole && index.column() == Status) {
    const std::string& s = r.status;
    if (s == "diverged" || s == "failed") return QColor(190, 30, 30);
    if (s == "running") return QColor(20, 100, 200);
    if (s == "finished") return QColor(30, 130, 60);
  } else if (role == Qt::TextAlignmentRole && (index.column() == Id || index.column() == Steps)) {
    return int(Qt::AlignRight | Qt::AlignVCenter);
  } else if (role == Qt::UserRole) {
    return qlonglong(r.id);
  }
  return {};
}

QVariant RunListModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal) return {};
  if (role == Qt::DisplayRole) {
    switch (section) {
      case Id: return "ID";
      case Name: return "Name";
      case Task: return "Task";
      case Status: return "Status";
      case Device: return "Device";
      case Steps: return "Step";
      case Best: return "Best eval";
      case Created: return "Created";
    }
  }
  if (role == Qt::ToolTipRole && section == Best)
    return "The best (not the last) evaluation of the run: MLM accuracy for pre-training, held-out perplexity (lower is "
           "better) for language models (task lm), the task's headline metric for fine-tuning.";
  return {};
}

}  // namespace smx::app
