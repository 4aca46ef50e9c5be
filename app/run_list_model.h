// The run list: every run in the run store (studio and headless CLI runs
// alike), with its status, device, progress and best (not last) evaluation
// metrics. Refreshed from the store on demand; cheap when nothing changed.
#pragma once

#include <QAbstractTableModel>
#include <QHash>
#include <QVector>
#include <memory>

#include "model/store/run_store.h"

namespace smx::app {

class RunListModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column { Id, Name, Task, Status, Device, Steps, Best, Created, ColumnCount };
  explicit RunListModel(QObject* parent = nullptr);

  /// Opens (or re-opens) the store; false with *error on failure (the list is then empty).
  bool open(const QString& storePath, QString* error = nullptr);
  store::RunStore* store() const { return store_.get(); }
  /// Re-reads the store; only runs that changed since the last refresh are recomputed.
  void refresh();

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

  const store::RunRecord* runAt(int row) const;
  int rowOf(qint64 runId) const;
  /// Best value of each eval metric: max, or min for losses.
  QVector<QPair<QString, double>> bestMetrics(qint64 runId) const;
  /// The headline metric of a run (MLM accuracy, or the task's first metric) and its best value.
  QString headline(qint64 runId) const;

 private:
  struct Row {
    store::RunRecord run;
    QVector<QPair<QString, double>> best;
    QString task;
    QString device;  ///< as recorded, with " · bf16" for a GPU run in bfloat16
  };
  void computeBest(Row& row) const;
  std::unique_ptr<store::RunStore> store_;
  QVector<Row> rows_;
};

/// "pretrain" or the fine-tuning task, from a run's config JSON.
QString runTask(const std::string& configJson);
/// True for a decoder-LM run (sMLP family): kind "lm", or a decoder-lm model in its config.
bool runIsLm(const store::RunRecord& run);
/// True for metrics where lower is better (losses, perplexity).
bool lowerIsBetter(const QString& metric);

}  // namespace smx::app
