// The stability lab: the paper's Table 10 in a window. The user picks
// configs and a number of seeds, the app trains every (config, seed) pair,
// and the view shows per config the paper's count beside how many runs
// stayed stable, where the others diverged, the mean final loss, a coloured
// cell per seed, the loss curves of all runs, and per diverged run what went
// wrong first with links to its routing and router curves. Fed plain StabilityCell structs; knows nothing of
// the engine.
#pragma once

#include <QColor>
#include <QHash>
#include <QString>
#include <QStringList>
#include <QVector>
#include <QWidget>

#include "widgets/view_data.h"

class QLabel;
class QListWidget;
class QPushButton;
class QSpinBox;
class QDoubleSpinBox;
class QFormLayout;
class QStackedWidget;
class QTableWidget;
class QToolButton;

namespace smx::widgets {

class TrainingCurvesView;

class StabilityLabView : public QWidget {
  Q_OBJECT
 public:
  explicit StabilityLabView(QWidget* parent = nullptr);

  /// Presets the user can pick (bert-base, sparse-mixer, ...); checked ones stay checked.
  void setAvailableConfigs(const QStringList& presets);
  /// Fills the form; configs not among the presets (config files) are added to the list.
  void setPlan(const StabilityPlan& plan);
  /// The form's values; configs in list order.
  StabilityPlan plan() const;
  /// The batch's runs, one cell per (config, seed), as they are now. While any
  /// is queued or running the batch counts as running: "Run batch" is
  /// disabled and "Cancel" enabled.
  void setCells(const QVector<StabilityCell>& cells);
  /// Loss curves of the batch's runs: the app feeds it (label per run, x = step, y = total loss).
  TrainingCurvesView* curves() const;
  /// The paper's Table 10 row each config stands for, shown beside the measured count; configs without
  /// one show "—".
  void setPaperReferences(const QHash<QString, StabilityReference>& byConfig);
  /// A caption under the table putting the measured counts in context (e.g. what reproduces at this
  /// scale); empty hides it.
  void setContextNote(const QString& text);
  QString contextNote() const;
  /// The paper column's text for a config ("sparse BERT-4: 0/4 · 0/4"), empty if none.
  QString paperText(const QString& config) const;
  /// Rows of the "why did it diverge" table: one per diverged run.
  int diagnosisRowCount() const;
  QString diagnosisText(int row) const;
  /// Opens the diagnosis of a diverged run as if its row's buttons were pressed (tests, keyboard).
  void requestRouting(int row);

  /// Larger fonts; hides batch size and steps (the learning rate stays: it is what makes runs diverge).
  void setClassroomMode(bool on);
  /// PNG/SVG/PDF of the loss curves or CSV of the per-run cells, by the suffix.
  bool exportView(const QString& path, QString* error = nullptr) const;

  int tableRowCount() const;
  /// "k/N": runs of `config` that finished out of all its runs; empty if the config has none.
  QString stableSummary(const QString& config) const;
  /// Seed cells drawn in the table's grid column (one per run).
  int seedCellCount() const;
  /// Fill colour of a run's cell by its status (finished green, diverged red, ...).
  static QColor statusColor(const QString& status);

 Q_SIGNALS:
  /// "Run batch" was clicked with at least one config checked.
  void runRequested(const StabilityPlan& plan);
  void cancelRequested();
  /// A diverged run's "Routing at step N": the app shows its routing snapshot nearest that step.
  void routingAtStepRequested(qint64 runId, qint64 step);
  /// A diverged run's "Router curves": the app shows its router logit and entropy curves.
  void curvesRequested(qint64 runId, qint64 step);

 private:
  void requestRun();
  void rebuildTable();
  void rebuildDiagnosis();
  QVector<StabilityCell> divergedCells() const;
  void updateButtons();
  void applyFonts();
  QStringList configOrder() const;

  QListWidget* configs_;
  QSpinBox* seeds_;
  QDoubleSpinBox* learning_rate_;
  QSpinBox* batch_;
  QSpinBox* steps_;
  QSpinBox* warmup_;
  QDoubleSpinBox* clip_;
  QFormLayout* form_;
  QPushButton* run_;
  QPushButton* cancel_;
  QToolButton* export_;
  QLabel* form_error_;
  QStackedWidget* results_;  ///< page 0: hint, page 1: table + curves
  QTableWidget* table_;
  QLabel* legend_;
  QLabel* context_note_;
  QTableWidget* diagnosis_;  ///< one row per diverged run: verdict, what went wrong first
  QPushButton* show_routing_;
  QPushButton* show_curves_;
  QHash<QString, StabilityReference> paper_;
  TrainingCurvesView* curves_;
  QVector<StabilityCell> cells_;
  bool classroom_ = false;
};

}  // namespace smx::widgets
