// Speed: how long one example takes to train and to infer, per model preset,
// on this machine, and how much faster each preset is than the first one
// (the paper's claim: Sparse Mixer trains ~65% faster than BERT). A table sets
// the measured speed-ups beside the paper's Table 8 and the FLOP ratio of the
// cost model: what the hardware gives against what the arithmetic predicts.
// Fed a plain SpeedResult and SpeedEstimates; knows nothing of the engine.
#pragma once

#include <QFont>
#include <QString>
#include <QStringList>
#include <QVector>
#include <QWidget>

#include "widgets/view_data.h"

class QCustomPlot;
class QCPBarsGroup;
class QLabel;
class QPushButton;
class QSpinBox;
class QTableWidget;
class QToolButton;

namespace smx::widgets {

class SpeedView : public QWidget {
  Q_OBJECT
 public:
  explicit SpeedView(QWidget* parent = nullptr);

  /// Draws a result; one with a non-empty error only shows the error (red) and keeps the previous bars.
  void setResult(const SpeedResult& result);
  /// While busy the controls are off and `message` (e.g. "timing sparse-mixer…") is shown.
  void setBusy(bool busy, const QString& message = {});
  /// Presets a result should have; a missing one gets a note. Default: bert-base, sparse-mixer, fast-sparse-mixer.
  void setExpectedPresets(const QStringList& presets);
  /// Forward FLOPs per example of each preset from the cost model, for the FLOP ratio column
  /// (without one, a result row's own gflops_per_example is used).
  void setEstimates(const QVector<SpeedEstimate>& estimates);

  /// The paper's Table 8 (Lee-Thorp & Ainslie 2022; TPU, per example, relative to BERT-Base):
  /// speed-ups of `preset` in training and inference; false for a preset the table does not list.
  static bool paperSpeedup(const QString& preset, double* train, double* inference);
  /// The comparison table: one row per preset (the result's, or the expected ones before a result);
  /// columns: preset, measured training, measured inference, paper training, paper inference, FLOP ratio.
  int comparisonRowCount() const;
  QString comparisonText(int row, int column) const;
  /// Forward FLOPs of the first row's preset over this row's ("how much faster the arithmetic says"); NaN if unknown.
  double flopRatio(int row) const;

  /// The batch and sequence length the next benchmark will use.
  int batch() const;
  int seqLen() const;

  /// Larger fonts; hides batch and sequence length (the defaults are fine for a lecture).
  void setClassroomMode(bool on);
  /// PNG/SVG/PDF of the charts or CSV of the rows and speed-ups, by the suffix.
  bool exportView(const QString& path, QString* error = nullptr) const;

  /// Bars in the ms/example chart (training + inference, finite values only).
  int barCount() const;
  /// Speed-up of row `row` over row 0: row 0's ms / this row's ms; NaN if either is missing.
  double speedup(int row, bool inference) const;
  /// The lines under the charts: speed-ups in words and notes on missing rows.
  QString summaryText() const;
  QString errorText() const;

 Q_SIGNALS:
  void runRequested(int batch, int seqLen);

 private:
  void rebuildPlot();
  void updateStatus();
  void updateSummary();
  void rebuildTable();
  /// The rows of the comparison: the result's presets, or the expected ones before a result.
  QStringList comparisonPresets() const;
  /// Forward GFLOPs per example of a preset: the estimate, else the result row's; 0 if unknown.
  double gflopsOf(const QString& preset) const;
  QFont scaledFont(double factor = 1.0, bool bold = false) const;

  QSpinBox* batch_;
  QSpinBox* seq_len_;
  QLabel* batch_label_;
  QLabel* seq_len_label_;
  QPushButton* run_;
  QToolButton* export_;
  QLabel* status_;
  QLabel* error_;
  QCustomPlot* plot_;
  QLabel* summary_;
  QLabel* table_caption_;
  QTableWidget* table_;
  QVector<SpeedEstimate> estimates_;
  QVector<QCPBarsGroup*> groups_;  ///< owned by the plot; deleted on rebuild
  SpeedResult result_;
  QStringList expected_{"bert-base", "sparse-mixer", "fast-sparse-mixer"};
  bool has_result_ = false;
  bool busy_ = false;
  QString busy_message_;
  bool classroom_ = false;
  int bar_count_ = 0;
};

}  // namespace smx::widgets
