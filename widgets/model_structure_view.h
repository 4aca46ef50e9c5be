// A model's structure: one row per layer (mixing, MLP or MoE, parameters,
// FLOPs) and a bar chart of where the FLOPs go. Fed plain rows; knows
// nothing of the engine.
#pragma once

#include <QString>
#include <QVector>
#include <QWidget>

class QCustomPlot;
class QTableWidget;
class QLabel;

namespace smx::widgets {

struct LayerRow {
  QString name;     ///< "0", "1", ..., "embeddings", "heads"
  QString mixing;   ///< "attention", "linear", ... (empty for embeddings/heads)
  QString mlp;      ///< "dense", "MoE" (empty for embeddings/heads)
  double params = 0;
  double active_params = 0;
  double gflops = 0;  ///< forward GFLOP per example
  QString capacity;   ///< MoE: "capacity x groups"
};

class ModelStructureView : public QWidget {
  Q_OBJECT
 public:
  explicit ModelStructureView(QWidget* parent = nullptr);
  void setModel(const QString& summary, const QVector<LayerRow>& rows);

  int rowCount() const;
  int barCount() const;
  /// Saves the chart as PNG or vector PDF, or the rows as CSV, by the suffix; false on failure.
  bool exportChart(const QString& path) const;

 private:
  QLabel* summary_;
  QTableWidget* table_;
  QCustomPlot* plot_;
  QVector<LayerRow> rows_;
};

}  // namespace smx::widgets
