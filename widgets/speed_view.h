// Speed: how long one example takes to train and to infer, per model preset,
// on this machine, and how much faster each preset is than the first one
// (the paper's claim: Sparse Mixer trains ~65% faster than BERT). Fed a
// plain SpeedResult; knows nothing of the engine.
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
